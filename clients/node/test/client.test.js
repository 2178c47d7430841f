// The Node client against a live turnpike-gateway and the fake provider (real processes, real
// sockets): streaming, unary, embeddings, cancellation, and errors with their decoded details.
// usage: TURNPIKE_GATEWAY_BIN=... TURNPIKE_FAKE_BIN=... node --test test/
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, TurnpikeError } = require('..');

const procs = [];
let gateway;
let fakePort;
let tmp;

async function waitFor(condition, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

// Starts `argv` with --port_file in tmp and resolves to the port it writes.
async function start(name, argv, env = {}) {
  const portFile = path.join(tmp, `${name}.port`);
  const log = fs.openSync(path.join(tmp, `${name}.log`), 'w');
  const proc = spawn(argv[0], [...argv.slice(1), `--port_file=${portFile}`],
    { stdio: ['ignore', log, log], env: { ...process.env, ...env } });
  procs.push({ name, proc });
  const started = await waitFor(() => proc.exitCode === null && fs.existsSync(portFile) &&
    fs.readFileSync(portFile, 'utf8').trim() !== '', 20000);
  if (!started) {
    throw new Error(`${name} did not start:\n${fs.readFileSync(path.join(tmp, `${name}.log`), 'utf8')}`);
  }
  return Number(fs.readFileSync(portFile, 'utf8').trim());
}

async function fakeStat(name) {
  const r = await fetch(`http://127.0.0.1:${fakePort}/_fake/stats`);
  return (await r.json())[name];
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-node-client-'));
  fakePort = await start('fake', [process.env.TURNPIKE_FAKE_BIN, '--listen=127.0.0.1:0',
    '--api_key=fake-key']);
  const base = `http://127.0.0.1:${fakePort}/v1`;
  const model = { provider: 'fake', model: 'gpt-4o-mini' };
  fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify({
    version: 'node-client-test',
    providers: [
      { name: 'fake', kind: 'PROVIDER_KIND_OPENAI', baseUrl: base, apiKeyEnv: 'TURNPIKE_FAKE_KEY' },
      // Its own upstream, so that its 429 cool-down leaves the others alone.
      { name: 'limited', kind: 'PROVIDER_KIND_OPENAI', baseUrl: base, apiKeyEnv: 'TURNPIKE_FAKE_KEY' },
    ],
    routes: [
      { capability: 'demo', targets: [model], allowUnauthenticated: true },
      { capability: 'vectors', targets: [{ provider: 'fake', model: 'text-embedding-3-small' }],
        allowUnauthenticated: true },
      { capability: 'limited', targets: [{ provider: 'limited', model: 'gpt-4o-mini' }],
        allowUnauthenticated: true },
      { capability: 'closed', targets: [model] },
    ],
    prices: [{ provider: 'fake', model: 'gpt-4o-mini', inputUsdMicrosPerMtok: '150000',
      outputUsdMicrosPerMtok: '600000' }],
    // The caller key "test" (its SHA-256).
    callers: [{ name: 'node-tests', allowedCapabilities: ['closed'],
      keySha256: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'] }],
  }));
  const port = await start('gateway', [process.env.TURNPIKE_GATEWAY_BIN,
    `--config=${path.join(tmp, 'config.json')}`, '--listen=127.0.0.1:0', '--metrics_listen=127.0.0.1:0', '--drain_timeout=5s'],
  { TURNPIKE_FAKE_KEY: 'fake-key' });
  gateway = `127.0.0.1:${port}`;
});

after(async () => {
  for (const { name, proc } of procs.reverse()) {
    if (proc.exitCode !== null) continue;
    const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    const code = await exited;
    assert.equal(code, 0, `${name} exited with ${code} after SIGTERM`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a stream yields start, then text, then finish with the cost', async () => {
  const client = new Client(gateway, { timeoutMs: 20000 });
  const stream = client.streamCompletion('demo', [['system', 'Be brief.'],
    { role: 'user', content: 'hello' }], { user: 'end-user-7', tags: { team: 'docs' } });
  const kinds = [];
  for await (const event of stream) kinds.push(event.kind);
  client.close();
  assert.equal(kinds[0], 'start');
  assert.equal(kinds.at(-1), 'finish');
  assert.ok(kinds.includes('text'));
  assert.equal(stream.start.provider, 'fake');
  assert.equal(stream.start.model, 'gpt-4o-mini');
  assert.equal(stream.text, 'Hello from the fake provider');
  const usage = stream.finish.usage;
  assert.ok(usage.outputTokens > 0);
  // Integer micro-dollars from the price table (0.15 $/M in, 0.60 $/M out), rounded up once.
  assert.equal(usage.costUsdMicros,
    Math.ceil((usage.inputTokens * 150000 + usage.outputTokens * 600000) / 1e6));
});

test('complete returns the whole reply', async () => {
  const client = new Client(gateway, { timeoutMs: 20000 });
  const reply = await client.complete('demo', [['user', 'hello']], { maxTokens: 50 });
  client.close();
  assert.equal(reply.text, 'Hello from the fake provider');
  assert.equal(reply.start.provider, 'fake');
});

test('embed returns one vector per input, in order', async () => {
  const client = new Client(gateway, { timeoutMs: 20000 });
  const result = await client.embed('vectors', ['first', 'second', 'third']);
  client.close();
  assert.equal(result.vectors.length, 3);
  assert.ok(result.vectors.every((v) => v.length > 0));
  assert.notDeepEqual(result.vectors[0], result.vectors[1]);
  assert.equal(result.model, 'text-embedding-3-small');
});

test("a provider's 429 carries the provider error and when to retry", async () => {
  const client = new Client(gateway);
  // A 7 s cool-down does not fit the 2 s deadline: the gateway answers at once.
  const error = await client.complete('limited', [['user', 'hi [[fake status=429 retry_after=7]]']],
    { timeoutMs: 2000 }).then(() => null, (e) => e);
  client.close();
  assert.ok(error instanceof TurnpikeError, String(error));
  assert.equal(error.code, 'RESOURCE_EXHAUSTED');
  assert.equal(error.providerError.httpStatus, 429);
  assert.equal(error.providerError.provider, 'limited');
  assert.equal(error.retryAfter, 7);
  assert.ok(error.attempts.length > 0, 'every attempt is listed');
});

test('a failure mid-stream keeps the text and reports partial usage', async () => {
  const client = new Client(gateway, { timeoutMs: 20000 });
  const stream = client.streamCompletion('demo', [['user', 'hi [[fake stream_error_after=2]]']]);
  const kinds = [];
  const error = await (async () => {
    for await (const event of stream) kinds.push(event.kind);
  })().then(() => null, (e) => e);
  client.close();
  assert.ok(error instanceof TurnpikeError, String(error));
  assert.equal(kinds[0], 'start');
  assert.equal(stream.text, 'Hello from', 'the two chunks sent before the failure');
  assert.ok(error.partial, 'PartialCompletion detail');
  assert.ok(error.attempts.length > 0);
});

test("a closed route needs the caller's key", async () => {
  const anonymous = new Client(gateway, { timeoutMs: 20000 });
  const error = await anonymous.complete('closed', [['user', 'hi']]).then(() => null, (e) => e);
  anonymous.close();
  assert.equal(error.code, 'UNAUTHENTICATED');
  const keyed = new Client(gateway, { callerKey: 'test', timeoutMs: 20000 });
  assert.equal((await keyed.complete('closed', [['user', 'hi']])).text,
    'Hello from the fake provider');
  keyed.close();
});

test('an unknown capability is NOT_FOUND, and a bad role is refused before sending', async () => {
  const client = new Client(gateway, { timeoutMs: 20000 });
  const error = await client.complete('no-such', [['user', 'hi']]).then(() => null, (e) => e);
  assert.equal(error.code, 'NOT_FOUND');
  assert.throws(() => client.streamCompletion('demo', [['robot', 'hi']]), TypeError);
  client.close();
});

test('cancel stops the stream and the upstream transfer', async () => {
  const before = await fakeStat('aborted_streams');
  const client = new Client(gateway, { timeoutMs: 20000 });
  const stream = client.streamCompletion('demo',
    [['user', 'slow [[fake chunks=50 chunk_delay_ms=100]]']]);
  const kinds = [];
  const error = await (async () => {
    for await (const event of stream) {
      kinds.push(event.kind);
      if (event.kind === 'text') stream.cancel();
    }
  })().then(() => null, (e) => e);
  client.close();
  assert.ok(error instanceof TurnpikeError, String(error));
  assert.equal(error.code, 'CANCELLED');
  assert.ok(!kinds.includes('finish'), 'it did not run to its end');
  assert.ok(await waitFor(async () => (await fakeStat('aborted_streams')) > before, 10000),
    'the gateway stopped the upstream transfer');
});
