//! Example scenario: the shopper again, driven through shop-client.js, an API
//! client library that uses plain `fetch()`. Horde serves `fetch` through
//! wasi:http and records every request the library sends; the only Horde
//! code here is the scenario around it.

import { baseUrl, between, check, env, nameRequests, noWait, vu } from 'horde';
import { ShopClient } from './shop-client.js';

export const options = {
  host: 'http://127.0.0.1:8089',
  wait: () => (env('wait') === 'none' ? noWait() : between(0.05, 0.2)),
};

// Group /item/1, /item/2, ... under one name, as `name=` does for http.get.
nameRequests([[/^\/item\/\d+$/, '/item/[id]']]);

const randomItem = () => 1 + Math.floor(Math.random() * 1000);

export async function onStart() {
  // `--var api=URL` points the client elsewhere (a host that must be granted).
  const client = new ShopClient(env('api') ?? baseUrl());
  await client.login(`user${vu()}`, 'secret');
  return client;
}

export const tasks = {
  view_item: [5, async (client) => {
    const body = await client.item(randomItem());
    check(body, { 'item has a body': (b) => b.length > 0 });
  }],
  index: [2, async (client) => {
    await client.home();
  }],
  add_to_cart: [1, async (client) => {
    await client.addToCart(randomItem(), 1);
  }],
};
