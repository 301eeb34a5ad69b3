//! Run control, checks and waits: k6-style helpers over Horde's `control`
//! and `metrics` imports.

import * as control from 'horde:scenario/control@0.1.0';
import * as metrics from 'horde:scenario/metrics@0.1.0';

/** Pause this VU for `seconds` (other VUs go on); ends early when the run stops. */
export function sleep(seconds) {
  control.sleep(BigInt(Math.max(0, Math.round(Number(seconds) * 1000))));
}

/**
 * Run each named check against `value`; records pass/fail per name and
 * returns true when all passed (k6's `check`).
 */
export function check(value, checks) {
  let all = true;
  for (const [name, predicate] of Object.entries(checks)) {
    let ok;
    try {
      ok = Boolean(typeof predicate === 'function' ? predicate(value) : predicate);
    } catch (_) {
      ok = false;
    }
    metrics.check(name, ok);
    all = all && ok;
  }
  return all;
}

/** Throw to end the current iteration with an error (k6's `fail`). */
export function fail(message = 'failed') {
  throw new Error(message);
}

/** This VU's id, 1-based (k6's `__VU`). */
export function vu() {
  return control.vuId();
}

/** The name of this VU's user class (a key of `options.scenarios`), or
 * undefined when the scenario declares none. */
export function userClass() {
  return control.userClass() ?? undefined;
}

/** Iterations this VU has started, the current one included (k6's `__ITER` + 1). */
export function iteration() {
  return Number(control.iteration());
}

/** A run variable given as `horde run --var key=value` (k6's `__ENV`). */
export function env(key, fallback = undefined) {
  const value = control.getVar(key);
  return value === undefined || value === null ? fallback : value;
}

/** The run's `--host` (else `options.host`), e.g. "http://127.0.0.1:8080/". */
export function baseUrl() {
  return control.baseUrl() ?? undefined;
}

/**
 * Name the requests that plain `fetch()` sends (from any library) in the
 * statistics: `nameRequests([[/^\/item\/\d+$/, '/item/[id]']])`. Each rule is a
 * regular expression tested against the URL's path and the name to use;
 * unmatched requests are named by their path and query.
 */
export function nameRequests(rules) {
  const original = globalThis.fetch;
  globalThis.fetch = (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? absoluteUrl(input) : input.url);
    const rule = rules.find(([pattern]) => pattern.test(url.pathname));
    if (!rule) return original(input, init);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set('x-horde-name', rule[1]);
    return original(input, { ...init, headers });
  };
}

/**
 * `input` as an absolute URL: a relative one ('/item/1') is resolved under
 * the run's `--host` and its path, as `http.get` does (a script has no page
 * to be relative to).
 */
export function absoluteUrl(input) {
  const text = String(input);
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(text)) return text;
  const base = baseUrl();
  if (base === undefined) {
    throw new TypeError(`${text} is a relative URL and the run has no --host to resolve it against`);
  }
  // Under the base's path, as Locust joins --host and a path: with
  // --host http://h/api, '/users' and 'users' both mean http://h/api/users.
  if (/^(\/\/|[?#])/.test(text)) return new URL(text, base).href;
  const directory = base.endsWith('/') ? base : `${base}/`;
  return new URL(text.replace(/^\/+/, ''), directory).href;
}

// `fetch('/path')` resolves against `--host` (the base is read when called:
// it exists only at run time).
const builtinFetch = globalThis.fetch;
if (builtinFetch !== undefined) {
  globalThis.fetch = (input, init) =>
    builtinFetch(typeof input === 'string' || input instanceof URL ? absoluteUrl(input) : input, init);
}

/** Write a line to Horde's log: level is debug, info, warn or error. */
export function log(message, level = 'info') {
  const levels = { debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error' };
  control.log(levels[level] ?? 'info', String(message));
}

/** Stop this VU after the current iteration. */
export function stopUser() {
  control.stopUser();
}

/** End the whole run after the current iteration (k6's `test.abort`). */
export function stopTest(reason = 'stopped by the scenario') {
  control.stopTest(String(reason));
}

/**
 * Record a request event for a protocol the scenario speaks itself.
 * `event`: { type, name, durationMs, responseLength?, error? }.
 */
export function record(event) {
  try {
    metrics.record({
      requestType: String(event.type),
      name: String(event.name),
      durationMs: Number(event.durationMs),
      responseLength: BigInt(event.responseLength ?? 0),
      error: event.error === undefined || event.error === null ? undefined : String(event.error),
    });
  } catch (e) {
    throw new Error(`the event was rejected: ${e?.payload?.val ?? e}`);
  }
}

// Wait times between iterations (options.wait); seconds, like k6's sleep.
const ms = (seconds, what) => {
  const n = Number(seconds);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a number of seconds >= 0, got ${seconds}`);
  return BigInt(Math.round(n * 1000));
};

/** No wait: the next iteration starts at once (the default). */
export const noWait = () => ({ tag: 'none' });
/** Always wait `seconds`. */
export const constant = (seconds) => ({ tag: 'constant', val: ms(seconds, 'constant') });
/** Wait a random time between `min` and `max` seconds. */
export const between = (min, max) => {
  const range = { minMs: ms(min, 'between min'), maxMs: ms(max, 'between max') };
  if (range.minMs > range.maxMs) throw new Error(`between(${min}, ${max}): the minimum is above the maximum`);
  return { tag: 'between', val: range };
};
/** Start an iteration every `seconds`. */
export const constantPacing = (seconds) => ({ tag: 'constant-pacing', val: ms(seconds, 'constantPacing') });
/** At most `perSecond` iterations per second for this VU. */
export const constantThroughput = (perSecond) => {
  if (!(Number(perSecond) > 0)) throw new Error('constantThroughput needs a rate above 0');
  return { tag: 'constant-throughput', val: Number(perSecond) };
};
