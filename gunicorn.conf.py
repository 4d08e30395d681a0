"""Gunicorn settings for crm-meta; the deployment tunes them through environment variables."""

import os


def _int(name: str, default: int) -> int:
    """An integer setting from the environment, or the default when unset or empty."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# This machine only unless HOST says otherwise; the image sets HOST=0.0.0.0 (every interface
# of the container). PORT is the usual platform convention.
bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{_int('PORT', 8000)}"
# Worker processes; each builds its own app, and its scheduler in post_worker_init below.
workers = _int("GUNICORN_WORKERS", 2)
# Threaded workers: requests that wait on the Graph API do not block the whole process.
worker_class = "gthread"
# Threads per worker process.
threads = _int("GUNICORN_THREADS", 4)
# Seconds a worker may stay silent before the master kills and replaces it.
timeout = _int("GUNICORN_TIMEOUT", 30)
# Seconds in-flight requests get to finish after SIGTERM before workers are killed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
# Seconds an idle keep-alive connection stays open (a proxy in front usually holds them).
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle a worker after this many requests (0 = never); jitter spreads the restarts.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
# Random extra requests added to max_requests per worker.
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 0)
# Build the app in each worker, never in the master: no connection or scheduler is shared by fork.
preload_app = False
# Access log to stdout, where the container runtime collects it.
accesslog = "-"
# One line per request, path without the query string: OAuth callbacks carry codes there.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
# Gunicorn's own messages to stderr.
errorlog = "-"
# Verbosity of gunicorn's own messages.
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# LOG_FORMAT=json (the image's default): every line is one JSON object. The app writes one line
# per request itself (with its request id), so gunicorn's access log is off, and gunicorn's own
# messages use the app's JSON formatter. The root logger is left without handlers: the app
# adds its own (crm_meta.ops.logs).
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    accesslog = None
    logconfig_dict = {
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["json_stderr"],
                               "propagate": False, "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False,
                                "qualname": "gunicorn.access"},
        },
        "handlers": {"json_stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                     "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": "crm_meta.ops.logs.JsonFormatter"}},
    }
# Peers whose X-Forwarded-Proto gunicorn believes; set to the proxy's address (or "*") behind one.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Heartbeat files in memory rather than on the container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# No runtime control socket: nothing uses gunicornc here and $HOME may not be writable.
control_socket_disable = True
# Process title shown by ps and top.
proc_name = "crm-meta"


def on_starting(server):
    """Redact secrets from every log record (gunicorn's own too) before anything is logged."""
    from crm_meta.ops.redaction import install

    install()


def post_worker_init(worker):
    """Each worker's scheduler, once its app is loaded (never in the master: nothing is shared
    by fork); SCHEDULER_ENABLED decides. Jobs coordinate through the database."""
    from crm_meta import jobs

    jobs.start_if_enabled(worker.wsgi)


def child_exit(server, worker):
    """Drop a dead worker's metric files when prometheus_client runs in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
