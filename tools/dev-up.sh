#!/usr/bin/env bash
# Starts the demo stack in the foreground: the fake provider, the control plane on localhost:50052
# seeded through its admin API, and the gateway on localhost:50051 serving capability "demo", with
# its OpenAI-compatible HTTP front door on localhost:8080 (docs/openai-compatible.md).
# Ctrl-C stops everything. Called by `tools/dev up` after the build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${1:-$ROOT/build}"
RUN_DIR="$ROOT/var/dev"
GATEWAY_ADDR="${TURNPIKE_GATEWAY_ADDR:-127.0.0.1:50051}"
METRICS_ADDR="${TURNPIKE_METRICS_ADDR:-127.0.0.1:9464}"
HTTP_ADDR="${TURNPIKE_HTTP_ADDR:-127.0.0.1:8080}"
CONTROL_ADDR="${TURNPIKE_CONTROL_ADDR:-127.0.0.1:50052}"
mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR"/*.port

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
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do
    if running_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_for_file() {  # path, what, pid
  for _ in $(seq 1 200); do
    [[ -s "$1" ]] && return 0
    running_child "$3" || { echo "$2 exited; see its log above" >&2; exit 1; }
    sleep 0.05
  done
  echo "$2 did not start within 10 s" >&2
  exit 1
}

"$BUILD_DIR/tools/fake_provider/turnpike-fake-provider" --listen=127.0.0.1:0 \
  --port_file="$RUN_DIR/fake.port" --api_key=fake-key --chunks=8 --chunk_delay_ms=40 &
pids+=($!)
wait_for_file "$RUN_DIR/fake.port" "fake provider" "${pids[-1]}"
FAKE_PORT="$(cat "$RUN_DIR/fake.port")"

# The control plane, on a fresh dev database (var/dev is scratch space for the demo stack). Its
# first admin token is var/dev/admin.token: written on the first `tools/dev up`, then kept, so an
# exported TURNPIKE_ADMIN_TOKEN stays valid across restarts of the stack.
rm -rf "$RUN_DIR"/turnpike.db* "$RUN_DIR"/gateway-snapshot.pb "$RUN_DIR"/usage-spool "$RUN_DIR"/node.token
# The audit trail's checkpoint signing key (docs/audit.md): made once, then kept.
[[ -f "$RUN_DIR/audit-signing.pem" ]] ||
  openssl genpkey -algorithm ed25519 -out "$RUN_DIR/audit-signing.pem" 2>/dev/null
chmod 600 "$RUN_DIR/audit-signing.pem"
"$BUILD_DIR/controlplane/turnpike-control" --listen="$CONTROL_ADDR" --port_file="$RUN_DIR/control.port" \
  --db="$RUN_DIR/turnpike.db" --dev_insecure_master_key \
  --bootstrap_admin_token_file="$RUN_DIR/admin.token" \
  --audit_signing_key_file="$RUN_DIR/audit-signing.pem" --audit_checkpoint_interval=10s &
pids+=($!)
wait_for_file "$RUN_DIR/control.port" "control plane" "${pids[-1]}"
TURNPIKE_ADMIN_TOKEN="$(cat "$RUN_DIR/admin.token")"

# Seed the demo configuration through the admin API, exactly as an operator would.
GRPCURL="$ROOT/tools/grpcurl-shim"
admin() {  # method json
  if ! out="$("$GRPCURL" -plaintext -H "authorization: Bearer $TURNPIKE_ADMIN_TOKEN" -d "$2" \
      "$CONTROL_ADDR" "turnpike.admin.v1.AdminService/$1" 2>&1)"; then
    echo "seeding failed: $1: $out" >&2
    exit 1
  fi
}
admin CreateCredential '{"credential":{"name":"fake-key","description":"the fake provider key"},"secret":"fake-key"}'
admin CreateProvider "{\"provider\":{\"spec\":{\"name\":\"fake\",\"kind\":\"PROVIDER_KIND_OPENAI\",\"baseUrl\":\"http://127.0.0.1:$FAKE_PORT/v1\",\"credential\":\"fake-key\"}}}"
admin CreateRoute '{"route":{"spec":{"capability":"demo","targets":[{"provider":"fake","model":"gpt-4o-mini"}],"allowUnauthenticated":true}}}'
# A classification route (docs/classification.md).
admin CreateRoute '{"route":{"spec":{"capability":"triage","task":"ROUTE_TASK_CLASSIFICATION","targets":[{"provider":"fake","model":"gpt-4o-mini"}],"allowUnauthenticated":true}}}'
extra=""
add_real() {  # name kind base_url env_var capability model
  local key="${!4:-}"
  [[ -n "$key" ]] || return 0
  admin CreateCredential "{\"credential\":{\"name\":\"$1-key\"},\"secret\":\"$key\"}"
  admin CreateProvider "{\"provider\":{\"spec\":{\"name\":\"$1\",\"kind\":\"$2\",\"baseUrl\":\"$3\",\"credential\":\"$1-key\"}}}"
  admin CreateRoute "{\"route\":{\"spec\":{\"capability\":\"$5\",\"targets\":[{\"provider\":\"$1\",\"model\":\"$6\"}],\"allowUnauthenticated\":true}}}"
  extra+=" $5"
}
add_real openai PROVIDER_KIND_OPENAI https://api.openai.com/v1 OPENAI_API_KEY openai-chat gpt-4o-mini
add_real anthropic PROVIDER_KIND_ANTHROPIC https://api.anthropic.com ANTHROPIC_API_KEY anthropic-chat claude-haiku-4-5
add_real gemini PROVIDER_KIND_GEMINI https://generativelanguage.googleapis.com GEMINI_API_KEY gemini-chat gemini-2.5-flash

