#!/usr/bin/env python3
"""Generates the Python protobuf and gRPC code the client wraps, from the repository's proto/.

usage: generate.py [--proto=DIR] [--out=DIR]
Defaults: the repository's proto/ and this package's turnpike_client/_gen (what a wheel ships).
Needs protoc and grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc).
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
# What a client needs: the data-plane API and the status details it decodes.
PROTOS = ["turnpike/v1/common.proto", "turnpike/v1/completion.proto",
          "turnpike/v1/embedding.proto", "google/rpc/status.proto",
          "google/rpc/error_details.proto"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--proto", default=os.path.join(HERE, "..", "..", "proto"))
    p.add_argument("--out", default=os.path.join(HERE, "turnpike_client", "_gen"))
    opts = p.parse_args()
    plugin = shutil.which("grpc_python_plugin")
    if shutil.which("protoc") is None or plugin is None:
        print("protoc and grpc_python_plugin are needed (apt-get install protobuf-compiler "
              "protobuf-compiler-grpc)", file=sys.stderr)
        return 1
    os.makedirs(opts.out, exist_ok=True)
    subprocess.run(["protoc", f"-I{opts.proto}", f"--python_out={opts.out}",
                    f"--grpc_python_out={opts.out}", f"--plugin=protoc-gen-grpc_python={plugin}",
                    *PROTOS], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
