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
# QUEUE=sqs runs the same on nodes whose queue is SQS (the fauxqs emulator on loopback, records in SQLite). BASELINE=<git
# ref> measures a node built from that commit too, first, against the same downstream (and emulator, under queues of its
# own), so a change is measured before and after in one run.
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

queue="${QUEUE:-store}"
baseline="${BASELINE:-}"
queue_settings=()
if [[ "$queue" == "sqs" ]]; then
  start_fauxqs 18090
  queue_settings=(ClusterQueue__Queue=sqs ClusterQueue__Sqs__ServiceUrl=http://127.0.0.1:18090 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench)
fi
if [[ -n "$baseline" ]]; then
  build_baseline "$baseline"
  # Builds before 5a98530 took call slots for a whole group's concurrency before a receive of at most ten, and their
  # drain of a thousand SQS groups crawled; capping the lease batch at ten gives them what the queue's lease limit
  # gives this build, so the two compare on equal terms.
  [[ "$queue" != "sqs" ]] || queue_settings+=(ClusterQueue__Processing__MaxLeaseBatch=10)
fi

base=http://127.0.0.1:18080
start_bare http://127.0.0.1:18081
wait_ready http://127.0.0.1:18081/hooks/warm -X POST

# One measurement: a node from DLL on a database of its own (and SQS queues under its own prefix) takes the backlog,
# stops, and drains it after a restart with the groups opened. Sets result to one line of figures: queued ingest_rate
# dispatch_rate drain_seconds ready_seconds first_delivery_seconds. (Not a subshell: the exit trap must know its nodes.)
measure() {
  local label="$1" dll="$2"
  local db="$work/dispatch-$label.db"
  local settings=(ClusterQueue__Sqlite__Path="$db" "${queue_settings[@]}" ClusterQueue__Sqs__QueuePrefix="$label-")
  start_node_dll "$dll" "$base" "$work/node-$label.log" "${settings[@]}"
  wait_ready "$base/readyz"

  # Groups held back: a rate of one message per 1000 s lets each deliver its first message (the burst) and no more.
  local held='{"ratePerSecond":0.001,"burst":1,"maxConcurrency":64,"target":{"url":"http://127.0.0.1:18081/hooks/downstream"}}'
  node bench/groups.mjs put "$base" "$groups" 32 "$held" >/dev/null
  if [[ "$queue" == "sqs" ]]; then
    # On SQS a held group's receives hide the messages they take for a lease, and after the restart the drain waited
    # those leases out (a 30 s stall, not dispatch). Paused groups receive nothing: they are paused offline instead.
    kill -TERM "$node_pid"
    wait "$node_pid" || true
    sqlite3 "$db" "UPDATE groups SET paused_at = $(date +%s%3N);"
    start_node_dll "$dll" "$base" "$work/node-$label-paused.log" "${settings[@]}"
    wait_ready "$base/readyz"
  fi

  CQ_GROUPS="$groups" wrk -t2 -c64 -d"${seconds}s" -s bench/spread.lua "$base" >"$work/ingest-$label.txt"
  local ingest_rate non2xx queued
  ingest_rate="$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/ingest-$label.txt")"
  non2xx="$(awk '/Non-2xx/ {print $NF}' "$work/ingest-$label.txt")"
  [[ -z "$non2xx" ]] || { echo "ingest answered ${non2xx} non-2xx responses" >&2; cat "$work/ingest-$label.txt" >&2; tail -20 "$work/node-$label.log" >&2; exit 1; }
  queued="$(depth "$base")"

  # Every held group has an actor with a spent bucket here: the drain stops them all, and each saves its state.
  local stopping stopped
  stopping="$(now)"
  kill -TERM "$node_pid"
  wait "$node_pid" || true
  stopped="$(now)"
  sqlite3 "$db" "UPDATE groups SET paused_at = NULL, definition = json_set(definition, '$.ratePerSecond', 1000000, '$.burst', 1000000);"

  local started ready first finished deadline
  started="$(now)"
  start_node_dll "$dll" "$base" "$work/node-$label-restarted.log" "${settings[@]}"
  wait_ready "$base/readyz"
  ready="$(now)"
  # Delivery counters in /metrics start at zero with the process: the first one above zero dates the first delivery.
  first=""
  deadline=$(( $(date +%s) + 60 + 2 * seconds * 10 ))
  while true; do
    [[ -n "$first" ]] || [[ "$(total "$base" clusterqueue_delivered_total)" == "0" ]] || first="$(now)"
    [[ -n "$first" && "$(depth "$base")" == "0" ]] && break
    kill -0 "$node_pid" 2>/dev/null || { echo "the node exited during the drain" >&2; grep -v "^  *at " "$work/node-$label-restarted.log" | tail -20 >&2; exit 1; }
    (( $(date +%s) < deadline )) || { echo "the backlog did not drain: $(depth "$base") messages left" >&2; tail -20 "$work/node-$label-restarted.log" >&2; exit 1; }
    sleep 0.1
  done
  finished="$(now)"
  kill -TERM "$node_pid"
  wait "$node_pid" || true

  # Every message the node took (wrk's count leaves out requests cut off at its deadline, so the node's is the larger)
  # was delivered, by the store's durable counters, and none is left.
  local acknowledged ingested delivered left
  acknowledged="$(awk '/requests in/ {print $1}' "$work/ingest-$label.txt")"
  read -r ingested delivered < <(sqlite3 -separator ' ' "$db" "SELECT sum(ingested), sum(delivered) FROM group_counters;")
  left="$(sqlite3 "$db" "SELECT count(*) FROM messages WHERE state = 0;")"
  if [[ "$delivered" != "$ingested" || "$left" != "0" ]] || (( ingested < acknowledged )); then
    echo "delivery check failed ($label): ${acknowledged} acknowledged to wrk, ${ingested} ingested, ${delivered} delivered, ${left} left" >&2
    exit 1
  fi
  result="$(awk -v q="$queued" -v s="$started" -v r="$ready" -v a="$first" -v f="$finished" -v i="$ingest_rate" -v x="$stopping" -v y="$stopped" \
    'BEGIN { printf "%d %d %.0f %.1f %.1f %.1f %.2f\n", q, i, q / (f - a), f - a, r - s, a - s, y - x }')"
}

report() {
  local label="$1" queued ingest_rate rate drain ready first stop
  read -r queued ingest_rate rate drain ready first stop <<<"$2"
  echo "$label: queued ${queued} messages over ${groups} groups (${queue} queue); all were delivered"
  echo "  stop with every group's actor running: exited ${stop} s after SIGTERM"
  echo "  restart: ready ${ready} s after start, first delivery ${first} s after start"
  echo "  dispatch: ${rate} messages/s (${drain} s from the first delivery until the queues were empty)"
  echo "  durable ingest of the same messages: ${ingest_rate} messages/s"
  awk -v r="$rate" -v i="$ingest_rate" 'BEGIN { printf "  ratio: dispatch is %.2f of ingest\n", r / i }'
}

before=""
if [[ -n "$baseline" ]]; then
  measure base "$baseline_dll"
  before="$result"
fi
measure cq "$node_dll"
after="$result"

echo
report "this build" "$after"
if [[ -n "$baseline" ]]; then
  report "baseline ($baseline)" "$before"
  read -r _ ai ar _ <<<"$after"
  read -r _ bi br _ <<<"$before"
  awk -v ar="$ar" -v br="$br" -v ai="$ai" -v bi="$bi" 'BEGIN { printf "this build / baseline: dispatch %.2f, ingest %.2f\n", ar / br, ai / bi }'
fi
