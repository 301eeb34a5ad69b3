//! Tags (k6's tags): key-value pairs this VU's events carry, so thresholds
//! (`http_req_duration{flow:checkout}`) and `horde run --breakdown flow`
//! can select and break results down by them.
//!
//!   setTags({ flow: 'browse' });                          // from now on
//!   withTags({ flow: 'checkout' }, () => http.post(...));  // for a block
//!   http.get('/', { tags: { name: '/', flow: 'home' } });  // for one request

import * as wit from 'horde:scenario/tags@0.1.0';

let current = {};

function replace(tags) {
  current = { ...tags };
  wit.set(Object.entries(current).map(([key, value]) => [String(key), String(value)]));
}

/** This VU's tags from now on (`{}` clears them). At most 16 pairs; keys and values are cut to 128 bytes. */
export function setTags(tags = {}) {
  replace(tags);
}

/** This VU's current tags. */
export function currentTags() {
  return { ...current };
}

/** Run `fn` with `tags` added to this VU's tags, then restore them; a returned promise restores them when it settles. */
export function withTags(tags, fn) {
  const before = current;
  replace({ ...before, ...tags });
  let result;
  try {
    result = fn();
  } catch (thrown) {
    replace(before);
    throw thrown;
  }
  if (result && typeof result.then === 'function') {
    return result.finally(() => replace(before));
  }
  replace(before);
  return result;
}
