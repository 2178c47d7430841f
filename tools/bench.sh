#!/usr/bin/env bash
# tools/bench.sh BUILD_DIR [--smoke]: the standard benchmark scenarios of issue 6 (see
# docs/performance.md). Called by `tools/dev bench` after a Release build.
#
# Starts, on 127.0.0.1 and ephemeral ports, the fake provider, the gRPC floor server
# (turnpike-bench-floor) and the gateway (config pointing at the fake provider, access log off),
# then measures with turnpike-bench:
#   0. the fake provider's own ceiling (direct: streaming and unary at concurrency 64, and the
#      paced streams of scenario 5);
#   1. latency at concurrency 1, 5 chunks: floor / direct / gateway; 1b. the same through a route
#      with one rate limit and one budget (admission on), for what admission adds;
#   2. chunk gaps at concurrency 1, 20 chunks 2 ms apart: direct / gateway;
#   3. streaming throughput at concurrency 64, 20 chunks: floor / gateway;
#   4. unary throughput at concurrency 64: floor / gateway;
#   5. 1,000 concurrent paced streams of 64 chunks 20 ms apart: floor / gateway. A stream is
#      stalled when any wait between its messages (or for its first) exceeds 500 ms.
#   6. TLS latency at concurrency 1, 5 chunks: the gateway in plaintext, then a second gateway
#      (same config) serving TLS with a P-256 certificate from a throw-away CA (docs/tls.md);
#      connections are made before measuring, so the figure is TLS's cost per call, not the
#      handshake's.
#   7. the OpenAI-compatible HTTP front door (docs/openai-compatible.md): the same streams as 1, 3
#      and 4 sent to the same gateway's --http_listen as OpenAI chat completions (SSE), beside
#      the gRPC path's figures: what HTTP adds over gRPC and over direct at p50, and its
#      streaming and unary throughput.
# It samples the server's CPU time per completion (/proc/PID/stat) and the gateway's RSS (idle,
# under the 1k-stream load, after), prints a table and the targets, and ends with one line:
#   bench: grpc_floor_p50_us=N ... rss_1k_streams_mib=N
# --smoke runs every scenario for about a second with small counts (CI; no timing assertions).
# Environment: BENCH_DURATION (default 5s), BENCH_WARMUP (1s), BENCH_KEEP=1 keeps the work dir,
# TURNPIKE_GATEWAY_BIN / TURNPIKE_FAKE_PROVIDER_BIN use other binaries (e.g. a build being compared).
set -euo pipefail

usage() { echo "usage: $0 BUILD_DIR [--smoke]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
BUILD_DIR="$(cd "$1" && pwd)"
SMOKE=0
case "${2:-}" in
  "") ;;
  --smoke) SMOKE=1 ;;
  *) usage ;;
esac

BENCH="$BUILD_DIR/tools/bench/turnpike-bench"
FLOOR="$BUILD_DIR/tools/bench/turnpike-bench-floor"
FAKE="${TURNPIKE_FAKE_PROVIDER_BIN:-$BUILD_DIR/tools/fake_provider/turnpike-fake-provider}"
GATEWAY="${TURNPIKE_GATEWAY_BIN:-$BUILD_DIR/server/turnpike-gateway}"
for bin in "$BENCH" "$FLOOR" "$FAKE" "$GATEWAY"; do
  [[ -x "$bin" ]] || { echo "bench: missing $bin (build it first)" >&2; exit 1; }
done

if ((SMOKE)); then
  DUR=1s WARM=200ms TP_CONC=4 PACED_N=50 PACED_CHUNKS=10 GAP_CHUNKS=5 SETTLE=0.5
else
  DUR="${BENCH_DURATION:-5s}" WARM="${BENCH_WARMUP:-1s}" TP_CONC=64 PACED_N=1000 PACED_CHUNKS=64
  GAP_CHUNKS=20 SETTLE=3
fi
LAT_CHUNKS=5 STREAM_CHUNKS=20 GAP_DELAY_MS=2 PACED_DELAY_MS=20 PACED_STALL=500ms
API_KEY=fake-key

WORK="$(mktemp -d "${TMPDIR:-/tmp}/turnpike-bench.XXXXXX")"
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
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    if running_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do running_child "$pid" || break; sleep 0.1; done
    if running_child "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${BENCH_KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    echo "bench: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }

