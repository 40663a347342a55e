#!/usr/bin/env bash
# Ingest throughput: durable POST /hooks/{group} on the embedded node, on a cluster node whose store is PostgreSQL
# (a throwaway server on loopback with its durable defaults: fsync and synchronous_commit on), and on a node whose
# queue is SQS (the fauxqs emulator on loopback), against a bare Kestrel endpoint that reads the body and answers 202
# without storing anything. Same load, same machine, same run; the ratios are the figures.
# BASELINE=<git ref> also runs an SQS node built from that commit against the same emulator (its own queues), in
# ROUNDS rounds (default 2) alternating with this build's, so a change to the SQS path is measured before and after in
# one run.
# Usage: bench/ingest.sh [seconds=10] [connections=32]   (SQS=0 skips the SQS node, PG=0 the PostgreSQL node)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-32}"
source bench/common.sh
need wrk curl
build Node bench/BareIngest

start_bare http://127.0.0.1:18081
start_node http://127.0.0.1:18080 "$work/node.log" ClusterQueue__Sqlite__Path="$work/bench.db"
define_group() {
  curl -fs -o /dev/null -X PUT "$1/v1/groups/bench" -H 'content-type: application/json' \
    -d '{"ratePerSecond":0.001,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/"}}'
}
wait_ready http://127.0.0.1:18080/readyz
define_group http://127.0.0.1:18080

