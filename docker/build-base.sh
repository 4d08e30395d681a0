#!/usr/bin/env bash
# A local stand-in for `python:3.11-slim-bookworm`, made from Debian's own packages with
# debootstrap, for machines that reach Debian's archive but no container registry. Debian
# bookworm's Python is 3.11 (/usr/bin/python3.11), the same minor version as the official image;
# `python`, `python3`, `pip`-free venv support (python3-venv), CA certificates, netbase and tzdata
# are in, as in the official slim image. Cached: does nothing when the image already exists
# (FORCE=1 rebuilds it).
#
#   docker/build-base.sh [IMAGE]     (default localhost/crm-meta-base:python3.11-slim-bookworm)
#
# Needs root, debootstrap, and podman or docker. The Debian mirror is the one this host's apt
# uses (DEBIAN_MIRROR overrides it); downloaded packages are kept in DEBOOTSTRAP_CACHE.
set -euo pipefail

IMAGE="${1:-localhost/crm-meta-base:python3.11-slim-bookworm}"
SUITE=bookworm
CACHE="${DEBOOTSTRAP_CACHE:-/var/cache/crm-meta/debootstrap}"
ENGINE="${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}"
log() { printf 'build-base: %s\n' "$*" >&2; }

[[ -n "$ENGINE" ]] || { log "neither podman nor docker found"; exit 1; }
if [[ "${FORCE:-0}" != 1 ]] && "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE exists (FORCE=1 rebuilds it)"
    exit 0
fi
command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; exit 1; }
[[ "$(id -u)" == 0 ]] || { log "debootstrap needs root"; exit 1; }

# This host's Debian mirrors, in deb822 (debian.sources) or one-line (sources.list) form.
sources_file=""
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [[ -s "$f" ]] && grep -qE '^(URIs:|deb )' "$f" && { sources_file="$f"; break; }
done
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" && -n "$sources_file" ]]; then
    mirror="$(grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+)[^[:space:]]+/debian/?([[:space:]]|$)' "$sources_file" \
              | awk '{print $NF}' | head -n1)"
fi
[[ -n "$mirror" ]] || { log "no Debian mirror found in this host's apt sources; set DEBIAN_MIRROR"; exit 1; }

rootfs="$(mktemp -d /var/tmp/crm-meta-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$CACHE"
log "debootstrap $SUITE from the host's mirror into $rootfs (package cache $CACHE)"
debootstrap --variant=minbase --cache-dir="$CACHE" \
    --include=ca-certificates,netbase,tzdata,python3,python3-venv,python-is-python3 \
    "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
        log "debootstrap failed; its last lines:"; tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# apt inside builds uses the same Debian sources as this host (and nothing else of it).
if [[ "$sources_file" == */debian.sources ]]; then
    cp "$sources_file" "$rootfs/etc/apt/sources.list.d/debian.sources"
    : > "$rootfs/etc/apt/sources.list"
fi
# Slim like the official image: no package lists, caches, docs or man pages.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
       "$rootfs"/usr/share/locale/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*
find "$rootfs" -name __pycache__ -type d -prune -exec rm -rf {} +

log "importing the tree as $IMAGE"
tar --numeric-owner -C "$rootfs" -c . | "$ENGINE" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
log "built $IMAGE ($("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE") bytes)"
