#!/usr/bin/env node
// Streams one completion through a Turnpike gateway and prints the reply, its cost and the model.
// usage: TURNPIKE_CALLER_KEY=tpk_... examples/stream.js [GATEWAY] [CAPABILITY] [PROMPT]
'use strict';
const { Client, TurnpikeError } = require('..');

async function main() {
  const [gateway = 'localhost:50051', capability = 'demo', prompt = 'Say hello to Turnpike.'] =
    process.argv.slice(2);
  const client = new Client(gateway, { callerKey: process.env.TURNPIKE_CALLER_KEY, timeoutMs: 30000 });
  try {
    for await (const event of client.streamCompletion(capability, [['user', prompt]])) {
      if (event.kind === 'start') console.error(`[${event.start.provider}/${event.start.model}]`);
      else if (event.kind === 'text') process.stdout.write(event.text);
      else {
        const u = event.finish.usage;
        console.error(`\n[${u.inputTokens} in, ${u.outputTokens} out, ${u.costUsdMicros} micro-dollars]`);
      }
    }
  } catch (e) {
    if (!(e instanceof TurnpikeError)) throw e;
    console.error(`\nfailed: ${e.message}${e.retryAfter !== null ? `; retry in ${e.retryAfter} s` : ''}`);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
