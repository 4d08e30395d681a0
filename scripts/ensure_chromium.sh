#!/usr/bin/env bash
# Make Debian's Chromium available for the browser tests (Playwright drives /usr/bin/chromium).
# Installs it when running as root with apt; otherwise says so, and the e2e tests skip
# (or fail, under REQUIRE_BROWSER=1 as in CI).
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    && exit 0
fi
echo "WARNING: /usr/bin/chromium is missing and cannot be installed here; browser tests will skip." >&2
exit 0
