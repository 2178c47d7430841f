#!/usr/bin/env python3
"""Replays docs/tools.md against a live gateway and fake provider.

Starts turnpike-fake-provider and turnpike-gateway (a file config whose capability `demo` goes to
the fake's OpenAI endpoint, as `tools/dev up` sets it up) on free ports in a temp dir, then runs
EVERY `grpcurl` line of the doc's ```sh blocks in order, exactly as written, through bash with
tools/grpcurl-shim on PATH as `grpcurl` and localhost:50051 pointed at the gateway. Checks what
the doc says each line shows: the streamed tool call (id, name, arguments that parse as the
fake's JSON, finish TOOL_CALLS, the TOOLS feature), the answer after the tool result, and the
INVALID_ARGUMENT naming tools[0].parameters_json.

usage: tools_doc_test.py --gateway=PATH --fake=PATH --buf=PATH --shim=PATH --doc=docs/tools.md
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
FAKE_ARGUMENTS = {"city": "Paris", "unit": "celsius", "note": "say \"hi\" \u00e9 \U0001F44B"}


def messages(out):
    """The JSON messages buf curl printed (one object per message, pretty-printed)."""
    decoder, pos, found = json.JSONDecoder(), 0, []
    while True:
        start = out.find("{", pos)
        if start < 0:
            return found
        obj, pos = decoder.raw_decode(out, start)
        found.append(obj)


def check_line(line, r):
    """What the doc promises the line shows; an error message or None."""
    text = r.stdout + r.stderr
    if "[1, 2]" in line:
        if r.returncode == 0:
            return f"a schema that is not an object was accepted:\n{text}"
        if "invalid" not in text.lower() or "tools[0].parameters_json" not in text:
            return f"not INVALID_ARGUMENT naming tools[0].parameters_json:\n{text}"
        return None
    if r.returncode != 0:
        return f"exit {r.returncode}:\n{text}"
    if "StreamCompletion" in line:
        msgs = messages(r.stdout)
        start = msgs[0].get("start", {})
        if start.get("features") != ["REQUEST_FEATURE_TOOLS"]:
            return f"the start message does not say the request used tools:\n{r.stdout}"
        calls = [m["toolCall"] for m in msgs if "toolCall" in m]
        if not calls or calls[0].get("id") != "call_fake_0" or \
                calls[0].get("name") != "get_weather":
            return f"no tool call get_weather / call_fake_0:\n{r.stdout}"
        arguments = "".join(c.get("arguments", "") for c in calls)
        if json.loads(arguments) != FAKE_ARGUMENTS:
            return f"the streamed arguments are not the fake's: {arguments!r}"
        if msgs[-1].get("finish", {}).get("finishReason") != "FINISH_REASON_TOOL_CALLS":
            return f"the stream does not finish with FINISH_REASON_TOOL_CALLS:\n{r.stdout}"
        return None
    reply = json.loads(r.stdout)
    if reply.get("text") != "Hello from the fake provider" or \
            reply.get("finish", {}).get("finishReason") != "FINISH_REASON_STOP":
        return f"the answer after the tool result is not the fake's text:\n{r.stdout}"
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

    with tempfile.TemporaryDirectory(prefix="tp-tools-doc-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        env["TURNPIKE_FAKE_KEY"] = "fake-key"
        stack = ProcessStack(tmp)
        try:
            fake = stack.address("fake", [opts.fake, "--listen=127.0.0.1:0", "--api_key=fake-key",
                                          "--chunks=5"])
            config = {"version": "tools-doc", "providers": [
                {"name": "fake", "kind": "PROVIDER_KIND_OPENAI", "baseUrl": f"http://{fake}/v1",
                 "apiKeyEnv": "TURNPIKE_FAKE_KEY"}],
                "routes": [{"capability": "demo", "allowUnauthenticated": True,
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
