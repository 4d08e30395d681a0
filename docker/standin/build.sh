#!/usr/bin/env bash
# Build the compose check's stand-ins for postgres:16 and redis:7 on the base stand-in, unless
# they exist (see Containerfile). Used by `make image-check` where no registry answers. Tags
# carry a digest of this folder, so a change here builds new ones. Prints the compose
# variables that select them (POSTGRES_IMAGE=..., REDIS_IMAGE=...).
set -euo pipefail
cd "$(dirname "$0")"
ENGINE="${CONTAINER_ENGINE:-$(command -v podman || command -v docker)}"
BASE="${1:-localhost/crm-meta-base:python3.11-slim-bookworm}"
digest="$(cat Containerfile services.sh | sha256sum | cut -c1-12)"
extra=()
[[ "$(basename "$ENGINE")" == podman ]] && extra=(--format docker --pull=never)
for target in postgres:15 redis:7; do
    name="${target%%:*}"
    tag="localhost/crm-meta-standin-${target}-${digest}"
    if ! "$ENGINE" image inspect "$tag" >/dev/null 2>&1; then
        "$ENGINE" build -q "${extra[@]}" --build-arg "BASE=$BASE" --target "$name" -t "$tag" . >/dev/null
        echo "standin: built $tag" >&2
    fi
    echo "${name^^}_IMAGE=$tag"
done