wait_for_port() {  # port_file, pid, what
  for _ in $(seq 1 300); do
    [[ -s "$1" ]] && { cat "$1"; return 0; }
    # kill -0 only probes (it sends nothing). running_child would not do here: this runs in a
    # $(...) subshell, whose copy of the job table never sees the child exit.
    kill -0 "$2" 2>/dev/null || die "$3 exited during start-up; log: $WORK/$3.log"
    sleep 0.05
  done
  die "$3 did not start within 15 s; log: $WORK/$3.log"
}

cpu_ticks() {  # utime + stime of a process, in clock ticks
  local stat
  stat="$(cat "/proc/$1/stat")"
  stat="${stat##*) }"  # fields after "pid (comm) "
  awk '{print $12 + $13}' <<<"$stat"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Voluntary context switches of all of a process's threads: each time a thread blocks to wait.
# Per call at concurrency 1 it counts the hand-offs between threads, which cost tens of
# microseconds each on this VM; unlike latency (or preemptions) it hardly depends on the load.
ctx_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches:/ {s += $2} END {print s + 0}'
}
CLK_TCK="$(getconf CLK_TCK)"
# The same per thread name ("tp-grpc-cq 1234" lines, sorted), to see which threads hand off.
ctx_switches_by_thread() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(tr ' ' _ <"$t/comm" 2>/dev/null)" \
      "$(awk '/^voluntary_ctxt_switches:/ {print $2}' "$t/status" 2>/dev/null)"
  done | awk 'NF == 2 {s[$1] += $2} END {for (k in s) print k, s[k]}' | sort
}

# --- processes --------------------------------------------------------------------------------
"$FAKE" --listen=127.0.0.1:0 --port_file="$WORK/fake.port" --api_key="$API_KEY" \
  --chunks="$LAT_CHUNKS" --chunk_delay_ms=0 --max_recorded_requests=0 >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
pids+=("$FAKE_PID")
"$FLOOR" --listen=127.0.0.1:0 --port_file="$WORK/floor.port" --chunks="$LAT_CHUNKS" \
  >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
pids+=("$FLOOR_PID")
FAKE_PORT="$(wait_for_port "$WORK/fake.port" "$FAKE_PID" fake)"
FLOOR_PORT="$(wait_for_port "$WORK/floor.port" "$FLOOR_PID" floor)"
FAKE_URL="http://127.0.0.1:$FAKE_PORT"

# One provider per scenario shape: the gateway sends fixed x-fake-* headers per provider.
provider() {  # name, chunks, delay_ms
  printf '{"name":"%s","kind":"PROVIDER_KIND_OPENAI","baseUrl":"%s/v1","apiKeyEnv":"TURNPIKE_BENCH_KEY","headers":{"x-fake-chunks":"%s","x-fake-chunk-delay-ms":"%s"}}' \
    "$1" "$FAKE_URL" "$2" "$3"
}
route() { printf '{"capability":"%s","targets":[{"provider":"%s","model":"gpt-4o-mini"}],"allowUnauthenticated":true}' "$1" "$2"; }
cat >"$WORK/gateway.json" <<JSON
{"version":"bench-1",
 "providers":[$(provider fake-latency "$LAT_CHUNKS" 0),$(provider fake-stream "$STREAM_CHUNKS" 0),
   $(provider fake-gap "$GAP_CHUNKS" "$GAP_DELAY_MS"),$(provider fake-paced "$PACED_CHUNKS" "$PACED_DELAY_MS")],
 "routes":[$(route bench-latency fake-latency),$(route bench-stream fake-stream),
   $(route bench-gap fake-gap),$(route bench-paced fake-paced),$(route bench-admitted fake-latency)],
 "prices":[{"provider":"fake-latency","model":"gpt-4o-mini","inputUsdMicrosPerMtok":"150000","outputUsdMicrosPerMtok":"600000"}],
 "rateLimits":[{"name":"bench-rpm","capability":"bench-admitted","requestsPerMinute":"100000000"}],
 "budgets":[{"name":"bench-budget","capability":"bench-admitted","limitUsdMicros":"1000000000000","window":"BUDGET_WINDOW_TOTAL"}]}
JSON
TURNPIKE_BENCH_KEY="$API_KEY" "$GATEWAY" --config="$WORK/gateway.json" --listen=127.0.0.1:0 \
  --port_file="$WORK/gateway.port" --access_log=false --metrics_listen=127.0.0.1:0 \
  --request_log="$WORK/requests.jsonl" \
  --http_listen=127.0.0.1:0 --http_port_file="$WORK/gateway-http.port" \
  --metrics_port_file="$WORK/gateway-metrics.port" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
