//! Test guest for the JavaScript SDK's semantics: errors thrown by sync and
//! async tasks, checks, custom metrics, run variables, the base URL, HTTP
//! failures as responses, expected statuses, and per-VU random streams.

import http from 'horde/http';
import { baseUrl, check, constant, env, fail, record, vu } from 'horde';
import { Counter, Trend } from 'horde/metrics';

const orders = new Counter('orders');
const sizes = new Trend('body_size');

export const options = {
  users: 3,
  spawnRate: 1000,
  iterations: 60,
  wait: constant(0.02),
  thresholds: { checks: ['rate>0.5'] },
};

// Runs once per VU. The build snapshot must not fix the random stream:
// each VU reports its first draw.
export function onStart() {
  record({ type: 'random', name: `vu${vu()} ${Math.random()}`, durationMs: 0 });
}

export const tasks = {
  throws: () => fail('thrown on purpose'),
  rejects: async () => {
    await null;
    throw new TypeError('rejected on purpose');
  },
  metrics: () => {
    orders.add(2);
    const response = http.get('/item/7', { tags: { name: 'item' } });
    sizes.add(response.body.length);
    check(response, {
      'status is 200': (r) => r.status === 200,
      'json id is 7': (r) => r.json('id') === 7,
      'content type header': (r) => r.headers['Content-Type'] === 'application/json',
      'base url is the host': () => baseUrl() === env('expected_base'),
    });
  },
  statuses: () => {
    const missing = http.get('/item/none', { expectedStatuses: [404], tags: { name: 'expected 404' } });
    check(missing, { '404 seen': (r) => r.status === 404 });
    const denied = http.get('http://127.0.0.1:9/', { tags: { name: 'denied' } });
    check(denied, { 'denied is status 0 with an error': (r) => r.status === 0 && r.error.startsWith('denied') });
  },
};
