// Test guest for the JS SDK's protocol modules and fetch(): `horde/xmlrpc`,
// `horde/grpc` (JSON through --proto, bytes, statuses, a stream), fetch()
// with a relative URL, a gRPC call made with plain fetch(), and HTTP at the
// edges (content codings, large and discarded bodies, keep-alive closes)
// through `horde/http` and fetch(). One task; `--var case=NAME` picks what
// it does.

import { check, env } from 'horde';
import grpc from 'horde/grpc';
import http from 'horde/http';
import xmlrpc, { XmlRpcFault } from 'horde/xmlrpc';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// A HelloRequest / HelloResponse: field 1, a string (names here are short).
const hello = (name) => {
  const bytes = encoder.encode(name);
  return new Uint8Array([0x0a, bytes.length, ...bytes]);
};
const greeting = (message) => decoder.decode(message.slice(2, 2 + message[1]));

const cases = {
  xmlrpc() {
    const n = xmlrpc.call('/RPC2', 'get_random_number', 1, 10);
    check(n, { 'xmlrpc number': (v) => v >= 1 && v <= 10 });
    const client = new xmlrpc.Client('/RPC2');
    const value = { id: 7, tags: ['a', 'b'], ok: true, ratio: 1.5, none: null };
    check(client.call('echo', value), { 'xmlrpc echo': (v) => JSON.stringify(v) === JSON.stringify(value) });
    let fault = null;
    try {
      client.call('fail');
    } catch (e) {
      fault = e;
    }
    check(fault, { 'xmlrpc fault': (e) => e instanceof XmlRpcFault && e.faultCode === 42 });
    try {
      client.call('fail_client');
      fault = null;
    } catch (e) {
      fault = e;
    }
    check(fault, {
      'xmlrpc string fault code': (e) => e instanceof XmlRpcFault && e.faultCode === 'Client'
        && e.faultString === 'Denied access to method (login)',
    });
  },

  grpc() {
    const client = new grpc.Client();
    client.load(['.'], 'hello_test.proto');
    client.connect(env('grpc'), { plaintext: true });
    const res = client.invoke('hello.HelloService/SayHello', { name: 'js' });
    check(res, { 'grpc json': (r) => r.status === grpc.StatusOK && r.message.message === 'Hello, js!' });
    const raw = client.invokeBytes('hello.HelloService/SayHello', hello('b'));
    check(raw, { 'grpc bytes': (r) => r.status === grpc.StatusOK && greeting(r.message) === 'Hello, b!' });
    const failed = client.invoke('hello.HelloService/Fail', { name: 'x' });
    check(failed, { 'grpc status': (r) => r.status === grpc.StatusNotFound && r.error.message === 'no such greeting' });
    const replies = [];
    let ended = false;
    const stream = new grpc.Stream(client, 'hello.HelloService/Chat');
    stream.on('data', (m) => replies.push(greeting(m)));
    stream.on('end', () => { ended = true; });
    stream.write(hello('x'));
    stream.write(hello('y'));
    stream.end();
    check(replies, { 'grpc stream': (r) => ended && r.join('|') === 'Hello, x!|Hello, y!' });
    client.close();
  },

  async relative_fetch() {
    const res = await fetch('/item/1');
    const item = await res.json();
    check(item, { 'relative fetch': (i) => res.status === 200 && i.id === 1 });
  },

  async grpc_fetch() {
    const message = hello('web');
    const frame = new Uint8Array(5 + message.length);
    frame.set([0, 0, 0, 0, message.length]);
    frame.set(message, 5);
    const res = await fetch('/hello.HelloService/SayHello', {
      method: 'POST',
      headers: { 'content-type': 'application/grpc' },
      body: frame,
    });
    const body = new Uint8Array(await res.arrayBuffer());
    check(body, { 'grpc over fetch': (b) => res.status === 200 && greeting(b.slice(5)) === 'Hello, web!' });
  },
};

// The paths are those of tests/behaviours.rs.
cases.http_behaviours = async () => {
  for (const coding of ['gzip', 'deflate', 'br', 'zstd']) {
    const viaHttp = http.get(`/coded/${coding}`, { tags: { name: '/coded' } });
    check(viaHttp, { 'http decodes codings': (r) => r.json().name === 'coded' });
    const viaFetch = await fetch(`/coded/${coding}`, { headers: { 'x-horde-name': '/coded fetch' } });
    const item = await viaFetch.json();
    check(item, { 'fetch decodes codings': (i) => i.name === 'coded' });
  }
  const gone = http.get('/bytes?mb=80&coding=gzip', { responseType: 'none', tags: { name: '/bytes discarded' } });
  check(gone, { 'discarded body': (r) => r.status === 200 && r.bytes.length === 0 });
  // fetch() streams a body: any size, read here without keeping it.
  const streamed = await fetch('/bytes?mb=80', { headers: { 'x-horde-name': '/bytes streamed' } });
  const reader = streamed.body.getReader();
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
  }
  check(length, { 'streamed body of any size': (n) => n === 80 * 1024 * 1024 });
  for (let i = 0; i < 2; i += 1) {
    check(http.get('/race', { tags: { name: '/race' } }), { 'http resends on a closed keep-alive': (r) => r.status === 200 });
    const raced = await fetch('/race', { headers: { 'x-horde-name': '/race fetch' } });
    await raced.text();
    check(raced, { 'fetch resends on a closed keep-alive': (r) => r.status === 200 });
  }
  // Header bytes outside ASCII arrive as ISO-8859-1, one character a byte.
  const latin1 = http.get('/latin1', { tags: { name: '/latin1' } });
  check(latin1, {
    'http keeps a Latin-1 header byte': (r) => r.headers['X-Station'] === 'Caf\u00e9 de Paris',
    'http keeps a header value whole': (r) => r.headers['X-Title'] === 'Intro\u00e2\u0080\u00a8Part two'
      && r.headers['X-After'] === '1',
  });
};

export default async function () {
  await cases[env('case')]();
}