pids+=("$GW_PID")
GW_PORT="$(wait_for_port "$WORK/gateway.port" "$GW_PID" gateway)"
# Scenario 6's gateway: the same config over TLS (docs/tls.md's certificates, in $WORK).
mkdir -p "$WORK/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
  -keyout "$WORK/certs/ca.key" -out "$WORK/certs/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$WORK/certs/server.key" -out "$WORK/certs/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$WORK/certs/server.ext"
openssl x509 -req -in "$WORK/certs/server.csr" -CA "$WORK/certs/ca.crt" -CAkey "$WORK/certs/ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/certs/server.ext" -out "$WORK/certs/server.crt" 2>/dev/null
TURNPIKE_BENCH_KEY="$API_KEY" "$GATEWAY" --config="$WORK/gateway.json" --listen=127.0.0.1:0 \
  --port_file="$WORK/gateway-tls.port" --access_log=false --metrics_listen= \
  --tls_cert="$WORK/certs/server.crt" --tls_key="$WORK/certs/server.key" \
  >"$WORK/gateway-tls.log" 2>&1 &
GW_TLS_PID=$!
pids+=("$GW_TLS_PID")
GW_TLS_PORT="$(wait_for_port "$WORK/gateway-tls.port" "$GW_TLS_PID" gateway-tls)"
GW_METRICS_PORT="$(wait_for_port "$WORK/gateway-metrics.port" "$GW_PID" gateway)"
GW_HTTP_PORT="$(wait_for_port "$WORK/gateway-http.port" "$GW_PID" gateway)"
scrape() { curl -sf "http://127.0.0.1:$GW_METRICS_PORT/metrics" >"$1" || die "cannot scrape the gateway's /metrics"; }
sleep 0.5
RSS_IDLE_KIB="$(rss_kib "$GW_PID")"

echo "bench: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)), $(uname -r)"
echo "bench: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: fake provider :$FAKE_PORT, floor :$FLOOR_PORT, gateway :$GW_PORT (TLS :$GW_TLS_PORT); duration $DUR, warm-up $WARM"
echo

# --- runs -------------------------------------------------------------------------------------
declare -A RESULT CPU_US FAKE_CPU_US SWITCHES
# run NAME SERVER_PID ARGS...: one turnpike-bench run; remembers its bench-run line, and the CPU
# microseconds per call (all calls of the run, warm-up included) of the server and, when the
# server is the gateway, of the fake provider behind it.
run() {
  local name="$1" server_pid="$2"
  shift 2
  local before after fake_before fake_after sw_before sw_after
  sw_before="$(ctx_switches "$server_pid")"
  before="$(cpu_ticks "$server_pid")"
  fake_before="$(cpu_ticks "$FAKE_PID")"
  "$BENCH" --name="$name" --json="$WORK/$name.json" "$@" >"$WORK/$name.out" 2>&1 ||
    { cat "$WORK/$name.out" >&2; die "run $name failed"; }
  after="$(cpu_ticks "$server_pid")"
  sw_after="$(ctx_switches "$server_pid")"
  fake_after="$(cpu_ticks "$FAKE_PID")"
  grep -v '^bench-run:' "$WORK/$name.out"
  RESULT[$name]="$(grep '^bench-run:' "$WORK/$name.out" | tail -1)"
  local started
  started="$(get "$name" started)"
  CPU_US[$name]=-1
  FAKE_CPU_US[$name]=-1
  SWITCHES[$name]=-1
  if ((started > 0)); then
    # In tenths, printed as N.N: switches of the server's threads per call.
    SWITCHES[$name]=$(((sw_after - sw_before) * 10 / started))
    CPU_US[$name]=$(((after - before) * 1000000 / CLK_TCK / started))
    if [[ "$server_pid" != "$FAKE_PID" ]]; then
      FAKE_CPU_US[$name]=$(((fake_after - fake_before) * 1000000 / CLK_TCK / started))
    fi
  fi
  (($(get "$name" ok) > 0)) || die "run $name completed no call; see $WORK/$name.out"
}
get() {  # NAME KEY: a value from the run's bench-run line
  local v
  v="$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"${RESULT[$1]}")"
  echo "${v:--1}"
}
diff_or_missing() {  # A B: A - B, or -1 when either was not measured
  if [[ "$1" == -1 || "$2" == -1 ]]; then echo -1; else echo $(($1 - $2)); fi
}

