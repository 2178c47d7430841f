"""Imports the generated code (turnpike_client/_gen, made by generate.py).

The generated modules import each other by their proto package (`turnpike.v1`, `google.rpc`), so
_gen goes on sys.path. If googleapis-common-protos is installed, its google.rpc (the same
messages) is used instead of ours, and nothing is registered twice.
"""
import os
import sys

_GEN = os.path.join(os.path.dirname(os.path.realpath(__file__)), "_gen")
if not os.path.isdir(os.path.join(_GEN, "turnpike")):
    raise ImportError(f"turnpike_client's generated code is missing from {_GEN}: run "
                      "clients/python/generate.py first (see clients/python/README.md)")
if _GEN not in sys.path:
    sys.path.append(_GEN)

from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from turnpike.v1 import (common_pb2, completion_pb2, completion_pb2_grpc,  # noqa: E402
                         embedding_pb2, embedding_pb2_grpc)

__all__ = ["common_pb2", "completion_pb2", "completion_pb2_grpc", "embedding_pb2",
           "embedding_pb2_grpc", "error_details_pb2", "status_pb2"]
