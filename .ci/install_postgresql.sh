#!/usr/bin/env bash
# Install Debian's PostgreSQL server for the Optuna-storage test (tests/test_storage_postgres.py),
# which starts its own server (initdb, pg_ctl: /usr/lib/postgresql/<version>/bin) on 127.0.0.1.
# The package's own cluster is not used; the package makes the postgres user. Idempotent.
set -euo pipefail
if command -v initdb >/dev/null 2>&1; then echo "postgresql already installed: $(command -v initdb)"; exit 0; fi
bash "$(dirname "$0")/apt_install.sh" postgresql '/usr/lib/postgresql/*/bin/initdb' postgresql