COMMON=(--duration="$DUR" --warmup="$WARM")
FLOOR_T=(--target="127.0.0.1:$FLOOR_PORT")
GW_T=(--target="127.0.0.1:$GW_PORT")
DIRECT_T=(--direct="$FAKE_URL" --api_key="$API_KEY")

echo "== 0. fake provider ceiling (direct, concurrency $TP_CONC)"
run fake-ceiling-stream "$FAKE_PID" "${DIRECT_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" \
  --header="x-fake-chunks:$STREAM_CHUNKS"
run fake-ceiling-unary "$FAKE_PID" "${DIRECT_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" --unary
PACED=(--concurrency="$PACED_N" --requests="$PACED_N" --warmup=0s --duration=60s --stall="$PACED_STALL"
  --deadline=60s)
PACED_HEADERS="x-fake-chunks:$PACED_CHUNKS,x-fake-chunk-delay-ms:$PACED_DELAY_MS"
run fake-ceiling-paced "$FAKE_PID" "${DIRECT_T[@]}" "${PACED[@]}" --header="$PACED_HEADERS"

echo "== 1. latency at concurrency 1 ($LAT_CHUNKS chunks)"
run floor-latency "$FLOOR_PID" "${FLOOR_T[@]}" "${COMMON[@]}" --header="x-fake-chunks:$LAT_CHUNKS"
run direct-latency "$FAKE_PID" "${DIRECT_T[@]}" "${COMMON[@]}" --header="x-fake-chunks:$LAT_CHUNKS"
scrape "$WORK/metrics-before-latency.txt"
ctx_switches_by_thread "$GW_PID" >"$WORK/threads-before-latency.txt"
run gateway-latency "$GW_PID" "${GW_T[@]}" "${COMMON[@]}" --capability=bench-latency
ctx_switches_by_thread "$GW_PID" >"$WORK/threads-after-latency.txt"
scrape "$WORK/metrics-after-latency.txt"
echo "== 1b. latency at concurrency 1 with one rate limit and one budget (admission on)"
run gateway-admitted "$GW_PID" "${GW_T[@]}" "${COMMON[@]}" --capability=bench-admitted
scrape "$WORK/metrics-after-admitted.txt"

echo "== 2. chunk gaps at concurrency 1 ($GAP_CHUNKS chunks, ${GAP_DELAY_MS} ms apart)"
run direct-gap "$FAKE_PID" "${DIRECT_T[@]}" "${COMMON[@]}" \
  --header="x-fake-chunks:$GAP_CHUNKS,x-fake-chunk-delay-ms:$GAP_DELAY_MS"
run gateway-gap "$GW_PID" "${GW_T[@]}" "${COMMON[@]}" --capability=bench-gap

echo "== 3. streaming throughput at concurrency $TP_CONC ($STREAM_CHUNKS chunks)"
run floor-stream "$FLOOR_PID" "${FLOOR_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" \
  --header="x-fake-chunks:$STREAM_CHUNKS"
run gateway-stream "$GW_PID" "${GW_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" \
  --capability=bench-stream

echo "== 4. unary throughput at concurrency $TP_CONC ($LAT_CHUNKS chunks of text)"
run floor-unary "$FLOOR_PID" "${FLOOR_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" --unary \
  --header="x-fake-chunks:$LAT_CHUNKS"
run gateway-unary "$GW_PID" "${GW_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" --unary \
  --capability=bench-latency

echo "== 5. $PACED_N concurrent paced streams ($PACED_CHUNKS chunks, ${PACED_DELAY_MS} ms apart): floor / gateway"
run floor-paced "$FLOOR_PID" "${FLOOR_T[@]}" "${PACED[@]}" --header="$PACED_HEADERS"
RSS_LOAD_KIB=0
RSS_SAMPLER_STOP="$WORK/rss.stop"
: >"$WORK/rss.samples"
(
  # Bounded: at most 1,200 samples 50 ms apart (60 s), or until told to stop.
  for _ in $(seq 1 1200); do
    [[ -e "$RSS_SAMPLER_STOP" ]] && break
    rss_kib "$GW_PID" >>"$WORK/rss.samples" 2>/dev/null || break
    sleep 0.05
  done
) &
SAMPLER_PID=$!
pids+=("$SAMPLER_PID")
run gateway-paced "$GW_PID" "${GW_T[@]}" --capability=bench-paced "${PACED[@]}"
touch "$RSS_SAMPLER_STOP"
wait "$SAMPLER_PID" 2>/dev/null || true
RSS_LOAD_KIB="$(sort -n "$WORK/rss.samples" | tail -1)"
RSS_LOAD_KIB="${RSS_LOAD_KIB:-0}"
sleep "$SETTLE"
RSS_AFTER_KIB="$(rss_kib "$GW_PID")"
running_child "$GW_PID" || die "the gateway exited during the run; log: $WORK/gateway.log"