# A caller for the OpenAI SDKs (they always send a key): its key in var/dev/caller.key.
admin CreateCaller '{"caller":{"spec":{"name":"dev-app","allowedCapabilities":["demo"]}}}'
admin CreateCallerKey '{"caller":"dev-app","keyId":"dev-app-1"}'
(umask 077 && jq -r .key <<<"$out" >"$RUN_DIR/caller.key")

# The gateway's node token, issued through the admin API as for any gateway.
admin CreateNodeToken '{"name":"dev-gateway","nodeId":"dev-gateway"}'
(umask 077 && jq -r .token <<<"$out" >"$RUN_DIR/node.token")
"$BUILD_DIR/server/turnpike-gateway" --control_plane="$CONTROL_ADDR" --node_id=dev-gateway \
  --node_token_file="$RUN_DIR/node.token" \
  --snapshot_cache="$RUN_DIR/gateway-snapshot.pb" --usage_spool_dir="$RUN_DIR/usage-spool" \
  --listen="$GATEWAY_ADDR" --http_listen="$HTTP_ADDR" \
  --port_file="$RUN_DIR/gateway.port" --metrics_listen="$METRICS_ADDR" &
pids+=($!)
wait_for_file "$RUN_DIR/gateway.port" "gateway" "${pids[-1]}"
# Serving once the first snapshot from the control plane is applied.
for _ in $(seq 1 200); do
  "$GRPCURL" -plaintext "$GATEWAY_ADDR" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING && break
  sleep 0.05
done

cat <<TXT

Turnpike is up.
  gateway        localhost:50051   (config from the control plane; /metrics on localhost:9464)
  OpenAI API     localhost:8080/v1 (the gateway's HTTP front door; caller key in var/dev/caller.key)
  control plane  localhost:50052   (admin API; database var/dev/turnpike.db, dev master key; /metrics and /dashboard on localhost:9465)
  fake provider  127.0.0.1:$FAKE_PORT  (speaks OpenAI, Azure, Anthropic, Gemini, vLLM, llama.cpp, Ollama)
${extra:+  real routes   $extra
}
Try (grpcurl; 'buf curl --protocol grpc --http2-prior-knowledge' works the same way):

  grpcurl -plaintext -d '{"capability":"demo","messages":[{"role":"ROLE_USER","content":"hello"}]}' localhost:50051 turnpike.v1.CompletionService/StreamCompletion
  grpcurl -plaintext -d '{"capability":"demo","messages":[{"role":"ROLE_USER","content":"hello"}]}' localhost:50051 turnpike.v1.CompletionService/Complete
  grpcurl -plaintext -d '{"capability":"triage","text":"I was charged twice","labels":[{"name":"billing"},{"name":"shipping"}]}' localhost:50051 turnpike.v1.ClassificationService/Classify
  grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Check
  grpcurl -plaintext localhost:50051 list

The OpenAI-compatible door (docs/openai-compatible.md; any OpenAI SDK with base_url
http://localhost:8080/v1 and this key works too):
  export TURNPIKE_CALLER_KEY=\$(cat $RUN_DIR/caller.key)
  curl -sN localhost:8080/v1/chat/completions -H "Authorization: Bearer \$TURNPIKE_CALLER_KEY" -H "Content-Type: application/json" -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"hello"}]}'

Inject a provider fault by typing a directive into the message, e.g. a rate limit:
  grpcurl -plaintext -d '{"capability":"demo","messages":[{"role":"ROLE_USER","content":"hi [[fake status=429 retry_after=2]]"}]}' localhost:50051 turnpike.v1.CompletionService/StreamCompletion

Change the config with the admin API; every gateway follows within a second (docs/admin.md).
Every admin call carries the admin token (docs/security.md); paste this first:
  export TURNPIKE_ADMIN_TOKEN=\$(cat $RUN_DIR/admin.token)
  grpcurl -plaintext -H "authorization: Bearer \$TURNPIKE_ADMIN_TOKEN" -d '{}' localhost:50052 turnpike.admin.v1.AdminService/ListRoutes
  grpcurl -plaintext -H "authorization: Bearer \$TURNPIKE_ADMIN_TOKEN" -d '{"route":{"spec":{"capability":"summaries","targets":[{"provider":"fake","model":"gpt-4o-mini"}],"allowUnauthenticated":true}}}' localhost:50052 turnpike.admin.v1.AdminService/CreateRoute
  grpcurl -plaintext -H "authorization: Bearer \$TURNPIKE_ADMIN_TOKEN" -d '{}' localhost:50052 turnpike.admin.v1.AdminService/ListDataPlanes

The budget and spend dashboard (docs/dashboard.md): open http://localhost:9465/dashboard and paste
the admin token, or hand it over in the URL fragment (which never leaves the browser):
  xdg-open "http://localhost:9465/dashboard#token=\$(cat $RUN_DIR/admin.token)"

Prometheus metrics of the gateway (docs/metrics.md):
  curl -s localhost:9464/metrics | grep turnpike_requests_total

Ctrl-C stops everything.
TXT
wait -n "${pids[@]}"
echo "a process exited; stopping the stack" >&2
