#!/usr/bin/env python3
"""Replays docs/admin.md against a live stack: fake provider, turnpike-control, turnpike-gateway.

Starts the three processes on free ports in a temp dir (the gateway watching the control plane),
seeds the demo state the cookbook assumes (credential fake-key, provider fake pointing at the fake
provider, route demo) through the admin API as `tools/dev up` does, then runs EVERY `grpcurl` line
of the ```sh blocks in order, translated to `buf curl`, and requires each to succeed: lines for
the control plane (localhost:50052) and for the gateway (localhost:50051) alike. Before each
gateway line it waits (deadline-bounded) until the gateway has ACKed the control plane's current
config version: a gateway ACKs only after applying the snapshot, so the line sees every change
made above it. Every control-plane line carries the admin token (`$TURNPIKE_ADMIN_TOKEN`, which
the test sets to the token the control plane wrote to --bootstrap_admin_token_file); each such line
is also run without its authorization header and must fail with UNAUTHENTICATED. The gateway
authenticates with a node token issued through the admin API. Finally sends SIGTERM to each
process and expects clean exits, and checks that no example secret or token reached a log.

usage: admin_doc_test.py --control=PATH --gateway=PATH --fake=PATH --buf=PATH --doc=docs/admin.md
Without buf it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

from doc_lines import extract_lines
from doc_stack import ProcessStack, wait_until

CONTROL_ADDR = "localhost:50052"
GATEWAY_ADDR = "localhost:50051"
GATEWAY_NODE = "admin-doc-gateway"
SECRETS = ("sk-example-not-a-real-key", "sk-example-rotated-key")


AUTH_HEADER = 'authorization: Bearer $TURNPIKE_ADMIN_TOKEN'


def to_buf_curl(buf, line, addresses, env=None):
    """Returns (address in the doc, buf curl argv); $VARS in header values come from `env`."""
    args = shlex.split(line)
    assert args[0] == "grpcurl", line
    out = [buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    i, positional = 1, []
    while i < len(args):
        a = args[i]
        if a == "-plaintext":
            i += 1
        elif a == "-H":
            value = args[i + 1]
            for name, v in (env or {}).items():
                value = value.replace(f"${name}", v)
            out += [a, value]
            i += 2
        elif a == "-d":
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
    return address, out + [f"http://{addresses[address]}/{method}"]


def run(cmd, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--fake", required=True)
    p.add_argument("--buf", required=True)
    p.add_argument("--doc", required=True)
    opts = p.parse_args()
    if not os.access(opts.buf, os.X_OK):
        if os.environ.get("CI") == "true":
            print(f"buf not found at {opts.buf}: tools/dev installs it (npm install in tools/)")
            return 1
        print(f"SKIP: buf not found at {opts.buf} (npm install in tools/)")
        return 0

    lines = extract_lines(opts.doc)
    assert lines, "no grpcurl lines found"
    base = [opts.buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]

    token = {}

    def call(address, method, body):
        r = run(base + ["-H", f"authorization: Bearer {token.get('admin', '')}", "-d",
                        json.dumps(body), f"http://{address}/{method}"])
        return r, (json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {})

    with tempfile.TemporaryDirectory(prefix="tp-admin-doc-") as tmp:
        stack = ProcessStack(tmp)
        try:
            fake = stack.address("fake", [opts.fake, "--listen=127.0.0.1:0", "--api_key=fake-key"])
            control = stack.address("control", [
                opts.control, "--listen=127.0.0.1:0", f"--db={tmp}/var/turnpike.db",
                "--metrics_listen=127.0.0.1:0", f"--bootstrap_admin_token_file={tmp}/admin.token",
                # Each line is also sent without its token: no slowdown of those refusals.
                "--auth_failure_max_delay=0",
                "--dev_insecure_master_key"])
            token["admin"] = open(f"{tmp}/admin.token").read().strip()
            admin = "turnpike.admin.v1.AdminService"
            # The demo state of tools/dev-up.sh, made the same way.
            seed = [
                ("CreateCredential", {"credential": {"name": "fake-key"}, "secret": "fake-key"}),
                ("CreateProvider", {"provider": {"spec": {
                    "name": "fake", "kind": "PROVIDER_KIND_OPENAI",
                    "baseUrl": f"http://{fake}/v1", "credential": "fake-key"}}}),
                ("CreateRoute", {"route": {"spec": {
                    "capability": "demo", "targets": [{"provider": "fake", "model": "gpt-4o-mini"}],
                    "allowUnauthenticated": True}}}),
            ]
            for method, body in seed:
                r, _ = call(control, f"{admin}/{method}", body)
                if r.returncode != 0:
                    print(f"seed {method} failed:\n{r.stdout}{r.stderr}")
                    return 1
            r, issued = call(control, f"{admin}/CreateNodeToken",
                             {"name": "doc-gateway", "nodeId": GATEWAY_NODE})
            if r.returncode != 0:
                print(f"CreateNodeToken failed:\n{r.stdout}{r.stderr}")
                return 1
            token["node"] = issued["token"]
            with open(f"{tmp}/node.token", "w") as f:
                f.write(token["node"] + "\n")
            gateway = stack.address("gateway", [
                opts.gateway, f"--control_plane={control}", f"--node_id={GATEWAY_NODE}",
                f"--node_token_file={tmp}/node.token",
                f"--snapshot_cache={tmp}/gateway-snapshot.pb", f"--usage_spool_dir={tmp}/usage-spool",
                "--listen=127.0.0.1:0",
                "--metrics_listen=127.0.0.1:0"])

            def gateway_current():
                _, status = call(control, f"{admin}/GetConfigStatus", {})
                _, planes = call(control, f"{admin}/ListDataPlanes", {})
                return bool(status.get("version")) and any(d.get("nodeId") == GATEWAY_NODE and d.get("connected")
                           and d.get("ackedVersion") == status.get("version")
                           for d in planes.get("dataPlanes", []))

            addresses = {CONTROL_ADDR: control, GATEWAY_ADDR: gateway}
            counts = {CONTROL_ADDR: 0, GATEWAY_ADDR: 0}
            refused = 0
            env = {"TURNPIKE_ADMIN_TOKEN": token["admin"]}
            for n, line in enumerate(lines, 1):
                address, cmd = to_buf_curl(opts.buf, line, addresses, env)
                if address == CONTROL_ADDR and " turnpike." in line:
                    if AUTH_HEADER not in line:
                        print(f"line {n} calls the control plane without the admin token header "
                              f"-H \"{AUTH_HEADER}\":\n  {line}")
                        return 1
                    without = line.replace(f'-H "{AUTH_HEADER}" ', "")
                    _, bare = to_buf_curl(opts.buf, without, addresses, env)
                    r = run(bare)
                    if r.returncode == 0 or "unauthenticated" not in (r.stdout + r.stderr):
                        print(f"line {n} without its authorization header did not fail with "
                              f"UNAUTHENTICATED (exit {r.returncode}):\n  {without}\n"
                              f"{r.stdout}{r.stderr}")
                        return 1
                    refused += 1
                if address == GATEWAY_ADDR and not wait_until(gateway_current, 15, poll=0.05):
                    print(f"before line {n}: the gateway did not ACK the current config within "
                          f"15 s\n  {line}\n{stack.log('gateway')}")
                    return 1
                r = run(cmd)
                if r.returncode != 0:
                    print(f"line {n} failed (exit {r.returncode}):\n  {line}\n{r.stdout}{r.stderr}")
                    if address == GATEWAY_ADDR:
                        print(stack.log("gateway"))
                    return 1
                counts[address] += 1
            if counts[GATEWAY_ADDR] == 0:
                print(f"no line of {opts.doc} addresses the gateway ({GATEWAY_ADDR})")
                return 1
            print(f"ran all {len(lines)} lines of {opts.doc}: {counts[CONTROL_ADDR]} against the "
                  f"control plane, {counts[GATEWAY_ADDR]} against the gateway; {refused} refused "
                  f"with UNAUTHENTICATED without their authorization header")
        except RuntimeError as e:
            print(e)
            return 1
        finally:
            problems = stack.stop()
        if problems:
            print("\n".join(problems))
            return 1
        for name in ("control", "gateway"):
            text = stack.log(name)
            for secret in SECRETS + (token["admin"], token["node"]):
                if secret in text:
                    print(f"secret {secret[:8]}... leaked into the {name} log")
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
