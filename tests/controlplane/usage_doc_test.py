#!/usr/bin/env python3
"""Replays docs/usage.md against a live turnpike-control.

Starts the control plane on free ports in a temp dir (retention long enough that the doc's fixed
December 2026 dates stay within it), seeds usage records through ReportUsage, then runs EVERY
`grpcurl` line of the ```sh blocks in order, exactly as written (pipes and redirections too),
through bash with tools/grpcurl-shim on PATH as `grpcurl` and localhost:50052 pointed at the
control plane; each must exit 0. Then checks the CSV files the export lines wrote, that the
usage metrics are on /metrics, and that SIGTERM ends the process cleanly.

usage: usage_doc_test.py --control=PATH --buf=PATH --shim=PATH --doc=docs/usage.md
Without buf (or jq) it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from doc_lines import extract_lines

CONTROL_ADDR = "localhost:50052"


def wait_for_file(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read().strip())
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


def seed_records():
    """Records over December 2026 that every cookbook line finds something in."""
    records = []
    caps = ["claims-summary", "ticket-triage"]
    models = [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku")]
    for i in range(60):
        provider, model = models[i % 2]
        day, hour = 1 + i % 7, (i * 5) % 24
        known = i % 13 != 0
        records.append({
            "requestId": f"doc-req-{i}", "nodeId": "gw-1",
            "caller": "billing" if i % 3 else "crm", "capability": caps[i % 2 if i % 4 else 0],
            "provider": provider, "model": model, "user": f"user-{i % 5}",
            "tags": {"team": "risk" if i % 2 else "ops"},
            "inputTokens": str(500 + i), "outputTokens": str(80 + i),
            "costUsdMicros": str(700 + 11 * i) if known else "0", "costKnown": known,
            "status": "OK", "method": "METHOD_STREAM_COMPLETION", "attempts": 1,
            "startTime": f"2026-12-{day:02d}T{hour:02d}:{i % 60:02d}:00Z",
            "latencyUs": str(400000 + i)})
    return records


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    p.add_argument("--buf", required=True)
    p.add_argument("--shim", required=True)
    p.add_argument("--doc", required=True)
    opts = p.parse_args()
    missing = [what for what, ok in (("buf", os.access(opts.buf, os.X_OK)),
                                     ("jq", shutil.which("jq") is not None)) if not ok]
    if missing:
        msg = f"{' and '.join(missing)} not found (tools/dev installs them)"
        if os.environ.get("CI") == "true":
            print(msg)
            return 1
        print(f"SKIP: {msg}")
        return 0
    lines = extract_lines(opts.doc)
    assert lines, "no grpcurl lines found"

    with tempfile.TemporaryDirectory(prefix="tp-usage-doc-") as tmp:
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        os.symlink(os.path.realpath(opts.shim), os.path.join(bindir, "grpcurl"))
        env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}",
                   TURNPIKE_BUF=os.path.realpath(opts.buf))
        log = open(os.path.join(tmp, "control.log"), "w+")
        proc = subprocess.Popen([
            opts.control, "--listen=127.0.0.1:0", f"--db={tmp}/var/turnpike.db",
            f"--port_file={tmp}/control.port", "--metrics_listen=127.0.0.1:0",
            f"--metrics_port_file={tmp}/metrics.port", "--usage_retention=87600h",
            f"--bootstrap_admin_token_file={tmp}/admin.token", "--auth_failure_max_delay=0",
            "--dev_insecure_master_key"], stdout=log, stderr=subprocess.STDOUT)

        def control_log():
            log.flush()
            log.seek(0)
            return log.read()

        try:
            port = wait_for_file(f"{tmp}/control.port", proc)
            metrics_port = wait_for_file(f"{tmp}/metrics.port", proc)
            if port is None or metrics_port is None:
                print(f"turnpike-control did not start:\n{control_log()}")
                return 1
            address = f"127.0.0.1:{port}"
            # The doc's lines carry $TURNPIKE_ADMIN_TOKEN, and its ReportUsage line the node
            # token of gw-1 ($TURNPIKE_NODE_TOKEN), as a reader's shell would.
            admin_token = open(f"{tmp}/admin.token").read().strip()
            r = subprocess.run(["grpcurl", "-plaintext", "-H", f"authorization: Bearer {admin_token}",
                                "-d", json.dumps({"name": "gw-1", "nodeId": "gw-1"}), address,
                                "turnpike.admin.v1.AdminService/CreateNodeToken"],
                               env=env, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                print(f"CreateNodeToken failed:\n{r.stdout}{r.stderr}")
                return 1
            env.update(TURNPIKE_ADMIN_TOKEN=admin_token,
                       TURNPIKE_NODE_TOKEN=json.loads(r.stdout)["token"])
            seed = json.dumps({"records": seed_records()})
            r = subprocess.run(["grpcurl", "-plaintext", "-H",
                                f"authorization: Bearer {env['TURNPIKE_NODE_TOKEN']}", "-d", seed,
                                address, "turnpike.usage.v1.UsageService/ReportUsage"],
                               env=env, capture_output=True, text=True, timeout=30)
            if r.returncode != 0 or json.loads(r.stdout).get("accepted") != 60:
                print(f"seeding failed:\n{r.stdout}{r.stderr}")
                return 1
            for n, line in enumerate(lines, 1):
                cmd = line.replace(CONTROL_ADDR, address)
                header = re.search(r'-H "authorization: Bearer \$TURNPIKE_(ADMIN|NODE)_TOKEN" ', cmd)
                if header is None:
                    print(f"line {n} has no authorization header:\n  {line}")
                    return 1
                # The same line without its header is refused before it does anything.
                bare = cmd.replace(header.group(0), "")
                r = subprocess.run(["bash", "-o", "pipefail", "-c", bare], cwd=tmp, env=env,
                                   capture_output=True, text=True, timeout=60)
                if r.returncode == 0 or "unauthenticated" not in (r.stdout + r.stderr):
                    print(f"line {n} without its header did not fail with UNAUTHENTICATED:\n"
                          f"  {bare}\n{r.stdout}{r.stderr}")
                    return 1
                r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp, env=env,
                                   capture_output=True, text=True, timeout=60)
                if r.returncode != 0:
                    print(f"line {n} failed (exit {r.returncode}):\n  {line}\n{r.stdout}{r.stderr}")
                    return 1
                if "QuerySpend" in line and '"rows"' not in r.stdout:
                    print(f"line {n} found no spend:\n  {line}\n{r.stdout}")
                    return 1
            # The export lines wrote spreadsheets: header first, rows that add up.
            with open(os.path.join(tmp, "spend-2026-12.csv"), newline="") as f:
                rows = list(csv.DictReader(f))
            total = sum(int(row["requests"]) for row in rows)
            if not rows or total != 60:  # the seeded records; the doc's ReportUsage line runs later
                print(f"spend-2026-12.csv has {len(rows)} rows, {total} requests (want 60)")
                return 1
            with open(os.path.join(tmp, "usage-2026-12.csv"), newline="") as f:
                records = list(csv.DictReader(f))
            if len(records) != 60 or json.loads(records[0]["tags"]).get("team") is None:
                print(f"usage-2026-12.csv has {len(records)} records (want 60, tagged)")
                return 1
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                             timeout=10).read().decode()
            for want in ("turnpike_usage_records_ingested_total 61",
                         "turnpike_usage_records_duplicate_total 0",
                         "turnpike_usage_ledger_lag_seconds "):
                if want not in metrics:
                    print(f"/metrics lacks '{want}':\n{metrics}")
                    return 1
            print(f"ran all {len(lines)} lines of {opts.doc} against the control plane")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = "timeout"
        if code != 0:
            print(f"turnpike-control exited with {code} after SIGTERM:\n{control_log()}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