echo "== 6. TLS latency at concurrency 1 ($LAT_CHUNKS chunks): gateway plaintext / gateway TLS"
run gateway-plain-latency "$GW_PID" "${GW_T[@]}" "${COMMON[@]}" --capability=bench-latency
run gateway-tls-latency "$GW_TLS_PID" --target="localhost:$GW_TLS_PORT" \
  --tls_ca="$WORK/certs/ca.crt" "${COMMON[@]}" --capability=bench-latency

echo "== 7. the OpenAI-compatible HTTP front door: latency at concurrency 1, throughput at $TP_CONC"
# The routes are open: no key (an unknown one would be refused).
HTTP_T=(--direct="http://127.0.0.1:$GW_HTTP_PORT")
run gateway-grpc-latency "$GW_PID" "${GW_T[@]}" "${COMMON[@]}" --capability=bench-latency
run gateway-http-latency "$GW_PID" "${HTTP_T[@]}" "${COMMON[@]}" --model=bench-latency
run gateway-http-stream "$GW_PID" "${HTTP_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" \
  --model=bench-stream
run gateway-http-unary "$GW_PID" "${HTTP_T[@]}" "${COMMON[@]}" --concurrency="$TP_CONC" --unary \
  --model=bench-latency
echo "bench: load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# --- table ------------------------------------------------------------------------------------
mib() { echo $((($1 + 512) / 1024)); }
tenths() { if [[ "$1" == -1 ]]; then echo -1; else echo "$(($1 / 10)).$(($1 % 10))"; fi; }
printf '%-20s %7s %5s %5s %6s %8s %8s %8s %8s %8s %7s %7s %7s %6s\n' scenario ok err stall rps \
  p50_us p99_us ttft_p50 gap_p99 gap_max srv_cpu fake_cpu cli_cpu srv_cs
for name in fake-ceiling-stream fake-ceiling-unary fake-ceiling-paced floor-latency direct-latency \
  gateway-latency gateway-admitted direct-gap gateway-gap floor-stream gateway-stream floor-unary \
  gateway-unary floor-paced gateway-paced gateway-plain-latency gateway-tls-latency \
  gateway-grpc-latency gateway-http-latency gateway-http-stream gateway-http-unary; do
  printf '%-20s %7s %5s %5s %6s %8s %8s %8s %8s %8s %7s %7s %7s %6s\n' "$name" "$(get "$name" ok)" \
    "$(get "$name" errors)" "$(get "$name" stalled)" "$(get "$name" rps)" "$(get "$name" p50_us)" \
    "$(get "$name" p99_us)" "$(get "$name" ttft_p50_us)" "$(get "$name" gap_p99_us)" \
    "$(get "$name" gap_max_us)" "${CPU_US[$name]}" "${FAKE_CPU_US[$name]}" \
    "$(get "$name" client_cpu_us)" "$(tenths "${SWITCHES[$name]}")"
done
echo "times in us; rps = OK completions/s; *_cpu = CPU us per call (warm-up included) of the server"
echo "(fake provider, floor or gateway), of the fake provider behind the gateway, and of the client;"
echo "srv_cs = voluntary context switches of all the server's threads per call (each a thread blocking)"
echo "gateway RSS: idle $(mib "$RSS_IDLE_KIB") MiB, peak under $PACED_N streams $(mib "$RSS_LOAD_KIB") MiB, ${SETTLE} s after $(mib "$RSS_AFTER_KIB") MiB"
echo

