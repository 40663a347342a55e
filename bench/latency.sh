#!/usr/bin/env bash
# Latency on the embedded node, measured by bench/Probe (which also hosts the recording downstream, so send and
# arrival times share one monotonic clock):
#  (a) ingest ack latency at an open-loop constant rate of half the node's closed-loop capacity (32 connections),
#      against the bare Kestrel endpoint (bench/BareIngest) at the same rate, in the same run: the difference is the
#      cost of durability in latency;
#  (b) end to end: scheduled send to the downstream handler's start, for a group with tokens to spare, at a modest rate;
#      every acknowledged message must arrive or the run fails.
# Usage: bench/latency.sh [seconds=20] [end-to-end rate=200]   (smoke: bench/latency.sh 2; STRICT=1 also fails a missed target)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
e2e_rate="${2:-200}"

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

dotnet build -c Release -v q --nologo Node >/dev/null
dotnet build -c Release -v q --nologo bench/BareIngest >/dev/null
dotnet build -c Release -v q --nologo bench/Probe >/dev/null

wait_ready() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$@" && return 0; sleep 0.05; done; echo "not ready: $*" >&2; exit 1; }

(cd "$work" && exec dotnet "$OLDPWD/bench/BareIngest/bin/Release/net10.0/BareIngest.dll" --urls http://127.0.0.1:18101) >/dev/null 2>&1 &
pids+=($!)
(cd "$work" && ClusterQueue__Sqlite__Path="$work/latency.db" Logging__LogLevel__Default=Warning \
  exec dotnet "$OLDPWD/Node/bin/Release/net10.0/ClusterQueue.Node.dll" --urls http://127.0.0.1:18100) >"$work/node.log" 2>&1 &
pids+=($!)
wait_ready http://127.0.0.1:18100/readyz
wait_ready http://127.0.0.1:18101/hooks/warm -X POST

if ! dotnet bench/Probe/bin/Release/net10.0/Probe.dll latency --node http://127.0.0.1:18100 --bare http://127.0.0.1:18101 \
    --listen 18102 --seconds "$seconds" --e2e-rate "$e2e_rate" ${STRICT:+--strict}; then
  echo "node log (last 20 lines):" >&2
  tail -20 "$work/node.log" >&2
  exit 1
fi
