#!/usr/bin/env python3
"""The budget and spend dashboard as a person sees it (docs/dashboard.md): a live stack (fake
provider, turnpike-control, turnpike-gateway watching it), requests through the gateway, then
/dashboard opened in headless Chromium, and the numbers the page RENDERED (the DOM after its
JavaScript ran) checked against the ledger read through the gRPC API (grpcurl):

  * each budget's limit, spent, reserved and remaining equal ListBudgets';
  * spend by capability and by model (cost and requests per row, and the totals) equal QuerySpend's
    over the range the page shows, and the requests made are all there;
  * the alert the test made fire is listed, and the gateway with its upstream's breaker state;
    /metrics shows that alert's state (turnpike_alert_state).

The budget numbers move while the gateway renews its lease, so the truth is read before and after
the page renders and a render is only judged between two equal reads (retried a few times).
It also writes a screenshot (--screenshot; docs/dashboard.png is one).

Chromium (Debian's `chromium`; tools/dev installs it) is required: without it the test FAILS.

usage: dashboard_chromium_test.py --control=PATH --gateway=PATH --fake=PATH --buf=PATH --shim=PATH
                                  [--chromium=PATH] [--screenshot=FILE]
"""
import argparse
import html.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from doc_stack import ProcessStack, missing_tools, shim_env, wait_until

NODE = "dashboard-gateway"
REQUESTS = {"summaries": 3, "triage": 2}  # capability -> completions sent through the gateway
CHROMIUM_TIMEOUT = 120  # seconds; a loaded CI machine starts Chromium slowly


class Dom(html.parser.HTMLParser):
    """The cells the page marks with data-* attributes: rows[(row attribute, key)][field] = text,
    plus the attributes of <body> and of #spend-range, and each upstream's breaker state."""

    def __init__(self):
        super().__init__()
        self.rows, self.body, self.range, self.upstreams = {}, {}, {}, {}
        self._row = self._field = self._upstream = None
        self._text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if a.get("id") == "spend-range":
            self.range = a
        if tag == "tr":
            for key in ("data-budget", "data-capability", "data-model", "data-total",
                        "data-rule", "data-node"):
                if key in a:
                    self._row = (key, a[key])
                    # The two spend tables both have a total row: told apart by the table.
                    if key == "data-total":
                        self._row = (key, self._table)
                    self.rows.setdefault(self._row, {})
        if tag == "table":
            self._table = a.get("id")
        if tag == "td" and self._row and "data-field" in a:
            self._field, self._text = a["data-field"], []
        if tag == "span" and "data-upstream" in a:
            self.upstreams[a["data-upstream"]] = a.get("data-state")

    def handle_endtag(self, tag):
        if tag == "td" and self._field:
            self.rows[self._row][self._field] = "".join(self._text).strip()
            self._field = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._field:
            self._text.append(data)


def micros(text):
    """'$1,234.5678' -> 1234567800, exactly (the page prints micro-dollars exactly)."""
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").lstrip("$").replace(",", "").partition(".")
    value = int(whole) * 1000000 + int((frac + "000000")[:6])
    return -value if negative else value


def chromium(binary, tmp, args):
    """Runs headless Chromium with `args`; (exit code, stdout, stderr). Killed (its whole process
    group, which this test started) after CHROMIUM_TIMEOUT seconds."""
    profile = tempfile.mkdtemp(prefix="chrome-", dir=tmp)
    argv = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--mute-audio",
            f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return "timeout", out, err
    return proc.returncode, out, err