# --- summary ----------------------------------------------------------------------------------
FLOOR_P50="$(get floor-latency p50_us)"
FLOOR_P99="$(get floor-latency p99_us)"
FLOOR_STREAM_RPS="$(get floor-stream rps)"
FLOOR_UNARY_RPS="$(get floor-unary rps)"
ADDED_P50="$(diff_or_missing "$(get gateway-latency p50_us)" "$(get direct-latency p50_us)")"
ADDED_P99="$(diff_or_missing "$(get gateway-latency p99_us)" "$(get direct-latency p99_us)")"
TTFT_OVERHEAD="$(diff_or_missing "$(get gateway-latency ttft_p50_us)" "$(get direct-latency ttft_p50_us)")"
GAP_P99="$(diff_or_missing "$(get gateway-gap gap_p99_us)" "$(get direct-gap gap_p99_us)")"
STREAM_RPS="$(get gateway-stream rps)"
UNARY_RPS="$(get gateway-unary rps)"
PACED_OK=$(($(get gateway-paced ok) - $(get gateway-paced stalled)))
HTTP_OVER_GRPC_P50="$(diff_or_missing "$(get gateway-http-latency p50_us)" "$(get gateway-grpc-latency p50_us)")"
HTTP_OVER_GRPC_P99="$(diff_or_missing "$(get gateway-http-latency p99_us)" "$(get gateway-grpc-latency p99_us)")"
HTTP_ADDED_P50="$(diff_or_missing "$(get gateway-http-latency p50_us)" "$(get direct-latency p50_us)")"
HTTP_STREAM_RPS="$(get gateway-http-stream rps)"
HTTP_UNARY_RPS="$(get gateway-http-unary rps)"
TLS_ADDED_P50="$(diff_or_missing "$(get gateway-tls-latency p50_us)" "$(get gateway-plain-latency p50_us)")"
TLS_ADDED_P99="$(diff_or_missing "$(get gateway-tls-latency p99_us)" "$(get gateway-plain-latency p99_us)")"
# The gateway's own internal-overhead histogram over the concurrency-1 latency run (two scrapes of
# its /metrics; quantiles interpolated within buckets as Prometheus does).
INTERNAL="$(python3 "$(dirname "$0")/bench/histogram_quantiles.py" "$WORK/metrics-before-latency.txt" \
  "$WORK/metrics-after-latency.txt" 'turnpike_internal_overhead_seconds{method="StreamCompletion"}' 0.5 0.99)"
INTERNAL_P50="$(sed -n 's/.*q0.5_us=\([-0-9]*\).*/\1/p' <<<"$INTERNAL")"
INTERNAL_P99="$(sed -n 's/.*q0.99_us=\([-0-9]*\).*/\1/p' <<<"$INTERNAL")"
echo "internal overhead over the latency run (gateway /metrics): $INTERNAL"
# Which of the gateway's threads blocked, per call of gateway-latency (threads that never did
# are left out): the hand-offs of docs/performance.md, "One poller".
echo "gateway threads blocking per call over the latency run: $(
  join -a2 -e 0 -o 0,1.2,2.2 "$WORK/threads-before-latency.txt" "$WORK/threads-after-latency.txt" |
    awk -v n="$(get gateway-latency started)" 'n > 0 && ($3 - $2) / n >= 0.05 {printf "%s=%.1f ", $1, ($3 - $2) / n}'
)"
INTERNAL_ADM="$(python3 "$(dirname "$0")/bench/histogram_quantiles.py" "$WORK/metrics-after-latency.txt" \
  "$WORK/metrics-after-admitted.txt" 'turnpike_internal_overhead_seconds{method="StreamCompletion"}' 0.5 0.99)"
INTERNAL_ADM_P50="$(sed -n 's/.*q0.5_us=\([-0-9]*\).*/\1/p' <<<"$INTERNAL_ADM")"
ADMISSION_ADDED="$(diff_or_missing "$INTERNAL_ADM_P50" "$INTERNAL_P50")"
echo "internal overhead with admission on (gateway /metrics): $INTERNAL_ADM"

