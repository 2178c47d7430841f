#!/usr/bin/env python3
"""Replays docs/classification.md against a live gateway and fake provider.

Starts turnpike-fake-provider and turnpike-gateway (a file config with the capabilities `demo`
and `triage`, a classification route, both on the fake's OpenAI endpoint, as `tools/dev up` sets
them up) on free ports in a temp dir, then runs EVERY `grpcurl` line of the doc's ```sh blocks
in order, exactly as written, through bash with tools/grpcurl-shim on PATH as `grpcurl` and
localhost:50051 pointed at the gateway. Checks what the doc says each line shows: the label
(and nothing of the model's text), the INVALID_ARGUMENT naming labels[1].name, and the
FAILED_PRECONDITION for a capability that is not a classification.

usage: classification_doc_test.py --gateway=PATH --fake=PATH --buf=PATH --shim=PATH --doc=PATH
Without buf it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "controlplane"))
from doc_lines import extract_lines  # noqa: E402
from doc_stack import ProcessStack, missing_tools, shim_env  # noqa: E402

GATEWAY_ADDR = "localhost:50051"


def check_line(line, r):
    """What the doc promises the line shows; an error message or None."""
    text = r.stdout + r.stderr
    if '"capability":"demo"' in line:
        if r.returncode == 0 or "failed_precondition" not in text.lower().replace(" ", "_"):
            return f"not FAILED_PRECONDITION:\n{text}"
        # buf curl prints the message JSON-escaped: capability \"demo\" is not ...
        if 'capability \\"demo\\" is not a classification' not in text:
            return f"the error does not name the capability:\n{text}"
        return None
    if '{"name":"billing"},{"name":"billing"}' in line:
        if r.returncode == 0 or "labels[1].name" not in text:
            return f"not INVALID_ARGUMENT naming labels[1].name:\n{text}"
        return None
    if r.returncode != 0:
        return f"exit {r.returncode}:\n{text}"
    reply = json.loads(r.stdout)
    if reply.get("label") != "billing" or reply.get("labels") != ["billing"]:
        return f"the answer is not the label billing:\n{r.stdout}"
    if "text" in reply or "toolCalls" in reply:
        return f"the model's own text reached the caller:\n{r.stdout}"
    if reply.get("start", {}).get("provider") != "fake":
        return f"the start does not name the provider:\n{r.stdout}"
    return None


def main():
    p = argparse.ArgumentParser()
    for flag in ("gateway", "fake", "buf", "shim", "doc"):
        p.add_argument(f"--{flag}", required=True)
    opts = p.parse_args()
    code = missing_tools(opts.buf, also=())
    if code is not None:
        return code
    lines = extract_lines(opts.doc)
    assert len(lines) == 3, f"expected 3 grpcurl lines in {opts.doc}, found {len(lines)}"

    with tempfile.TemporaryDirectory(prefix="tp-classification-doc-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        env["TURNPIKE_FAKE_KEY"] = "fake-key"
        stack = ProcessStack(tmp)
        try:
            fake = stack.address("fake", [opts.fake, "--listen=127.0.0.1:0", "--api_key=fake-key",
                                          "--chunks=5"])
            config = {"version": "classification-doc", "providers": [
                {"name": "fake", "kind": "PROVIDER_KIND_OPENAI", "baseUrl": f"http://{fake}/v1",
                 "apiKeyEnv": "TURNPIKE_FAKE_KEY"}],
                "routes": [{"capability": "demo", "allowUnauthenticated": True,
                            "targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
                           {"capability": "triage", "task": "ROUTE_TASK_CLASSIFICATION",
                            "allowUnauthenticated": True,
                            "targets": [{"provider": "fake", "model": "gpt-4o-mini"}]}]}
            with open(f"{tmp}/config.json", "w") as f:
                json.dump(config, f)
            old = dict(os.environ)
            os.environ["TURNPIKE_FAKE_KEY"] = "fake-key"
            try:
                gateway = stack.address("gateway", [opts.gateway, f"--config={tmp}/config.json",
                                                    "--listen=127.0.0.1:0",
                                                    "--metrics_listen="])
            finally:
                os.environ.clear()
                os.environ.update(old)
            for n, line in enumerate(lines, 1):
                r = subprocess.run(["bash", "-o", "pipefail", "-c",
                                    line.replace(GATEWAY_ADDR, gateway)],
                                   cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
                problem = check_line(line, r)
                if problem:
                    print(f"line {n}: {problem}\n  {line}\n{stack.log('gateway')}")
                    return 1
                print(f"ok line {n}")
        finally:
            problems = stack.stop()
        if problems:
            print("\n".join(problems))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
