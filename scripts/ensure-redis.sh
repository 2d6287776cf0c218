#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing (tests start their own instances).
# The package brings redis-cli (redis-tools), which the cluster and Sentinel tests use
# to create the cluster and to ask the sentinels; sentinels run as
# `redis-server <conf> --sentinel`, so the redis-sentinel package is not needed.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then exit 0; fi
echo "installing redis-server and redis-cli (Debian packages)..."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
# The package starts a system instance; tests use their own, so stop it.
$SUDO systemctl disable --now redis-server >/dev/null 2>&1 || $SUDO service redis-server stop >/dev/null 2>&1 || true
command -v redis-server
command -v redis-cli
