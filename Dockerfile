# crm-meta production image: gunicorn serving wsgi:app on port 8000 as a non-root user.
# Build: docker build -t crm-meta .   Run: see docs/deploy.md (or docker compose up).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtualenv with the pinned requirements, the code, compiled translations ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Requirements first so code changes reuse the cached dependency layer.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /app
COPY . .
# Compiled catalogues (.mo) are not committed; build them here when translations exist.
RUN if [ -d translations ]; then pybabel compile -d translations; fi \
 && chmod 0755 docker/entrypoint.sh

# ---- runtime: the same base, the virtualenv and the app, nothing else ----
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    HOST=0.0.0.0 \
    LOG_FORMAT=json \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# Code stays owned by root (read-only for the app); only instance/ (embedded SQLite) is writable.
COPY --from=build /app /app
# /tmp/prometheus: per-worker metric files, so /metrics adds up every gunicorn worker.
RUN mkdir -p /app/instance /tmp/prometheus && chown app:app /app/instance /tmp/prometheus
WORKDIR /app
USER app:app
EXPOSE 8000
# Liveness: /healthz must answer 2xx (urllib raises on anything else); slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
