#!/usr/bin/env python3
"""Streams one completion through a Turnpike gateway and prints the reply, its cost and the model.

usage: TURNPIKE_CALLER_KEY=tpk_... examples/stream.py [--gateway=localhost:50051]
                                                      [--capability=demo] [PROMPT]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))
from turnpike_client import Client, TurnpikeError  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gateway", default="localhost:50051")
    p.add_argument("--capability", default="demo")
    p.add_argument("prompt", nargs="?", default="Say hello to Turnpike.")
    opts = p.parse_args()
    with Client(opts.gateway, caller_key=os.environ.get("TURNPIKE_CALLER_KEY"),
                timeout=30) as client:
        stream = client.stream_completion(opts.capability, [("user", opts.prompt)])
        try:
            for event in stream:
                if event.kind == "start":
                    print(f"[{event.start.provider}/{event.start.model}]", file=sys.stderr)
                elif event.kind == "text":
                    print(event.text, end="", flush=True)
                else:
                    usage = event.finish.usage
                    print(f"\n[{usage.input_tokens} in, {usage.output_tokens} out, "
                          f"{usage.cost_usd_micros} micro-dollars]", file=sys.stderr)
        except TurnpikeError as e:
            print(f"\nfailed: {e}", file=sys.stderr)
            if e.retry_after is not None:
                print(f"retry in {e.retry_after:.1f} s", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
