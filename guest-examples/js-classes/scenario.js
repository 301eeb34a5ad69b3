//! Example scenario in JavaScript: two user classes in one run, as k6's
//! `options.scenarios`. Shoppers (weight 3) log in as `user<VU id>` and
//! browse; exactly one admin (`vus: 1`) logs in as `admin` and checks the
//! orders page. Every event carries the tag `user_class`, so the summary and
//! JSON report each class; `--user-class admin` runs the admin alone (the
//! same scenario as rust-classes and python-classes).

import http from 'horde/http';
import { between, constant, userClass, vu } from 'horde';

export const options = {
  host: 'http://127.0.0.1:8089',
  scenarios: {
    shopper: { exec: 'shop', weight: 3, wait: between(0.05, 0.2) },
    admin: { exec: 'admin', vus: 1, wait: constant(0.1) },
  },
};

const json = { headers: { 'Content-Type': 'application/json' } };
let token;

// Each VU logs in once, as its class's user.
export function onStart() {
  const username = userClass() === 'admin' ? 'admin' : `user${vu()}`;
  const login = http.post('/login', JSON.stringify({ username, password: 'secret' }), json);
  if (login.status !== 200) throw new Error(`login failed: HTTP ${login.status}`);
  token = login.json('token');
}

export function shop() {
  http.get('/item/7', { tags: { name: '/item/[id]' } });
  if (Math.random() < 0.25) {
    const cart = http.post('/cart', JSON.stringify({ item: 7, quantity: 1 }), {
      headers: { ...json.headers, Authorization: `Bearer ${token}` },
    });
    if (cart.status !== 200) throw new Error(`cart failed: HTTP ${cart.status}`);
  }
}

export function admin() {
  const orders = http.get('/admin/orders', { headers: { Authorization: `Bearer ${token}` } });
  if (orders.status !== 200) throw new Error(`orders failed: HTTP ${orders.status}`);
}
