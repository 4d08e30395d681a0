"""The factory only wires: the scheduler starts from the serving entry point, never in create_app."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

from crm_meta import jobs
from crm_meta.app import create_app
from tests.helpers.settings import testing_config

ROOT = Path(__file__).resolve().parents[2]


def gunicorn_settings():
    spec = importlib.util.spec_from_file_location("gunicorn_settings", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_factory_never_starts_the_scheduler(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(jobs, "start", started.append)
    create_app(testing_config("http://127.0.0.1:9", f"sqlite:///{tmp_path}/c.db", SCHEDULER_ENABLED=True))
    assert started == []


def test_each_gunicorn_worker_starts_one_when_scheduler_enabled(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(jobs, "start", started.append)
    post_worker_init = gunicorn_settings().post_worker_init
    on = create_app(testing_config("http://127.0.0.1:9", f"sqlite:///{tmp_path}/on.db",
                                   SCHEDULER_ENABLED=True))
    off = create_app(testing_config("http://127.0.0.1:9", f"sqlite:///{tmp_path}/off.db"))
    post_worker_init(SimpleNamespace(wsgi=on))
    post_worker_init(SimpleNamespace(wsgi=off))
    assert started == [on]
