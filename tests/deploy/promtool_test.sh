#!/usr/bin/env bash
# The files under deploy/ as Prometheus itself reads them: `promtool check rules` on
# prometheus/alerts.yml (syntax, PromQL, templates), `promtool test rules` on
# prometheus/alerts_test.yml (the rules' unit tests on synthetic series), and `promtool check
# rules` on every PromQL expression of grafana/turnpike.json (written as recording rules by
# dashboard_rules.py).
# promtool is in Debian's `prometheus` package, which tools/dev installs. Without it this prints
# SKIP (exit 0), except under CI=true, where a missing promtool is a failure.
# usage: promtool_test.sh SOURCE_DIR PYTHON3
set -euo pipefail
root="${1:?usage: $0 SOURCE_DIR PYTHON3}"
python="${2:?usage: $0 SOURCE_DIR PYTHON3}"
if ! command -v promtool >/dev/null 2>&1; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: promtool not found; CI must install Debian's prometheus package (tools/dev does)" >&2
    exit 1
  fi
  echo "SKIP: promtool not found (apt-get install prometheus, or run tools/dev test)"
  exit 0
fi
promtool check rules "$root/deploy/prometheus/alerts.yml"
(cd "$root/deploy/prometheus" && promtool test rules alerts_test.yml)
work="$(mktemp -d "${TMPDIR:-/tmp}/turnpike-promtool.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$python" "$(dirname "$0")/dashboard_rules.py" "$root/deploy/grafana/turnpike.json" \
  >"$work/dashboard_rules.yml"
promtool check rules "$work/dashboard_rules.yml"
