#!/usr/bin/env python3
"""Replays docs/openai-compatible.md's shell lines and Node snippet against a live gateway.

Starts the fake provider and a gateway with --http_listen (a config file shaped like what
`tools/dev up` seeds: the open capability "demo" on the fake provider, and a caller whose key is
in var/dev/caller.key under the temp dir), then runs every line of the guide's ```sh blocks in
order through one bash, as written, with localhost:8080 pointed at the gateway's HTTP port.
Checks what the guide claims: the streaming curl line prints chat.completion.chunk events ending
with `data: [DONE]` and the fake provider's text; the models line lists "demo". Then runs each
```js block as written (an ES module, in the temp dir, with the openai SDK of tools/node_modules)
and checks it prints the fake provider's reply. Any other fenced code block fails the test: every
snippet on the page must be one this test runs.

usage: openai_doc_test.py --gateway=PATH --fake=PATH --doc=docs/openai-compatible.md
                          [--node=PATH --node_modules=tools/node_modules]
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "controlplane"))
from doc_lines import extract_sh_lines  # noqa: E402

KEY = "tpk_doc_test_caller_key"


def code_blocks(doc):
    """(language, text) of every fenced code block, in order."""
    blocks, lang, body = [], None, []
    for raw in open(doc, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                blocks.append((lang, "\n".join(body) + "\n"))
                lang = None
            continue
        if lang is not None:
            body.append(line)
    return blocks


def wait_port(path, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"FAIL: {path}: process exited")
        try:
            text = open(path).read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    sys.exit(f"FAIL: no port in {path} within {timeout} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--node", default="")
    ap.add_argument("--node_modules", default="")
    args = ap.parse_args()
    blocks = code_blocks(args.doc)
    untested = [lang or "(no language)" for lang, _ in blocks if lang not in ("sh", "js")]
    assert not untested, f"code blocks no test runs: {untested}"
    js_blocks = [text for lang, text in blocks if lang == "js"]
    missing = []
    if shutil.which("curl") is None:
        missing.append("curl is not installed")
    if js_blocks and not (args.node and os.path.isdir(os.path.join(args.node_modules, "openai"))):
        missing.append("node or the openai SDK (tools/node_modules, from tools/dev) is missing")
    if missing:
        print("SKIP: " + "; ".join(missing))
        return 0 if os.environ.get("CI") != "true" else 1
    lines = extract_sh_lines(args.doc)
    curl_lines = [l for l in lines if l.startswith("curl")]
    assert curl_lines, "the guide has no curl line"
    tmp = tempfile.mkdtemp(prefix="turnpike-openai-doc-")
    procs = []
    try:
        fake = subprocess.Popen([args.fake, "--listen=127.0.0.1:0", f"--port_file={tmp}/fake.port",
                                 "--api_key=fake-key", "--chunks=5"],
                                stdout=open(f"{tmp}/fake.log", "w"), stderr=subprocess.STDOUT)
        procs.append(fake)
        fake_port = wait_port(f"{tmp}/fake.port", fake)
        config = {
            "version": "doc-1",
            "providers": [{"name": "fake", "kind": "PROVIDER_KIND_OPENAI",
                           "baseUrl": f"http://127.0.0.1:{fake_port}/v1",
                           "apiKeyEnv": "TURNPIKE_FAKE_KEY"}],
            "routes": [{"capability": "demo", "targets": [{"provider": "fake", "model": "gpt-4o-mini"}],
                        "allowUnauthenticated": True}],
            "callers": [{"name": "dev-app", "allowedCapabilities": ["demo"],
                         "keySha256": [hashlib.sha256(KEY.encode()).hexdigest()]}],
        }
        with open(f"{tmp}/config.json", "w") as f:
            json.dump(config, f)
        gateway = subprocess.Popen(
            [args.gateway, f"--config={tmp}/config.json", "--listen=127.0.0.1:0",
             f"--port_file={tmp}/gateway.port", "--metrics_listen=", "--http_listen=127.0.0.1:0",
             f"--http_port_file={tmp}/http.port"],
            stdout=open(f"{tmp}/gateway.log", "w"), stderr=subprocess.STDOUT,
            env={**os.environ, "TURNPIKE_FAKE_KEY": "fake-key"})
        procs.append(gateway)
        http_port = wait_port(f"{tmp}/http.port", gateway)
        os.makedirs(f"{tmp}/var/dev")
        with open(f"{tmp}/var/dev/caller.key", "w") as f:
            f.write(KEY + "\n")
        outputs = []
        for line in lines:
            replayed = line.replace("localhost:8080", f"127.0.0.1:{http_port}")
            # export lines carry over to the next: one bash per line, with the exports in front.
            prefix = "".join(l + "\n" for l in lines[: lines.index(line)] if l.startswith("export "))
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", prefix + replayed], cwd=tmp,
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                sys.exit(f"FAIL: {line}\n{r.stdout}\n{r.stderr}")
            if line.startswith("curl"):
                outputs.append((line, r.stdout))
        stream_out = next(out for line, out in outputs if '"stream":true' in line)
        events = [b[len("data: "):] for b in stream_out.split("\n\n") if b.strip()]
        assert events[-1] == "[DONE]", stream_out
        text = ""
        for e in events[:-1]:
            chunk = json.loads(e)
            assert chunk["object"] == "chat.completion.chunk", e
            text += chunk["choices"][0]["delta"].get("content", "") if chunk["choices"] else ""
        assert text == "Hello from the fake provider", text
        models_out = next(out for line, out in outputs if "/v1/models" in line)
        assert [m["id"] for m in json.loads(models_out)["data"]] == ["demo"], models_out
        # The Node snippets, as written but for the port: `import 'openai'` resolves through a
        # node_modules link in the temp dir.
        os.symlink(os.path.realpath(args.node_modules), f"{tmp}/node_modules")
        for i, text in enumerate(js_blocks):
            path = f"{tmp}/snippet{i}.mjs"
            with open(path, "w") as f:
                f.write(text.replace("localhost:8080", f"127.0.0.1:{http_port}"))
            r = subprocess.run([args.node, path], cwd=tmp, capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                sys.exit(f"FAIL: js block {i}\n{text}\n{r.stdout}\n{r.stderr}")
            assert r.stdout.strip() == "Hello from the fake provider", r.stdout
        print(f"PASS: {len(lines)} lines and {len(js_blocks)} Node snippet(s) of "
              f"{os.path.basename(args.doc)} run")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
