//! gRPC over Horde's `grpc` import, shaped like k6's `k6/net/grpc`:
//!
//!     import grpc from 'horde/grpc';
//!     const client = new grpc.Client();
//!     client.connect('127.0.0.1:50051', { plaintext: true });   // no address: --host
//!     const res = client.invoke('hello.HelloService/SayHello', { name: 'x' });
//!     check(res, { ok: (r) => r.status === grpc.StatusOK });
//!
//! `invoke` takes and returns plain objects, converted by the run's `--proto`
//! file (`client.load(...)` is accepted for k6 scripts; the run's `--proto`
//! is what is used). `invokeBytes` takes and returns serialized messages
//! (Uint8Array). `new grpc.Stream(client, method)` streams serialized
//! messages in any of the three streaming kinds: `write()` each request,
//! `end()`, and the 'data' handlers get the replies, then 'end' (or
//! 'error'). The host records each call (each stream when it ends) as type
//! `grpc`, named by the method path. A non-OK status does not throw: the
//! response has `status` and `error` ({ code, message }), as in k6.

import * as wit from 'horde:scenario/grpc@0.1.0';
import { describeError, errorPayload, parseTimeout } from './http.js';

const STATUS_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];
const statuses = Object.fromEntries(STATUS_NAMES.map((name, code) => [`Status${name}`, code]));

function options(params = {}) {
  const metadata = Object.entries(params.metadata ?? {}).map(([key, value]) => ({ key: key.toLowerCase(), value: String(value) }));
  return { metadata, deadlineMs: parseTimeout(params.timeout), recordEvent: true };
}

const methodPath = (method) => (String(method).startsWith('/') ? String(method) : `/${method}`);

/** The { status, error } of a failed call, or rethrows what is not a call failure. */
function failure(thrown) {
  const error = errorPayload(thrown);
  switch (error?.tag) {
    case 'status':
      return { status: error.val.code, error: { code: error.val.code, message: error.val.message } };
    case 'transport':
      return { status: statuses.StatusUnavailable, error: { code: statuses.StatusUnavailable, message: describeError(error.val) } };
    case 'malformed':
      return { status: statuses.StatusInternal, error: { code: statuses.StatusInternal, message: `malformed reply: ${error.val}` } };
    case 'invalid':
      throw new Error(`gRPC: ${error.val}`);
    default:
      throw thrown;
  }
}

function metadataObject(entries) {
  const object = {};
  for (const { key, value } of entries ?? []) object[key] = value;
  return object;
}

/** A gRPC client (k6's `grpc.Client`). */
export class Client {
  constructor() {
    this.target = '';
  }

  /** k6 loads .proto files here; Horde uses the run's `--proto` file. */
  load() {}

  /** k6's `loadProtoset`; as `load`. */
  loadProtoset() {}

  /**
   * Use `address` (`host:port`, or a URL; none: the run's `--host`);
   * `{ plaintext: true }` for h2c, else TLS (done by the host).
   */
  connect(address, params = {}) {
    const text = String(address ?? '').trim();
    if (!text || text.includes('://')) this.target = text;
    else this.target = `${params.plaintext ? 'http' : 'https'}://${text}`;
    return true;
  }

  /** Unary call with a plain object (JSON through `--proto`). */
  invoke(method, request, params = {}) {
    try {
      const reply = wit.callJson(this.target, methodPath(method), JSON.stringify(request ?? {}), options(params));
      return { status: statuses.StatusOK, message: JSON.parse(reply), headers: {}, trailers: {}, error: null };
    } catch (thrown) {
      return { message: null, headers: {}, trailers: {}, ...failure(thrown) };
    }
  }

  /** Unary call with a serialized message (Uint8Array). */
  invokeBytes(method, request, params = {}) {
    try {
      const reply = wit.call(this.target, methodPath(method), request, options(params));
      return { status: statuses.StatusOK, message: reply.message, headers: metadataObject(reply.metadata), trailers: {}, error: null };
    } catch (thrown) {
      return { message: null, headers: {}, trailers: {}, ...failure(thrown) };
    }
  }

  /** Channels are the host's, kept per VU; nothing to close. */
  close() {}
}

/**
 * A streaming call (k6's `grpc.Stream`) on serialized messages. The same
 * HTTP/2 exchange serves the three kinds: write one request for a server
 * stream, several and read one reply for a client stream. Requests are sent
 * as written; replies are read when `end()` is called.
 */
export class Stream {
  constructor(client, method, params = {}) {
    this.client = client;
    this.method = methodPath(method);
    this.params = params;
    this.handlers = { data: [], error: [], end: [] };
    this.call = null;
  }

  on(event, handler) {
    if (!this.handlers[event]) throw new Error(`grpc.Stream has no event ${JSON.stringify(event)} (data, error, end)`);
    this.handlers[event].push(handler);
    return this;
  }

  emit(event, value) {
    for (const handler of this.handlers[event]) handler(value);
  }

  open() {
    if (this.call === null) this.call = wit.openBidiStream(this.client.target, this.method, options(this.params));
    return this.call;
  }

  write(message) {
    if (!(message instanceof Uint8Array)) {
      throw new TypeError('grpc.Stream carries serialized messages (Uint8Array); encode them with e.g. protobufjs');
    }
    try {
      this.open().send(message);
    } catch (thrown) {
      this.emit('error', failure(thrown).error);
    }
  }

  end() {
    try {
      const call = this.open();
      call.closeSend();
      for (;;) {
        const message = call.next();
        if (message === undefined || message === null) break;
        this.emit('data', message);
      }
      this.emit('end');
    } catch (thrown) {
      this.emit('error', failure(thrown).error);
    }
  }
}

export default { Client, Stream, ...statuses };
export const {
  StatusOK, StatusCanceled, StatusUnknown, StatusInvalidArgument, StatusDeadlineExceeded, StatusNotFound,
  StatusAlreadyExists, StatusPermissionDenied, StatusResourceExhausted, StatusFailedPrecondition, StatusAborted,
  StatusOutOfRange, StatusUnimplemented, StatusInternal, StatusUnavailable, StatusDataLoss, StatusUnauthenticated,
} = statuses;
