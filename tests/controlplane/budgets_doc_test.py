#!/usr/bin/env python3
"""Replays docs/budgets.md against a live turnpike-control.

Starts the control plane on free ports in a temp dir, then runs EVERY `grpcurl` line of the
```sh blocks in order, exactly as written (pipes, redirections and command substitutions too),
through bash with tools/grpcurl-shim on PATH as `grpcurl` and localhost:50052 pointed at the
control plane; each must exit 0, except the bounded WatchBudgets line, which must end with
DeadlineExceeded after printing the watched budget. Checks what the doc says the lines show
(the lease, the state after the release), that the lease metrics are on /metrics, and that
SIGTERM ends the process cleanly.

Then the same for each --also doc (docs/limits.md: its limits created and read back).

usage: budgets_doc_test.py --control=PATH --buf=PATH --shim=PATH --doc=docs/budgets.md
                           [--also=docs/limits.md ...]
Without buf (or jq) it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
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


def check_line(line, r):
    """What the doc promises each line shows; an error message or None."""
    out = r.stdout
    if "WatchBudgets" in line:
        if r.returncode == 0:
            return "the bounded watch ended without reaching its deadline"
        if "deadline" not in (r.stderr + out).lower():
            return f"the watch failed for another reason than its deadline:\n{r.stderr}"
        first = json.loads(out[:out.index("\n}") + 2])
        if [b["name"] for b in first.get("budgets", [])] != ["summaries-monthly"]:
            return f"the first watch message is not the watched budget:\n{out}"
        return None
    if r.returncode != 0:
        return f"exit {r.returncode}:\n{out}{r.stderr}"
    if "AcquireLease" in line:
        lease = json.loads(out)
        if lease.get("grantedUsdMicros") != "5000000" or not lease.get("leaseId"):
            return f"the lease was not granted in full:\n{out}"
    if "ReleaseLease" in line:
        budget = json.loads(out).get("budget", {})
        if budget.get("spentUsdMicros") != "1200000" or budget.get("leases"):
            return f"the release did not settle 1200000:\n{out}"
        if budget.get("remainingUsdMicros") != "48800000":
            return f"the release did not return the rest:\n{out}"
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    p.add_argument("--buf", required=True)
    p.add_argument("--shim", required=True)
    p.add_argument("--doc", required=True)
    p.add_argument("--also", action="append", default=[])
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
    assert any("WatchBudgets" in line for line in lines), "no WatchBudgets line found"

    with tempfile.TemporaryDirectory(prefix="tp-budgets-doc-") as tmp:
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        os.symlink(os.path.realpath(opts.shim), os.path.join(bindir, "grpcurl"))
        env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}",
                   TURNPIKE_BUF=os.path.realpath(opts.buf))
        log = open(os.path.join(tmp, "control.log"), "w+")
        proc = subprocess.Popen([
            opts.control, "--listen=127.0.0.1:0", f"--db={tmp}/var/turnpike.db",
            f"--port_file={tmp}/control.port", "--metrics_listen=127.0.0.1:0",
            f"--metrics_port_file={tmp}/metrics.port", "--lease_ttl=30s",
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
            # The doc's lines carry $TURNPIKE_ADMIN_TOKEN, and its lease lines the node token of
            # doc-gw ($TURNPIKE_NODE_TOKEN), as a reader's shell would.
            admin_token = open(f"{tmp}/admin.token").read().strip()
            r = subprocess.run(["grpcurl", "-plaintext", "-H", f"authorization: Bearer {admin_token}",
                                "-d", json.dumps({"name": "doc-gw", "nodeId": "doc-gw"}), address,
                                "turnpike.admin.v1.AdminService/CreateNodeToken"],
                               env=env, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                print(f"CreateNodeToken failed:\n{r.stdout}{r.stderr}")
                return 1
            env.update(TURNPIKE_ADMIN_TOKEN=admin_token,
                       TURNPIKE_NODE_TOKEN=json.loads(r.stdout)["token"])

            def refused_without_header(n, line):
                """None when the line has its header and, without it, is refused; else why not."""
                cmd = line.replace(CONTROL_ADDR, address)
                header = re.search(r'-H "authorization: Bearer \$TURNPIKE_(ADMIN|NODE)_TOKEN" ', cmd)
                if header is None:
                    return f"line {n} has no authorization header:\n  {line}"
                bare = cmd.replace(header.group(0), "")
                r = subprocess.run(["bash", "-o", "pipefail", "-c", bare], cwd=tmp, env=env,
                                   capture_output=True, text=True, timeout=60)
                if r.returncode == 0 or "unauthenticated" not in (r.stdout + r.stderr).lower():
                    return (f"line {n} without its header did not fail with UNAUTHENTICATED:\n"
                            f"  {bare}\n{r.stdout}{r.stderr}")
                return None

            for n, line in enumerate(lines, 1):
                problem = refused_without_header(n, line)
                if problem:
                    print(problem)
                    return 1
                cmd = line.replace(CONTROL_ADDR, address)
                r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp, env=env,
                                   capture_output=True, text=True, timeout=60)
                problem = check_line(line, r)
                if problem:
                    print(f"line {n} failed:\n  {line}\n{problem}")
                    return 1
            for doc in opts.also:
                also = extract_lines(doc)
                assert also, f"no grpcurl lines in {doc}"
                for n, line in enumerate(also, 1):
                    problem = refused_without_header(n, line)
                    if problem:
                        print(f"{doc}: {problem}")
                        return 1
                    cmd = line.replace(CONTROL_ADDR, address)
                    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp, env=env,
                                       capture_output=True, text=True, timeout=60)
                    if r.returncode != 0:
                        print(f"{doc} line {n} failed (exit {r.returncode}):\n  {line}\n"
                              f"{r.stdout}{r.stderr}")
                        return 1
                    if "GetRateLimit" in line and "RATE_LIMIT_KEY_PER_END_USER" not in r.stdout:
                        print(f"{doc} line {n} did not read the per-user key back:\n{r.stdout}")
                        return 1
                lines += also
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                             timeout=10).read().decode()
            for want in ('turnpike_control_lease_grants_total{unit="usd_micros"} 1',
                         'turnpike_control_lease_grants_refused_total{unit="usd_micros"} 0',
                         'turnpike_control_leases_expired_total{unit="requests"} 0',
                         'turnpike_control_lease_overrun_total{unit="tokens"} 0'):
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
