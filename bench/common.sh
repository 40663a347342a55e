# Sourced by the benchmark scripts, from the repository root: how each of them starts and stops its processes.
#   work                    a temporary directory, deleted on exit
#   pids                    processes killed on exit (start_bare and start_node add theirs)
#   on_exit+=(function)     a step run on exit, after the processes stopped and before the directory goes
#   need COMMAND...         installs Debian's package of that name when the command is missing
#   build PROJECT...        Release builds
#   wait_ready URL [ARGS]   polls with curl (ARGS such as -X POST pass through) until 2xx, at most ready_tries × 50 ms
#   start_bare URL          the no-op endpoint (bench/BareIngest, 202 at POST /hooks/{id}): a downstream or a baseline
#   start_node URL LOG [NAME=VALUE...]   a node logging warnings only, with those settings; sets node_pid
# A throwaway PostgreSQL started with tools/postgres.sh's pg_start is stopped on exit too.
source tools/postgres.sh

work="$(mktemp -d)"
pids=()
on_exit=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for step in "${on_exit[@]}"; do "$step" || true; done
  pg_stop
  rm -rf "$work"
}
trap bench_cleanup EXIT

node_dll="$PWD/Node/bin/Release/net10.0/ClusterQueue.Node.dll"
bare_dll="$PWD/bench/BareIngest/bin/Release/net10.0/BareIngest.dll"

need() {
  local command
  for command in "$@"; do
    command -v "$command" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$command" >/dev/null; }
  done
}

build() {
  local project
  for project in "$@"; do dotnet build -c Release -v q --nologo "$project" >/dev/null; done
}

ready_tries=200
wait_ready() {
  for _ in $(seq 1 "$ready_tries"); do curl -fs -o /dev/null "$@" && return 0; sleep 0.05; done
  echo "not ready: $*" >&2
  exit 1
}

start_bare() {
  (cd "$work" && exec dotnet "$bare_dll" --urls "$1") >/dev/null 2>&1 &
  pids+=($!)
}

start_node() {
  local url="$1" log="$2"
  shift 2
  (cd "$work" && exec env Logging__LogLevel__Default=Warning "$@" dotnet "$node_dll" --urls "$url") >"$log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
}
