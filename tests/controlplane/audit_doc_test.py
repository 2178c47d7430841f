#!/usr/bin/env python3
"""Replays docs/audit.md against a live turnpike-control.

Starts the control plane on free ports in a temp dir with an Ed25519 signing key (made with the
openssl CLI) and a 1 s checkpoint interval, makes one admin change, seeds ten usage records with
audit evidence through ReportUsage, waits for a checkpoint, then runs EVERY line of the doc's
```sh blocks in order, exactly as written (pipes and redirections too), through bash with
tools/grpcurl-shim on PATH as `grpcurl` and turnpike-audit-verify as itself; localhost:50052
points at the control plane and var/dev/turnpike.db at its database. Each must exit 0, each
grpcurl line must be refused without its authorization header, and each must show what the doc
says (the caller's five entries, one request, the admin change, an intact chain, the offline
verdict).

usage: audit_doc_test.py --control=PATH --verify=PATH --buf=PATH --shim=PATH --doc=docs/audit.md
Without buf, jq or openssl it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from doc_lines import extract_sh_lines
from doc_stack import (ControlProcess, missing_tools, refused_without_header, run_line,
                       shim_env)

DEV_DB = "var/dev/turnpike.db"


def seed_records():
    out = []
    for i in range(10):
        billing = i % 2 == 0
        out.append({
            "requestId": f"doc-req-{i}", "nodeId": "gw-1",
            "caller": "billing" if billing else "search", "capability": "summaries",
            "provider": "openai" if billing else "anthropic", "model": "m", "status": "OK",
            "startTime": f"2026-12-01T10:0{i}:00Z", "inputTokens": "100", "outputTokens": "20",
            "audit": {"providerHost": "api.openai.com" if billing else "api.anthropic.com",
                      "contentPolicy": "HASH", "requestSha256": "a" * 64,
                      "replySha256": "b" * 64}})
    return out


def check_line(line, r):
    """What the doc promises each line shows; an error message or None."""
    out = r.stdout
    if r.returncode != 0:
        return f"exit {r.returncode}:\n{out}{r.stderr}"
    if line.startswith("turnpike-audit-verify"):
        if not json.loads(out).get("intact"):
            return f"the offline verifier did not find the trail intact:\n{out}"
        return None
    if "QueryAudit" in line and '"caller": "billing"' in line:
        entries = json.loads(out).get("entries", [])
        ids = [e["entry"]["request"]["requestId"] for e in entries]
        if ids != [f"doc-req-{i}" for i in (0, 2, 4, 6, 8)]:
            return f"not billing's five requests to openai:\n{out}"
        if entries[0]["entry"]["request"]["audit"]["providerHost"] != "api.openai.com":
            return f"no provider host:\n{out}"
    if "QueryAudit" in line and "doc-req-3" in line:
        if len(json.loads(out).get("entries", [])) != 1:
            return f"not exactly one entry:\n{out}"
    if "ListAdminChanges" in line:
        changes = json.loads(out).get("changes", [])
        actions = [c.get("action") for c in changes]
        if actions != ["CreateNodeToken", "CreateProvider"]:
            return f"not the node token and the provider, newest first:\n{out}"
    if "VerifyAudit" in line:
        v = json.loads(out)
        if not v.get("intact") or int(v.get("size", 0)) != 12:
            return f"the chain (2 admin changes, 10 requests) is not intact:\n{out}"
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    p.add_argument("--verify", required=True)
    p.add_argument("--buf", required=True)
    p.add_argument("--shim", required=True)
    p.add_argument("--doc", required=True)
    opts = p.parse_args()
    code = missing_tools(opts.buf, also=("jq", "openssl"))
    if code is not None:
        return code
    lines = extract_sh_lines(opts.doc)
    assert any("VerifyAudit" in line for line in lines), "no VerifyAudit line found"
    assert any(line.startswith("turnpike-audit-verify --db") for line in lines)

    with tempfile.TemporaryDirectory(prefix="tp-audit-doc-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        os.symlink(os.path.realpath(opts.verify), os.path.join(tmp, "bin", "turnpike-audit-verify"))
        key = os.path.join(tmp, "audit-signing.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True,
                       capture_output=True)
        control = ControlProcess(opts.control, tmp, [f"--audit_signing_key_file={key}",
                                                     "--audit_checkpoint_interval=1s"])

        def call(token, method, body):
            return subprocess.run(["grpcurl", "-plaintext", "-H", f"authorization: Bearer {token}",
                                   "-d", json.dumps(body), address, method],
                                  env=env, capture_output=True, text=True, timeout=30)

        try:
            if not control.started():
                return 1
            address = control.address
            admin_token = control.admin_token
            env.update(TURNPIKE_ADMIN_TOKEN=admin_token)
            r = call(admin_token, "turnpike.admin.v1.AdminService/CreateProvider",
                     {"provider": {"spec": {"name": "local-vllm",
                                            "kind": "PROVIDER_KIND_OPENAI_COMPATIBLE",
                                            "baseUrl": "http://127.0.0.1:8000/v1"}}})
            if r.returncode != 0:
                print(f"CreateProvider failed:\n{r.stdout}{r.stderr}")
                return 1
            r = call(admin_token, "turnpike.admin.v1.AdminService/CreateNodeToken",
                     {"name": "gw-1", "nodeId": "gw-1"})
            if r.returncode != 0:
                print(f"CreateNodeToken failed:\n{r.stdout}{r.stderr}")
                return 1
            r = call(json.loads(r.stdout)["token"], "turnpike.usage.v1.UsageService/ReportUsage",
                     {"records": seed_records()})
            if r.returncode != 0 or json.loads(r.stdout).get("accepted") != 10:
                print(f"seeding failed:\n{r.stdout}{r.stderr}")
                return 1
            deadline = time.monotonic() + 20
            while True:
                r = call(admin_token, "turnpike.audit.v1.AuditService/GetCheckpoint", {})
                if r.returncode == 0 and json.loads(r.stdout).get("checkpoint", {}).get("size") == "12":
                    break
                if time.monotonic() > deadline:
                    print(f"no checkpoint of the 12 entries:\n{r.stdout}{r.stderr}")
                    return 1
                time.sleep(0.1)

            for n, line in enumerate(lines, 1):
                cmd = line.replace(DEV_DB, f"{tmp}/var/turnpike.db")
                if line.startswith("grpcurl"):
                    problem = refused_without_header(n, cmd, address, tmp, env)
                    if problem:
                        print(problem)
                        return 1
                elif not line.startswith("turnpike-audit-verify"):
                    print(f"line {n} is neither grpcurl nor turnpike-audit-verify:\n  {line}")
                    return 1
                problem = check_line(line, run_line(cmd, address, tmp, env))
                if problem:
                    print(f"line {n} failed:\n  {line}\n{problem}")
                    return 1
            print(f"ran all {len(lines)} lines of {opts.doc} against the control plane")
        finally:
            stopped = control.stop()
        if not stopped:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
