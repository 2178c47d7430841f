#!/usr/bin/env bash
# Runs `tools/bench.sh BUILD_DIR --smoke` and checks that it succeeds and that its last line is
# the summary line of issue 6 §3, field by field, in order.
set -euo pipefail
bench_sh="$1"
build_dir="$2"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! "$bench_sh" "$build_dir" --smoke >"$out" 2>&1; then
  cat "$out"
  echo "FAIL: tools/bench.sh --smoke exited non-zero" >&2
  exit 1
fi
cat "$out"
n='-?[0-9]+'
re="^bench: grpc_floor_p50_us=$n grpc_floor_p99_us=$n grpc_floor_stream_rps=$n"
re+=" grpc_floor_unary_rps=$n added_p50_us=$n added_p99_us=$n internal_p50_us=$n"
re+=" internal_p99_us=$n admission_internal_p50_us=$n admission_added_p50_us=$n"
re+=" ttft_overhead_p50_us=$n chunk_gap_p99_us=$n stream_rps=$n"
re+=" unary_rps=$n paced_streams_ok=$n rss_idle_mib=$n rss_1k_streams_mib=$n"
re+=" tls_added_p50_us=$n tls_added_p99_us=$n http_added_p50_us=$n http_over_grpc_p50_us=$n"
re+=" http_over_grpc_p99_us=$n http_stream_rps=$n http_unary_rps=$n"
tenths='([0-9]+\.[0-9]|-1)'
re+=" floor_switches_per_call=$tenths gateway_switches_per_call=$tenths\$"
last="$(tail -n 1 "$out")"
if ! grep -Eq "$re" <<<"$last"; then
  echo "FAIL: last line is not the summary line: $last" >&2
  exit 1
fi
echo "PASS"
