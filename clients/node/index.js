// A small Node.js client for the Turnpike gateway's data-plane API (turnpike.v1 over gRPC):
// streamed and whole completions, embeddings, and errors that carry the details the gateway sends
// (docs/errors.md). It loads the repository's .proto files at run time with @grpc/proto-loader
// (a packed tarball ships them in ./proto). See clients/node/README.md.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTOS = ['turnpike/v1/common.proto', 'turnpike/v1/completion.proto',
  'turnpike/v1/embedding.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'];

// ./proto in a packed tarball; the repository's proto/ when used from the tree.
function protoRoot() {
  const packed = path.join(__dirname, 'proto');
  if (fs.existsSync(path.join(packed, PROTOS[0]))) return packed;
  return path.join(__dirname, '..', '..', 'proto');
}

const ROOT = protoRoot();
const definition = protoLoader.loadSync(PROTOS, {
  includeDirs: [ROOT], keepCase: false, longs: Number, enums: String, defaults: true,
  oneofs: true,
});
const api = grpc.loadPackageDefinition(definition).turnpike.v1;
// For the status details (google.rpc.Status and the messages in its Any list).
const types = new protobuf.Root();
types.resolvePath = (_origin, target) => path.join(ROOT, target);
types.loadSync(PROTOS, { keepCase: false });
types.resolveAll();

const ROLES = { system: 'ROLE_SYSTEM', user: 'ROLE_USER', assistant: 'ROLE_ASSISTANT' };
const DETAIL_TYPES = {
  'turnpike.v1.ProviderError': 'providerError',
  'turnpike.v1.PartialCompletion': 'partial',
  'google.rpc.RetryInfo': 'retryInfo',
  'google.rpc.ErrorInfo': 'errorInfo',
};
const toObject = (type, bytes) =>
  type.toObject(type.decode(bytes), { longs: Number, enums: String, defaults: true });

// A call the gateway (or gRPC) ended with an error. `code` is the gRPC status name
// ("RESOURCE_EXHAUSTED"), `grpcCode` its number; `providerError`, `partial` (usage of what was
// streamed, every attempt), `retryAfter` (seconds), `reason`/`metadata` (google.rpc.ErrorInfo)
// are set when the gateway sent them.
class TurnpikeError extends Error {
  constructor(serviceError) {
    const name = Object.keys(grpc.status).find((k) => grpc.status[k] === serviceError.code) ||
      'UNKNOWN';
    super(`${name}: ${serviceError.details || serviceError.message}`);
    this.name = 'TurnpikeError';
    this.code = name;
    this.grpcCode = serviceError.code;
    this.details = serviceError.details || '';
    this.providerError = null;
    this.partial = null;
    this.retryAfter = null;
    this.reason = '';
    this.metadata = {};
    const raw = serviceError.metadata && serviceError.metadata.get('grpc-status-details-bin');
    if (raw && raw.length > 0) this.#decode(raw[0]);
  }

  get attempts() { return this.partial ? this.partial.attempts : []; }

  #decode(bytes) {
    const status = types.lookupType('google.rpc.Status').decode(bytes);
    for (const any of status.details) {
      // protobufjs's built-in google.protobuf.Any keeps its proto field name.
      const url = any.type_url !== undefined ? any.type_url : any.typeUrl;
      const typeName = url.slice(url.lastIndexOf('/') + 1);
      const field = DETAIL_TYPES[typeName];
      if (!field) continue;
      const value = toObject(types.lookupType(typeName), any.value);
      if (field === 'retryInfo') {
        const d = value.retryDelay || {};
        this.retryAfter = Number(d.seconds || 0) + Number(d.nanos || 0) / 1e9;
      } else if (field === 'errorInfo') {
        this.reason = value.reason;
        this.metadata = value.metadata || {};
      } else {
        this[field] = value;
      }
    }
  }
}

// The TurnpikeError of a gRPC error; if its details cannot be decoded, the error says so rather
// than being lost (a throw inside a gRPC callback would leave the caller's promise pending).
function toError(serviceError) {
  try {
    return new TurnpikeError(serviceError);
  } catch (e) {
    const error = new TurnpikeError({ ...serviceError, metadata: null });
    error.decodeError = e;
    return error;
  }
}

function toMessages(messages) {
  return messages.map((m) => {
    const [role, content] = Array.isArray(m) ? m : [m.role, m.content];
    if (!(role in ROLES)) throw new TypeError(`role ${JSON.stringify(role)} is not one of ${Object.keys(ROLES)}`);
    return { role: ROLES[role], content };
  });
}

