#!/usr/bin/env bash
# Builds the node exactly as the Dockerfile's build stage does (dotnet publish, Release) and starts the result as the
# runtime stage would, with no configuration beyond the data path: the embedded node must come up, take a group and a
# message, and stop cleanly on SIGTERM. No Docker engine runs on CI machines, so this is as close to `docker run` as
# can be checked; it listens on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The status code of one request; Node.js is already needed for the test tools, curl may not be installed.
http() {
  node -e "fetch(process.argv[2], {method: process.argv[1], body: process.argv[3] || undefined, headers: {'content-type': 'application/json'}})
    .then(r => console.log(r.status), () => console.log(0))" "$1" "$2" "${3:-}"
}

fail() {
  echo "check-image: $*" >&2
  [[ -f "$work/node.log" ]] && tail -n 40 "$work/node.log" >&2
  exit 1
}

dotnet publish Node/ClusterQueue.Node.csproj -c Release -o "$work/app" --nologo -v quiet >"$work/publish.log" 2>&1 \
  || { cat "$work/publish.log" >&2; fail "dotnet publish failed"; }
echo "check-image: published as the Dockerfile does"

port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();})")"
mkdir -p "$work/data"
(cd "$work/app" && ClusterQueue__Sqlite__Path="$work/data/clusterqueue.db" ASPNETCORE_URLS="http://127.0.0.1:${port}" \
  exec dotnet ClusterQueue.Node.dll) >"$work/node.log" 2>&1 &
pid=$!

base="http://127.0.0.1:${port}"
for _ in $(seq 1 100); do
  if [[ "$(http GET "$base/readyz")" == "200" ]]; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || fail "the published node exited during start"
  sleep 0.2
done
[[ "$(http GET "$base/readyz")" == "200" ]] || fail "the published node was not ready within 20 s"
echo "check-image: the published node started with no configuration and is ready"

status="$(http PUT "$base/v1/groups/smoke" '{"ratePerSecond":1,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/unused"}}')"
[[ "$status" == "201" ]] || fail "defining a group answered $status, not 201"
status="$(http POST "$base/hooks/smoke" '{"n":1}')"
[[ "$status" == "202" ]] || fail "ingest answered $status, not 202"
echo "check-image: a group and a message were accepted"

kill -TERM "$pid"
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
if kill -0 "$pid" 2>/dev/null; then
  fail "the node did not exit within 30 s of SIGTERM"
fi
wait "$pid" && code=0 || code=$?
pid=""
[[ "$code" == "0" ]] || fail "the node exited with $code after SIGTERM"
echo "check-image: SIGTERM stopped it cleanly; image checks passed"
