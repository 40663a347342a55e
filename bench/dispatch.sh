#!/usr/bin/env bash
# Dispatch throughput on the embedded node: a backlog ingested for S seconds over G groups whose rates hold it back
# (about 100,000 messages at 10 s on a 2-core machine), then every group opened to an unlimited rate at once; the time
# until the queues are empty gives dispatch's rate, to a no-op downstream (a bare Kestrel endpoint that answers 202).
# The durable ingest rate of the same messages (wrk, 64 connections), measured in the same run, is the baseline:
# dispatch should keep up with the front door.
# Usage: bench/dispatch.sh [ingest seconds=10] [groups=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
groups="${2:-1000}"
source bench/common.sh
need wrk curl
build Node bench/BareIngest

# The sum over groups of one per-group metric.
total() {
  node -e "fetch(process.argv[1]).then(r => r.text()).then(t => console.log(t.split('\n').filter(l => l.startsWith(process.argv[2] + '{')).reduce((s, l) => s + Number(l.split(' ').pop()), 0)))" "$1/metrics" "$2"
}
depth() { total "$1" clusterqueue_queue_depth; }

start_bare http://127.0.0.1:18081
start_node http://127.0.0.1:18080 "$work/node.log" ClusterQueue__Sqlite__Path="$work/dispatch.db"
base=http://127.0.0.1:18080
wait_ready "$base/readyz"
wait_ready http://127.0.0.1:18081/hooks/warm -X POST

# Groups held back: a rate of one message per 1000 s lets each deliver its first message (the burst) and no more.
held='{"ratePerSecond":0.001,"burst":1,"maxConcurrency":64,"target":{"url":"http://127.0.0.1:18081/hooks/downstream"}}'
node bench/groups.mjs put "$base" "$groups" 32 "$held" >/dev/null

CQ_GROUPS="$groups" wrk -t2 -c64 -d"${seconds}s" -s bench/spread.lua "$base" >"$work/ingest.txt"
ingest_rate="$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/ingest.txt")"
non2xx="$(awk '/Non-2xx/ {print $NF}' "$work/ingest.txt")"
[[ -z "$non2xx" ]] || { echo "ingest answered ${non2xx} non-2xx responses" >&2; cat "$work/ingest.txt" >&2; tail -20 "$work/node.log" >&2; exit 1; }
queued="$(depth "$base")"

started="$(date +%s.%N)"
node bench/groups.mjs patch "$base" "$groups" 32 '{"ratePerSecond":1000000,"burst":1000000}' >/dev/null
# A backlog that stops draining is a failure, not a reason to wait for ever.
deadline=$(( $(date +%s) + 60 + 2 * seconds * 10 ))
while [[ "$(depth "$base")" != "0" ]]; do
  (( $(date +%s) < deadline )) || { echo "the backlog did not drain: $(depth "$base") messages left" >&2; tail -20 "$work/node.log" >&2; exit 1; }
  sleep 0.2
done
finished="$(date +%s.%N)"
acknowledged="$(awk '/requests in/ {print $1}' "$work/ingest.txt")"
ingested="$(total "$base" clusterqueue_ingested_total)"
delivered="$(total "$base" clusterqueue_delivered_total)"
# Every message the node took (wrk's count leaves out requests cut off at its deadline, so the node's is the larger) was delivered.
if [[ "$delivered" != "$ingested" ]] || (( ingested < acknowledged )); then
  echo "delivery check failed: ${acknowledged} acknowledged to wrk, ${ingested} ingested, ${delivered} delivered" >&2
  exit 1
fi

echo
echo "queued before opening the groups: ${queued} messages over ${groups} groups; all ${delivered} ingested were delivered"
awk -v q="$queued" -v s="$started" -v f="$finished" -v i="$ingest_rate" 'BEGIN {
  d = f - s; r = q / d;
  printf "dispatch: %.0f messages/s (%.1f s to drain, counting the PATCH of every group)\n", r, d;
  printf "durable ingest of the same messages: %d messages/s\n", i;
  printf "ratio: dispatch is %.2f of ingest\n", r / i }'
