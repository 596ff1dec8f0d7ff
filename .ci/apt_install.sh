#!/usr/bin/env bash
# Install Debian packages a test needs, unless they are there already. Idempotent.
#   .ci/apt_install.sh WHAT FOUND_GLOB PACKAGE...
#     WHAT        a name for the messages
#     FOUND_GLOB  a path (glob allowed) whose existence means "installed": nothing is done then
# Needs root or passwordless sudo on Debian/Ubuntu.
set -euo pipefail
what=$1 found=$2; shift 2
if compgen -G "$found" >/dev/null; then
    echo "$what already installed: $(compgen -G "$found" | head -1)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "apt_install.sh: not root and no sudo; install Debian's $* by hand" >&2
        exit 1
    fi
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
compgen -G "$found" | head -1
