//! Example scenario in JavaScript (k6 style): a shopper who logs in, browses
//! items and adds to a cart (the same scenario as rust-http and python-http).

import http from 'horde/http';
import { between, check, env, noWait, vu } from 'horde';

export const options = {
  host: 'http://127.0.0.1:8089',
  // Evaluated as the run starts: `horde run --var wait=none` runs without waits.
  wait: () => (env('wait') === 'none' ? noWait() : between(0.05, 0.2)),
};

const randomItem = () => 1 + Math.floor(Math.random() * 1000);

// Runs once per VU; what it returns is passed to every task.
export function onStart() {
  const login = http.post(
    '/login',
    JSON.stringify({ username: `user${vu()}`, password: 'secret' }),
    { headers: { 'Content-Type': 'application/json' } },
  );
  if (login.status !== 200) throw new Error(`login failed: HTTP ${login.status} ${login.error}`);
  return { token: login.json('token') };
}

export const tasks = {
  view_item: [5, () => {
    const response = http.get(`/item/${randomItem()}`, { tags: { name: '/item/[id]' } });
    check(response, { 'item has a body': (r) => r.body.length > 0 });
  }],
  index: [2, () => {
    http.get('/');
  }],
  add_to_cart: [1, (session) => {
    http.post('/cart', JSON.stringify({ item: randomItem(), quantity: 1 }), {
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${session.token}` },
    });
  }],
};
