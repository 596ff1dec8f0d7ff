#!/usr/bin/env bash
# Install Debian's PostgreSQL server for the Optuna-storage test (tests/test_storage_postgres.py),
# which starts its own server (initdb, pg_ctl: /usr/lib/postgresql/<version>/bin) on 127.0.0.1.
# Idempotent: does nothing when initdb is already there.
#   .ci/install_postgresql.sh        (needs root or passwordless sudo on Debian/Ubuntu)
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    echo "postgresql already installed: $(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null || command -v initdb)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_postgresql.sh: not root and no sudo; install Debian's 'postgresql' package by hand" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# the package's own cluster is not needed (the test makes its own); the package makes the postgres user
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
ls /usr/lib/postgresql/*/bin/initdb
