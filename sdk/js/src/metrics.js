//! Custom metrics, k6-style: `new Counter('orders').add(1)`.

import * as metrics from 'horde:scenario/metrics@0.1.0';

/** A running total, reported with its rate per second. */
export class Counter {
  constructor(name) { this.name = String(name); }
  add(value = 1) { metrics.addCounter(this.name, Number(value)); }
}

/** A last value, reported with its min and max. */
export class Gauge {
  constructor(name) { this.name = String(name); }
  add(value) { metrics.setGauge(this.name, Number(value)); }
}

/** A distribution, reported with avg, min, max and percentiles. */
export class Trend {
  constructor(name) { this.name = String(name); }
  add(value) { metrics.addTrend(this.name, Number(value)); }
}

/** The share of true values (reported like a check). */
export class Rate {
  constructor(name) { this.name = String(name); }
  add(value) { metrics.check(this.name, Boolean(value)); }
}
