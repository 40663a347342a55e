#!/usr/bin/env bash
# Every benchmark in its short form, as CI runs them after the tests: seconds each, not minutes. The figures mean
# little at this length; what is checked is that each benchmark still runs and that its correctness checks hold
# (every acknowledged message delivered, no refused ingest, no stalled group, idle groups retired). Each script
# starts and stops what it needs (wrk from Debian's packages, a throwaway PostgreSQL, the SQS emulator).
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
run() {
  echo "== $*"
  local started=$SECONDS
  if "$@"; then
    echo "== passed in $((SECONDS - started)) s: $*"
  else
    echo "== FAILED: $*" >&2
    status=1
  fi
}

run bench/ingest.sh 2 16
run bench/dispatch.sh 2 50
run env QUEUE=sqs bench/dispatch.sh 2 50
run bench/latency.sh 2
run bench/rate.sh 8 50
run bench/scale.sh 2000 200 5
run bench/scrape.sh 2000 100
exit "$status"
