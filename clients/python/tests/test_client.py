#!/usr/bin/env python3
"""The Python client against a live turnpike-gateway and the fake provider (real processes, real
sockets): streaming, unary, embeddings, cancellation, and errors with their decoded details.

usage: test_client.py --gateway=PATH --fake=PATH [unittest options]
Run with Debian's /usr/bin/python3 (python3-grpcio); generates the client's code into a temp dir.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
CLIENT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from test_stack import CALLER_KEY, REPLY, ClientStack  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "controlplane"))
from doc_stack import wait_until  # noqa: E402

OPTS = None
STACK = None
GATEWAY = None
FAKE_PORT = None
TMP = None


def fake_stat(name):
    with urllib.request.urlopen(f"http://127.0.0.1:{FAKE_PORT}/_fake/stats", timeout=10) as r:
        return json.loads(r.read())[name]


def setUpModule():
    global STACK, GATEWAY, FAKE_PORT, TMP, turnpike_client
    TMP = tempfile.mkdtemp(prefix="tp-python-client-")
    # The package as a wheel would ship it: its sources plus the generated code.
    package = os.path.join(TMP, "pkg", "turnpike_client")
    shutil.copytree(os.path.join(CLIENT, "turnpike_client"), package,
                    ignore=shutil.ignore_patterns("_gen", "__pycache__"))
    subprocess.run([sys.executable, os.path.join(CLIENT, "generate.py"),
                    f"--out={os.path.join(package, '_gen')}"], check=True)
    sys.path.insert(0, os.path.join(TMP, "pkg"))
    import turnpike_client as module
    turnpike_client = module
    STACK = ClientStack(TMP, OPTS.gateway, OPTS.fake)
    GATEWAY, FAKE_PORT = STACK.gateway, STACK.fake_port


def tearDownModule():
    problems = STACK.stop()
    shutil.rmtree(TMP, ignore_errors=True)
    if problems:
        raise AssertionError("\n".join(problems))


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.client = turnpike_client.Client(GATEWAY, timeout=20)
        self.addCleanup(self.client.close)

    def test_stream_yields_start_then_text_then_finish_with_cost(self):
        stream = self.client.stream_completion("demo", [("system", "Be brief."),
                                                        {"role": "user", "content": "hello"}],
                                               user="end-user-7", tags={"team": "docs"})
        kinds = [event.kind for event in stream]
        self.assertEqual(kinds[0], "start")
        self.assertEqual(kinds[-1], "finish")
        # The gateway may send text that arrived together as one event.
        self.assertGreaterEqual(kinds.count("text"), 1)
        self.assertEqual(stream.start.provider, "fake")
        self.assertEqual(stream.start.model, "gpt-4o-mini")
        self.assertTrue(stream.start.request_id)
        self.assertEqual(stream.text, REPLY)
        usage = stream.finish.usage
        self.assertGreater(usage.output_tokens, 0)
        # Integer micro-dollars from the price table (0.15 $/M in, 0.60 $/M out), rounded up once.
        exact = usage.input_tokens * 150000 + usage.output_tokens * 600000
        self.assertEqual(usage.cost_usd_micros, -(-exact // 1000000))

    def test_complete_returns_the_whole_reply(self):
        reply = self.client.complete("demo", [("user", "hello")], max_tokens=50)
        self.assertEqual(reply.text, REPLY)
        self.assertEqual(reply.start.provider, "fake")
        self.assertGreater(reply.usage.output_tokens, 0)

    def test_embed_returns_one_vector_per_input_in_order(self):
        result = self.client.embed("vectors", ["first", "second", "third"])
        self.assertEqual(len(result.vectors), 3)
        self.assertTrue(all(len(v) > 0 for v in result.vectors))
        self.assertNotEqual(result.vectors[0], result.vectors[1])
        self.assertEqual(result.model, "text-embedding-3-small")
        self.assertGreater(result.usage.input_tokens, 0)

    def test_provider_rate_limit_carries_provider_error_and_retry_after(self):
        with self.assertRaises(turnpike_client.TurnpikeError) as caught:
            # A 7 s cool-down does not fit the 2 s deadline: the gateway answers at once.
            self.client.complete("limited", [("user", "hi [[fake status=429 retry_after=7]]")],
                                 timeout=2)
        e = caught.exception
        self.assertEqual(e.code.name, "RESOURCE_EXHAUSTED")
        self.assertIsNotNone(e.provider_error)
        self.assertEqual(e.provider_error.http_status, 429)
        self.assertEqual(e.provider_error.provider, "limited")
        self.assertEqual(e.retry_after, 7)
        self.assertTrue(e.attempts, "every attempt is listed")

    def test_failure_mid_stream_keeps_the_text_and_reports_partial_usage(self):
        stream = self.client.stream_completion(
            "demo", [("user", "hi [[fake stream_error_after=2]]")])
        events = []
        with self.assertRaises(turnpike_client.TurnpikeError) as caught:
            for event in stream:
                events.append(event)
        self.assertEqual(events[0].kind, "start")
        self.assertEqual(stream.text, "Hello from", "the two chunks sent before the failure")
        self.assertIsNotNone(caught.exception.partial, "PartialCompletion detail")
        self.assertTrue(caught.exception.attempts)

    def test_a_closed_route_needs_the_callers_key(self):
        with self.assertRaises(turnpike_client.TurnpikeError) as caught:
            self.client.complete("closed", [("user", "hi")])
        self.assertEqual(caught.exception.code.name, "UNAUTHENTICATED")
        with turnpike_client.Client(GATEWAY, caller_key=CALLER_KEY, timeout=20) as keyed:
            self.assertEqual(keyed.complete("closed", [("user", "hi")]).text,
                             REPLY)

    def test_unknown_capability_is_not_found(self):
        with self.assertRaises(turnpike_client.TurnpikeError) as caught:
            self.client.complete("no-such-capability", [("user", "hi")])
        self.assertEqual(caught.exception.code.name, "NOT_FOUND")

    def test_a_bad_role_is_refused_before_sending(self):
        with self.assertRaises(ValueError):
            self.client.complete("demo", [("robot", "hi")])

    def test_cancel_stops_the_stream_and_the_upstream(self):
        before = fake_stat("aborted_streams")
        stream = self.client.stream_completion(
            "demo", [("user", "slow [[fake chunks=50 chunk_delay_ms=100]]")])
        events = iter(stream)
        self.assertEqual(next(events).kind, "start")
        self.assertEqual(next(events).kind, "text")
        stream.cancel()
        with self.assertRaises(turnpike_client.TurnpikeError) as caught:
            for _ in events:
                pass
        self.assertEqual(caught.exception.code.name, "CANCELLED")
        self.assertLess(len(stream.text), 50, "it did not run to its end")
        self.assertTrue(wait_until(lambda: fake_stat("aborted_streams") > before, 10),
                        "the gateway stopped the upstream transfer")


class SidecarTest(unittest.TestCase):
    """The sidecar pattern: a gateway of its own beside one application, on a unix socket."""

    def test_the_client_reaches_a_gateway_on_a_unix_socket(self):
        socket_path = os.path.join(TMP, "sidecar.sock")
        STACK.start_sidecar(socket_path)
        with turnpike_client.Client(f"unix:{socket_path}", timeout=20) as client:
            reply = client.complete("demo", [("user", "hello")])
        self.assertEqual(reply.text, REPLY)


def main():
    global OPTS
    try:
        import grpc  # noqa: F401
    except ImportError:
        msg = "python3-grpcio is not installed (tools/dev installs it)"
        if os.environ.get("CI") == "true":
            print(msg)
            return 1
        print(f"SKIP: {msg}")
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("--gateway", required=True)
    p.add_argument("--fake", required=True)
    OPTS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
