#!/usr/bin/env bash
# Runs ClusterQueue's whole test suite from a fresh clone: checks the toolchain, restores, builds and runs every
# test against real parts (SQLite files, loopback HTTP servers, node processes killed with SIGKILL).
# The backends the tests need are installed if missing, started here on loopback only and stopped on exit:
#   - fauxqs, an SQS emulator from npm, passed to the tests in CLUSTERQUEUE_TEST_SQS_URL;
#   - a throwaway PostgreSQL cluster in a temp directory (Debian's postgresql package), passed in
#     CLUSTERQUEUE_TEST_POSTGRES. Its data is never kept: fsync is off and the directory is deleted on exit.
# Debian's prometheus package is installed if missing: the metrics tests start a Prometheus of their own per test.
# Debian's chromium package is installed if missing: the dashboard's tests drive it headless through playwright-core.
# Arguments go to 'dotnet test' (for example --filter).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET 10 SDK (dotnet) is required and was not found on PATH." >&2
  exit 1
fi

# The SQS tests run against fauxqs, an SQS-compatible server from npm (pinned in tools/package-lock.json).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Node.js from Debian's packages for the SQS emulator." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "test.sh: Node.js (node and npm) is required to run the SQS emulator; install it, or run as root to let this script install it." >&2
    exit 1
  fi
fi
npm ci --prefix tools --silent --no-audit --no-fund
# playwright-core for the dashboard's browser tests (pinned in tools/dashboard/package-lock.json; it downloads no browser).
npm ci --prefix tools/dashboard --silent --no-audit --no-fund

# Debian's Chromium for the dashboard's browser tests (playwright-core drives /usr/bin/chromium, or CHROMIUM_PATH).
if [[ -z "${CHROMIUM_PATH:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Chromium from Debian's packages for the dashboard's browser tests." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: chromium is not installed; the dashboard's browser tests are skipped (under CI=true they fail). Install it, or run as root to let this script install it." >&2
  fi
fi

# strace injects a failed fdatasync into a node process (the WAL flush failure test).
if ! command -v strace >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing strace from Debian's packages for the storage fault tests." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
  else
    echo "test.sh: strace is not installed; the WAL flush failure test is skipped (under CI=true it fails). Install it, or run as root to let this script install it." >&2
  fi
fi

# PostgreSQL for the store tests: installed if missing (see tools/postgres.sh).
source tools/postgres.sh
pg_find_or_install || exit 1

# Prometheus and promtool for the metrics tests, which start their own server on loopback (see tools/prometheus.sh).
source tools/prometheus.sh
prom_find_or_install || exit 1

results="$(mktemp -d)"
sqs_pid=""
cleanup() {
  if [[ -n "$sqs_pid" ]]; then
    kill "$sqs_pid" 2>/dev/null || true
    wait "$sqs_pid" 2>/dev/null || true
  fi
  pg_stop
  rm -rf "$results"
}
trap cleanup EXIT

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();})"
}

# fauxqs through its API, not its CLI: the CLI listens on every interface, the tests need loopback only.
sqs_port="$(free_port)"
(cd tools && exec node --input-type=module -e "import {buildApp} from 'fauxqs'; const a=buildApp({logger:false}); await a.listen({port:${sqs_port}, host:'127.0.0.1'}); console.log('ready')") \
  >"$results/fauxqs.log" 2>&1 &
sqs_pid=$!
for _ in $(seq 1 100); do
  if node -e "fetch('http://127.0.0.1:${sqs_port}/').then(()=>process.exit(0),()=>process.exit(1))" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$sqs_pid" 2>/dev/null; then
    echo "test.sh: the SQS emulator (fauxqs) exited before answering:" >&2
    cat "$results/fauxqs.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! node -e "fetch('http://127.0.0.1:${sqs_port}/').then(()=>process.exit(0),()=>process.exit(1))" 2>/dev/null; then
  echo "test.sh: the SQS emulator (fauxqs) did not answer on 127.0.0.1:${sqs_port}:" >&2
  cat "$results/fauxqs.log" >&2
  exit 1
fi
export CLUSTERQUEUE_TEST_SQS_URL="http://127.0.0.1:${sqs_port}"

# A throwaway PostgreSQL server on loopback. Durability is traded for speed (nothing survives the run anyway);
# max_connections leaves room for the tests' pools running side by side.
pg_start "$(free_port)" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB" \
  || { echo "test.sh: could not start PostgreSQL." >&2; exit 1; }
export CLUSTERQUEUE_TEST_POSTGRES="$(pg_connection_string)"

status=0
dotnet test ClusterQueue.sln --nologo --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@" || status=$?

# One plain closing line that any CI can read, whatever the runner prints above it.
trx="$(find "$results" -name '*.trx' | head -n 1)"
if [[ -n "$trx" ]]; then
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)"
  passed="$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  failed="$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  notrun="$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")"
  echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${notrun:-0} skipped"
  if [[ "${passed:-0}" == "0" ]]; then
    echo "test.sh: no test ran." >&2
    status=1
  fi
else
  echo "test.sh: the test run left no results." >&2
  status=1
fi
exit "$status"
