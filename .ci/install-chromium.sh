#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser test (test/browser/dashboard.test.ts), which
# drives /usr/bin/chromium through playwright-core. Nothing is downloaded outside the Debian archive:
# never `npx playwright install`. A no-op when Chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null | tail -n 1)"
  exit 0
fi
echo "installing chromium (the dashboard browser test needs it)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium was installed but /usr/bin/chromium is missing" >&2
  exit 1
fi
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null | tail -n 1)"