def main():
    p = argparse.ArgumentParser()
    for flag in ("control", "gateway", "fake", "buf", "shim"):
        p.add_argument(f"--{flag}", required=True)
    p.add_argument("--chromium", default=shutil.which("chromium") or "")
    p.add_argument("--screenshot", default="")
    opts = p.parse_args()
    if not opts.chromium or not os.access(opts.chromium, os.X_OK):
        print("chromium not found: install Debian's chromium package (tools/dev installs it); "
              "this test does not skip without it")
        return 1
    code = missing_tools(opts.buf)
    if code is not None:
        return code

    with tempfile.TemporaryDirectory(prefix="tp-dashboard-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        stack = ProcessStack(tmp)

        def grpcurl(address, method, body, token=None):
            auth = ["-H", f"authorization: Bearer {token}"] if token else []
            r = subprocess.run(["grpcurl", "-plaintext", *auth, "-d", json.dumps(body), address,
                                method], cwd=tmp, env=env, capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"{method} failed:\n{r.stdout}{r.stderr}")
            return json.loads(r.stdout) if r.stdout.strip() else {}

        try:
            fake = stack.address("fake", [opts.fake, "--listen=127.0.0.1:0", "--api_key=fake-key"])
            control, http_port = (f"127.0.0.1:{port}" if i == 0 else port for i, port in
                                  enumerate(stack.start("control", [
                                      opts.control, "--listen=127.0.0.1:0",
                                      f"--db={tmp}/var/turnpike.db",
                                      "--metrics_listen=127.0.0.1:0",
                                      f"--bootstrap_admin_token_file={tmp}/admin.token",
                                      "--dev_insecure_master_key", "--alert_eval_interval=1s"],
                                      port_flags=("port", "metrics_port"))))
            token = open(f"{tmp}/admin.token").read().strip()

            def admin(method, body):
                return grpcurl(control, f"turnpike.admin.v1.AdminService/{method}", body, token)

            admin("CreateCredential", {"credential": {"name": "fake-key"}, "secret": "fake-key"})
            admin("CreateProvider", {"provider": {"spec": {
                "name": "fake", "kind": "PROVIDER_KIND_OPENAI", "baseUrl": f"http://{fake}/v1",
                "credential": "fake-key"}}})
            for capability, model in (("summaries", "gpt-4o-mini"), ("triage", "gpt-4o")):
                admin("CreateRoute", {"route": {"spec": {
                    "capability": capability, "targets": [{"provider": "fake", "model": model}],
                    "allowUnauthenticated": True}}})
            admin("CreatePrice", {"price": {"spec": {
                "provider": "fake", "model": "gpt-4o-mini", "inputUsdMicrosPerMtok": 150000,
                "outputUsdMicrosPerMtok": 600000}}})
            admin("CreatePrice", {"price": {"spec": {
                "provider": "fake", "model": "gpt-4o", "inputUsdMicrosPerMtok": 2500000,
                "outputUsdMicrosPerMtok": 10000000}}})
            admin("CreateBudget", {"budget": {"spec": {
                "name": "summaries-daily", "capability": "summaries", "limitUsdMicros": 5000000,
                "window": "BUDGET_WINDOW_DAILY"}}})
            admin("CreateBudget", {"budget": {"spec": {
                "name": "triage-monthly", "capability": "triage", "limitUsdMicros": 20000000,
                "window": "BUDGET_WINDOW_MONTHLY"}}})
            # Fires at the first settled micro-dollar of triage spend (evaluated every second).
            grpcurl(control, "turnpike.alert.v1.AlertService/CreateAlertRule", {"rule": {
                "name": "triage-spend", "kind": "ALERT_KIND_BUDGET_THRESHOLD",
                "budget": "triage-monthly", "budgetPercents": [0.000001]}}, token)
            node_token = admin("CreateNodeToken", {"name": "dash", "nodeId": NODE})["token"]
            with open(f"{tmp}/node.token", "w") as f:
                f.write(node_token + "\n")
            gateway = stack.address("gateway", [
                opts.gateway, f"--control_plane={control}", f"--node_id={NODE}",
                f"--node_token_file={tmp}/node.token",
                f"--snapshot_cache={tmp}/gateway-snapshot.pb",
                f"--usage_spool_dir={tmp}/usage-spool", "--listen=127.0.0.1:0",
                "--metrics_listen=127.0.0.1:0"])

            def gateway_current():
                version = admin("GetConfigStatus", {}).get("version")
                return bool(version) and any(
                    d.get("nodeId") == NODE and d.get("ackedVersion") == version
                    for d in admin("ListDataPlanes", {}).get("dataPlanes", []))

            if not wait_until(gateway_current, 30, poll=0.1):
                print(f"the gateway did not ACK the config within 30 s\n{stack.log('gateway')}")
                return 1
            for capability, n in REQUESTS.items():
                for i in range(n):
                    grpcurl(gateway, "turnpike.v1.CompletionService/Complete", {
                        "capability": capability, "requestId": f"dash-{capability}-{i}",
                        "messages": [{"role": "ROLE_USER",
                                      "content": f"Summarise item {i}: the quick brown fox."}]})

            def spend(start, end, group_by):
                return grpcurl(control, "turnpike.usage.v1.UsageService/QuerySpend", {
                    "startTime": start, "endTime": end, "granularity": "GRANULARITY_HOUR",
                    "groupBy": [group_by]}, token).get("rows", [])

            now = time.time()
            day_start = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(now - 86400))
            day_end = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(now + 7200))

            def recorded():  # every request in the ledger, and each capability's spend settled
                rows = spend(day_start, day_end, "GROUP_BY_CAPABILITY")
                got = {}
                for r in rows:
                    got[r["capability"]] = got.get(r["capability"], 0) + int(r["requests"])
                budgets = {b["name"]: b for b in grpcurl(
                    control, "turnpike.budget.v1.BudgetService/ListBudgets", {}, token)
                    .get("budgets", [])}
                return got == REQUESTS and all(
                    int(budgets[b].get("spentUsdMicros", 0)) > 0
                    for b in ("summaries-daily", "triage-monthly"))

            if not wait_until(recorded, 60, poll=0.2):
                print("the requests did not all reach the ledger and the budgets within 60 s")
                return 1

            def alert_firing():
                alerts = grpcurl(control, "turnpike.alert.v1.AlertService/ListAlerts",
                                 {"states": ["ALERT_STATE_FIRING"]}, token).get("alerts", [])
                return any(a["rule"] == "triage-spend" for a in alerts)

            if not wait_until(alert_firing, 30, poll=0.2):
                print(f"the triage-spend alert did not fire within 30 s\n{stack.log('control')}")
                return 1

            def budgets_truth():
                return {b["name"]: {"limit": int(b.get("limitUsdMicros", 0)),
                                    "spent": int(b.get("spentUsdMicros", 0)),
                                    "reserved": int(b.get("leasedUsdMicros", 0)),
                                    "remaining": int(b.get("remainingUsdMicros", 0))}
                        for b in grpcurl(control, "turnpike.budget.v1.BudgetService/ListBudgets",
                                         {}, token).get("budgets", [])}

            url = f"http://127.0.0.1:{http_port}/dashboard#token={token}"
            dom = None
            for attempt in range(5):
                before = budgets_truth()
                code, out, err = chromium(opts.chromium, tmp, ["--dump-dom", url])
                after = budgets_truth()
                if code != 0:
                    print(f"chromium --dump-dom exited with {code}:\n{err[-4000:]}")
                    return 1
                dom = Dom()
                dom.feed(out)
                if before == after:
                    break
                print(f"attempt {attempt + 1}: the budgets moved while the page rendered; again")
            else:
                print("the budgets never held still for a render")
                return 1
            if dom.body.get("data-ready") != "true" or "data-error" in dom.body:
                print(f"the page did not finish (body {dom.body}):\n{out[:6000]}")
                return 1

            problems = []
            for name, want in before.items():
                row = dom.rows.get(("data-budget", name))
                if row is None:
                    problems.append(f"budget {name} is not on the page")
                    continue
                for field, value in want.items():
                    if micros(row.get(field, "$-1")) != value:
                        problems.append(f"budget {name} {field}: page {row.get(field)!r}, "
                                        f"ledger {value}")
                for field in ("burn_rate", "projected_exhaustion"):
                    if not row.get(field):
                        problems.append(f"budget {name} shows no {field}")
            start, end = dom.range.get("data-start"), dom.range.get("data-end")
            if not start or not end:
                problems.append(f"the page does not say its spend range: {dom.range}")
            else:
                start, end = start.replace(".000Z", "Z"), end.replace(".000Z", "Z")
                for key, group in (("capability", "GROUP_BY_CAPABILITY"),
                                   ("model", "GROUP_BY_MODEL")):
                    truth, total = {}, [0, 0]
                    for r in spend(start, end, group):
                        t = truth.setdefault(r.get(key) or "(none)", [0, 0])
                        t[0] += int(r.get("costUsdMicros", 0))
                        t[1] += int(r.get("requests", 0))
                        total[0] += int(r.get("costUsdMicros", 0))
                        total[1] += int(r.get("requests", 0))
                    if total[1] != sum(REQUESTS.values()) or total[0] <= 0:
                        problems.append(f"the ledger by {key} has {total}, not the requests made")
                    for k, (cost, requests) in truth.items():
                        row = dom.rows.get((f"data-{key}", k), {})
                        if micros(row.get("cost", "$-1")) != cost or \
                                int(row.get("requests", "-1").replace(",", "")) != requests:
                            problems.append(f"spend by {key} {k}: page {row}, ledger cost {cost} "
                                            f"requests {requests}")
                    shown = {k for (kind, k) in dom.rows if kind == f"data-{key}"}
                    if shown != set(truth):
                        problems.append(f"spend by {key}: page rows {shown}, ledger {set(truth)}")
                    foot = dom.rows.get(("data-total", f"spend-{key}"), {})
                    if micros(foot.get("cost", "$-1")) != total[0]:
                        problems.append(f"spend by {key} total: page {foot}, ledger {total}")
            if ("data-rule", "triage-spend") not in dom.rows:
                problems.append("the firing alert triage-spend is not on the page")
            gw = dom.rows.get(("data-node", NODE), {})
            if gw.get("connected") != "connected":
                problems.append(f"gateway {NODE} is not shown connected: {gw}")
            if "fake/gpt-4o-mini" not in dom.upstreams:
                problems.append(f"the gateway's upstreams are not shown: {dom.upstreams}")
            # The same alert's state on the control plane's /metrics (docs/metrics.md).
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics",
                                             timeout=30).read().decode()
            want = ('turnpike_alert_state{rule="triage-spend",kind="budget_threshold",'
                    'subject="1e-06%",state="firing"} 1')
            if want not in metrics:
                problems.append("/metrics lacks " + want + ":\n" + "\n".join(
                    m for m in metrics.splitlines() if "turnpike_alert" in m))
            if problems:
                print("the page disagrees with the ledger:\n  " + "\n  ".join(problems))
                print(out[:8000])
                return 1

            if opts.screenshot:
                shot = os.path.join(tmp, "dashboard.png")
                code, _, err = chromium(opts.chromium, tmp, [
                    f"--screenshot={shot}", "--window-size=1280,1600",
                    "--hide-scrollbars", url])
                if code != 0 or not os.path.exists(shot) or os.path.getsize(shot) < 10000:
                    print(f"chromium --screenshot failed ({code}):\n{err[-4000:]}")
                    return 1
                shutil.copyfile(shot, opts.screenshot)
                print(f"screenshot: {opts.screenshot}")
            print(f"the page shows the ledger: {len(before)} budgets, "
                  f"{sum(REQUESTS.values())} requests by capability and by model")
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
