#!/usr/bin/env bash
# Runs a command against an AWS endpoint: the one in AWS_ENDPOINT_URL if set (any emulator
# or a real account), otherwise a local moto emulator started here and stopped afterwards.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

export AWS_REGION="${AWS_REGION:-us-east-1}"
if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  echo "Using AWS endpoint ${AWS_ENDPOINT_URL}" >&2
  exec "$@"
fi

# The emulator accepts any credentials; never send real ones to it.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
# Nothing leaves this machine, so messages really go (to the emulator's SES and SNS) unless
# the caller says otherwise. Against AWS_ENDPOINT_URL (above) the default stays a dry run.
export ENABLE_REAL_SENDING="${ENABLE_REAL_SENDING:-true}"
unset AWS_SESSION_TOKEN AWS_PROFILE
port="${EMULATOR_PORT:-$("$here/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
mkdir -p "$here/.dev"
"$here/.venv/bin/python" "$here/infra/emulator.py" --port "$port" --parent-pid $$ >"$here/.dev/emulator.log" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 $emulator 2>/dev/null || { echo "emulator failed to start; see .dev/emulator.log" >&2; exit 1; }
  sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
echo "Started local AWS emulator (moto) at $AWS_ENDPOINT_URL" >&2
# Run the command beside the emulator; whichever ends first ends both. A dev server whose
# emulator died would otherwise answer 503 for ever.
"$@" &
app=$!
trap 'kill $app $emulator 2>/dev/null || true' EXIT INT TERM
set +e
wait -n $emulator $app
status=$?
if ! kill -0 $emulator 2>/dev/null; then
  echo "The local AWS emulator exited (status $status); stopping. Its log: .dev/emulator.log" >&2
  tail -n 20 "$here/.dev/emulator.log" >&2
  kill $app 2>/dev/null
  exit 1
fi
exit $status
