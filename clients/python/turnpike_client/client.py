"""Client: Turnpike's data-plane API (turnpike.v1 CompletionService and EmbeddingService).

Thread safety: a Client (one gRPC channel) may be shared by threads; a CompletionStream belongs to
the thread that iterates it, though cancel() may be called from any thread.
"""
from dataclasses import dataclass, field

import grpc

from ._proto import completion_pb2, completion_pb2_grpc, embedding_pb2, embedding_pb2_grpc
from .errors import TurnpikeError

_ROLES = {"system": completion_pb2.ROLE_SYSTEM, "user": completion_pb2.ROLE_USER,
          "assistant": completion_pb2.ROLE_ASSISTANT}


@dataclass
class Event:
    """One event of a stream: kind "start" (start: CompletionStart: provider, model, request id),
    "text" (text: the next piece of the reply) or "finish" (finish: CompletionFinish: reason,
    usage and cost, every attempt)."""
    kind: str
    start: object = None
    text: str = ""
    finish: object = None


@dataclass
class Completion:
    """A whole reply (Complete, or a stream read to its end)."""
    start: object
    text: str
    finish: object

    @property
    def usage(self):
        return self.finish.usage


@dataclass
class Embeddings:
    """Embed's answer: one vector per input, in input order."""
    vectors: list
    usage: object
    provider: str
    model: str
    request_id: str
    attempts: list = field(default_factory=list)


def _messages(messages):
    out = []
    for m in messages:
        role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
        if role not in _ROLES:
            raise ValueError(f"role {role!r} is not one of {sorted(_ROLES)}")
        out.append(completion_pb2.Message(role=_ROLES[role], content=content))
    return out


class CompletionStream:
    """The events of one StreamCompletion call, in order; raises TurnpikeError if the call fails
    (after the events that arrived). cancel() ends the call: the gateway stops the upstream."""

    def __init__(self, call):
        self._call = call
        self.start = None
        self.finish = None
        self._text = []

    def __iter__(self):
        try:
            for response in self._call:
                which = response.WhichOneof("event")
                if which == "start":
                    self.start = response.start
                    yield Event("start", start=response.start)
                elif which == "delta":
                    self._text.append(response.delta.text)
                    yield Event("text", text=response.delta.text)
                elif which == "finish":
                    self.finish = response.finish
                    yield Event("finish", finish=response.finish)
        except grpc.RpcError as e:
            raise TurnpikeError.from_rpc_error(e) from None

    @property
    def text(self):
        """The text received so far."""
        return "".join(self._text)

    def cancel(self):
        self._call.cancel()

    def result(self):
        """Reads the stream to its end and returns the Completion."""
        for _ in self:
            pass
        return Completion(self.start, self.text, self.finish)


class Client:
    """A connection to a Turnpike gateway.

    target: "host:port" (or "unix:/path" for a sidecar). caller_key: the caller's key, sent as
    `authorization: Bearer <key>` (None for a route open to anyone, or with a client certificate).
    timeout: the default deadline of a call, in seconds (None: no deadline). TLS: pass
    root_certificates (PEM bytes) to verify the gateway, plus private_key and certificate_chain
    for mutual TLS; without them the channel is plaintext. channel: an existing grpc.Channel.
    """

    def __init__(self, target, caller_key=None, timeout=None, root_certificates=None,
                 private_key=None, certificate_chain=None, channel=None):
        if channel is None:
            if root_certificates is not None or certificate_chain is not None:
                creds = grpc.ssl_channel_credentials(root_certificates, private_key,
                                                     certificate_chain)
                channel = grpc.secure_channel(target, creds)
            else:
                channel = grpc.insecure_channel(target)
        self._channel = channel
        self._metadata = (("authorization", f"Bearer {caller_key}"),) if caller_key else ()
        self._timeout = timeout
        self._completions = completion_pb2_grpc.CompletionServiceStub(channel)
        self._embeddings = embedding_pb2_grpc.EmbeddingServiceStub(channel)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._channel.close()

    def _deadline(self, timeout):
        return self._timeout if timeout is None else timeout

    @staticmethod
    def _completion_fields(capability, messages, max_tokens, temperature, top_p, stop, user,
                           tags, request_id):
        fields = dict(capability=capability, messages=_messages(messages), stop=list(stop),
                      user=user, tags=dict(tags or {}), request_id=request_id)
        for name, value in (("max_tokens", max_tokens), ("temperature", temperature),
                            ("top_p", top_p)):
            if value is not None:
                fields[name] = value
        return fields

    def stream_completion(self, capability, messages, *, max_tokens=None, temperature=None,
                          top_p=None, stop=(), user="", tags=None, request_id="", timeout=None):
        """Streams a completion of `messages` ((role, content) pairs or {"role", "content"}
        dicts) by `capability`: a CompletionStream of Events."""
        request = completion_pb2.StreamCompletionRequest(**self._completion_fields(
            capability, messages, max_tokens, temperature, top_p, stop, user, tags, request_id))
        call = self._completions.StreamCompletion(request, timeout=self._deadline(timeout),
                                                  metadata=self._metadata)
        return CompletionStream(call)

    def complete(self, capability, messages, *, max_tokens=None, temperature=None, top_p=None,
                 stop=(), user="", tags=None, request_id="", timeout=None):
        """The whole completion at once (Complete)."""
        request = completion_pb2.CompleteRequest(**self._completion_fields(
            capability, messages, max_tokens, temperature, top_p, stop, user, tags, request_id))
        try:
            response = self._completions.Complete(request, timeout=self._deadline(timeout),
                                                  metadata=self._metadata)
        except grpc.RpcError as e:
            raise TurnpikeError.from_rpc_error(e) from None
        return Completion(response.start, response.text, response.finish)

    def embed(self, capability, inputs, *, dimensions=None, user="", tags=None, request_id="",
              timeout=None):
        """Embeddings of `inputs` (strings) by `capability`."""
        request = embedding_pb2.EmbedRequest(capability=capability, inputs=list(inputs),
                                             user=user, tags=dict(tags or {}),
                                             request_id=request_id)
        if dimensions is not None:
            request.dimensions = dimensions
        try:
            response = self._embeddings.Embed(request, timeout=self._deadline(timeout),
                                              metadata=self._metadata)
        except grpc.RpcError as e:
            raise TurnpikeError.from_rpc_error(e) from None
        vectors = [list(e.values) for e in sorted(response.embeddings, key=lambda e: e.index)]
        return Embeddings(vectors, response.usage, response.provider, response.model,
                          response.request_id, list(response.attempts))
