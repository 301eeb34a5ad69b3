//! Horde's JavaScript SDK, k6-flavoured: `check`, `sleep`, `fail`, run
//! variables, waits; HTTP in 'horde/http', custom metrics in 'horde/metrics'.

export {
  baseUrl,
  between,
  check,
  constant,
  constantPacing,
  constantThroughput,
  env,
  fail,
  iteration,
  log,
  nameRequests,
  noWait,
  record,
  sleep,
  stopTest,
  stopUser,
  userClass,
  vu,
} from './runtime.js';
export { default as http } from './http.js';
export { DataExhausted, DataStopped, Feed, data } from './data.js';
export { group } from './group.js';
export { currentTags, setTags, withTags } from './tags.js';
export { Counter, Gauge, Rate, Trend } from './metrics.js';
