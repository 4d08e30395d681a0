#!/usr/bin/env bash
# Make a container engine available to `make image` / `make image-check`: a Docker engine that
# answers is used as it is; otherwise Debian's podman (with runc, netavark and aardvark-dns for
# compose's service names, iptables for published ports) and debootstrap (for the base
# stand-in) are installed when running as root with apt, and podman gets the settings this kind
# of machine needs:
#   - runc, not crun (crun: "cgroups in hybrid mode not supported" on these hosts);
#   - default ulimits the VM allows (nofile/nproc 20000; podman's defaults are refused here).
# Without root or apt it says what is missing and fails (image-check cannot run without it).
set -u
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exit 0
fi
packages=(podman runc netavark aardvark-dns iptables debootstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${missing[*]} for the image build and check..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || { echo "ERROR: could not install ${missing[*]}" >&2; exit 1; }
  else
    echo "ERROR: ${missing[*]} missing; install them (root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
conf=/etc/containers/containers.conf.d/50-crm-meta.conf
if [ "$(id -u)" = "0" ] && [ ! -f "$conf" ]; then
  mkdir -p "$(dirname "$conf")"
  cat > "$conf" <<'EOF'
# Written by crm-meta's scripts/ensure_podman.sh: what podman needs on this kind of machine.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
EOF
fi
exit 0
