//! Test data feeds: rows of the files the operator grants with
//! `horde run --data NAME=FILE`, handed out by the host under the feed's
//! strategy (sequential, random, shuffle, unique, per-vu).
//!
//!   import { data } from 'horde';
//!   const user = data('users').next();   // { username: ..., password: ... }

import * as wit from 'horde:scenario/data@0.1.0';

/** The feed ran out and its `on-end` stops the VU or the run: let it end the iteration (not counted). */
export class DataStopped extends Error {
  constructor(message) {
    super(message);
    this.name = 'DataStopped';
  }
}

/** The feed ran out and its `on-end` is `fail`: the iteration fails (counted as an exception). */
export class DataExhausted extends Error {
  constructor(message) {
    super(message);
    this.name = 'DataExhausted';
  }
}

/** A feed, by the name the operator grants it under (`--data NAME=FILE`). */
export class Feed {
  constructor(name) {
    this.name = String(name);
  }

  /** The next row: an object (CSV with a header, JSON Lines, JSON arrays) or an array of strings (CSV without header). */
  next() {
    let row;
    try {
      row = wit.next(this.name);
    } catch (thrown) {
      const payload = thrown?.payload ?? thrown;
      const message = String(payload?.val ?? payload);
      throw payload?.tag === 'stopped' ? new DataStopped(message) : new DataExhausted(message);
    }
    return JSON.parse(row.json);
  }

  /** How many rows the feed has (0 when the run grants no such feed). */
  get length() {
    return Number(wit.len(this.name));
  }
}

/** The feed named `name`. */
export function data(name) {
  return new Feed(name);
}
