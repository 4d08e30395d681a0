#!/usr/bin/env bash
# Make promtool (Debian's `prometheus` package) available to the alert-rule tests. Installs it
# when running as root with apt; otherwise says so, and the promtool tests skip (or fail, under
# REQUIRE_PROMTOOL=1 as in CI). The package's server is never started: policy-rc.d refuses it.
set -u
command -v promtool >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing prometheus (for promtool) for the alert-rule tests..."
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
  status=$?
  [ -n "$created" ] && rm -f "$policy"
  [ $status -eq 0 ] && command -v promtool >/dev/null 2>&1 && exit 0
fi
echo "WARNING: promtool missing and not installable here; alert-rule tests will skip." >&2
exit 0
