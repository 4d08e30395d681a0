"""Log lines off the request's path (issue 21): request threads only queue their records (no
handler lock, no write); one listener thread writes them; a graceful stop drains the queue."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from crm_meta.ops import logqueue, logs, redaction

ROOT = Path(__file__).resolve().parents[2]


class Gate(logging.Handler):
    """A writing handler that cannot write until the test opens it (a stalled stderr)."""

    def __init__(self):
        super().__init__()
        self.open = threading.Event()
        self.entered = threading.Event()
        self.lines: list[str] = []

    def emit(self, record):
        self.entered.set()
        self.open.wait()
        self.lines.append(record.getMessage())


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.INFO)
    yield root
    logqueue.stop()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_stalled_writer_holds_no_request_thread_and_stop_drains_every_line(root_logger):
    gate = Gate()
    front = logqueue.queued(gate)
    assert front.lock is None  # Handler.acquire() takes nothing: callers share no lock
    root_logger.addHandler(front)
    log = logging.getLogger("crm_meta.test")
    log.info("first")
    assert gate.entered.wait(10)  # the listener is inside the writer, holding its lock, stalled

    def request_thread():
        for n in range(200):
            log.info("line %d", n)

    threads = [threading.Thread(target=request_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # Every request thread finished logging while the writer is still stalled.
    assert not any(thread.is_alive() for thread in threads) and gate.lines == []
    gate.open.set()
    logqueue.stop()  # the graceful stop: drains what was queued, then the listener ends
    assert len(gate.lines) == 1 + 4 * 200 and gate.lines[0] == "first"


def test_records_keep_their_request_fields_and_tracebacks_through_the_queue(client, root_logger):
    stream = io.StringIO()
    root_logger.addHandler(logs.queued(logs.handler("json", stream)))
    answer = client.get("/healthz", headers={"X-Request-ID": "through-the-queue"})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("crm_meta.test").exception("failed %s", "here")
    logqueue.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [request] = [line for line in lines if line.get("logger") == "crm_meta.request"]
    assert answer.headers["X-Request-ID"] == request["request_id"] == "through-the-queue"
    assert request["route"] == "/healthz" and request["status"] == 200
    [failed] = [line for line in lines if line.get("message") == "failed here"]
    assert "ValueError: boom" in failed["exc_info"]


def test_the_entry_points_logging_drains_at_exit():
    """`configure` (wsgi's call) queues; a process that ends normally wrote every line."""
    script = """
import logging, sys, threading
from crm_meta.ops import logqueue, logs, redaction
logs.configure({"TESTING": False, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
log = logging.getLogger("crm_meta.burst")
def burst():
    for n in range(500):
        log.info("line %d", n)
threads = [threading.Thread(target=burst) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
sys.exit(0)  # no logqueue.stop() here: the exit hook drains
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(lines) == 2000 and {line["logger"] for line in lines} == {"crm_meta.burst"}


def test_generated_request_ids_are_32_hex_digits_and_differ_across_a_fork():
    first, second = logs.new_request_id(), logs.new_request_id()
    assert first != second and len(first) == 32 and int(first, 16) >= 0
    script = """
import os, sys
from crm_meta.ops import logqueue, logs, redaction
parent = logs.new_request_id()
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, logs.new_request_id().encode()); os._exit(0)
os.wait()
child = os.read(read, 64).decode()
print(parent, child)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    parent, child = result.stdout.split()
    assert parent[:16] != child[:16]  # a forked worker draws its own prefix


def test_extras_are_redacted_on_the_writers_thread_and_never_written_in_clear(root_logger, monkeypatch):
    """Behind the queue, the request thread does not redact the record's extra fields: the
    writer's handler does, before formatting; nothing unredacted reaches the stream."""
    stream = io.StringIO()
    front = logs.queued(logs.handler("json", stream))
    root_logger.addHandler(front)
    redaction.install()  # as wsgi does after configure: the front needs no filter of its own
    assert not any(isinstance(f, redaction.RedactingFilter) for f in front.filters)
    assert redaction.guarded(front)
    threads = []
    real = redaction.redact_record
    monkeypatch.setattr(redaction, "redact_record",
                        lambda record: threads.append(threading.current_thread()) or real(record))
    secret = "EAAB" + "s3cr3t" * 5
    logging.getLogger("crm_meta.test").info("call with %s", f"access_token={secret}",
                                            extra={"graph": {"url": f"/me?access_token={secret}"},
                                                   "note": f"Bearer {secret}"})
    logqueue.stop()
    assert secret not in stream.getvalue()
    line = json.loads(stream.getvalue())
    assert line["message"] == "call with access_token=[REDACTED]"
    assert line["graph"] == {"url": "/me?access_token=[REDACTED]"} and line["note"] == "Bearer [REDACTED]"
    # The extras were redacted by the writer (the caller's thread redacts the message as the
    # record is made, and pytest's own capturing handler has its filter: those run here).
    assert any(thread is not threading.main_thread() for thread in threads)


def test_a_front_whose_writer_does_not_redact_gets_the_filter(root_logger):
    bare = logging.StreamHandler(io.StringIO())  # no RedactingFilter of its own
    front = logqueue.queued(bare)
    root_logger.addHandler(front)
    assert not redaction.guarded(front)
    redaction.install()
    assert any(isinstance(f, redaction.RedactingFilter) for f in front.filters)


def test_the_queued_record_is_a_rendered_copy_and_the_callers_record_is_left_alone():
    # Other handlers of the same logger see the record after the queue's front: prepare() must
    # work on a copy (as copy.copy made it: every attribute, the record's own class).
    class Custom(logging.LogRecord):
        pass

    args = {"n": 1}
    record = Custom("crm_meta.x", logging.INFO, __file__, 7, "n=%(n)s", (args,), None)
    record.status = 200
    record.nested = {"a": [1]}
    queued = logqueue.LockFreeQueueHandler(None).prepare(record)
    assert type(queued) is Custom and queued is not record
    assert (queued.msg, queued.args) == ("n=1", None)
    assert (record.msg, record.args) == ("n=%(n)s", args)
    assert {k: v for k, v in vars(queued).items() if k not in {"msg", "args"}} == \
        {k: v for k, v in vars(record).items() if k not in {"msg", "args"}}
    queued.status = 500
    assert record.status == 200
