//! Groups (k6's `group`): time a block as one entry of type `group`, and
//! file the requests made inside it under the group's name
//! (`checkout::/login`).
//!
//!   group('checkout', () => { http.post('/cart', ...); http.post('/pay'); });

import * as wit from 'horde:scenario/group@0.1.0';

function message(thrown) {
  if (thrown instanceof Error) return `${thrown.name}: ${thrown.message}`;
  return String(thrown?.payload?.val ?? thrown);
}

/**
 * Run `fn` inside group `name` (nested in the current group, if any) and
 * return what it returns; a returned promise ends the group when it settles.
 * A throw marks the group failed and goes on up.
 */
export function group(name, fn) {
  wit.enter(String(name));
  let result;
  try {
    result = fn();
  } catch (thrown) {
    wit.leave(message(thrown));
    throw thrown;
  }
  if (result && typeof result.then === 'function') {
    return result.then(
      (value) => {
        wit.leave(undefined);
        return value;
      },
      (thrown) => {
        wit.leave(message(thrown));
        throw thrown;
      },
    );
  }
  wit.leave(undefined);
  return result;
}
