#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for `make e2e` (the only browser this kind of machine
# can install: no download from elsewhere works). Does nothing when both are there.
set -euo pipefail

if [[ -x "${CHROMIUM:-/usr/bin/chromium}" && -x "${CHROMEDRIVER:-/usr/bin/chromedriver}" ]]; then
  exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-browser: need root or sudo for apt-get" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: read them only when the install needs them.
"${sudo[@]}" apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || {
  "${sudo[@]}" apt-get update -q >/dev/null
  "${sudo[@]}" apt-get install -y -q chromium chromium-driver >/dev/null
}
/usr/bin/chromium --version
