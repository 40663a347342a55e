# Throwaway PostgreSQL servers for the test script and the benchmarks: sourced, not run.
#   pg_find_or_install           sets pg_bin (installs Debian's package when missing and running as root)
#   pg_start PORT [OPTIONS]      initdb + start in a temp directory, TCP on 127.0.0.1:PORT only; sets pg_dir
#   pg_stop                      stops it (immediate: nothing in it is worth a clean shutdown) and deletes it
#   pg_connection_string         the Npgsql connection string of the server pg_start started

pg_bin=""
pg_dir=""
pg_port=""

# Debian keeps PostgreSQL's programs out of PATH, one directory per major version; the newest wins. PATH is the
# fallback for machines that install PostgreSQL elsewhere.
pg_find_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

pg_find_or_install() {
  pg_bin="$(pg_find_bin)"
  if [[ -n "$pg_bin" ]]; then
    return 0
  fi
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages." >&2
    # The package would create and start a 'main' cluster on port 5432 that outlives this script; these scripts start
    # their own, so ask postgresql-common not to.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = off" >/etc/postgresql-common/createcluster.d/clusterqueue-tests.conf
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bin="$(pg_find_bin)"
  fi
  if [[ -z "$pg_bin" ]]; then
    echo "PostgreSQL (initdb and pg_ctl) is required and was not found under /usr/lib/postgresql/*/bin or on PATH; install it (Debian: apt-get install postgresql), or run as root to let this script install it." >&2
    return 1
  fi
}

# PostgreSQL refuses to run as root: as root, its programs run as the postgres user the package created, which must
# own the cluster's directory. Its working directory is that directory, as the caller's may be closed to postgres.
as_postgres() {
  if [[ "$(id -u)" == "0" ]]; then
    (cd "$pg_dir" && runuser -u postgres -- "$@")
  else
    (cd "$pg_dir" && "$@")
  fi
}

# The unix socket goes in the server's own directory rather than the shared /var/run/postgresql; UTF8 with the C
# locale, whatever the machine's locale is.
pg_start() {
  pg_port="$1"
  local options="${2:-}"
  pg_dir="$(mktemp -d)"
  if [[ "$(id -u)" == "0" ]]; then
    chown postgres: "$pg_dir"
  fi
  if ! as_postgres "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$pg_dir/initdb.log" 2>&1; then
    echo "initdb failed:" >&2
    cat "$pg_dir/initdb.log" >&2
    return 1
  fi
  if ! as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 60 \
      -o "-p ${pg_port} -c listen_addresses=127.0.0.1 -k '${pg_dir}' ${options}" start >"$pg_dir/pg_ctl.log" 2>&1; then
    echo "PostgreSQL did not start on 127.0.0.1:${pg_port}:" >&2
    cat "$pg_dir/pg_ctl.log" "$pg_dir/postgres.log" >&2 2>/dev/null || true
    return 1
  fi
}

pg_stop() {
  if [[ -n "$pg_dir" ]]; then
    if [[ -f "$pg_dir/data/postmaster.pid" ]]; then
      as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -w -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pg_dir"
    pg_dir=""
  fi
}

pg_connection_string() {
  echo "Host=127.0.0.1;Port=${pg_port};Username=postgres;Database=postgres"
}
