"""The keep-alive scheduler starts where the app serves, never in a `flask ...` command."""

import click

from crm_meta import create_app, jobs
from tests.helpers import testing_config


def test_commands_never_start_the_scheduler_servers_do(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(jobs, "start", started.append)
    config = testing_config("http://127.0.0.1:9", f"sqlite:///{tmp_path}/c.db", SCHEDULER_ENABLED=True)
    with click.Context(click.Command("flask")):
        create_app(config)  # how `flask <command>` loads the app: inside a click context
    assert started == []
    app = create_app(config)  # how gunicorn loads wsgi:app
    assert started == [app]
