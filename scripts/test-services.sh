#!/usr/bin/env bash
# Install what the tests need from Debian's packages, on a fresh machine as on CI.
# The tests start their own instances (on loopback, on free ports); nothing here is left running.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the pages tests render in headless Chromium
command -v promtool >/dev/null 2>&1 || need+=(prometheus)  # promtool: tests/test_prometheus.py
# initdb + pg_ctl: monitor/pglocal.py starts a throwaway PostgreSQL (the package's own cluster
# is not used by the tests)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [[ " ${need[*]} " == *" postgresql "* ]]; then
    # Debian's package would create and start a "main" cluster on port 5432; the tests start
    # their own (monitor/pglocal.py), so tell postgresql-common not to, before installing.
    apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
    conf=/etc/postgresql-common/createcluster.conf
    grep -qs '^create_main_cluster *= *false' "$conf" || echo 'create_main_cluster = false' >>"$conf"
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
