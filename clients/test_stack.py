"""The live stack the client tests run against: the fake provider and a gateway configured from a
snapshot file, on free ports in a temp dir (Python and C++ clients; the Node test has its own).

Routes: "demo" (chat, open), "vectors" (embeddings, open), "limited" (its own upstream, so a 429
cool-down there leaves the others alone) and "closed" (needs the caller key "test").
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "tests",
                                "controlplane"))
from doc_stack import ProcessStack  # noqa: E402

CALLER_KEY = "test"  # its SHA-256 is the caller's key digest below
REPLY = "Hello from the fake provider"


def config(fake_port):
    base = f"http://127.0.0.1:{fake_port}/v1"
    chat = {"provider": "fake", "model": "gpt-4o-mini"}
    return {
        "version": "client-tests",
        "providers": [{"name": "fake", "kind": "PROVIDER_KIND_OPENAI", "baseUrl": base,
                       "apiKeyEnv": "TURNPIKE_FAKE_KEY"},
                      {"name": "limited", "kind": "PROVIDER_KIND_OPENAI", "baseUrl": base,
                       "apiKeyEnv": "TURNPIKE_FAKE_KEY"}],
        "routes": [
            {"capability": "demo", "targets": [chat], "allowUnauthenticated": True},
            {"capability": "vectors",
             "targets": [{"provider": "fake", "model": "text-embedding-3-small"}],
             "allowUnauthenticated": True},
            {"capability": "limited", "targets": [{"provider": "limited", "model": "gpt-4o-mini"}],
             "allowUnauthenticated": True},
            {"capability": "closed", "targets": [chat]}],
        "prices": [{"provider": "fake", "model": "gpt-4o-mini",
                    "inputUsdMicrosPerMtok": "150000", "outputUsdMicrosPerMtok": "600000"}],
        "callers": [{"name": "client-tests", "allowedCapabilities": ["closed"], "keySha256": [
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]}],
    }


class ClientStack:
    """Starts the fake provider and a gateway in `tmp`; stop() returns the problems found."""

    def __init__(self, tmp, gateway_bin, fake_bin):
        self.tmp = tmp
        self.gateway_bin = gateway_bin
        self.processes = ProcessStack(tmp)
        self.fake_port, = self.processes.start("fake", [fake_bin, "--listen=127.0.0.1:0",
                                                        "--api_key=fake-key"])
        self.config_path = os.path.join(tmp, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(config(self.fake_port), f)
        os.environ["TURNPIKE_FAKE_KEY"] = "fake-key"
        self.gateway = self.processes.address("gateway", [
            gateway_bin, f"--config={self.config_path}", "--listen=127.0.0.1:0",
            "--metrics_listen=127.0.0.1:0", "--drain_timeout=5s"])

    def start_sidecar(self, socket_path):
        """A second gateway, on a unix socket (the sidecar pattern)."""
        self.processes.start("sidecar", [self.gateway_bin, f"--config={self.config_path}",
                                         f"--listen=unix:{socket_path}", "--metrics_listen=",
                                         "--drain_timeout=5s"])

    def stop(self):
        return self.processes.stop()
