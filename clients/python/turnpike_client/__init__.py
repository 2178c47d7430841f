"""A small Python client for the Turnpike gateway (turnpike.v1 over gRPC).

    from turnpike_client import Client, TurnpikeError
    client = Client("localhost:50051", caller_key=os.environ["TURNPIKE_CALLER_KEY"])
    for event in client.stream_completion("claims-summary", [("user", "Summarize ...")]):
        if event.kind == "text":
            print(event.text, end="")

See clients/python/README.md.
"""
from .client import Client, Completion, CompletionStream, Embeddings, Event
from .errors import TurnpikeError

__all__ = ["Client", "Completion", "CompletionStream", "Embeddings", "Event", "TurnpikeError"]
