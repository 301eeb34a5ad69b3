//! Adapts a k6-style module (default export and/or `tasks`, `options`,
//! `onStart`/`onStop`) to the component's exported `user` interface. The
//! build (bin/build.mjs) wraps every scenario with `makeUser`.
//! `options.scenarios` declares user classes, as k6's scenarios: each runs
//! its `exec` function, with a `weight` or a fixed number of `vus`.

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
    if (key === 'host' || key === 'wait' || key === 'scenarios') continue;
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
            const abort = entry.abortOnFail ? '; abortOnFail' : '';
            defaults.push(['threshold', `${metric}: ${entry.threshold}${abort}`]);
          }
        }
      }
    } else if (key in OPTION_NAMES) {
      defaults.push([OPTION_NAMES[key], String(value)]);
    } else {
      throw new Error(
        `options.${key} is not an option Horde knows; use ${Object.keys(OPTION_NAMES).join(', ')}, ` +
          'stages, thresholds, data, scenarios, host or wait',
      );
    }
  }
  return defaults;
}

const WAIT_HELP =
  "use one of the SDK's wait times: `import { between } from 'horde'` and `wait: between(1, 3)`, " +
  'or constant(seconds), constantPacing(seconds), constantThroughput(perSecond), noWait(), ' +
  'or a function returning one';

/** Whether `wait` is a wait-time value as the SDK's helpers make them. */
function isWait(wait) {
  if (wait === null || typeof wait !== 'object') return false;
  switch (wait.tag) {
    case 'none':
      return true;
    case 'constant':
    case 'constant-pacing':
      return typeof wait.val === 'bigint' && wait.val >= 0n;
    case 'between':
      return (
        typeof wait.val?.minMs === 'bigint' &&
        typeof wait.val?.maxMs === 'bigint' &&
        wait.val.minMs >= 0n &&
        wait.val.minMs <= wait.val.maxMs
      );
    case 'constant-throughput':
      return typeof wait.val === 'number' && wait.val > 0;
    default:
      return false;
  }
}

/** Describe a value for a message: `2`, `'1s'`, `{"min":1,"max":3}`. */
function shown(value) {
  if (typeof value === 'string') return `'${value}'`;
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? Number(v) : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * The wait time `value` (`what` names it in messages: `options.wait`),
 * called first when it is a function; undefined when not given. A value
 * of another shape throws, saying which shapes work.
 */
function waitOf(value, what) {
  const wait = typeof value === 'function' ? value() : value;
  if (wait === undefined || wait === null) return undefined;
  if (!isWait(wait)) throw new Error(`${what} is ${shown(wait)}, which is not a wait time: ${WAIT_HELP}`);
  return wait;
}

/** Wait times as a class declaration's `wait=` value. */
function waitText(wait) {
  switch (wait.tag) {
    case 'constant':
      return `constant:${wait.val}`;
    case 'between':
      return `between:${wait.val.minMs}:${wait.val.maxMs}`;
    case 'constant-pacing':
      return `pacing:${wait.val}`;
    case 'constant-throughput':
      return `throughput:${wait.val}`;
    default:
      return 'none';
  }
}

const SCENARIO_KEYS = ['exec', 'weight', 'vus', 'fixedCount', 'wait'];

/**
 * `options.scenarios` (k6's) as user classes: one task each, the exported
 * function `exec` names (default: the default export); `weight` (default 1)
 * is its share of the users, `vus` or `fixedCount` an exact number of them.
 * Returns the task table and the `class` declarations, or null without
 * scenarios.
 */
function classTable(scenario, scenarios, options) {
  if (scenarios === undefined) return null;
  const table = [];
  const declarations = [];
  for (const [name, spec] of Object.entries(scenarios)) {
    for (const key of Object.keys(spec ?? {})) {
      if (!SCENARIO_KEYS.includes(key)) {
        throw new Error(
          `options.scenarios.${name}.${key} is not supported: every user class runs under the run's ` +
            `load model (--users, --rate or --stages); use ${SCENARIO_KEYS.join(', ')}`,
        );
      }
    }
    const exec = spec?.exec ?? 'default';
    const fn = scenario[exec];
    if (typeof fn !== 'function') {
      throw new Error(`options.scenarios.${name}.exec is '${exec}', which the module does not export as a function`);
    }
    const count = spec.fixedCount ?? spec.vus;
    for (const [what, value] of [['weight', spec.weight], ['vus', count]]) {
      if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
        throw new Error(`options.scenarios.${name}.${what} is ${value}; use an integer >= 0`);
      }
    }
    const share = count ? `fixed-count=${count}` : `weight=${spec.weight ?? 1}`;
    const wait =
      waitOf(spec.wait, `options.scenarios.${name}.wait`) ?? waitOf(options.wait, 'options.wait') ?? { tag: 'none' };
    declarations.push(['class', `${name};tasks=${table.length};${share};wait=${waitText(wait)}`]);
    table.push([exec, 1, fn]);
  }
  if (table.length === 0) throw new Error('options.scenarios is empty: declare at least one');
  return { table, declarations };
}

/** [[name, weight, fn]] from the default export and the `tasks` object. */
function taskTable(scenario) {
  const classes = classTable(scenario, scenario.options?.scenarios, scenario.options ?? {});
  if (classes) return classes.table;
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
  // A wait time given as a value is checked now, while the component is
  // built, so a wrong shape fails the build with the message.
  if (typeof options.wait !== 'function') waitOf(options.wait, 'options.wait');
  for (const [name, spec] of Object.entries(options.scenarios ?? {})) {
    if (typeof spec?.wait !== 'function') waitOf(spec?.wait, `options.scenarios.${name}.wait`);
  }
  return {
    configure() {
      table = taskTable(scenario);
      const classes = classTable(scenario, options.scenarios, options);
      return {
        tasks: table.map(([name, weight]) => ({ name, weight })),
        // A function is evaluated now, at run time: it may read run variables.
        wait: waitOf(options.wait, 'options.wait') ?? { tag: 'none' },
        defaultHost: options.host === undefined ? undefined : String(options.host),
        defaults: [...defaultsOf(options), ...(classes?.declarations ?? [])],
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
