#!/usr/bin/env node
//! Builds a k6-style JavaScript scenario into a Horde component: bundles the
//! script with the SDK (esbuild), wraps it with the `user` adapter, and
//! componentizes it (componentize-js) against Horde's wit/ folder. The
//! bundle takes files only from the scenario's folder (not its hidden
//! files), its node_modules and the SDK; any other import is refused with
//! a message naming the file. The files bundled can be written as JSON.
//!
//! Usage: horde-build-js <scenario.js> -o <out.wasm> [--wit <dir>] [--inputs <file.json>]

import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function usage(message) {
  if (message) console.error(`error: ${message}`);
  console.error('usage: horde-build-js <scenario.js> -o <out.wasm> [--wit <dir>] [--inputs <file.json>]');
  process.exit(2);
}

const args = process.argv.slice(2);
let source;
let out;
let inputsFile;
let wit = join(sdkDir, '..', '..', 'wit');
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '-o' || arg === '--out') out = args[++i];
  else if (arg === '--wit') wit = args[++i];
  else if (arg === '--inputs') inputsFile = args[++i];
  else if (arg === '-h' || arg === '--help') usage();
  else if (arg.startsWith('-')) usage(`unknown option ${arg}`);
  else if (source === undefined) source = arg;
  else usage(`one scenario at a time (got ${source} and ${arg})`);
}
if (!source) usage('no scenario file given');
if (!out) usage('no output path given (-o out.wasm)');
source = resolve(source);
if (!existsSync(source)) usage(`${source} does not exist`);
if (!existsSync(join(wit, 'scenario.wit'))) {
  usage(`${wit} has no scenario.wit; pass Horde's wit/ folder with --wit`);
}

// `horde` and its modules resolve to this SDK; WIT imports stay external.
const sdkModules = {
  horde: 'index.js',
  'horde/http': 'http.js',
  'horde/metrics': 'metrics.js',
  'horde/xmlrpc': 'xmlrpc.js',
  'horde/grpc': 'grpc.js',
};
const resolveSdk = {
  name: 'horde-sdk',
  setup(b) {
    b.onResolve({ filter: /^horde(\/[a-z]+)?$/ }, (a) => {
      const file = sdkModules[a.path];
      if (!file) return { errors: [{ text: `${a.path} is not a module of the Horde SDK (use horde, horde/http, horde/metrics, horde/xmlrpc or horde/grpc)` }] };
      return { path: join(sdkDir, 'src', file) };
    });
  },
};

// What the bundle may take files from: the scenario's folder (its hidden
// files and folders left out, except inside node_modules) and the SDK.
// Paths are compared after symbolic links are resolved, as esbuild does.
const scenarioDir = realpathSync(dirname(source));
const sdkReal = realpathSync(sdkDir);
let workReal;

/** Why `path` may not go into the bundle, or undefined when it may. */
function refusal(path) {
  const inside = (root) => path === root || path.startsWith(root + sep);
  if (inside(sdkReal) || (workReal && inside(workReal))) return undefined;
  if (!inside(scenarioDir)) {
    return `${path} is outside the scenario's folder (${scenarioDir}): a bundle takes files only from ` +
      "the scenario's folder, its node_modules and the Horde SDK; copy what the scenario needs into its folder";
  }
  const parts = relative(scenarioDir, path).split(sep);
  const modules = parts.indexOf('node_modules');
  const hidden = parts.findIndex((part) => part.startsWith('.'));
  if (hidden !== -1 && (modules === -1 || hidden < modules)) {
    return `${path} is a hidden file or in a hidden folder of the scenario's folder: hidden files ` +
      '(keys, credentials, settings) never go into a bundle; rename it if the scenario needs it';
  }
  return undefined;
}

