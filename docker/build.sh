#!/usr/bin/env bash
# `make image`: build the production image with Docker (when an engine answers) or podman.
#
#   docker/build.sh [TAG]          default crm-meta:latest
#
# The base is `python:3.11-slim-bookworm` (the Dockerfile's PYTHON_IMAGE). When it is neither
# local nor pullable (no registry reachable), docker/build-base.sh makes a stand-in from Debian's
# packages (once; it is reused). PYTHON_IMAGE=... forces a base.
#
# pip inside the build trusts what pip on this host trusts: this host's pip settings that
# matter in a container (index, extra http(s) indexes, trusted hosts, proxy, timeout) and its
# CA bundle go in as build secrets, mounted for the install step only, never written to a layer
# (`make image-check` looks for them in every layer).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${1:-crm-meta:latest}"
OFFICIAL=python:3.11-slim-bookworm
STANDIN=localhost/crm-meta-base:python3.11-slim-bookworm
log() { printf 'image: %s\n' "$*" >&2; }

if [[ -n "${CONTAINER_ENGINE:-}" ]]; then
    engine="$CONTAINER_ENGINE"
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
elif command -v podman >/dev/null; then
    engine=podman
else
    log "no container engine: install Docker, or podman (scripts/ensure_podman.sh)"
    exit 1
fi
engine_name="$(basename "$engine")"

base="${PYTHON_IMAGE:-}"
if [[ -z "$base" ]]; then
    if "$engine" image inspect "$OFFICIAL" >/dev/null 2>&1; then
        base="$OFFICIAL"
    elif "$engine" image inspect "$STANDIN" >/dev/null 2>&1; then
        base="$STANDIN"      # made earlier because no registry answered; FORCE_PULL=1 retries
        if [[ "${FORCE_PULL:-0}" == 1 ]] && timeout 120 "$engine" pull -q "$OFFICIAL" >/dev/null 2>&1; then
            base="$OFFICIAL"
        fi
    elif timeout 120 "$engine" pull -q "$OFFICIAL" >/dev/null 2>&1; then
        base="$OFFICIAL"
    else
        log "$OFFICIAL cannot be pulled here: building a stand-in from Debian's packages"
        CONTAINER_ENGINE="$engine" docker/build-base.sh "$STANDIN"
        base="$STANDIN"
    fi
fi

secrets_dir="$(mktemp -d)"
trap 'rm -rf "$secrets_dir"' EXIT
chmod 700 "$secrets_dir"
# The host's pip settings as pip sees them (files and PIP_* variables); local paths (find-links,
# file:// indexes, constraints) mean nothing in the container and are left out.
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
"$PYTHON" - "$secrets_dir" <<'PY'
import os, shutil, subprocess, sys
from pathlib import Path

out = Path(sys.argv[1])
try:
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                            text=True, timeout=60).stdout
except (OSError, subprocess.SubprocessError):
    listed = ""
settings = {}
for line in listed.splitlines():
    key, _, value = line.partition("=")
    section, _, name = key.rpartition(".")
    if section in ("global", "install", ":env:") and value:
        settings.setdefault(name, value.strip().strip("'\""))   # files first, as pip merges
keep = {}
for name in ("index-url", "trusted-host", "proxy", "timeout", "retries"):
    if settings.get(name):
        keep[name] = settings[name]
extra = [u for u in settings.get("extra-index-url", "").split() if u.startswith(("http://", "https://"))]
if extra:
    keep["extra-index-url"] = " ".join(extra)
if keep.get("index-url", "https://").startswith("file:"):
    del keep["index-url"]
ca = settings.get("cert") or os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") \
    or os.environ.get("SSL_CERT_FILE")
if ca and os.path.isfile(ca):
    shutil.copyfile(ca, out / "pip_ca")
    keep["cert"] = "/run/secrets/pip_ca"
(out / "pip.conf").write_text("[global]\n" + "".join(f"{k} = {v}\n" for k, v in keep.items()))
PY

# make image-check also needs compose's postgres/redis stand-ins there: built meanwhile.
services_pid=""
if [[ "$base" == "$STANDIN" && "${STANDIN_SERVICES:-0}" == 1 ]]; then
    CONTAINER_ENGINE="$engine" docker/standin/build.sh "$STANDIN" >/dev/null &
    services_pid=$!
fi

args=(build -t "$TAG" --build-arg "PYTHON_IMAGE=$base" --secret "id=pipconf,src=$secrets_dir/pip.conf")
[[ -f "$secrets_dir/pip_ca" ]] && args+=(--secret "id=pip_ca,src=$secrets_dir/pip_ca")
if [[ "$engine_name" == podman ]]; then
    # Docker's image format keeps HEALTHCHECK (the OCI format drops it); no registry to pull from.
    args+=(--format docker --pull=never --jobs 2)   # the two stages side by side
else
    export DOCKER_BUILDKIT=1
fi
previous="$("$engine" image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)"
log "building $TAG with $engine_name on $base ($SECONDS s)"
"$engine" "${args[@]}" ${IMAGE_BUILD_ARGS:-} .
[[ -z "$services_pid" ]] || wait "$services_pid"
# The image this tag named before, now untagged, goes (the stage cache stays for the next build).
current="$("$engine" image inspect --format '{{.Id}}' "$TAG")"
if [[ -n "$previous" && "$previous" != "$current" ]]; then
    "$engine" rmi "$previous" >/dev/null 2>&1 || true
fi
log "built $TAG ($("$engine" image inspect --format '{{.Size}}' "$TAG") bytes, $SECONDS s)"
