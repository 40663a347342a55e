#!/usr/bin/env bash
# Scale: what an idle group costs, and what a node with many groups does under a steady stream. On one embedded node:
#   1. at rest with no groups: CPU time over REST seconds, RSS, live managed heap (after a forced full collection);
#   2. G groups defined (PUT, 32 workers), timed; then at rest again. Memory per idle group is the difference of the
#      two live heaps (and of the two RSS figures) over G; the CPU at rest with G groups is set against the CPU at rest
#      with none, same window, same run. An idle group should cost no CPU at all and under 2 KiB;
#   3. A of the groups PATCHed to 5/s and fed RATE messages/s in total for S seconds, round robin, at a fixed rate (open
#      loop), to a no-op downstream (bench/BareIngest, answers 202): CPU in cores, RSS, heap, actors and queue depth
#      sampled every 2 s. Then the queue must drain and the delivered count equal the acknowledged one;
#   4. at rest once more: every actor retired, heap and CPU back near the idle level.
# The live heap comes from POST /v1/debug/gc (a forced full compacting collection): the heap gauge in /metrics also
# counts garbage not yet collected, megabytes of it under the server GC, which would drown a cost of bytes per group.
# Usage: bench/scale.sh [groups=100000] [active=10000] [seconds=30]
#   RATE=1000 messages/s (at most 2.5 per active group), REST=20 s per rest window (3 when seconds < 20),
#   OUT=dir keeps the raw JSON of every phase (the load's 2 s samples included).
# Smoke: bench/scale.sh 2000 200 5 (short rest windows); exits non-zero when an invariant breaks.
set -euo pipefail
cd "$(dirname "$0")/.."
groups="${1:-100000}"
active="${2:-10000}"
seconds="${3:-30}"
# Half the active groups' total rate at most, so delivery can keep up by design and a growing depth means the node lags.
rate="${RATE:-$(( active * 5 / 2 < 1000 ? active * 5 / 2 : 1000 ))}"
if (( seconds >= 20 )); then rest="${REST:-20}"; else rest="${REST:-3}"; fi
# Twice the target: a failure, not a miss. The target itself is reported beside the figure.
bound_bytes="${BOUND:-4096}"
target_bytes=2048
(( active <= groups )) || { echo "active ($active) must not exceed groups ($groups)" >&2; exit 2; }

