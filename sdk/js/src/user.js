//! Adapts a k6-style module (default export and/or `tasks`, `options`,
//! `onStart`/`onStop`) to the component's exported `user` interface. The
//! build (bin/build.mjs) wraps every scenario with `makeUser`.

const OPTION_NAMES = {
  vus: 'users',
  users: 'users',
  duration: 'run-time',
  runTime: 'run-time',
  iterations: 'iterations',
  spawnRate: 'spawn-rate',
  rate: 'rate',
  maxVUs: 'max-vus',
  preAllocatedVUs: 'pre-vus',
  maxQueueTime: 'max-queue-time',
  timeout: 'timeout',
  stopTimeout: 'stop-timeout',
  maxVuMemory: 'max-vu-memory',
  maxTaskCpu: 'max-task-cpu',
};

/** `options` as `horde run` defaults: [["users", "10"], ...]. */
function defaultsOf(options) {
  const defaults = [];
  for (const [key, value] of Object.entries(options)) {
    if (key === 'host' || key === 'wait') continue;
    if (key === 'stages') {
      const stages = value.map((s) => `${s.duration}:${s.target}`).join(',');
      defaults.push(['stages', stages]);
    } else if (key === 'data') {
      // A feed the scenario reads, or a list of them: 'users;strategy=unique'.
      for (const feed of Array.isArray(value) ? value : [value]) defaults.push(['data', String(feed)]);
    } else if (key === 'thresholds') {
      for (const [metric, list] of Object.entries(value)) {
        for (const entry of Array.isArray(list) ? list : [list]) {
          if (typeof entry === 'string') {
            defaults.push(['threshold', `${metric}: ${entry}`]);
          } else {
            const abort = entry.abortOnFail ? ', abortOnFail' : '';
            defaults.push(['threshold', `${metric}: ${entry.threshold}${abort}`]);
          }
        }
      }
    } else if (key in OPTION_NAMES) {
      defaults.push([OPTION_NAMES[key], String(value)]);
    } else {
      throw new Error(
        `options.${key} is not an option Horde knows; use ${Object.keys(OPTION_NAMES).join(', ')}, ` +
          'stages, thresholds, data, host or wait',
      );
    }
  }
  return defaults;
}

/** [[name, weight, fn]] from the default export and the `tasks` object. */
function taskTable(scenario) {
  const table = [];
  if (typeof scenario.default === 'function') table.push(['default', 1, scenario.default]);
  for (const [name, entry] of Object.entries(scenario.tasks ?? {})) {
    let weight = 1;
    let fn = entry;
    if (Array.isArray(entry)) [weight, fn] = entry;
    else if (entry && typeof entry === 'object') [weight, fn] = [entry.weight ?? 1, entry.exec];
    if (typeof fn !== 'function') throw new Error(`tasks.${name} is not a function (nor [weight, fn], nor { weight, exec })`);
    if (!Number.isInteger(weight) || weight < 0) throw new Error(`tasks.${name} has weight ${weight}; use an integer >= 0`);
    if (weight > 0) table.push([name, weight, fn]);
  }
  if (table.length === 0) throw new Error('the scenario has no tasks: export a default function, or `export const tasks = { name: fn }`');
  return table;
}

/** `Type: message (file:line)` of a thrown value, for the exceptions table. */
function describe(thrown) {
  if (thrown instanceof Error) {
    const where = /\(?([^()\s]+:\d+):\d+\)?\s*$/m.exec(String(thrown.stack ?? '').split('\n')[0] ?? '');
    const text = `${thrown.name}: ${thrown.message}`;
    return where ? `${text} (${where[1]})` : text;
  }
  return String(thrown);
}

/** Call `fn`; a thrown error (or a rejected promise) becomes the task's error string. */
function guarded(fn, args) {
  let result;
  try {
    result = fn(...args);
  } catch (thrown) {
    throw describe(thrown);
  }
  if (result && typeof result.then === 'function') {
    return result.then(
      () => undefined,
      (thrown) => {
        throw describe(thrown);
      },
    );
  }
  return undefined;
}

export function makeUser(scenario) {
  let table;
  let data;
  const options = scenario.options ?? {};
  return {
    configure() {
      table = taskTable(scenario);
      return {
        tasks: table.map(([name, weight]) => ({ name, weight })),
        // A function is evaluated now, at run time: it may read run variables.
        wait: (typeof options.wait === 'function' ? options.wait() : options.wait) ?? { tag: 'none' },
        defaultHost: options.host === undefined ? undefined : String(options.host),
        defaults: defaultsOf(options),
      };
    },
    onStart() {
      table ??= taskTable(scenario);
      if (typeof scenario.onStart !== 'function') return undefined;
      let result;
      try {
        result = scenario.onStart();
      } catch (thrown) {
        throw describe(thrown);
      }
      if (result && typeof result.then === 'function') {
        return result.then(
          (value) => {
            data = value;
          },
          (thrown) => {
            throw describe(thrown);
          },
        );
      }
      data = result;
      return undefined;
    },
    runTask(index) {
      const entry = table?.[index];
      if (!entry) throw `no task at index ${index}`;
      return guarded(entry[2], [data]);
    },
    onStop() {
      if (typeof scenario.onStop === 'function') return guarded(scenario.onStop, [data]);
      return undefined;
    },
  };
}
