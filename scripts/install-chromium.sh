#!/usr/bin/env bash
# Debian's Chromium for the browser tests: Playwright for Python drives this executable (Playwright's own
# browser download is not used). Installs it when missing; needs root or sudo for apt-get.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