source bench/common.sh
keep_output() { if [[ -n "${OUT:-}" ]]; then mkdir -p "$OUT" && cp "$work"/*.json "$work/node.log" "$OUT"/ 2>/dev/null; fi; }
on_exit+=(keep_output)
need curl jq
build Node bench/BareIngest
ready_tries=300

base=http://127.0.0.1:18150
downstream=http://127.0.0.1:18151
start_bare "$downstream"
start_node "$base" "$work/node.log" ClusterQueue__Sqlite__Path="$work/scale.db"
wait_ready "$base/readyz"
wait_ready "$downstream/hooks/warm" -X POST

failures=()
fail() { failures+=("$1"); echo "FAILED: $1" >&2; }
ticks() { awk '{ print $14 + $15 }' "/proc/$node_pid/stat"; }
rss() { awk '/VmRSS/ { print $2 * 1024 }' "/proc/$node_pid/status"; }
tps="$(getconf CLK_TCK)"

# One rest measurement: settle, CPU over the window with nobody calling the node, then the live heap and the cost of
# one /metrics scrape (outside the window: a scrape is work the caller asks for, not work at rest).
at_rest() {
  local name="$1" t0 t1 gc m
  node bench/scale.mjs gc "$base" >/dev/null
  sleep 2
  t0="$(ticks)"; sleep "$rest"; t1="$(ticks)"
  gc="$(node bench/scale.mjs gc "$base")"
  m="$(node bench/scale.mjs metrics "$base")"
  # The registry sorts every group for each page of the list, so a page's time tells what listing costs per group.
  list_ms="$(curl -fs -o /dev/null -w '%{time_total}' "$base/v1/groups?limit=100" | awk '{ printf "%.1f", $1 * 1000 }')"
  jq -n --argjson gc "$gc" --argjson m "$m" --argjson t0 "$t0" --argjson t1 "$t1" --argjson tps "$tps" --argjson rest "$rest" --argjson rss "$(rss)" --argjson list "$list_ms" \
    '{cpuSeconds: (($t1 - $t0) / $tps), cores: (($t1 - $t0) / $tps / $rest), heap: $gc.heapBytes, rss: $rss,
      groups: $m.groups, actors: $m.actors, metricsLines: $m.lines, metricsBytes: $m.bytes, scrapeMs: $m.scrapeMs, listMs: $list}' \
    >"$work/rest-$name.json"
  echo "at rest ($name): $(jq -c . "$work/rest-$name.json")" >&2
}

# Warm up the paths the run uses (a PUT, a PATCH, a DELETE, /metrics) so JIT work is not counted as rest.
curl -fs -o /dev/null -X PUT "$base/v1/groups/warm" -H 'content-type: application/json' \
  -d "{\"ratePerSecond\":1,\"burst\":1,\"maxConcurrency\":1,\"target\":{\"url\":\"$downstream/hooks/warm\"}}"
curl -fs -o /dev/null -X PATCH "$base/v1/groups/warm" -H 'content-type: application/json' -d '{"ratePerSecond":2}'
curl -fs -o /dev/null -X DELETE "$base/v1/groups/warm"
for _ in 1 2 3; do node bench/scale.mjs metrics "$base" >/dev/null; done
sleep 3

at_rest empty

idle="{\"ratePerSecond\":1,\"burst\":1,\"maxConcurrency\":1,\"target\":{\"url\":\"$downstream/hooks/x\"}}"
node bench/groups.mjs put "$base" "$groups" 32 "$idle" >"$work/put.json"
echo "defined $groups groups: $(cat "$work/put.json")" >&2

at_rest idle

node bench/groups.mjs patch "$base" "$active" 32 '{"ratePerSecond":5,"burst":5,"maxConcurrency":4}' >"$work/patch.json"
# A few seconds of the same load first: the first messages a node handles pay for JIT, connections and the first
# actors, a start-up stall that is not the steady state. They count towards the delivery check like the others.
node bench/scale.mjs load "$base" "$node_pid" "$active" "$rate" 3 >"$work/warm.json"
node bench/scale.mjs load "$base" "$node_pid" "$active" "$rate" "$seconds" >"$work/load.json"
jq -c 'del(.samples)' "$work/warm.json" "$work/load.json" >&2
acked="$(( $(jq .acknowledged "$work/warm.json") + $(jq .acknowledged "$work/load.json") ))"
node bench/scale.mjs drain "$base" "$acked" 120 "$active" >"$work/drain.json"
node bench/scale.mjs retire "$base" 60 >"$work/retire.json"

at_rest after

# The figures.
r() { jq -r "$1" "$work/$2.json"; }
per_group() { awk -v a="$1" -v b="$2" -v g="$groups" 'BEGIN { printf "%.0f", (a - b) / g }'; }
heap_per_group="$(per_group "$(r .heap rest-idle)" "$(r .heap rest-empty)")"
rss_per_group="$(per_group "$(r .rss rest-idle)" "$(r .rss rest-empty)")"
delivered="$(r .delivered drain)"
ingested="$(r .ingested drain)"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

echo
echo "node at rest, ${rest} s windows (CPU time of the node process; heap after a forced full collection):"
printf '  %-26s %10s %10s %12s %12s %9s %14s\n' "" "CPU s" "cores" "live heap" "RSS" "actors" "/metrics"
for phase in empty idle after; do
  case "$phase" in empty) label="no groups";; idle) label="$groups idle groups";; after) label="after the load";; esac
  printf '  %-26s %10.2f %10.4f %12s %12s %9d %14s\n' "$label" "$(r .cpuSeconds "rest-$phase")" "$(r .cores "rest-$phase")" \
    "$(mib "$(r .heap "rest-$phase")")" "$(mib "$(r .rss "rest-$phase")")" "$(r .actors "rest-$phase")" \
    "$(r .metricsLines "rest-$phase") lines"
done
awk -v i="$(r .cpuSeconds rest-idle)" -v e="$(r .cpuSeconds rest-empty)" -v a="$(r .cpuSeconds rest-after)" 'BEGIN {
  if (e > 0) printf "  CPU at rest, %s vs no groups: ratio %.2f; after the load vs no groups: %.2f\n", "idle groups", i / e, a / e;
  else printf "  CPU at rest with no groups was 0 ticks; with idle groups %.2f s, after the load %.2f s\n", i, a }'
echo "  memory per idle group: ${heap_per_group} B of live heap ($(awk -v b="$heap_per_group" -v t="$target_bytes" 'BEGIN { printf "%.2f", b / t }') of the ${target_bytes} B target), ${rss_per_group} B of RSS"
echo "  live heap after the load minus idle: $(mib "$(( $(r .heap rest-after) - $(r .heap rest-idle) ))"); RSS: $(mib "$(( $(r .rss rest-after) - $(r .rss rest-idle) ))")"
echo "  one page of GET /v1/groups (limit 100): $(r .listMs rest-empty) ms with no groups, $(r .listMs rest-idle) ms with $groups"
echo "  one /metrics scrape: $(r .scrapeMs rest-empty) ms, $(r .metricsBytes rest-empty) B with no groups; $(r .scrapeMs rest-idle) ms, $(r .metricsBytes rest-idle) B idle; $(r .scrapeMs rest-after) ms, $(r .metricsBytes rest-after) B after the load"
echo
awk -v g="$groups" -v s="$(r .seconds put)" -v a="$active" -v p="$(r .seconds patch)" 'BEGIN {
  printf "defining %d groups: %.1f s, %.0f PUTs/s (32 concurrent); %d PATCHes: %.0f/s\n", g, s, g / s, a, a / p }'
echo
echo "load: ${rate} messages/s offered for ${seconds} s over ${active} groups (5/s, burst 5 each), 1 KiB bodies:"
jq -r '"  acknowledged \(.acknowledged) of \(.sent) sent (\(.achievedRate | floor)/s), \(.skipped) not sent (512 in flight), statuses \(.statuses | tojson)",
       "  node CPU \(.cores * 100 | round / 100) cores; max RSS \(.maxRss / 1048576 | floor) MiB, max heap gauge \(.maxHeap / 1048576 | floor) MiB",
       "  max active actors \(.maxActors), max queue depth \(.maxDepth), slowest /metrics scrape \(.maxScrapeMs) ms"' "$work/load.json"
jq -r '"  warm-up before it (3 s, same rate): acknowledged \(.acknowledged), \(.skipped) not sent, slowest /metrics scrape \(.maxScrapeMs) ms"' "$work/warm.json"
echo "  drained in $(r .seconds drain | xargs printf '%.1f') s after the load: delivered ${delivered}, ingested ${ingested}, acknowledged ${acked} (warm-up included)"
echo "  actors retired $(r .seconds retire | xargs printf '%.1f') s after the drain (left: $(r .actors retire))"

# The invariants.
[[ "$(r .ok drain)" == "true" && "$delivered" == "$acked" ]] || fail "delivered ${delivered} != acknowledged ${acked} (depth $(r .depth drain))"
[[ "$ingested" == "$acked" ]] || fail "ingested ${ingested} != acknowledged ${acked}"
(( acked > 0 )) || fail "nothing was acknowledged"
[[ "$(r .ok retire)" == "true" ]] || fail "$(r .actors retire) actors still running after the drain"
[[ "$(r .actors rest-idle)" == "0" ]] || fail "$(r .actors rest-idle) actors running for idle groups"
(( heap_per_group <= bound_bytes )) || fail "an idle group costs ${heap_per_group} B of heap (bound ${bound_bytes} B)"
awk -v i="$(r .cores rest-idle)" -v e="$(r .cores rest-empty)" 'BEGIN { exit !(i <= e + 0.02) }' \
  || fail "CPU at rest with idle groups ($(r .cores rest-idle) cores) above the empty node's ($(r .cores rest-empty)) + 0.02"
if (( ${#failures[@]} > 0 )); then
  tail -20 "$work/node.log" >&2
  exit 1
fi
echo
echo "invariants held: delivered == acknowledged, no actor at rest, idle group ≤ ${bound_bytes} B, idle CPU within 0.02 cores of an empty node"
