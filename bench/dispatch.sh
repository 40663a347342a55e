#!/usr/bin/env bash
# Dispatch throughput on the embedded node: a backlog ingested for S seconds over G groups whose rates hold it back
# (about 100,000 messages at 10 s on a 2-core machine), then every group opened to an unlimited rate at once; the time
# from the first delivery until the queues are empty gives dispatch's rate, to a no-op downstream (a bare Kestrel
# endpoint that answers 202). The durable ingest rate of the same messages (wrk, 64 connections), measured in the same
# run, is the baseline: dispatch should keep up with the front door.
# The groups are opened offline: the node stops (SIGTERM), their stored definitions get the unlimited rate, and the
# node starts again on the same database, whose start-up sweep wakes every group with messages at once. Opening them
# with a PATCH each paced the drain by the PATCHes instead (a thousand took 10-12 s under the drain's load, while each
# group drains in well under a second), so the old figure measured the admin API, not dispatch.
# Usage: bench/dispatch.sh [ingest seconds=10] [groups=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
groups="${2:-1000}"
source bench/common.sh
need wrk curl sqlite3
build Node bench/BareIngest

# The sum over groups of one per-group metric.
total() {
  node -e "fetch(process.argv[1]).then(r => r.text()).then(t => console.log(t.split('\n').filter(l => l.startsWith(process.argv[2] + '{')).reduce((s, l) => s + Number(l.split(' ').pop()), 0)))" "$1/metrics" "$2"
}
depth() { total "$1" clusterqueue_queue_depth; }
now() { date +%s.%N; }

db="$work/dispatch.db"
base=http://127.0.0.1:18080
start_bare http://127.0.0.1:18081
start_node "$base" "$work/node.log" ClusterQueue__Sqlite__Path="$db"
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

kill -TERM "$node_pid"
wait "$node_pid" || true
sqlite3 "$db" "UPDATE groups SET definition = json_set(definition, '$.ratePerSecond', 1000000, '$.burst', 1000000);"

started="$(now)"
start_node "$base" "$work/node-restarted.log" ClusterQueue__Sqlite__Path="$db"
wait_ready "$base/readyz"
ready="$(now)"
# Delivery counters in /metrics start at zero with the process: the first one above zero dates the first delivery.
first=""
deadline=$(( $(date +%s) + 60 + 2 * seconds * 10 ))
while true; do
  [[ -n "$first" ]] || [[ "$(total "$base" clusterqueue_delivered_total)" == "0" ]] || first="$(now)"
  [[ -n "$first" && "$(depth "$base")" == "0" ]] && break
  kill -0 "$node_pid" 2>/dev/null || { echo "the node exited during the drain" >&2; grep -v "^  *at " "$work/node-restarted.log" | tail -20 >&2; exit 1; }
  (( $(date +%s) < deadline )) || { echo "the backlog did not drain: $(depth "$base") messages left" >&2; tail -20 "$work/node-restarted.log" >&2; exit 1; }
  sleep 0.1
done
finished="$(now)"
kill -TERM "$node_pid"
wait "$node_pid" || true

# Every message the node took (wrk's count leaves out requests cut off at its deadline, so the node's is the larger)
# was delivered, by the store's durable counters, and none is left.
acknowledged="$(awk '/requests in/ {print $1}' "$work/ingest.txt")"
read -r ingested delivered < <(sqlite3 -separator ' ' "$db" "SELECT sum(ingested), sum(delivered) FROM group_counters;")
left="$(sqlite3 "$db" "SELECT count(*) FROM messages WHERE state = 0;")"
if [[ "$delivered" != "$ingested" || "$left" != "0" ]] || (( ingested < acknowledged )); then
  echo "delivery check failed: ${acknowledged} acknowledged to wrk, ${ingested} ingested, ${delivered} delivered, ${left} left" >&2
  exit 1
fi

echo
echo "queued before opening the groups: ${queued} messages over ${groups} groups; all ${delivered} ingested were delivered"
awk -v q="$queued" -v s="$started" -v r="$ready" -v a="$first" -v f="$finished" -v i="$ingest_rate" 'BEGIN {
  d = f - a; rate = q / d;
  printf "restart: ready %.1f s after start, first delivery %.1f s after start\n", r - s, a - s;
  printf "dispatch: %.0f messages/s (%.1f s from the first delivery until the queues were empty)\n", rate, d;
  printf "durable ingest of the same messages: %d messages/s\n", i;
  printf "ratio: dispatch is %.2f of ingest\n", rate / i }'