target() {  # description, value, limit, "le" or "ge"
  local verdict
  if [[ "$2" == -1 || "$3" == -1 ]]; then
    verdict="not measured"
  elif [[ "$4" == le ]]; then
    if (($2 <= $3)); then verdict=met; else verdict="MISSED by $(($2 - $3))"; fi
  else
    if (($2 >= $3)); then verdict=met; else verdict="MISSED by $(($3 - $2))"; fi
  fi
  printf '  %-52s %8s %s %-8s %s\n' "$1" "$2" "$([[ $4 == le ]] && echo '<=' || echo '>=')" "$3" "$verdict"
}
echo "targets (issue 6 §4; on this run)$( ((SMOKE)) && echo ' -- smoke run: not meaningful')"
limit_if() { if [[ "$1" == -1 ]]; then echo -1; else echo $(($1 + $2)); fi; }
target "added latency p50 (us) <= floor p50 + 50" "$ADDED_P50" "$(limit_if "$FLOOR_P50" 50)" le
target "added latency p99 (us) <= floor p99 + 150" "$ADDED_P99" "$(limit_if "$FLOOR_P99" 150)" le
target "internal overhead p50 (us)" "$INTERNAL_P50" 25 le
target "internal overhead p99 (us)" "$INTERNAL_P99" 100 le
target "admission adds to internal overhead p50 (us)" "$ADMISSION_ADDED" 3 le
target "ttft overhead p50 (us) <= floor p50 + 50" "$TTFT_OVERHEAD" "$(limit_if "$FLOOR_P50" 50)" le
target "added chunk gap p99 (us)" "$GAP_P99" 50 le
target "stream rps >= 40% of floor" "$STREAM_RPS" "$((FLOOR_STREAM_RPS * 40 / 100))" ge
target "stream rps >= 2000" "$STREAM_RPS" 2000 ge
target "unary rps >= 40% of floor" "$UNARY_RPS" "$((FLOOR_UNARY_RPS * 40 / 100))" ge
target "paced streams ok (none stalled or failed)" "$PACED_OK" "$PACED_N" ge
target "HTTP front door adds over gRPC, p50 (us)" "$HTTP_OVER_GRPC_P50" 50 le
target "rss idle (MiB)" "$(mib "$RSS_IDLE_KIB")" 32 le
target "rss at $PACED_N streams (MiB)" "$(mib "$RSS_LOAD_KIB")" 128 le
echo "TLS adds (gateway TLS - gateway plaintext, concurrency 1): p50 ${TLS_ADDED_P50} us, p99 ${TLS_ADDED_P99} us"
echo "HTTP front door (concurrency 1): adds over direct p50 ${HTTP_ADDED_P50} us (gRPC path: ${ADDED_P50} us);" \
  "over the gRPC path p50 ${HTTP_OVER_GRPC_P50} us, p99 ${HTTP_OVER_GRPC_P99} us;" \
  "throughput at $TP_CONC: stream ${HTTP_STREAM_RPS}/s (gRPC ${STREAM_RPS}/s), unary ${HTTP_UNARY_RPS}/s (gRPC ${UNARY_RPS}/s)"
FAKE_CEILING="$(get fake-ceiling-stream rps)"
if ((STREAM_RPS * 10 >= FAKE_CEILING * 8)); then
  echo "note: gateway stream rps is within 20% of the fake provider's ceiling ($FAKE_CEILING/s);" \
    "the fake provider may be the bottleneck"
fi
echo
echo "bench: grpc_floor_p50_us=$FLOOR_P50 grpc_floor_p99_us=$FLOOR_P99" \
  "grpc_floor_stream_rps=$FLOOR_STREAM_RPS grpc_floor_unary_rps=$FLOOR_UNARY_RPS" \
  "added_p50_us=$ADDED_P50 added_p99_us=$ADDED_P99 internal_p50_us=$INTERNAL_P50" \
  "internal_p99_us=$INTERNAL_P99 admission_internal_p50_us=$INTERNAL_ADM_P50" \
  "admission_added_p50_us=$ADMISSION_ADDED ttft_overhead_p50_us=$TTFT_OVERHEAD chunk_gap_p99_us=$GAP_P99" \
  "stream_rps=$STREAM_RPS unary_rps=$UNARY_RPS paced_streams_ok=$PACED_OK" \
  "rss_idle_mib=$(mib "$RSS_IDLE_KIB") rss_1k_streams_mib=$(mib "$RSS_LOAD_KIB")" \
  "tls_added_p50_us=$TLS_ADDED_P50 tls_added_p99_us=$TLS_ADDED_P99" \
  "http_added_p50_us=$HTTP_ADDED_P50 http_over_grpc_p50_us=$HTTP_OVER_GRPC_P50" \
  "http_over_grpc_p99_us=$HTTP_OVER_GRPC_P99 http_stream_rps=$HTTP_STREAM_RPS http_unary_rps=$HTTP_UNARY_RPS" \
  "floor_switches_per_call=$(tenths "${SWITCHES[floor-latency]}")" \
  "gateway_switches_per_call=$(tenths "${SWITCHES[gateway-latency]}")"
