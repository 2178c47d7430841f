#!/usr/bin/env bash
# CTest's entry to the Node client's tests: run.sh GATEWAY_BIN FAKE_PROVIDER_BIN.
# Without clients/node/node_modules (tools/dev installs it) it prints SKIP, except under
# CI=true, where that is a failure.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -d "$dir/node_modules/@grpc/grpc-js" ]] || ! command -v node >/dev/null; then
  msg="node or clients/node/node_modules is missing (tools/dev installs them)"
  if [[ "${CI:-}" == true ]]; then echo "$msg"; exit 1; fi
  echo "SKIP: $msg"
  exit 0
fi
TURNPIKE_GATEWAY_BIN="$1" TURNPIKE_FAKE_BIN="$2" \
  exec node --test --test-timeout=60000 --test-reporter=spec "$dir/test/"
