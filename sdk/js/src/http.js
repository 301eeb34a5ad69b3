//! k6-style HTTP: `http.get(url, params)`, `http.post(url, body, params)`,
//! responses with `status`, `body`, `json()`, `headers`, `timings`.
//! Requests go through Horde's `http` import, which times and records each
//! one; a status of 400 or more is a failure unless `expectedStatuses` says
//! otherwise. A request that gets no response does not throw: its response
//! has status 0 and `error` set (as in k6).

import * as wit from 'horde:scenario/http@0.1.0';
import { withTags } from './tags.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ERROR_KINDS = {
  denied: 'denied',
  'invalid-url': 'invalid URL',
  dns: 'DNS',
  connect: 'connect',
  timeout: 'timeout',
  tls: 'TLS',
  protocol: 'protocol',
  'too-large': 'too large',
};

/** One line for an `http` error variant ({ tag, val }). */
export function describeError(error) {
  const kind = ERROR_KINDS[error?.tag] ?? String(error?.tag ?? error);
  return error?.val ? `${kind}: ${error.val}` : kind;
}

/** The error variant carried by a thrown `result` error. */
export function errorPayload(thrown) {
  return thrown?.payload ?? thrown;
}

/** A timeout as milliseconds: a number of ms, or '500ms', '10s', '1m' (k6's form). */
export function parseTimeout(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return Math.max(1, Math.round(value));
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(String(value).trim());
  if (!match) throw new Error(`timeout ${JSON.stringify(value)} is not a duration such as 500ms, 10s or 1m`);
  const scale = { ms: 1, s: 1000, m: 60000 }[match[2]];
  return Math.max(1, Math.round(Number(match[1]) * scale));
}

function encodeForm(object) {
  return Object.entries(object)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
}

/** What a request produced. */
export class Response {
  constructor(request, reply, error) {
    this.request = request;
    this.status = reply ? reply.status : 0;
    this.url = reply ? reply.url : request.url;
    // Values are ISO-8859-1, one character per byte the server sent (as
    // fetch's ByteString headers): every byte survives. One header per "\n"
    // line only: a value may hold U+0085, never "\n".
    this.headers = {};
    for (const line of reply ? reply.headers.split('\n') : []) {
      const colon = line.indexOf(': ');
      if (colon < 0) continue;
      const name = line.slice(0, colon);
      const value = line.slice(colon + 2);
      const key = name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
      this.headers[key] = key in this.headers ? `${this.headers[key]}, ${value}` : value;
    }
    this.bytes = reply ? reply.body : new Uint8Array();
    this.timings = { duration: reply ? Number(reply.elapsedUs) / 1000 : 0 };
    this.error = error ?? '';
    this.error_code = error ? 1000 : 0;
    this._body = undefined;
  }

  /** The body as text. */
  get body() {
    if (this._body === undefined) this._body = decoder.decode(this.bytes);
    return this._body;
  }

  /** The body parsed as JSON; with a dotted `selector` ("items.0.id"), that part of it. */
  json(selector) {
    let value = JSON.parse(this.body);
    if (selector) {
      for (const part of String(selector).split('.')) {
        if (value === undefined || value === null) return undefined;
        value = value[part];
      }
    }
    return value;
  }
}

/**
 * Send a request. `params`: { headers, tags: { name, ...tags }, timeout, redirects
 * (0: do not follow), expectedStatuses: [200, 404], responseType }.
 * `responseType: 'none'` (as in k6) reads the body to its end without
 * keeping it: `body` is empty and the event records the body's length, for
 * downloads of any size (`--max-response-body`, 32 MiB by default, bounds
 * only bodies that are kept).
 */
export function request(method, url, body = null, params = {}) {
  const headers = [];
  let hasContentType = false;
  for (const [name, value] of Object.entries(params.headers ?? {})) {
    headers.push({ name, value: String(value) });
    if (name.toLowerCase() === 'content-type') hasContentType = true;
  }
  let bytes;
  if (body === null || body === undefined) {
    bytes = new Uint8Array();
  } else if (typeof body === 'string') {
    bytes = encoder.encode(body);
  } else if (body instanceof Uint8Array) {
    bytes = body;
  } else if (body instanceof ArrayBuffer) {
    bytes = new Uint8Array(body);
  } else if (typeof body === 'object') {
    bytes = encoder.encode(encodeForm(body));
    if (!hasContentType) headers.push({ name: 'Content-Type', value: 'application/x-www-form-urlencoded' });
  } else {
    bytes = encoder.encode(String(body));
  }
  const name = params.tags?.name ?? params.name;
  const req = {
    method: String(method).toUpperCase(),
    url: String(url),
    headers,
    body: bytes,
    name: name === undefined ? undefined : String(name),
    timeoutMs: parseTimeout(params.timeout),
    expectStatus: new Uint16Array(params.expectedStatuses ?? []),
    followRedirects: params.redirects === undefined ? true : Number(params.redirects) > 0,
    cookieJar: true,
    recordEvent: true,
    discardBody: params.responseType === 'none',
  };
  // Tags other than `name` are the request's own (k6's), added to the VU's.
  const { name: _, ...tags } = params.tags ?? {};
  const send = () => {
    try {
      return new Response(req, wit.send(req), undefined);
    } catch (thrown) {
      return new Response(req, null, describeError(errorPayload(thrown)));
    }
  };
  return Object.keys(tags).length === 0 ? send() : withTags(tags, send);
}

const http = {
  request,
  get: (url, params) => request('GET', url, null, params),
  head: (url, params) => request('HEAD', url, null, params),
  del: (url, body, params) => request('DELETE', url, body, params),
  options: (url, body, params) => request('OPTIONS', url, body, params),
  post: (url, body, params) => request('POST', url, body, params),
  put: (url, body, params) => request('PUT', url, body, params),
  patch: (url, body, params) => request('PATCH', url, body, params),
};

export default http;
