//! A small client for the shop API, written against the standard `fetch()`
//! and nothing else: it knows nothing of Horde. Used unchanged by
//! scenario.js, its requests are recorded like any other.

export class ShopClient {
  constructor(baseUrl) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = null;
  }

  async #json(method, path, body) {
    const headers = { 'Content-Type': 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}`);
    return response.json();
  }

  async login(username, password) {
    const { token } = await this.#json('POST', '/login', { username, password });
    this.token = token;
  }

  async home() {
    const response = await fetch(`${this.baseUrl}/`);
    return response.text();
  }

  async item(id) {
    const response = await fetch(`${this.baseUrl}/item/${id}`);
    if (!response.ok) throw new Error(`item ${id}: HTTP ${response.status}`);
    return response.text();
  }

  async addToCart(item, quantity) {
    return this.#json('POST', '/cart', { item, quantity });
  }
}
