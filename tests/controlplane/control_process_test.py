#!/usr/bin/env python3
"""turnpike-control as a process: start-up refusals with clear messages, the port file, the
parent directory of --db created, the first admin token printed once on the first start of an
empty database (and never again), and a clean exit on SIGTERM and SIGINT.

usage: control_process_test.py --control=PATH/turnpike-control
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print(f"FAIL: {what}")


# Every ASan/LSan/UBSan report ends with this line; in a sanitized build (docs/sanitizers.md) a
# report from the process under test fails the check even when its exit code looks right.
SANITIZER_REPORT = re.compile(r"SUMMARY: \w+Sanitizer")


def refuses(control, args, env_extra, expect, tmp):
    env = {k: v for k, v in os.environ.items() if k != "TURNPIKE_MASTER_KEY"}
    env.update(env_extra)
    r = subprocess.run([control, "--listen=127.0.0.1:0", f"--db={tmp}/var/t.db",
                        "--metrics_listen=127.0.0.1:0"] + args,
                       capture_output=True, text=True, timeout=30, env=env)
    out = r.stdout + r.stderr
    check(r.returncode == 1, f"{args} exits 1 (got {r.returncode}): {out}")
    check(expect in out, f"{args}: message mentions {expect!r}: {out}")
    check(not SANITIZER_REPORT.search(out), f"{args}: no sanitizer report: {out}")


def serves_and_stops(control, tmp, sig, env_extra):
    port_file = os.path.join(tmp, f"port-{sig}")
    env = dict(os.environ)
    env.update(env_extra)
    metrics_port_file = os.path.join(tmp, f"metrics-port-{sig}")
    proc = subprocess.Popen([control, "--listen=127.0.0.1:0", f"--port_file={port_file}",
                             f"--db={tmp}/nested/dir/t.db", "--metrics_listen=127.0.0.1:0",
                             f"--metrics_port_file={metrics_port_file}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 20
    while not os.path.exists(port_file) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    check(os.path.exists(port_file), "port file written")
    if os.path.exists(port_file):
        check(int(open(port_file).read().strip()) > 0, "port file holds a port")
    # Prometheus /metrics on its own port (written before the gRPC port file).
    check(os.path.exists(metrics_port_file), "metrics port file written")
    if os.path.exists(metrics_port_file):
        url = f"http://127.0.0.1:{open(metrics_port_file).read().strip()}/metrics"
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        check("turnpike_control_config_version 1\n" in page, f"config version on /metrics: {page}")
        check('turnpike_control_data_planes{state="connected"} 0\n' in page,
              f"data planes on /metrics: {page}")
    check(os.path.exists(f"{tmp}/nested/dir/t.db"), "parent directory of --db created")
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    check(proc.returncode == 0, f"exit 0 after signal {sig} (got {proc.returncode}): {out}")
    check("stopped" in out, f"logs its shutdown: {out}")
    check(not SANITIZER_REPORT.search(out), f"no sanitizer report: {out}")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--control", required=True)
    opts = p.parse_args()
    key = "00" * 32
    with tempfile.TemporaryDirectory(prefix="tp-control-proc-") as tmp:
        refuses(opts.control, [], {}, "no master key", tmp)
        refuses(opts.control, [], {"TURNPIKE_MASTER_KEY": "short"}, "TURNPIKE_MASTER_KEY", tmp)
        refuses(opts.control, ["--listen=0.0.0.0:0", "--dev_insecure_master_key"], {},
                "without TLS", tmp)
        refuses(opts.control, ["--allow_insecure_non_loopback", "--dev_insecure_master_key"], {},
                "no longer supported", tmp)
        bad_token = os.path.join(tmp, "bad.token")
        with open(bad_token, "w") as f:
            f.write("tpa_not-a-real-token\n")
        refuses(opts.control, [f"--bootstrap_admin_token_file={bad_token}",
                               "--dev_insecure_master_key"], {},
                "not a well-formed tpa_ token", tmp)
        refuses(opts.control, ["--tls_cert=/nonexistent"], {"TURNPIKE_MASTER_KEY": key},
                "--tls_cert and --tls_key go together", tmp)
        refuses(opts.control, ["--lease_ttl=0s", "--dev_insecure_master_key"], {},
                "--lease_ttl: lease TTL must be between 1s and 1h", tmp)
        refuses(opts.control, ["--lease_ttl=2h", "--dev_insecure_master_key"], {},
                "--lease_ttl", tmp)
        bad_db = os.path.join(tmp, "bad.db")
        with open(bad_db, "wb") as f:
            f.write(b"this is not a database" * 512)
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            refuses(opts.control, ["--dev_insecure_master_key",
                                   f"--metrics_listen=127.0.0.1:{busy.getsockname()[1]}"], {},
                    "metrics: cannot listen", tmp)
        refuses(opts.control, [f"--db={bad_db}", "--dev_insecure_master_key"], {},
                "not a SQLite database", tmp)
        out = serves_and_stops(opts.control, tmp, signal.SIGTERM, {"TURNPIKE_MASTER_KEY": key})
        check(key not in out, "master key never logged")
        printed = re.findall(r"\btpa_[0-9A-Za-z]{49}\b", out)
        check(len(printed) == 1 and "shown this once" in out,
              f"an empty database's first start prints one admin token: {out}")
        again = serves_and_stops(opts.control, tmp, signal.SIGINT, {"TURNPIKE_MASTER_KEY": key})
        check("tpa_" not in again, f"the second start prints no token: {again}")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
