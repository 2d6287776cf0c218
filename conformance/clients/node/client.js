#!/usr/bin/env node
// Conformance client: OpenFeature's flagd provider for Node in the in-process resolver mode,
// connected to a flagd sync service (flagd.sync.v1.FlagSyncService) such as flagsync's.
// The contract is shared with the Java client (conformance/clients/README.md):
//
//   node client.js --host H --port P [--selector S] [--timeout-ms N] --cases FILE
//                  [--watch '{"flag":…,"type":…,"default":…,"context":{…}}']
//
// It waits for PROVIDER_READY, evaluates every case of FILE (JSONL: flag, type, default,
// context; other members ignored) and prints one JSON line per case:
//   {"flag","value","variant","reason","errorCode","errorMessage"}
// With --watch it then prints {"watch":"initial","value":…} and waits until that
// evaluation's value changes, printing {"watch":"changed","value":…,"afterMs":…}.
// --flags-file PATH reads a flag file instead (the provider's offline mode): a way to see
// flagd's answer on a document without a daemon, when looking into a difference.
// Exit codes: 0 done, 1 no connection / no change before the timeout, 2 usage or bad input.
'use strict';

const fs = require('node:fs');
const { OpenFeature } = require('@openfeature/server-sdk');
const { FlagdProvider } = require('@openfeature/flagd-provider');

function usage(msg) {
  process.stderr.write(`node client: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 8015, selector: '', timeoutMs: 30000, cases: '', watch: null, flagsFile: '' };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`${name} needs a value`);
    i++;
    switch (name) {
      case '--host':
        opts.host = value;
        break;
      case '--port':
        opts.port = Number(value);
        if (!Number.isInteger(opts.port) || opts.port <= 0 || opts.port > 65535) usage(`--port ${value}: not a port`);
        break;
      case '--selector':
        opts.selector = value;
        break;
      case '--timeout-ms':
        opts.timeoutMs = Number(value);
        if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs <= 0) usage(`--timeout-ms ${value}: not a positive integer`);
        break;
      case '--cases':
        opts.cases = value;
        break;
      case '--flags-file':
        opts.flagsFile = value;
        break;
      case '--watch':
        try {
          opts.watch = checkCase(JSON.parse(value), '--watch');
        } catch (err) {
          usage(`--watch: ${err.message}`);
        }
        break;
      default:
        usage(`unknown argument ${name}`);
    }
  }
  if (!opts.cases && !opts.watch) usage('give --cases FILE, --watch CASE or both');
  return opts;
}

const TYPES = new Set(['boolean', 'string', 'integer', 'float', 'object']);

// checkCase rejects a case this client cannot ask; the input is the test's own, so a bad
// line is a bug in the caller, not a result.
function checkCase(c, where) {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${where}: not a JSON object`);
  if (typeof c.flag !== 'string') throw new Error(`${where}: "flag" must be a string`);
  if (!TYPES.has(c.type)) throw new Error(`${where}: "type" must be one of ${[...TYPES].join(' ')}`);
  if (!('default' in c)) throw new Error(`${where}: "default" is missing`);
  if (c.context !== undefined && c.context !== null && (typeof c.context !== 'object' || Array.isArray(c.context))) {
    throw new Error(`${where}: "context" must be an object`);
  }
  return c;
}

function readCases(path) {
  let text;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    usage(`${path}: cannot read: ${err.message}`);
  }
  const cases = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      cases.push(checkCase(JSON.parse(line), `${path}:${i + 1}`));
    } catch (err) {
      usage(err instanceof SyntaxError ? `${path}:${i + 1}: ${err.message}` : err.message);
    }
  });
  return cases;
}

// evaluate asks the OpenFeature client the way an application would. Node has one number
// type, so "integer" and "float" both use getNumberDetails.
async function evaluate(client, c) {
  const ctx = c.context || {};
  let d;
  switch (c.type) {
    case 'boolean':
      d = await client.getBooleanDetails(c.flag, c.default, ctx);
      break;
    case 'string':
      d = await client.getStringDetails(c.flag, c.default, ctx);
      break;
    case 'integer':
    case 'float':
      d = await client.getNumberDetails(c.flag, c.default, ctx);
      break;
    default:
      d = await client.getObjectDetails(c.flag, c.default, ctx);
  }
  return {
    flag: c.flag,
    value: d.value === undefined ? null : d.value,
    variant: d.variant === undefined ? null : d.variant,
    reason: d.reason === undefined ? null : d.reason,
    errorCode: d.errorCode === undefined ? null : d.errorCode,
    errorMessage: d.errorMessage === undefined ? null : d.errorMessage,
  };
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// watch polls the in-process evaluation (no network round trip: it reads the provider's
// copy of the flags) until its value differs from the first one.
async function watch(client, c, timeoutMs) {
  const first = await evaluate(client, c);
  print({ watch: 'initial', value: first.value, variant: first.variant });
  const start = Date.now();
  const before = JSON.stringify(first.value);
  while (Date.now() - start < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = await evaluate(client, c);
    if (JSON.stringify(now.value) !== before) {
      print({ watch: 'changed', value: now.value, variant: now.variant, afterMs: Date.now() - start });
      return true;
    }
  }
  process.stderr.write(`node client: ${c.flag} did not change within ${timeoutMs} ms\n`);
  return false;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const cases = opts.cases ? readCases(opts.cases) : [];
  const provider = new FlagdProvider({
    resolverType: 'in-process',
    host: opts.host,
    port: opts.port,
    selector: opts.selector || undefined,
    offlineFlagSourcePath: opts.flagsFile || undefined,
    deadlineMs: opts.timeoutMs,
    // Give up after the first failed attempt: the test wants a clear error, not a retry loop.
    retryGracePeriod: 0,
  });
  const target = opts.flagsFile || `${opts.host}:${opts.port}${opts.selector ? ` (selector ${opts.selector})` : ''}`;
  try {
    await withTimeout(OpenFeature.setProviderAndWait(provider), opts.timeoutMs, "waiting for PROVIDER_READY");
  } catch (err) {
    process.stderr.write(`node client: cannot connect to flagd sync at ${target}: ${err.message}\n`);
    await OpenFeature.close().catch(() => {});
    return 1;
  }
  const client = OpenFeature.getClient();
  for (const c of cases) print(await evaluate(client, c));
  let ok = true;
  if (opts.watch) ok = await watch(client, opts.watch, opts.timeoutMs);
  await OpenFeature.close();
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`node client: ${err.stack || err}\n`);
    process.exit(1);
  },
);