const onlyTheScenario = {
  name: 'horde-only-the-scenario',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (a) => {
      if (a.pluginData?.hordeChecked || a.kind === 'entry-point') return undefined;
      const found = await b.resolve(a.path, {
        kind: a.kind,
        importer: a.importer,
        namespace: a.namespace,
        resolveDir: a.resolveDir,
        pluginData: { hordeChecked: true },
      });
      if (found.errors.length > 0) return { errors: found.errors };
      if (!found.external && found.namespace === 'file') {
        const why = refusal(found.path);
        if (why) return { errors: [{ text: why }] };
      }
      return {
        path: found.path,
        namespace: found.namespace,
        external: found.external,
        sideEffects: found.sideEffects,
        suffix: found.suffix,
        pluginData: found.pluginData,
      };
    });
  },
};

/**
 * The bundle's files outside the SDK: the scenario's, relative to its
 * folder, then each package from node_modules with how many of its files.
 */
function scenarioInputs(metafile) {
  const files = [];
  const packages = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const path = resolve(input);
    if (!path.startsWith(scenarioDir + sep)) continue;
    const parts = relative(scenarioDir, path).split(sep);
    const modules = parts.lastIndexOf('node_modules');
    if (modules === -1) {
      files.push(parts.join('/'));
      continue;
    }
    const rest = parts.slice(modules + 1);
    const name = rest[0]?.startsWith('@') ? rest.slice(0, 2).join('/') : rest[0];
    packages.set(name, (packages.get(name) ?? 0) + 1);
  }
  const listed = [...packages].sort(([a], [b]) => (a < b ? -1 : 1));
  return [
    ...files.sort(),
    ...listed.map(([name, count]) => `${name} (${count} file${count === 1 ? '' : 's'} from node_modules)`),
  ];
}

const work = await mkdtemp(join(tmpdir(), 'horde-js-'));
try {
  workReal = realpathSync(work);
  const entry = join(work, 'entry.js');
  await writeFile(
    entry,
    // The SDK's runtime first: it makes `fetch()` resolve relative URLs
    // before any of the scenario's modules runs.
    `import ${JSON.stringify(join(sdkDir, 'src', 'runtime.js'))};\n` +
      `import * as scenario from ${JSON.stringify(source)};\n` +
      `import { makeUser } from ${JSON.stringify(join(sdkDir, 'src', 'user.js'))};\n` +
      'export const user = makeUser(scenario);\n',
  );
  const bundle = join(work, 'bundle.js');
  // esbuild prints its own errors (file:line:column and the line); its
  // exception adds only a Node.js stack, so it is dropped.
  const bundled = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    outfile: bundle,
    external: ['horde:scenario/*', 'wasi:*'],
    plugins: [resolveSdk, onlyTheScenario],
    logLevel: 'warning',
    metafile: true,
  }).then(
    async (result) => {
      if (inputsFile) await writeFile(inputsFile, JSON.stringify(scenarioInputs(result.metafile)));
      return true;
    },
    (error) => {
      if (!Array.isArray(error.errors)) throw error;
      return false;
    },
  );
  let written = false;
  if (bundled) {
    let component;
    try {
      ({ component } = await componentize({ sourcePath: bundle, witPath: wit, worldName: 'scenario' }));
    } catch (error) {
      // The script's own error (e.g. thrown at module level while the
      // component is initialised), without componentize-js's stack: for a
      // throw at module level, the line after "Exception while evaluating
      // top-level script", without its place in the temporary bundle.
      const text = String(error?.message ?? error);
      const thrown = /Exception while evaluating top-level script\n(?:\S+:\d+:\d+ )?(.*)/.exec(text);
      console.error(`error: ${thrown ? `${thrown[1]} (thrown while the script's module level ran)` : text}`);
    }
    if (component) {
      await mkdir(dirname(resolve(out)), { recursive: true });
      await writeFile(out, component);
      console.error(`built ${out} (${(component.length / 1e6).toFixed(1)} MB)`);
      written = true;
    }
  }
  if (!written) process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
