# Prometheus and promtool for the tests and the deploy checks: sourced, not run.
#   prom_find_or_install   makes sure prometheus and promtool are on PATH (installs Debian's package when missing and
#                          running as root)
# The tests start their own Prometheus on a loopback port for each test that needs one; none runs as a service.

prom_find_or_install() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    return 0
  fi
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Prometheus (prometheus, promtool) from Debian's packages." >&2
    # The package would start a Prometheus of its own on every interface (:9090) that outlives this script: a
    # policy-rc.d that refuses keeps it stopped. Recommends (the node exporter, another service) are left out.
    local policy=/usr/sbin/policy-rc.d created=""
    if [[ ! -e "$policy" ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod +x "$policy"
      created=1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [[ -n "$created" ]]; then
      rm -f "$policy"
    fi
  fi
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    echo "Prometheus (prometheus and promtool) is required and was not found on PATH; install it (Debian: apt-get install prometheus), or run as root to let this script install it." >&2
    return 1
  fi
}
