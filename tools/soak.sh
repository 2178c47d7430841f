#!/usr/bin/env bash
# tools/soak.sh BUILD_DIR [DURATION]: the gateway's memory over a long steady load (issue 6:
# "no growth over a 10-minute soak"). Called by `tools/dev bench --soak`.
#
# Starts the fake provider and the gateway on ephemeral ports, then runs turnpike-bench in open
# loop at SOAK_RATE streams/s (default 200; 20 chunks 5 ms apart, so ~20 streams in flight) for
# DURATION (default 10m), sampling the gateway's RSS every 10 s. The first minute is warm-up
# (allocator arenas, connection pools and caches fill); growth is measured from the end of it.
# BUILD_DIR may be the clang sanitized build (tools/dev check): then the soak is a leak hunt under
# load, failing if LeakSanitizer (or ASan/UBSan) reports anything when the processes exit; its RSS
# figures are ASan's, not the gateway's (docs/performance.md).
# Prints the samples, then one line:
#   soak: duration_s=N requests_ok=N errors=N rss_start_mib=X rss_end_mib=X rss_max_mib=X growth_pct=X
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 BUILD_DIR [DURATION]" >&2; exit 2; }
BUILD_DIR="$(cd "$1" && pwd)"
DURATION="${2:-10m}"
RATE="${SOAK_RATE:-200}"
BENCH="$BUILD_DIR/tools/bench/turnpike-bench"
FAKE="$BUILD_DIR/tools/fake_provider/turnpike-fake-provider"
GATEWAY="$BUILD_DIR/server/turnpike-gateway"
for bin in "$BENCH" "$FAKE" "$GATEWAY"; do
  [[ -x "$bin" ]] || { echo "soak: missing $bin (build it first)" >&2; exit 1; }
done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/turnpike-soak.XXXXXX")"
pids=()
# Whether pid $1 is a child of this shell that is still running. Only such a pid may be signalled
# or waited on as alive: bash reaps a child as soon as it exits, and from then on its pid may name
# another process (pid_max is 32768 on the CI machines, and tests run in parallel as the same
# user). Signalling stale pids from `pids` used to kill other tests' fake providers at start-up.
running_child() {
  local p
  for p in $(jobs -pr); do [[ "$p" == "$1" ]] && return 0; done
  return 1
}
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    if running_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # A sanitized build (docs/sanitizers.md) reports leaks when the processes exit: a report from
  # the gateway or the fake provider fails the soak and is printed.
  for log in "$WORK/gateway.log" "$WORK/fake.log"; do
    if [[ -f "$log" ]] && grep -qE 'SUMMARY: [A-Za-z]+Sanitizer' "$log"; then
      echo "soak: sanitizer report in $(basename "$log"):" >&2
      sed -n '/ERROR: [A-Za-z]*Sanitizer\|runtime error/,$p' "$log" >&2
      status=1
    fi
  done
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
wait_for_port() {
  for _ in $(seq 1 300); do
    [[ -s "$1" ]] && { cat "$1"; return 0; }
    sleep 0.05
  done
  echo "soak: $2 did not start" >&2
  exit 1
}
"$FAKE" --listen=127.0.0.1:0 --port_file="$WORK/fake.port" --api_key=fake-key \
  --max_recorded_requests=0 >"$WORK/fake.log" 2>&1 &
pids+=($!)
FAKE_PORT="$(wait_for_port "$WORK/fake.port" fake)"
cat >"$WORK/gateway.json" <<JSON
{"version":"soak-1","providers":[{"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":"http://127.0.0.1:$FAKE_PORT/v1","apiKeyEnv":"SOAK_KEY","headers":{"x-fake-chunks":"20","x-fake-chunk-delay-ms":"5"}}],
 "routes":[{"capability":"soak","targets":[{"provider":"fake","model":"gpt-4o-mini"}],"allowUnauthenticated":true}]}
JSON
SOAK_KEY=fake-key "$GATEWAY" --config="$WORK/gateway.json" --listen=127.0.0.1:0 \
  --port_file="$WORK/gateway.port" --access_log=false --metrics_listen= >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
pids+=("$GW_PID")
GW_PORT="$(wait_for_port "$WORK/gateway.port" gateway)"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$GW_PID/status"; }

"$BENCH" --target="127.0.0.1:$GW_PORT" --capability=soak --rate="$RATE" --warmup=0s \
  --duration="$DURATION" --name=soak >"$WORK/bench.out" 2>&1 &
BENCH_PID=$!
pids+=("$BENCH_PID")
echo "soak: $RATE streams/s for $DURATION; RSS every 10 s (KiB)"
start=$SECONDS
samples=()
while running_child "$BENCH_PID"; do
  rss="$(rss_kib)"
  samples+=("$((SECONDS - start)):$rss")
  echo "  t=$((SECONDS - start))s rss=${rss}"
  for _ in $(seq 1 100); do running_child "$BENCH_PID" || break; sleep 0.1; done
done
wait "$BENCH_PID" || { cat "$WORK/bench.out" >&2; echo "soak: load generator failed" >&2; exit 1; }
sleep 2
final="$(rss_kib)"
line="$(grep '^bench-run:' "$WORK/bench.out" | tail -1)"
ok="$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$line")"
errors="$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")"
# Baseline: the first sample at or after 60 s (or the first, for short runs).
base=""
max=0
for s in "${samples[@]}"; do
  t="${s%%:*}"; v="${s##*:}"
  ((v > max)) && max=$v
  [[ -z "$base" && $t -ge 60 ]] && base=$v
done
[[ -n "$base" ]] || base="${samples[0]##*:}"
last="${samples[-1]##*:}"
growth="$(awk -v a="$base" -v b="$last" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "soak: duration_s=$((SECONDS - start)) requests_ok=${ok:-0} errors=${errors:--1}" \
  "rss_start_mib=$(mib "$base") rss_end_mib=$(mib "$last") rss_max_mib=$(mib "$max")" \
  "rss_after_load_mib=$(mib "$final") growth_pct=$growth"
