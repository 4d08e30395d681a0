# crm-meta production image: gunicorn serving wsgi:app on port 8000 as uid 10001, under tini.
# Build: `make image` (Docker or podman; it passes the build host's pip settings as secrets).
# By hand: docker build -t crm-meta .     Run: see docs/deploy.md (or docker compose up).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtualenv with the hashed lock, the code, compiled translations ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The lock first so code changes reuse the cached dependency layer. Every package, transitive
# ones included, pinned with its hashes (`make lock`); --no-deps: the lock is the whole set.
COPY requirements.lock /tmp/requirements.lock
# The build host's pip settings (index, proxy) and CA bundle, when `make image` passes them as
# build secrets: mounted under /run/secrets for this one step, never written to a layer.
# Without them (a plain `docker build` on a host that reaches PyPI) pip uses its defaults.
# pip's download cache is a build cache mount (kept by the engine between builds, never in a
# layer), so a changed lock downloads only what changed.
RUN --mount=type=secret,id=pipconf,required=false \
    --mount=type=secret,id=pip_ca,required=false \
    --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    PIP_CONFIG_FILE=/run/secrets/pipconf \
    pip install --no-deps --require-hashes -r /tmp/requirements.lock \
 && pip uninstall -q -y pip setuptools
WORKDIR /app
COPY . .
# Compiled catalogues (.mo) are not committed; build them here. Bytecode is compiled once here
# (the app's user cannot write it at run time), which shortens every start.
RUN pybabel -q compile -d translations \
 && chmod 0755 docker/entrypoint.sh \
 && python -m compileall -q -j 0 /app /opt/venv >/dev/null

# ---- runtime: the same base, tini, the virtualenv and the app ----
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    HOST=0.0.0.0 \
    LOG_FORMAT=json \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
# tini (Debian's) runs as PID 1: it forwards SIGTERM to the server or a one-off command and
# reaps orphans. pip, setuptools and wheel leave the base (and its ensurepip copies): nothing
# installs packages at run time. uid/gid 10001, numeric below so runAsNonRoot can verify it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && (python -m pip uninstall -q -y pip setuptools wheel 2>/dev/null || true) \
 && rm -rf /usr/local/bin/pip /usr/local/bin/pip3* /usr/local/bin/wheel \
           /usr/local/lib/python3*/ensurepip/_bundled /usr/lib/python3*/ensurepip/_bundled \
           /usr/share/python-wheels \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# Code stays owned by root (read-only for the app); only instance/ (embedded SQLite) is writable.
COPY --from=build /app /app
# /tmp/prometheus: per-worker metric files, so /metrics adds up every gunicorn worker (the
# entrypoint creates it again when /tmp is a tmpfs, as with a read-only root filesystem).
RUN mkdir -p /app/instance /tmp/prometheus && chown 10001:10001 /app/instance /tmp/prometheus
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness: /healthz must answer 2xx (urllib raises on anything else); slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
