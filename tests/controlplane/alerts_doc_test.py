#!/usr/bin/env python3
"""Replays docs/alerts.md against a live turnpike-control and its documented webhook receiver.

Starts tools/webhook-receiver (as the doc does, on a free port) and the control plane (with
--alert_eval_interval=1s) in a temp dir, then runs EVERY `grpcurl` line of the ```sh blocks in
order, exactly as written, through bash with tools/grpcurl-shim on PATH as `grpcurl`,
localhost:50052 pointed at the control plane and localhost:9099 at the receiver. Each line must
exit 0, and without its authorization header must fail with UNAUTHENTICATED. Before the
ListAlerts line it waits (with a deadline) for the receiver to get the notifications the doc
promises, then checks that the 50 % and 80 % alerts each arrived exactly once, that 100 % did
not, that ListAlerts shows both firing and delivered, that no response or log line carries the
channel's URL path, and that SIGTERM ends the process cleanly.

usage: alerts_doc_test.py --control=PATH --buf=PATH --shim=PATH --receiver=PATH --doc=docs/alerts.md
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

from doc_lines import extract_lines

CONTROL_ADDR = "localhost:50052"
RECEIVER_ADDR = "localhost:9099"


def wait_for_file(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read().strip())
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


def notifications(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def check_line(line, r):
    """What the doc promises each line shows; an error message or None."""
    if r.returncode != 0:
        return f"exit {r.returncode}:\n{r.stdout}{r.stderr}"
    if "ListAlertChannels" in line and ("/hook" in r.stdout or "urlRedacted" not in r.stdout):
        return f"ListAlertChannels shows more than the host:\n{r.stdout}"
    if "ListAlerts" in line and "ListAlertChannels" not in line:
        alerts = json.loads(r.stdout).get("alerts", [])
        got = sorted((a["subject"], a["state"],
                      [d["status"] for d in a.get("deliveries", [])]) for a in alerts)
        want = [("50%", "ALERT_STATE_FIRING", ["DELIVERY_STATUS_DELIVERED"]),
                ("80%", "ALERT_STATE_FIRING", ["DELIVERY_STATUS_DELIVERED"])]
        if got != want:
            return f"ListAlerts shows {got}, the doc promises {want}:\n{r.stdout}"
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    p.add_argument("--buf", required=True)
    p.add_argument("--shim", required=True)
    p.add_argument("--receiver", required=True)
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
    assert any("ListAlerts" in line for line in lines), "no ListAlerts line found"
    doc_text = open(opts.doc, encoding="utf-8").read()
    assert "tools/webhook-receiver --port 9099 --out alerts.jsonl" in doc_text

    with tempfile.TemporaryDirectory(prefix="tp-alerts-doc-") as tmp:
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        os.symlink(os.path.realpath(opts.shim), os.path.join(bindir, "grpcurl"))
        env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}",
                   TURNPIKE_BUF=os.path.realpath(opts.buf))
        out = os.path.join(tmp, "alerts.jsonl")
        receiver_log = open(os.path.join(tmp, "receiver.log"), "w+")
        receiver = subprocess.Popen([opts.receiver, "--port", "0", "--out", out,
                                     "--port_file", f"{tmp}/receiver.port"],
                                    stdout=receiver_log, stderr=subprocess.STDOUT)
        log = open(os.path.join(tmp, "control.log"), "w+")
        proc = subprocess.Popen([
            opts.control, "--listen=127.0.0.1:0", f"--db={tmp}/var/turnpike.db",
            f"--port_file={tmp}/control.port", "--metrics_listen=127.0.0.1:0",
            f"--metrics_port_file={tmp}/metrics.port", "--alert_eval_interval=1s",
            f"--bootstrap_admin_token_file={tmp}/admin.token", "--auth_failure_max_delay=0",
            "--dev_insecure_master_key"], stdout=log, stderr=subprocess.STDOUT)

        def control_log():
            log.flush()
            log.seek(0)
            return log.read()

        try:
            receiver_port = wait_for_file(f"{tmp}/receiver.port", receiver)
            port = wait_for_file(f"{tmp}/control.port", proc)
            if port is None or receiver_port is None:
                print(f"turnpike-control or the receiver did not start:\n{control_log()}")
                return 1
            address = f"127.0.0.1:{port}"
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

            def localize(line):
                return (line.replace(CONTROL_ADDR, address)
                        .replace(RECEIVER_ADDR, f"127.0.0.1:{receiver_port}"))

            outputs = []
            for n, line in enumerate(lines, 1):
                cmd = localize(line)
                header = re.search(r'-H "authorization: Bearer \$TURNPIKE_(ADMIN|NODE)_TOKEN" ', cmd)
                if header is None:
                    print(f"line {n} has no authorization header:\n  {line}")
                    return 1
                bare = cmd.replace(header.group(0), "")
                r = subprocess.run(["bash", "-o", "pipefail", "-c", bare], cwd=tmp, env=env,
                                   capture_output=True, text=True, timeout=60)
                if r.returncode == 0 or "unauthenticated" not in (r.stdout + r.stderr).lower():
                    print(f"line {n} without its header did not fail with UNAUTHENTICATED:\n"
                          f"  {bare}\n{r.stdout}{r.stderr}")
                    return 1
                if "ListAlerts" in line and "ListAlertChannels" not in line:
                    # The doc says: within one evaluation interval, two notifications.
                    deadline = time.monotonic() + 30
                    while len(notifications(out)) < 2 and time.monotonic() < deadline:
                        time.sleep(0.05)
                # ListAlerts is read-only: it is run again (for up to 10 s) until the deliveries'
                # outcomes are recorded (the receiver writes its file before it answers).
                deadline = time.monotonic() + (10 if "ListAlerts" in line else 0)
                while True:
                    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp, env=env,
                                       capture_output=True, text=True, timeout=60)
                    problem = check_line(line, r)
                    if problem is None or time.monotonic() >= deadline:
                        break
                    time.sleep(0.1)
                if problem:
                    print(f"line {n} failed:\n  {line}\n{problem}")
                    return 1
                outputs.append(r.stdout)
            # Three more evaluation intervals (1 s each) must add nothing: an absence, so this
            # one wait is by time.
            time.sleep(3)
            subjects = sorted(n["alert"]["subject"] for n in notifications(out))
            if subjects != ["50%", "80%"]:
                print(f"the receiver got {subjects}, the doc promises 50% and 80% once each")
                return 1
            for n in notifications(out):
                if n["status"] != "firing" or n["description"] != "tell finance":
                    print(f"unexpected notification: {n}")
                    return 1
            everything = "".join(outputs) + control_log()
            if "/hook" in everything:
                print("the channel's URL path appears in a response or the control plane's log")
                return 1
            print(f"ran all {len(lines)} lines of {opts.doc}; the receiver got {subjects}")
        finally:
            if receiver.poll() is None:
                receiver.terminate()
                receiver.wait(timeout=10)
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
