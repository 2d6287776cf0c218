#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing (tests start their own instances).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
echo "installing redis-server (Debian package)..."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server >/dev/null
# The package starts a system instance; tests use their own, so stop it.
$SUDO systemctl disable --now redis-server >/dev/null 2>&1 || $SUDO service redis-server stop >/dev/null 2>&1 || true
command -v redis-server