with_sqs="${SQS:-1}"
baseline="${BASELINE:-}"
if [[ "$with_sqs" == "1" ]]; then
  start_fauxqs 18090
  sqs_settings=(ClusterQueue__Queue=sqs ClusterQueue__Sqs__ServiceUrl=http://127.0.0.1:18090 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench)
  start_node http://127.0.0.1:18082 "$work/node-sqs.log" ClusterQueue__Sqlite__Path="$work/bench-sqs.db" "${sqs_settings[@]}"
  sqs_pid="$node_pid"
  wait_ready http://127.0.0.1:18082/readyz
  define_group http://127.0.0.1:18082
  if [[ -n "$baseline" ]]; then
    build_baseline "$baseline"
    start_node_dll "$baseline_dll" http://127.0.0.1:18084 "$work/node-sqs-baseline.log" ClusterQueue__Sqlite__Path="$work/bench-sqs-baseline.db" \
      "${sqs_settings[@]}" ClusterQueue__Sqs__QueuePrefix=base-
    base_pid="$node_pid"
    wait_ready http://127.0.0.1:18084/readyz
    define_group http://127.0.0.1:18084
  fi
fi
with_pg="${PG:-1}"
if [[ "$with_pg" == "1" ]]; then
  pg_find_or_install
  pg_start 18095 "-c max_connections=200"
  # A cluster of one: the same node code path (leases, fencing, LISTEN) as three, with the database's durable defaults.
  start_node http://127.0.0.1:18083 "$work/node-pg.log" ClusterQueue__Store=postgres \
    ClusterQueue__Postgres__ConnectionString="$(pg_connection_string)" ClusterQueue__AdminToken=bench ClusterQueue__NodeId=bench
  wait_ready http://127.0.0.1:18083/readyz
  curl -fs -o /dev/null -X PUT "http://127.0.0.1:18083/v1/groups/bench" -H 'authorization: Bearer bench' -H 'content-type: application/json' \
    -d '{"ratePerSecond":0.001,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/"}}'
fi
wait_ready http://127.0.0.1:18081/hooks/warm -X POST

# A process's user and system CPU time so far, in clock ticks; and CPU milliseconds per request of one wrk run.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu_per_request() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" '/requests in/ { printf "%.3f", t * 1000 / hz / $1 }' "$work/$2.txt"; }
run() { wrk -t2 -c"$connections" -d"${seconds}s" --latency -s bench/post.lua "$1" | tee "$work/$2.txt" >&2; awk '/Requests\/sec/ {print $2}' "$work/$2.txt"; }
# Warm both up so JIT and connection set-up are not part of the measurement.
wrk -t2 -c"$connections" -d2s -s bench/post.lua http://127.0.0.1:18081/hooks/bench >/dev/null
wrk -t2 -c"$connections" -d2s -s bench/post.lua http://127.0.0.1:18080/hooks/bench >/dev/null

bare="$(run http://127.0.0.1:18081/hooks/bench bare)"
node="$(run http://127.0.0.1:18080/hooks/bench node)"
non2xx="$(awk '/Non-2xx/ {print $NF}' "$work/node.txt")"
if [[ "$with_sqs" == "1" ]]; then
  wrk -t2 -c"$connections" -d2s -s bench/post.lua http://127.0.0.1:18082/hooks/bench >/dev/null
  if [[ -n "$baseline" ]]; then
    # A full-length warm-up each: in 2 s the runtime had not finished compiling the SQS path, and the first round of
    # either build ran at a third of the later ones.
    wrk -t2 -c"$connections" -d"${seconds}s" -s bench/post.lua http://127.0.0.1:18082/hooks/bench >/dev/null
    wrk -t2 -c"$connections" -d"${seconds}s" -s bench/post.lua http://127.0.0.1:18084/hooks/bench >/dev/null
    # Rounds in alternating order, so the shared machine's drift falls on both builds alike. Each node's own CPU
    # time per request is noted too: on a shared machine it moves much less than throughput does.
    sqs_rounds=()
    base_rounds=()
    sqs_cpu=()
    base_cpu=()
    measure_sqs() {
      local before after rate
      before="$(cpu_ticks "$sqs_pid")"
      rate="$(run http://127.0.0.1:18082/hooks/bench "sqs-$1")"
      after="$(cpu_ticks "$sqs_pid")"
      sqs_rounds+=("$rate")
      sqs_cpu+=("$(cpu_per_request $((after - before)) "sqs-$1")")
    }
    measure_base() {
      local before after rate
      before="$(cpu_ticks "$base_pid")"
      rate="$(run http://127.0.0.1:18084/hooks/bench "sqs-base-$1")"
      after="$(cpu_ticks "$base_pid")"
      base_rounds+=("$rate")
      base_cpu+=("$(cpu_per_request $((after - before)) "sqs-base-$1")")
    }
    for round in $(seq 1 "${ROUNDS:-2}"); do
      if (( round % 2 == 1 )); then
        measure_sqs "$round"
        measure_base "$round"
      else
        measure_base "$round"
        measure_sqs "$round"
      fi
    done
    sqs_non2xx="$(cat "$work"/sqs-*.txt | awk '/Non-2xx/ {s += $NF} END { if (s) print s }')"
  else
    sqs="$(run http://127.0.0.1:18082/hooks/bench sqs)"
    sqs_non2xx="$(awk '/Non-2xx/ {print $NF}' "$work/sqs.txt")"
  fi
fi
if [[ "$with_pg" == "1" ]]; then
  wrk -t2 -c"$connections" -d2s -s bench/post.lua http://127.0.0.1:18083/hooks/bench >/dev/null
  pg="$(run http://127.0.0.1:18083/hooks/bench pg)"
  pg_non2xx="$(awk '/Non-2xx/ {print $NF}' "$work/pg.txt")"
fi
failed=""
[[ -z "$non2xx" ]] || failed+=" embedded:$non2xx"
[[ -z "${sqs_non2xx:-}" ]] || failed+=" sqs:$sqs_non2xx"
[[ -z "${pg_non2xx:-}" ]] || failed+=" postgres:$pg_non2xx"
echo
echo "bare endpoint:        ${bare} req/s"
echo "durable ingest (SQLite, synchronous=FULL): ${node} req/s${non2xx:+ (non-2xx: $non2xx)}"
awk -v n="$node" -v b="$bare" 'BEGIN { printf "ratio: %.2f of the bare endpoint\n", n / b }'
if [[ "$with_sqs" == "1" && -n "$baseline" ]]; then
  echo "durable ingest (SQS queue on the fauxqs emulator), round by round${sqs_non2xx:+ (non-2xx: $sqs_non2xx)}:"
  echo "  this build:           ${sqs_rounds[*]} req/s"
  echo "  baseline ($baseline): ${base_rounds[*]} req/s"
  awk -v s="${sqs_rounds[*]}" -v o="${base_rounds[*]}" -v n="$node" -v b="$bare" 'BEGIN {
    k = split(s, ss, " "); split(o, oo, " "); m = 0; mo = 0; per = "";
    for (r = 1; r <= k; r++) { m += ss[r] / k; mo += oo[r] / k; per = per sprintf("%s%.2f", r > 1 ? ", " : "", ss[r] / oo[r]) }
    printf "ratio (means): this build %.2f of the bare endpoint (%.2f of the embedded queue), baseline %.2f (%.2f)\n", m / b, m / n, mo / b, mo / n;
    printf "this build / baseline: %.2f (by round: %s)\n", m / mo, per }'
  echo "  node CPU per request, this build: ${sqs_cpu[*]} ms; baseline: ${base_cpu[*]} ms"
  awk -v s="${sqs_cpu[*]}" -v o="${base_cpu[*]}" 'BEGIN {
    k = split(s, ss, " "); split(o, oo, " "); m = 0; mo = 0;
    for (r = 1; r <= k; r++) { m += ss[r] / k; mo += oo[r] / k }
    printf "  node CPU per request, this build / baseline: %.2f\n", m / mo }'
elif [[ "$with_sqs" == "1" ]]; then
  echo "durable ingest (SQS queue on the fauxqs emulator): ${sqs} req/s${sqs_non2xx:+ (non-2xx: $sqs_non2xx)}"
  awk -v s="$sqs" -v n="$node" -v b="$bare" 'BEGIN { printf "ratio: %.2f of the bare endpoint, %.2f of the embedded queue\n", s / b, s / n }'
fi
if [[ "$with_pg" == "1" ]]; then
  echo "durable ingest (PostgreSQL store and queue, synchronous_commit=on): ${pg} req/s${pg_non2xx:+ (non-2xx: $pg_non2xx)}"
  awk -v p="$pg" -v n="$node" -v b="$bare" 'BEGIN { printf "ratio: %.2f of the bare endpoint, %.2f of the embedded queue\n", p / b, p / n }'
fi
if [[ -n "$failed" ]]; then
  echo "non-2xx answers to durable ingest:$failed" >&2
  exit 1
fi
