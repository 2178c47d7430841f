#!/usr/bin/env python3
"""Quantiles of a Prometheus histogram over an interval, from two scrapes of /metrics.

usage: histogram_quantiles.py BEFORE AFTER SERIES [Q ...]
  BEFORE, AFTER  files holding the /metrics page before and after the interval
  SERIES         the histogram and its labels, e.g.
                 'turnpike_internal_overhead_seconds{method="StreamCompletion"}'
  Q              quantiles to print (default 0.5 0.99)

Prints "count=N q0.5_us=X q0.99_us=Y": the observations made between the scrapes, and each
quantile in whole microseconds, interpolated within its bucket as Prometheus'
histogram_quantile() does. Prints -1 for a quantile when nothing was observed.
"""
import math
import re
import sys


def buckets(path, name, labels):
    out = {}
    pattern = re.compile(r'^' + re.escape(name) + r'_bucket\{(.*)\} (\S+)$')
    for line in open(path, encoding="utf-8"):
        m = pattern.match(line.strip())
        if not m:
            continue
        pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        le = pairs.pop("le")
        if pairs == labels:
            out[math.inf if le == "+Inf" else float(le)] = float(m.group(2))
    return out


def quantile(q, bounds, cumulative):
    total = cumulative[-1]
    if total <= 0:
        return -1
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, cumulative):
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    before_path, after_path, series = sys.argv[1:4]
    qs = [float(q) for q in sys.argv[4:]] or [0.5, 0.99]
    m = re.match(r'^(\w+)(?:\{(.*)\})?$', series)
    if not m:
        print(f"bad series {series!r}", file=sys.stderr)
        return 2
    name = m.group(1)
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
    before = buckets(before_path, name, labels)
    after = buckets(after_path, name, labels)
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    count = int(cumulative[-1]) if cumulative else 0
    fields = [f"count={count}"]
    for q in qs:
        v = quantile(q, bounds, cumulative) if cumulative else -1
        fields.append(f"q{q:g}_us={-1 if v < 0 else round(v * 1e6)}")
    print(" ".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
