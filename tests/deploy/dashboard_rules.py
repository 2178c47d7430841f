#!/usr/bin/env python3
"""Writes every PromQL expression of a Grafana dashboard as a Prometheus recording rule, so that
`promtool check rules` parses them as Prometheus will (tests/deploy/promtool_test.sh).

Grafana's variables are replaced by values of the right kind first: $__rate_interval and
$__range by durations, $__interval too, and every other $variable (used in label matchers) by
".*". Prints the rule file on stdout; exits 1 if the dashboard has no expression.

usage: dashboard_rules.py DASHBOARD.json > rules.yml
"""
import json
import re
import sys


def expressions(node):
    """Every target's expr and every query variable's query, depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for value in node.values():
            yield from expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value)


def promql(expr):
    expr = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
    expr = expr.replace("$__interval", "1m")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def main():
    dashboard = json.load(open(sys.argv[1]))
    exprs = list(expressions(dashboard))
    if not exprs:
        print(f"no expression in {sys.argv[1]}", file=sys.stderr)
        return 1
    print("groups:\n  - name: dashboard\n    rules:")
    for i, expr in enumerate(exprs):
        print(f"      - record: dashboard:expr{i}\n        expr: {json.dumps(promql(expr))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
