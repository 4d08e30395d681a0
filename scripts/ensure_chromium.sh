#!/usr/bin/env bash
# Make Debian's Chromium (driven by Playwright at /usr/bin/chromium) and npm (which fetches
# axe-core for the accessibility checks) available to the browser tests. Installs what is
# missing when running as root with apt; otherwise says so, and the e2e tests skip (or fail,
# under REQUIRE_BROWSER=1 as in CI).
set -u
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    && exit 0
fi
echo "WARNING: ${missing[*]} missing and not installable here; browser tests will skip." >&2
exit 0
