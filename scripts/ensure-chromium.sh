#!/usr/bin/env bash
# Installs Debian's chromium when it is missing: the status page test renders the page
# headless (--dump-dom and --screenshot) against a local test server.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
echo "installing chromium (Debian package)..."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
command -v chromium
