#!/usr/bin/env bash
# Everything the test suite needs, on a Debian machine with Node: system
# packages, a running PostgreSQL with a `test` database reachable at
# 127.0.0.1:5432, and the npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# socat only for the escape tests, which try it as an attacker would; chromium (Debian's, driven by
# playwright-core: nothing is downloaded) for the web app's browser tests.
apt_install_missing bubblewrap socat ca-certificates gcc libc6-dev libseccomp-dev uidmap keyutils curl python3 procps iproute2 chromium fonts-dejavu-core

if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  apt_install_missing postgresql
  fresh_postgres=1
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "${fresh_postgres:-0}" = 1 ] && [ "$(id -u)" -eq 0 ]; then
    # A cluster we just installed for tests: trust local connections, as the tests expect.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+$/\1trust/; s/^(local\s+all\s+all\s+)\S+$/\1trust/' "$hba"
  fi
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then su postgres -c "createdb test" 2>/dev/null || true; fi
  fi
else
  echo "PostgreSQL is not reachable at 127.0.0.1:5432; the Postgres half of the store tests will fail" >&2
fi

[ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund

# As root, the sandboxes and `tagbox up` run as Tagbox's system users (privilege separation).
if [ "$(id -u)" -eq 0 ]; then bash scripts/create-users.sh; fi
