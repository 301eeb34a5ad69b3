#!/usr/bin/env node
//! Builds a k6-style JavaScript scenario into a Horde component: bundles the
//! script with the SDK (esbuild), wraps it with the `user` adapter, and
//! componentizes it (componentize-js) against Horde's wit/ folder.
//!
//! Usage: horde-build-js <scenario.js> -o <out.wasm> [--wit <dir>]

import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function usage(message) {
  if (message) console.error(`error: ${message}`);
  console.error('usage: horde-build-js <scenario.js> -o <out.wasm> [--wit <dir>]');
  process.exit(2);
}

const args = process.argv.slice(2);
let source;
let out;
let wit = join(sdkDir, '..', '..', 'wit');
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '-o' || arg === '--out') out = args[++i];
  else if (arg === '--wit') wit = args[++i];
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

const work = await mkdtemp(join(tmpdir(), 'horde-js-'));
try {
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
    plugins: [resolveSdk],
    logLevel: 'warning',
  }).then(
    () => true,
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
      // component is initialised), without componentize-js's stack.
      console.error(`error: ${error?.message ?? error}`);
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