function completionRequest(capability, messages, options = {}) {
  const request = {
    capability, messages: toMessages(messages), stop: options.stop || [],
    user: options.user || '', tags: options.tags || {}, requestId: options.requestId || '',
  };
  for (const key of ['maxTokens', 'temperature', 'topP']) {
    if (options[key] !== undefined) request[key] = options[key];
  }
  return request;
}

// The events of one StreamCompletion call, as an async iterable of
// { kind: 'start', start } | { kind: 'text', text } | { kind: 'finish', finish }. Iteration
// throws a TurnpikeError if the call fails (after the events that arrived); cancel() ends the
// call, and the gateway stops the provider's transfer.
class CompletionStream {
  constructor(call) {
    this.call = call;
    this.start = null;
    this.finish = null;
    this.text = '';
  }

  cancel() { this.call.cancel(); }

  async *[Symbol.asyncIterator]() {
    try {
      for await (const response of this.call) {
        if (response.event === 'start') {
          this.start = response.start;
          yield { kind: 'start', start: response.start };
        } else if (response.event === 'delta') {
          this.text += response.delta.text;
          yield { kind: 'text', text: response.delta.text };
        } else if (response.event === 'finish') {
          this.finish = response.finish;
          yield { kind: 'finish', finish: response.finish };
        }
      }
    } catch (e) {
      throw e.code !== undefined ? toError(e) : e;
    }
  }

  // Reads the stream to its end: { start, text, finish }.
  async result() {
    for await (const _ of this) { /* collects start, text and finish */ }
    return { start: this.start, text: this.text, finish: this.finish };
  }
}

// A connection to a Turnpike gateway. `target` is host:port (or unix:/path for a sidecar).
// options: callerKey (sent as `authorization: Bearer <key>`), timeoutMs (default deadline of a
// call), rootCerts (PEM Buffer: verify a TLS gateway), privateKey and certChain (mutual TLS).
class Client {
  constructor(target, options = {}) {
    const tls = options.rootCerts || options.certChain;
    const creds = tls ? grpc.credentials.createSsl(options.rootCerts || null,
      options.privateKey || null, options.certChain || null) : grpc.credentials.createInsecure();
    this.completions = new api.CompletionService(target, creds);
    // One channel for both services.
    this.embeddings = new api.EmbeddingService(target, creds,
      { channelOverride: this.completions.getChannel() });
    this.metadata = new grpc.Metadata();
    if (options.callerKey) this.metadata.set('authorization', `Bearer ${options.callerKey}`);
    this.timeoutMs = options.timeoutMs;
  }

  #callOptions(options) {
    const ms = options.timeoutMs !== undefined ? options.timeoutMs : this.timeoutMs;
    return ms !== undefined ? { deadline: Date.now() + ms } : {};
  }

  // Streams a completion of `messages` ([role, content] pairs or {role, content}) by
  // `capability`. options: maxTokens, temperature, topP, stop, user, tags, requestId, timeoutMs.
  streamCompletion(capability, messages, options = {}) {
    const call = this.completions.StreamCompletion(completionRequest(capability, messages, options),
      this.metadata, this.#callOptions(options));
    return new CompletionStream(call);
  }

  // The whole completion at once (Complete): { start, text, finish }.
  complete(capability, messages, options = {}) {
    return new Promise((resolve, reject) => {
      this.completions.Complete(completionRequest(capability, messages, options), this.metadata,
        this.#callOptions(options), (err, response) => {
          if (err) reject(toError(err));
          else resolve({ start: response.start, text: response.text, finish: response.finish });
        });
    });
  }

  // Embeddings of `inputs` by `capability`: { vectors, usage, provider, model, requestId,
  // attempts }, one vector per input, in input order. options: dimensions, user, tags,
  // requestId, timeoutMs.
  embed(capability, inputs, options = {}) {
    const request = { capability, inputs, user: options.user || '', tags: options.tags || {},
      requestId: options.requestId || '' };
    if (options.dimensions !== undefined) request.dimensions = options.dimensions;
    return new Promise((resolve, reject) => {
      this.embeddings.Embed(request, this.metadata, this.#callOptions(options), (err, r) => {
        if (err) return reject(toError(err));
        const ordered = [...r.embeddings].sort((a, b) => a.index - b.index);
        resolve({ vectors: ordered.map((e) => e.values), usage: r.usage, provider: r.provider,
          model: r.model, requestId: r.requestId, attempts: r.attempts });
      });
    });
  }

  close() {
    this.completions.close();
  }
}

module.exports = { Client, CompletionStream, TurnpikeError, PROTOS };
