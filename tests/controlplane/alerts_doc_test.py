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
import subprocess
import sys
import tempfile
import time

from doc_lines import extract_lines
from doc_stack import (ControlProcess, missing_tools, refused_without_header, run_line, shim_env,
                       wait_for_file)

RECEIVER_ADDR = "localhost:9099"


def notifications(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def evaluations(control):
    """The control plane's turnpike_alert_evaluations_total, or None if it has none."""
    for line in control.metrics().splitlines():
        if line.startswith("turnpike_alert_evaluations_total "):
            return float(line.split()[1])
    return None


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
    code = missing_tools(opts.buf)
    if code is not None:
        return code
    lines = extract_lines(opts.doc)
    assert any("ListAlerts" in line for line in lines), "no ListAlerts line found"
    doc_text = open(opts.doc, encoding="utf-8").read()
    assert "tools/webhook-receiver --port 9099 --out alerts.jsonl" in doc_text

    with tempfile.TemporaryDirectory(prefix="tp-alerts-doc-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        out = os.path.join(tmp, "alerts.jsonl")
        receiver_log = open(os.path.join(tmp, "receiver.log"), "w+")
        receiver = subprocess.Popen([opts.receiver, "--port", "0", "--out", out,
                                     "--port_file", f"{tmp}/receiver.port"],
                                    stdout=receiver_log, stderr=subprocess.STDOUT)
        control = ControlProcess(opts.control, tmp, ["--alert_eval_interval=1s"])
        try:
            receiver_port = wait_for_file(f"{tmp}/receiver.port", receiver)
            if receiver_port is None:
                print("the webhook receiver did not start")
                return 1
            if not control.started():
                return 1
            address = control.address
            node_token = control.node_token(env, "doc-gw")
            if node_token is None:
                return 1
            env.update(TURNPIKE_ADMIN_TOKEN=control.admin_token, TURNPIKE_NODE_TOKEN=node_token)

            outputs = []
            for n, line in enumerate(lines, 1):
                cmd = line.replace(RECEIVER_ADDR, f"127.0.0.1:{receiver_port}")
                problem = refused_without_header(n, cmd, address, tmp, env)
                if problem:
                    print(problem)
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
                    r = run_line(cmd, address, tmp, env)
                    problem = check_line(line, r)
                    if problem is None or time.monotonic() >= deadline:
                        break
                    time.sleep(0.1)
                if problem:
                    print(f"line {n} failed:\n  {line}\n{problem}")
                    return 1
                outputs.append(r.stdout)
            # Three more evaluations must add nothing. Counted on the control plane's
            # turnpike_alert_evaluations_total, not by the clock, so a slow machine waits longer
            # instead of checking early.
            base = evaluations(control)
            if base is None:
                print("the control plane's /metrics has no turnpike_alert_evaluations_total")
                return 1
            deadline = time.monotonic() + 60
            while (evaluations(control) or 0) < base + 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            if (evaluations(control) or 0) < base + 3:
                print(f"the alert engine did not evaluate three more times within 60 s (from {base})")
                return 1
            subjects = sorted(n["alert"]["subject"] for n in notifications(out))
            if subjects != ["50%", "80%"]:
                print(f"the receiver got {subjects}, the doc promises 50% and 80% once each")
                return 1
            for n in notifications(out):
                if n["status"] != "firing" or n["description"] != "tell finance":
                    print(f"unexpected notification: {n}")
                    return 1
            everything = "".join(outputs) + control.log()
            if "/hook" in everything:
                print("the channel's URL path appears in a response or the control plane's log")
                return 1
            print(f"ran all {len(lines)} lines of {opts.doc}; the receiver got {subjects}")
        finally:
            if receiver.poll() is None:
                receiver.terminate()
                receiver.wait(timeout=10)
            receiver_log.close()
            stopped = control.stop()
        if not stopped:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
