#!/usr/bin/env bash
# Installs Debian's headless browser and its driver for the browser tests, if they are missing.
# The tests drive /usr/bin/chromium through /usr/bin/chromedriver with selenium (no downloaded browser build).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "installing chromium and chromium-driver from Debian..." >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
/usr/bin/chromium --version >&2
