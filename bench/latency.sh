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

source bench/common.sh
need curl
build Node bench/BareIngest bench/Probe

start_bare http://127.0.0.1:18101
start_node http://127.0.0.1:18100 "$work/node.log" ClusterQueue__Sqlite__Path="$work/latency.db"
wait_ready http://127.0.0.1:18100/readyz
wait_ready http://127.0.0.1:18101/hooks/warm -X POST

if ! dotnet bench/Probe/bin/Release/net10.0/Probe.dll latency --node http://127.0.0.1:18100 --bare http://127.0.0.1:18101 \
    --listen 18102 --seconds "$seconds" --e2e-rate "$e2e_rate" ${STRICT:+--strict}; then
  echo "node log (last 20 lines):" >&2
  tail -20 "$work/node.log" >&2
  exit 1
fi
