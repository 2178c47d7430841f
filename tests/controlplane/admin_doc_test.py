#!/usr/bin/env python3
"""Replays docs/admin.md against a real turnpike-control.

Starts turnpike-control on a free port with a fresh database, seeds the demo state the cookbook
assumes (credential fake-key, provider fake, route demo) through the admin API, then runs every
`grpcurl` line of the ```sh blocks in order, translated to `buf curl`. Lines addressed to the
control plane (localhost:50052) must succeed; gateway lines (localhost:50051) are run only when
--gateway=ADDR is given (a live gateway watching this control plane), otherwise skipped.
Finally sends SIGTERM and expects a clean exit.

usage: admin_doc_test.py --control=PATH/turnpike-control --buf=PATH/buf --doc=docs/admin.md
"""
import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time


def extract_lines(doc):
    lines, in_sh = [], False
    for raw in open(doc, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh and line.startswith("grpcurl"):
            lines.append(line)
    return lines


def to_buf_curl(buf, line, addresses):
    args = shlex.split(line)
    assert args[0] == "grpcurl", line
    out = [buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    i, positional = 1, []
    while i < len(args):
        a = args[i]
        if a == "-plaintext":
            i += 1
        elif a in ("-H", "-d"):
            out += [a, args[i + 1]]
            i += 2
        elif a.startswith("-"):
            raise ValueError(f"unsupported grpcurl flag {a} in: {line}")
        else:
            positional.append(a)
            i += 1
    if len(positional) != 2:
        raise ValueError(f"expected ADDRESS METHOD in: {line}")
    address, method = positional
    if address not in addresses:
        raise ValueError(f"unexpected address {address} in: {line}")
    target = addresses[address]
    if target is None:
        return None
    return out + [f"http://{target}/{method}"]


def run(cmd, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    p.add_argument("--buf", required=True)
    p.add_argument("--doc", required=True)
    p.add_argument("--gateway", default=None)
    opts = p.parse_args()
    if not os.access(opts.buf, os.X_OK):
        print(f"SKIP: buf not found at {opts.buf} (npm install in tools/)")
        return 0

    lines = extract_lines(opts.doc)
    assert lines, "no grpcurl lines found"
    with tempfile.TemporaryDirectory(prefix="tp-admin-doc-") as tmp:
        port_file = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "control.log"), "w+")
        proc = subprocess.Popen(
            [opts.control, "--listen=127.0.0.1:0", f"--port_file={port_file}",
             f"--db={tmp}/var/turnpike.db", "--dev_insecure_master_key"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 20
            while not os.path.exists(port_file):
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    print("turnpike-control did not start:\n" + log.read())
                    return 1
                time.sleep(0.02)
            control = f"127.0.0.1:{open(port_file).read().strip()}"
            base = [opts.buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
            seed = [
                ("CreateCredential", {"credential": {"name": "fake-key"}, "secret": "fake-key"}),
                ("CreateProvider", {"provider": {"spec": {
                    "name": "fake", "kind": "PROVIDER_KIND_OPENAI",
                    "baseUrl": "http://127.0.0.1:9/v1", "credential": "fake-key"}}}),
                ("CreateRoute", {"route": {"spec": {
                    "capability": "demo", "targets": [{"provider": "fake", "model": "gpt-4o-mini"}],
                    "allowUnauthenticated": True}}}),
            ]
            for method, body in seed:
                r = run(base + ["-d", json.dumps(body),
                                f"http://{control}/turnpike.admin.v1.AdminService/{method}"])
                if r.returncode != 0:
                    print(f"seed {method} failed:\n{r.stdout}{r.stderr}")
                    return 1
            addresses = {"localhost:50052": control, "localhost:50051": opts.gateway}
            ran = skipped = 0
            for n, line in enumerate(lines, 1):
                cmd = to_buf_curl(opts.buf, line, addresses)
                if cmd is None:
                    skipped += 1
                    continue
                r = run(cmd)
                if r.returncode != 0:
                    print(f"line {n} failed (exit {r.returncode}):\n  {line}\n{r.stdout}{r.stderr}")
                    return 1
                ran += 1
            print(f"ran {ran} lines of {opts.doc}, skipped {skipped} gateway lines")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = "timeout"
        if code != 0:
            log.seek(0)
            print(f"turnpike-control exited with {code} after SIGTERM:\n{log.read()}")
            return 1
        log.seek(0)
        text = log.read()
        for secret in ("sk-example-not-a-real-key", "sk-example-rotated-key"):
            if secret in text:
                print(f"secret {secret} leaked into the control plane log")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
