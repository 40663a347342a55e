#!/usr/bin/env bash
# What one /metrics scrape costs with many groups, on one embedded node: G groups defined (100,000 by default), B of
# them with a message waiting (a paused group keeps it), then 20 scrapes each (the median and the slowest reported,
# time and size) with Observability:MaxGroupSeries at its default (1,000 groups named, the rest summed under
# group="(other)") and at its ceiling (20,000). GET /healthz, timed the same way in the same run, is the baseline: a
# request that does no work.
# The groups go straight into the node's SQLite file while it is stopped (one INSERT ... SELECT from the definition
# the API stored for the first group): a hundred thousand PUTs would take half an hour and measure the admin API.
# Usage: bench/scrape.sh [groups=100000] [backlogged=5000]
set -euo pipefail
cd "$(dirname "$0")/.."
groups="${1:-100000}"
backlogged="${2:-5000}"
(( backlogged <= groups )) || { echo "backlogged ($backlogged) must not exceed groups ($groups)" >&2; exit 2; }
source bench/common.sh
need curl sqlite3
build Node

db="$work/scrape.db"
base=http://127.0.0.1:18160

# One group through the API, so its stored definition is exactly what the node writes; the rest are copies of it.
start_node "$base" "$work/node.log" ClusterQueue__Sqlite__Path="$db"
wait_ready "$base/readyz"
curl -fs -o /dev/null -X PUT "$base/v1/groups/g0" -H 'content-type: application/json' \
  -d '{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/hook"}}'
kill -TERM "$node_pid"
wait "$node_pid" || true
# Backlogged groups are paused, so their message waits and ages; ids are zero-padded so g0..g{B-1} sort first.
sqlite3 "$db" "
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $groups - 1)
  INSERT INTO groups (id, definition, created_at, updated_at, paused_at)
    SELECT printf('g%06d', i), g.definition, g.created_at, g.updated_at, CASE WHEN i < $backlogged THEN g.created_at END
    FROM n, groups g WHERE g.id = 'g0';
  DELETE FROM groups WHERE id = 'g0';"

measure() {
  local label="$1" path="$2" times sizes
  times=()
  sizes=()
  for _ in $(seq 1 20); do
    read -r t s < <(curl -fs -o /dev/null -w '%{time_total} %{size_download}\n' "$base$path")
    times+=("$t")
    sizes+=("$s")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v l="$label" -v s="${sizes[-1]}" '
    { t[NR] = $1 } END { printf "  %-44s median %7.1f ms, slowest %7.1f ms, %9d bytes\n", l, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000, s }'
}

run() {
  local series="$1"
  start_node "$base" "$work/node-$series.log" ClusterQueue__Sqlite__Path="$db" ClusterQueue__Observability__MaxGroupSeries="$series"
  wait_ready "$base/readyz"
  if [[ "$series" == 1000 ]]; then
    # The backlog, once: one message for each paused group (they keep it).
    node -e "
      const [base, count] = process.argv.slice(1);
      let next = 0;
      const worker = async () => { while (next < Number(count)) { const id = 'g' + String(next++).padStart(6, '0');
        const r = await fetch(base + '/hooks/' + id, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
        if (r.status !== 202) throw new Error(id + ' answered ' + r.status); } };
      await Promise.all(Array.from({ length: 16 }, worker));" "$base" "$backlogged"
  fi
  # Warm-up: the first requests pay for JIT.
  for _ in 1 2 3; do curl -fs -o /dev/null "$base/metrics"; curl -fs -o /dev/null "$base/healthz"; done
  echo "MaxGroupSeries=$series:"
  measure "GET /healthz (baseline)" /healthz
  measure "GET /metrics" /metrics
  curl -fs "$base/metrics" >"$work/metrics-$series.txt"
  echo "    series: $(grep -vc '^#' "$work/metrics-$series.txt") lines, of them clusterqueue_queue_depth: $(grep -c '^clusterqueue_queue_depth{' "$work/metrics-$series.txt"); groups under (other): $(sed -n 's/^clusterqueue_groups_in_other{*}* //p' "$work/metrics-$series.txt")"
  # The bound is the point: at most that many groups named, plus the aggregate.
  local named
  named="$(grep -c '^clusterqueue_queue_depth{' "$work/metrics-$series.txt")"
  (( named <= series + 1 )) || { echo "the scrape named $named groups' backlogs, more than MaxGroupSeries=$series allows" >&2; exit 1; }
  kill -TERM "$node_pid"
  wait "$node_pid" || true
}

echo "one embedded node, $groups groups, $backlogged of them with a message waiting; 20 requests each, one at a time:"
run 1000
run 20000
