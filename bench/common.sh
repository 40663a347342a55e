# Sourced by the benchmark scripts, from the repository root: how each of them starts and stops its processes.
#   work                    a temporary directory, deleted on exit (kept, and named, when BENCH_KEEP is set)
#   pids                    processes killed on exit (start_bare and start_node add theirs)
#   on_exit+=(function)     a step run on exit, after the processes stopped and before the directory goes
#   need COMMAND...         installs Debian's package of that name when the command is missing
#   build PROJECT...        Release builds
#   wait_ready URL [ARGS]   polls with curl (ARGS such as -X POST pass through) until 2xx, at most ready_tries × 50 ms
#   start_bare URL          the no-op endpoint (bench/BareIngest, 202 at POST /hooks/{id}): a downstream or a baseline
#   start_node URL LOG [NAME=VALUE...]   a node logging warnings only, with those settings; sets node_pid
#   start_node_dll DLL URL LOG [NAME=VALUE...]   the same, from another build of the node (build_baseline's)
#   build_baseline REF      a Release build of the node as it was at git REF, from a clean export; sets baseline_dll
#   start_fauxqs PORT       the SQS emulator (tools/node_modules/fauxqs) on 127.0.0.1:PORT, stopped on exit
#   cpu_mark; cpu_since     the machine's CPU time split since the mark: steal is time other tenants of the host took
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
  [[ -n "${BENCH_KEEP:-}" ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap bench_cleanup EXIT

# NODE_LOG_LEVEL sets the nodes' log level (default Warning); AKKA_LOG_LEVEL that of Akka's own messages alone (default
# NODE_LOG_LEVEL): Information shows the cluster's and the shards' steps. Each line has its time, to the millisecond.
# NODE_DLL runs another build of the node in a script that starts this one (a baseline built by hand from an older commit).
node_dll="${NODE_DLL:-$PWD/Node/bin/Release/net10.0/ClusterQueue.Node.dll}"
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
  start_node_dll "$node_dll" "$@"
}

start_node_dll() {
  local dll="$1" url="$2" log="$3"
  shift 3
  (cd "$work" && exec env Logging__LogLevel__Default="${NODE_LOG_LEVEL:-Warning}" Logging__LogLevel__Akka="${AKKA_LOG_LEVEL:-${NODE_LOG_LEVEL:-Warning}}" Logging__Console__FormatterName=simple Logging__Console__FormatterOptions__SingleLine=true Logging__Console__FormatterOptions__TimestampFormat="HH:mm:ss.fff " "$@" dotnet "$dll" --urls "$url") >"$log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
}

# The aggregate line of /proc/stat: user nice system idle iowait irq softirq steal, in clock ticks.
cpu_mark() {
  read -r _ cpu_at_mark < /proc/stat
}

cpu_since() {
  local now
  read -r _ now < /proc/stat
  awk -v a="$cpu_at_mark" -v b="$now" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    for (i = 1; i <= 8; i++) { d[i] = y[i] - x[i]; total += d[i] }
    if (total == 0) total = 1
    printf "machine CPU over the run: busy %.0f%% (user %.0f%%, system %.0f%%), idle %.0f%%, steal %.1f%% (other tenants of the host)\n",
      100 * (d[1] + d[2] + d[3] + d[6] + d[7]) / total, 100 * (d[1] + d[2]) / total, 100 * (d[3] + d[6] + d[7]) / total,
      100 * (d[4] + d[5]) / total, 100 * d[8] / total
  }'
}

# A clean export, not a worktree: nothing of the repository's state changes, and the build cannot see this tree's files.
build_baseline() {
  local ref="$1"
  mkdir -p "$work/baseline"
  git archive "$ref" | tar -x -C "$work/baseline"
  dotnet build -c Release -v q --nologo "$work/baseline/Node" >/dev/null
  baseline_dll="$work/baseline/Node/bin/Release/net10.0/ClusterQueue.Node.dll"
}

# Through fauxqs' API, not its CLI: the CLI listens on every interface.
start_fauxqs() {
  npm ci --prefix tools --silent --no-audit --no-fund
  (cd tools && exec node --input-type=module -e "import {buildApp} from 'fauxqs'; await buildApp({logger:false}).listen({port:$1, host:'127.0.0.1'})") >"$work/fauxqs.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$1/"
}
