#!/usr/bin/env bash
# ci/browser.sh — make Debian's headless Chromium and its WebDriver available for the dashboard tests.
#
# Installs the `chromium` and `chromium-driver` packages with apt-get when /usr/bin/chromium or
# /usr/bin/chromedriver is missing. Idempotent and fast when both are there (no apt-get at all).
# Needs root to install; prints one `browser:` line and exits 1 when it cannot.
# The tests find the browser at /usr/bin/chromium and the driver at /usr/bin/chromedriver
# (override with EXPQ_CHROMIUM / EXPQ_CHROMEDRIVER); nothing is downloaded at test time.
set -uo pipefail
export DEBIAN_FRONTEND=noninteractive
BROWSER=${EXPQ_CHROMIUM:-/usr/bin/chromium}
DRIVER=${EXPQ_CHROMEDRIVER:-/usr/bin/chromedriver}

if [ -x "$BROWSER" ] && [ -x "$DRIVER" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "browser: $BROWSER or $DRIVER is missing and installing needs root (apt-get install chromium chromium-driver)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: $BROWSER or $DRIVER is missing and there is no apt-get to install chromium with" >&2
  exit 1
fi
log=$(mktemp /tmp/expq-browser.XXXXXX)
# A fresh container has empty package lists; update only when the package is unknown.
if ! apt-cache show chromium-driver >/dev/null 2>&1; then
  apt-get update -q >"$log" 2>&1 || { echo "browser: apt-get update failed: $(tail -1 "$log")" >&2; rm -f "$log"; exit 1; }
fi
if ! apt-get install -y -q --no-install-recommends chromium chromium-driver >"$log" 2>&1; then
  echo "browser: apt-get install chromium chromium-driver failed: $(tail -1 "$log")" >&2
  rm -f "$log"; exit 1
fi
rm -f "$log"
if [ -x "$BROWSER" ] && [ -x "$DRIVER" ]; then
  exit 0
fi
echo "browser: installed chromium, but $BROWSER or $DRIVER is still missing" >&2
exit 1
