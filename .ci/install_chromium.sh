#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the report's browser test (idempotent).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then echo "chromium already installed: $(command -v chromium)"; exit 0; fi
bash "$(dirname "$0")/apt_install.sh" chromium /usr/bin/chromium chromium fonts-dejavu-core
