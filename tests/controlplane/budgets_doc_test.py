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
import sys
import tempfile

from doc_lines import extract_lines
from doc_stack import ControlProcess, missing_tools, refused_without_header, run_line, shim_env


def check_line(line, r):
    """What the doc promises each line shows; an error message or None."""
    out = r.stdout
    if "WatchBudgets" in line:
        if r.returncode == 0:
            return "the bounded watch ended without reaching its deadline"
        # buf curl (standing in for grpcurl) reports its own timer as deadline_exceeded, or as
        # canceled when the timer's cancellation wins the race on a loaded machine: either way
        # the client's -max-time ended the watch.
        said = (r.stderr + out).lower()
        if "deadline" not in said and '"canceled"' not in said:
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
    code = missing_tools(opts.buf)
    if code is not None:
        return code
    lines = extract_lines(opts.doc)
    assert any("WatchBudgets" in line for line in lines), "no WatchBudgets line found"

    with tempfile.TemporaryDirectory(prefix="tp-budgets-doc-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        control = ControlProcess(opts.control, tmp, ["--lease_ttl=30s"])
        try:
            if not control.started():
                return 1
            # The doc's lines carry $TURNPIKE_ADMIN_TOKEN, and its lease lines the node token of
            # doc-gw ($TURNPIKE_NODE_TOKEN), as a reader's shell would.
            node_token = control.node_token(env, "doc-gw")
            if node_token is None:
                return 1
            env.update(TURNPIKE_ADMIN_TOKEN=control.admin_token, TURNPIKE_NODE_TOKEN=node_token)
            address = control.address
            for n, line in enumerate(lines, 1):
                problem = refused_without_header(n, line, address, tmp, env)
                if problem:
                    print(problem)
                    return 1
                problem = check_line(line, run_line(line, address, tmp, env))
                if problem:
                    print(f"line {n} failed:\n  {line}\n{problem}")
                    return 1
            for doc in opts.also:
                also = extract_lines(doc)
                assert also, f"no grpcurl lines in {doc}"
                for n, line in enumerate(also, 1):
                    problem = refused_without_header(n, line, address, tmp, env)
                    if problem:
                        print(f"{doc}: {problem}")
                        return 1
                    r = run_line(line, address, tmp, env)
                    if r.returncode != 0:
                        print(f"{doc} line {n} failed (exit {r.returncode}):\n  {line}\n"
                              f"{r.stdout}{r.stderr}")
                        return 1
                    if "GetRateLimit" in line and "RATE_LIMIT_KEY_PER_END_USER" not in r.stdout:
                        print(f"{doc} line {n} did not read the per-user key back:\n{r.stdout}")
                        return 1
                lines += also
            metrics = control.metrics()
            for want in ('turnpike_control_lease_grants_total{unit="usd_micros"} 1',
                         'turnpike_control_lease_grants_refused_total{unit="usd_micros"} 0',
                         'turnpike_control_leases_expired_total{unit="requests"} 0',
                         'turnpike_control_lease_overrun_total{unit="tokens"} 0'):
                if want not in metrics:
                    print(f"/metrics lacks '{want}':\n{metrics}")
                    return 1
            print(f"ran all {len(lines)} lines of {opts.doc} against the control plane")
        finally:
            stopped = control.stop()
        if not stopped:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
