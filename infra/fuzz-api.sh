#!/usr/bin/env bash
# Schema-driven fuzzing (schemathesis) of every route in docs/openapi.yaml against a server
# started here the way `make dev` starts it (its own emulator and table): no response may
# be a 5xx, and every status code, content type and body must be one the document
# describes. FUZZ_SEED repeats a run (the default seed keeps CI repeatable; any other
# explores further), FUZZ_EXAMPLES sets how many cases per operation.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$here/.dev"
port="$("$here/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export PORT="$port" TABLE_NAME="fuzz-$$" ADMIN_API_KEY="fuzz-admin-key-0123456789" RUST_LOG=warn
unset INGEST_TOKEN CRON_SECRET AWS_ENDPOINT_URL
"$here/infra/with-emulator.sh" "$here/target/debug/crm-dev" >"$here/.dev/fuzz-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$port/api/health" >/dev/null; then break; fi
  kill -0 $server 2>/dev/null || { echo "the server did not start; see .dev/fuzz-server.log" >&2; exit 1; }
  sleep 0.5
done
cd "$here/.dev"
"$here/.venv/bin/st" run "$here/docs/openapi.yaml" \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $ADMIN_API_KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${FUZZ_EXAMPLES:-20}" \
  --seed "${FUZZ_SEED:-20261122}" \
  --no-color
