#!/usr/bin/env bash
# The Prometheus rules in deploy/prometheus/ as Prometheus itself reads them:
# `promtool check rules` on alerts.yml (syntax, PromQL, templates) and `promtool test rules` on
# alerts_test.yml (the rules' unit tests on synthetic series).
# promtool is in Debian's `prometheus` package, which tools/dev installs. Without it this prints
# SKIP (exit 0), except under CI=true, where a missing promtool is a failure.
# usage: promtool_test.sh SOURCE_DIR
set -euo pipefail
root="${1:?usage: $0 SOURCE_DIR}"
if ! command -v promtool >/dev/null 2>&1; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: promtool not found; CI must install Debian's prometheus package (tools/dev does)" >&2
    exit 1
  fi
  echo "SKIP: promtool not found (apt-get install prometheus, or run tools/dev test)"
  exit 0
fi
promtool check rules "$root/deploy/prometheus/alerts.yml"
cd "$root/deploy/prometheus"
promtool test rules alerts_test.yml
