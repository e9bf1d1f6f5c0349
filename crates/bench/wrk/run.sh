#!/usr/bin/env bash
# Steward's embedded server driven by an external load generator (wrk, `apt-get install wrk`),
# as a user would run it: a release `steward serve` on a fresh data directory, registrations
# of new models over HTTP/1.1 keep-alive, then reads of one version. Prints wrk's reports.
#
#   cargo build --release -p steward && bash crates/bench/wrk/run.sh [CONNECTIONS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../../.."
CONNS=${1:-8}
THREADS=$(( CONNS < 2 ? 1 : 2 ))
SECS=${2:-20}
BIN=${STEWARD_BIN:-${CARGO_TARGET_DIR:-target}/release/steward}
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "build first: cargo build --release -p steward ($BIN)" >&2; exit 1; }
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --data "$DATA/data" --addr "127.0.0.1:$PORT" >"$DATA/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "listening" "$DATA/serve.log" 2>/dev/null && break; sleep 0.1; done
export STEWARD_TOKEN=$(awk '$1=="dev"{print $2}' "$DATA/data/tokens.txt")
URL="http://127.0.0.1:$PORT"
echo "== register (new model each), $CONNS connections, ${SECS}s"
wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s crates/bench/wrk/register.lua "$URL" -- examples/credit-risk-v1.json
NAME=$(curl -s -H "Authorization: Bearer $STEWARD_TOKEN" "$URL/v1/models?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["name"])')
echo "== get version, $CONNS connections, ${SECS}s"
wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -H "Authorization: Bearer $STEWARD_TOKEN" "$URL/v1/models/$NAME/versions/1"
du -sh "$DATA/data" | sed 's/^/store after the run: /'
