#!/usr/bin/env python3
"""Replays docs/routing.md against a live stack: fake provider, turnpike-control, turnpike-gateway.

Starts the three processes on free ports in a temp dir and seeds what `tools/dev up` seeds (the
credential fake-key and the provider fake), then runs EVERY `grpcurl` line of the ```sh blocks in
order, exactly as written (pipes, redirections, $(cat ...)), through bash with tools/grpcurl-shim
on PATH as `grpcurl`, localhost:50052 pointed at the control plane and localhost:50051 at the
gateway. Before each gateway line it waits (deadline-bounded) until the gateway has ACKed the
control plane's current config. Checks what the doc says each line shows: which tier chain,
variant and latency class served each completion (the start message), the variant and latency
class in the usage record in the ledger (polled with a deadline: records are shipped
asynchronously), the refusals (variants adding up to more than 100 %, a latency class's timeout
over its limit), and the routed-requests metric on the gateway's /metrics. SIGTERM must end every
process cleanly.

usage: routing_doc_test.py --control=PATH --gateway=PATH --fake=PATH --buf=PATH --shim=PATH
                           --doc=docs/routing.md
Without buf (or jq) it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

from doc_stack import ProcessStack, missing_tools, shim_env, wait_until
from doc_lines import extract_lines

CONTROL_ADDR = "localhost:50052"
GATEWAY_ADDR = "localhost:50051"
GATEWAY_NODE = "routing-doc-gateway"

# What each completion line's start message must say: request id -> (tier chain, variant, models).
EXPECTED = {
    "routing-gold-1": ("gold", "", {"gpt-4o"}),
    "routing-std-1": ("", "", {"gpt-4o-mini"}),
    "routing-std-34": ("", "candidate", {"gpt-4.1-mini"}),
    "routing-tester-1": ("", "candidate", {"gpt-4.1-mini"}),
    "routing-std-2": ("", "", {"gpt-4o-mini", "gpt-4.1-nano"}),
    "reports-interactive-1": ("", "", {"gpt-4o"}),
    "reports-batch-1": ("", "", {"gpt-4.1-nano"}),
}
# The latency class each completion line's start message names (the rest are interactive).
EXPECTED_CLASS = {"reports-batch-1": "LATENCY_CLASS_BATCH"}
# What each ListUsage line's one record must say: request id -> (variant, model, latency class).
EXPECTED_USAGE = {
    "routing-tester-1": ("candidate", "gpt-4.1-mini", "interactive"),
    "reports-batch-1": ("", "gpt-4.1-nano", "batch"),
}
# Lines the doc says are refused with INVALID_ARGUMENT: a marker in the line -> the field named.
REFUSED = {
    '"name":"second"': "route.spec.variants",
    '"totalMs":172800000': "route.spec.latency_classes.batch.timeouts.total_ms",
}


def check_line(line, r):
    """What the doc promises the line shows; an error message or None."""
    out = r.stdout
    for marker, field in REFUSED.items():
        if marker not in line:
            continue
        if r.returncode == 0:
            return f"accepted, but the doc says it is refused naming {field}"
        text = (out + r.stderr).lower()
        if "invalid_argument" not in text.replace(" ", "_") and "invalidargument" not in text:
            return f"not refused with INVALID_ARGUMENT:\n{out}{r.stderr}"
        if field not in out + r.stderr:
            return f"the refusal does not name {field}:\n{out}{r.stderr}"
        return None
    if r.returncode != 0:
        return f"exit {r.returncode}:\n{out}{r.stderr}"
    if "CompletionService/Complete" in line:
        reply = json.loads(out)
        start = reply.get("start", {})
        want_chain, want_variant, models = EXPECTED[start.get("requestId", "")]
        if (start.get("tierChain", ""), start.get("variant", "")) != (want_chain, want_variant):
            return f"served by the wrong chain (want {want_chain!r}/{want_variant!r}):\n{out}"
        if start.get("model") not in models:
            return f"served by model {start.get('model')}, not one of {sorted(models)}:\n{out}"
        want_class = EXPECTED_CLASS.get(start.get("requestId"), "LATENCY_CLASS_INTERACTIVE")
        if start.get("latencyClass") != want_class:
            return f"the start message does not say {want_class}:\n{out}"
    return None


def main():
    p = argparse.ArgumentParser()
    for flag in ("control", "gateway", "fake", "buf", "shim", "doc"):
        p.add_argument(f"--{flag}", required=True)
    opts = p.parse_args()
    code = missing_tools(opts.buf)
    if code is not None:
        return code
    lines = extract_lines(opts.doc)
    assert any("ListUsage" in line for line in lines), "no ListUsage line found"
    seen = {rid for line in lines for rid in EXPECTED if f'"requestId":"{rid}"' in line}
    assert seen == set(EXPECTED), f"the doc lacks the completions {set(EXPECTED) - seen}"
    usage_ids = {rid for line in lines if "ListUsage" in line for rid in EXPECTED_USAGE
                 if f'"requestId":"{rid}"' in line}
    assert usage_ids == set(EXPECTED_USAGE), f"the doc lacks ListUsage of {set(EXPECTED_USAGE) - usage_ids}"
    for marker in REFUSED:
        assert any(marker in line for line in lines), f"the doc lacks the refused line {marker}"

    with tempfile.TemporaryDirectory(prefix="tp-routing-doc-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        stack = ProcessStack(tmp)

        def sh(cmd, timeout=60):
            return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=timeout)

        try:
            fake = stack.address("fake", [opts.fake, "--listen=127.0.0.1:0", "--api_key=fake-key"])
            control = stack.address("control", [
                opts.control, "--listen=127.0.0.1:0", f"--db={tmp}/var/turnpike.db",
                "--metrics_listen=127.0.0.1:0", f"--bootstrap_admin_token_file={tmp}/admin.token",
                "--dev_insecure_master_key"])
            env["TURNPIKE_ADMIN_TOKEN"] = open(f"{tmp}/admin.token").read().strip()
            auth = '-H "authorization: Bearer $TURNPIKE_ADMIN_TOKEN"'
            admin = f"{control} turnpike.admin.v1.AdminService"
            seed = [
                ("CreateCredential", {"credential": {"name": "fake-key"}, "secret": "fake-key"}),
                ("CreateProvider", {"provider": {"spec": {
                    "name": "fake", "kind": "PROVIDER_KIND_OPENAI",
                    "baseUrl": f"http://{fake}/v1", "credential": "fake-key"}}}),
                ("CreateNodeToken", {"name": "doc-gateway", "nodeId": GATEWAY_NODE}),
            ]
            for method, body in seed:
                r = sh(f"grpcurl -plaintext {auth} -d '{json.dumps(body)}' {admin}/{method}")
                if r.returncode != 0:
                    print(f"seed {method} failed:\n{r.stdout}{r.stderr}")
                    return 1
            with open(f"{tmp}/node.token", "w") as f:
                f.write(json.loads(r.stdout)["token"] + "\n")
            gateway = stack.address("gateway", [
                opts.gateway, f"--control_plane={control}", f"--node_id={GATEWAY_NODE}",
                f"--node_token_file={tmp}/node.token",
                f"--snapshot_cache={tmp}/gateway-snapshot.pb",
                f"--usage_spool_dir={tmp}/usage-spool", "--listen=127.0.0.1:0",
                "--metrics_listen=127.0.0.1:0", f"--metrics_port_file={tmp}/metrics.port"])

            def admin_json(method, body="{}"):
                r = sh(f"grpcurl -plaintext {auth} -d '{body}' {admin}/{method}")
                return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}

            def gateway_current():
                version = admin_json("GetConfigStatus").get("version")
                return bool(version) and any(
                    d.get("nodeId") == GATEWAY_NODE and d.get("ackedVersion") == version
                    for d in admin_json("ListDataPlanes").get("dataPlanes", []))

            for n, line in enumerate(lines, 1):
                if GATEWAY_ADDR in line and not wait_until(gateway_current, 15, poll=0.05):
                    print(f"before line {n}: the gateway did not ACK the current config within "
                          f"15 s\n{stack.log('gateway')}")
                    return 1
                cmd = line.replace(CONTROL_ADDR, control).replace(GATEWAY_ADDR, gateway)
                r = sh(cmd)
                if "ListUsage" in line:
                    # Shipped asynchronously: the line is re-run until the record is there.
                    deadline = time.monotonic() + 20
                    while r.returncode == 0 and not json.loads(r.stdout).get("records") \
                            and time.monotonic() < deadline:
                        time.sleep(0.1)
                        r = sh(cmd)
                    records = json.loads(r.stdout).get("records", []) if r.returncode == 0 else []
                    rid = next(i for i in EXPECTED_USAGE if f'"requestId":"{i}"' in line)
                    want = EXPECTED_USAGE[rid]
                    got = [(rec.get("variant", ""), rec.get("model"), rec.get("latencyClass"))
                           for rec in records]
                    if got != [want]:
                        print(f"line {n}: the usage record of {rid} is not {want}:\n"
                              f"{r.stdout}{r.stderr}")
                        return 1
                problem = check_line(line, r)
                if problem:
                    print(f"line {n} failed:\n  {line}\n{problem}")
                    return 1
            metrics_port = open(f"{tmp}/metrics.port").read().strip()
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                             timeout=10).read().decode()
            for want in ('turnpike_routed_requests_total{capability="summaries",tier_chain="",'
                         'variant="candidate",provider="fake",model="gpt-4.1-mini",code="OK"} 2',
                         'turnpike_routed_requests_total{capability="summaries",tier_chain="gold",'
                         'variant="",provider="fake",model="gpt-4o",code="OK"} 1'):
                if want not in metrics:
                    print(f"/metrics lacks '{want}':\n" +
                          "\n".join(m for m in metrics.splitlines() if "routed" in m))
                    return 1
            print(f"ran all {len(lines)} lines of {opts.doc} against the stack")
        except RuntimeError as e:
            print(e)
            return 1
        finally:
            problems = stack.stop()
        if problems:
            print("\n".join(problems))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
