#!/usr/bin/env python3
"""Checks that every metric the deploy files name is one the services export.

Reads the PromQL expressions of Prometheus rule files (`expr:` of each rule, inline or a folded
or literal block) and of Grafana dashboards (every target's `expr`, and the metric of each
`label_values(metric, label)` variable query), takes the metric names out of them, and looks
each up among the sample names of /metrics pages scraped from live services (a histogram's
`_bucket`, `_sum` and `_count` are sample names of their own). Prints the names checked; exits 1
naming each expression whose metric no page has a sample of, or if the files name no metric at
all. Used by tests/integration/deploy_metrics_test.cc with pages of a live gateway and control
plane.

usage: metric_names.py --page=FILE [--page=FILE ...] DEPLOY_FILE ...
"""
import argparse
import json
import re
import sys

# PromQL words that are not metric names when they stand alone.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2"}
# Modifiers followed by a parenthesised list of label names.
LABEL_LISTS = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"


def metric_names(expr):
    """The metric names an expression selects."""
    expr = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|`[^`]*`', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)     # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)    # ranges and subqueries
    expr = re.sub(LABEL_LISTS, " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def rule_exprs(path):
    """The expr of every rule in a Prometheus rule file (no YAML library needed)."""
    lines = open(path).read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2).strip()
        if value and value[0] not in "|>":
            out.append(value.strip("'\""))
            continue
        block = []
        while i < len(lines) and (not lines[i].strip() or
                                  len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i].strip())
            i += 1
        out.append(" ".join(block))
    return out


def dashboard_exprs(path):
    out = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                out.append(node["expr"])
            for key in ("query", "definition"):
                q = node.get(key)
                if isinstance(q, str):
                    for m in re.finditer(r"label_values\(\s*([^,)]+)", q):
                        out.append(m.group(1))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(json.load(open(path)))
    return out


def exported(page):
    names = set()
    for line in page.split("\n"):
        if line and not line.startswith("#"):
            names.add(re.match(r"[^{\s]+", line).group(0))
    return names


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--page", action="append", required=True)
    p.add_argument("files", nargs="+")
    opts = p.parse_args()
    have = set()
    for page in opts.page:
        have |= exported(open(page).read())
    checked, missing = set(), []
    for path in opts.files:
        exprs = dashboard_exprs(path) if path.endswith(".json") else rule_exprs(path)
        if not exprs:
            print(f"{path}: no expression found")
            return 1
        for expr in exprs:
            for name in sorted(metric_names(expr)):
                checked.add(name)
                if name not in have:
                    missing.append(f"{path}: {name} is not exported, in: {expr}")
    if not checked:
        print("the files name no metric")
        return 1
    print(f"checked {len(checked)} metric names: {' '.join(sorted(checked))}")
    if missing:
        print("\n".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
