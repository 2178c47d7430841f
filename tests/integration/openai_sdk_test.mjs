// The official `openai` npm SDK (pinned in tools/package.json) against a live gateway's
// OpenAI-compatible HTTP front door and the fake provider: chat completions streamed and not,
// the usage chunk, typed errors, a mid-stream failure, a stream the client cancels (the upstream
// must be aborted), embeddings and the model list. Run by CTest with node's own test runner:
//   GATEWAY_BIN=... FAKE_BIN=... TOOLS_DIR=.../tools node --test openai_sdk_test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(path.join(process.env.TOOLS_DIR, 'package.json'));
const { default: OpenAI } = require('openai');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnpike-sdk-'));
const children = [];
let client;
let fakePort;

function start(binary, args, logName, env = {}) {
  const log = fs.openSync(path.join(dir, logName), 'w');
  const child = spawn(binary, args, {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...env },
  });
  children.push(child);
  return child;
}

// Polls until `fn` returns a truthy value or `ms` pass.
async function waitFor(fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function portFile(file) {
  return waitFor(async () => {
    const text = fs.readFileSync(file, 'utf8').trim();
    return text ? Number(text) : undefined;
  });
}

async function fakeStat(name) {
  const stats = await (await fetch(`http://127.0.0.1:${fakePort}/_fake/stats`)).json();
  return stats[name];
}

before(async () => {
  start(process.env.FAKE_BIN, ['--listen=127.0.0.1:0', `--port_file=${dir}/fake.port`,
    '--api_key=fake-key', '--chunks=5'], 'fake.log');
  fakePort = await portFile(`${dir}/fake.port`);
  const config = {
    version: 'sdk-1',
    providers: [{ name: 'openai', kind: 'PROVIDER_KIND_OPENAI',
      baseUrl: `http://127.0.0.1:${fakePort}/v1`, apiKeyEnv: 'TURNPIKE_FAKE_KEY' }],
    routes: [
      { capability: 'chat', targets: [{ provider: 'openai', model: 'gpt-4o-mini' }],
        retry: { maxAttempts: 1 } },
      { capability: 'embed', targets: [{ provider: 'openai', model: 'text-embedding-3-small' }] },
      { capability: 'forbidden', targets: [{ provider: 'openai', model: 'gpt-4o-mini' }] },
    ],
    // The caller's key is "test".
    callers: [{ name: 'app', allowedCapabilities: ['chat', 'embed'],
      keySha256: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'] }],
  };
  fs.writeFileSync(`${dir}/config.json`, JSON.stringify(config));
  start(process.env.GATEWAY_BIN, [`--config=${dir}/config.json`, '--listen=127.0.0.1:0',
    `--port_file=${dir}/gateway.port`, '--metrics_listen=', '--http_listen=127.0.0.1:0',
    `--http_port_file=${dir}/http.port`], 'gateway.log', { TURNPIKE_FAKE_KEY: 'fake-key' });
  const httpPort = await portFile(`${dir}/http.port`);
  client = new OpenAI({ baseURL: `http://127.0.0.1:${httpPort}/v1`, apiKey: 'test',
    maxRetries: 0 });
  // Serving once the config is applied.
  await waitFor(async () => (await client.models.list()).data.length > 0);
});

after(() => {
  for (const child of children) {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('non-streaming completion', async () => {
  const completion = await client.chat.completions.create({
    model: 'chat',
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }],
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].message.content, 'Hello from the fake provider');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.equal(completion.usage.prompt_tokens, 3);
  assert.equal(completion.usage.completion_tokens, 5);
});

// The fake provider's tool-call arguments (tools/fake_provider/README.md, "Tool calls").
const fakeArguments = '{"city": "Paris", "unit": "celsius", "note": "say \\"hi\\" \\u00e9 👋"}';
const weatherTool = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};

test('a streamed tool call, then its result, then the answer', async () => {
  const question = [{ role: 'user', content: 'Weather in Paris?' }];
  // The SDK's own helper assembles the tool_calls deltas by index.
  const runner = client.chat.completions.stream({ model: 'chat', messages: question, tools: [weatherTool] });
  const final = await runner.finalChatCompletion();
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.id, 'call_fake_0');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(call.function.arguments, fakeArguments);
  const answer = await client.chat.completions.create({
    model: 'chat',
    tools: [weatherTool],
    messages: [...question, { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"temperature_c": 21}' }],
  });
  assert.equal(answer.choices[0].message.content, 'Hello from the fake provider');
  assert.equal(answer.choices[0].finish_reason, 'stop');
});

test('streaming completion with the usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'chat',
    messages: [{ role: 'user', content: 'hello' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage;
  let finish;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Hello from the fake provider');
  assert.equal(finish, 'stop');
  assert.equal(usage.completion_tokens, 5);
});

test('errors are the SDK typed errors', async () => {
  const hi = [{ role: 'user', content: 'hi' }];
  await assert.rejects(client.chat.completions.create({ model: 'no-such', messages: hi }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model: 'forbidden', messages: hi }),
    (e) => e instanceof OpenAI.PermissionDeniedError && e.status === 403);
  await assert.rejects(client.chat.completions.create({ model: 'chat', messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
  const rateLimited = client.chat.completions.create({
    model: 'chat', messages: [{ role: 'user', content: 'x [[fake status=429 retry_after=1]]' }],
  });
  await assert.rejects(rateLimited,
    (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '1');
  const wrongKey = new OpenAI({ baseURL: client.baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(wrongKey.chat.completions.create({ model: 'chat', messages: hi }),
    (e) => e instanceof OpenAI.AuthenticationError);
});

test('a mid-stream failure throws from the stream', async () => {
  const stream = await client.chat.completions.create({
    model: 'chat',
    messages: [{ role: 'user', content: 'x [[fake stream_error_after=2]]' }],
    stream: true,
  });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  }, (e) => e instanceof OpenAI.APIError);
  assert.equal(text, 'Hello from');
});

test('a cancelled stream aborts the upstream request', async () => {
  const before = await fakeStat('aborted_streams');
  const stream = await client.chat.completions.create({
    model: 'chat',
    messages: [{ role: 'user', content: 'x [[fake chunks=400 chunk_delay_ms=20]]' }],
    stream: true,
  });
  let chunks = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content && ++chunks === 2) stream.controller.abort();
  }
  // Chunks already received may still be yielded after the abort; the rest never come.
  assert.ok(chunks >= 2 && chunks < 400, `${chunks} chunks`);
  await waitFor(async () => (await fakeStat('aborted_streams')) === before + 1, 5000);
  assert.equal(await fakeStat('active_streams'), 0);
});

test('embeddings and the model list', async () => {
  // The SDK asks for base64 and decodes it.
  const embedding = await client.embeddings.create({ model: 'embed', input: ['a', 'b c'] });
  assert.equal(embedding.data.length, 2);
  assert.equal(embedding.data[1].embedding.length, 8);
  assert.ok(embedding.data[0].embedding.every((v) => typeof v === 'number' && v >= -1 && v <= 1));
  const floats = await client.embeddings.create({ model: 'embed', input: 'a',
    encoding_format: 'float' });
  assert.deepEqual(floats.data[0].embedding, embedding.data[0].embedding);
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.deepEqual(ids, ['chat', 'embed']);
});
