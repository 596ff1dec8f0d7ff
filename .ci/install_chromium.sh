#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the report's browser test.
# Idempotent: does nothing when a chromium binary is already there.
#   .ci/install_chromium.sh          (needs root or passwordless sudo on Debian/Ubuntu)
set -euo pipefail
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium || echo /usr/bin/chromium)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_chromium.sh: not root and no sudo; install Debian's 'chromium' package by hand" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core
command -v chromium
