//! Example scenario in JavaScript: a login flow over test data. Each
//! iteration takes the next row of the `users` feed (`horde run --data
//! users=users.csv`; each row once by default), logs in as that user and
//! buys the row's item in a `checkout` group (the same scenario as
//! rust-data and python-data).

import http from 'horde/http';
import { data, group, noWait, withTags } from 'horde';

export const options = {
  host: 'http://127.0.0.1:8089',
  wait: noWait(),
  // The feed this scenario reads, and how; the operator grants the file.
  data: 'users;strategy=unique',
};

const json = { headers: { 'Content-Type': 'application/json' } };

export default function () {
  const account = data('users').next();
  const login = http.post(
    '/login',
    JSON.stringify({ username: account.username, password: account.password }),
    { ...json, tags: { flow: 'login' } },
  );
  if (login.status !== 200) throw new Error(`login failed: HTTP ${login.status} ${login.error}`);
  // The purchase is timed as one entry, `group checkout`, and its requests
  // are filed under it: `checkout::/cart`. Everything in it is tagged
  // flow=checkout (`--breakdown flow`, thresholds).
  withTags({ flow: 'checkout' }, () => group('checkout', () => {
    http.get(`/item/${account.item}`, { tags: { name: '/item/[id]' } });
    const cart = http.post('/cart', JSON.stringify({ item: account.item, quantity: 1 }), {
      headers: { ...json.headers, Authorization: `Bearer ${login.json('token')}` },
    });
    if (cart.status !== 200) throw new Error(`cart failed: HTTP ${cart.status}`);
  }));
}
