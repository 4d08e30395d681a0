"""The hashed lock files: complete, hashed, installed with --require-hashes, and a requirements
file changed without `make lock` (a merge of a colleague's new dependency) stops `make deps`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ["requirements-tools.lock", "requirements.lock", "requirements-dev.lock"]
SOURCES = ["requirements-tools.txt", "requirements.txt", "requirements-dev.txt"]


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "locks.py"), "check", str(root)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in LOCKS + SOURCES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_locks_cover_the_requirements():
    result = check(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_is_pinned_with_hashes(lock):
    text = (ROOT / lock).read_text()
    entry = r"^([A-Za-z0-9][\w.-]*)==\S+(?: ;[^\n\\]*)? \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)"
    entries = re.findall(entry, text, re.M)
    pinned = re.findall(r"^[A-Za-z0-9][\w.-]*==", text, re.M)
    assert entries and len(entries) == len(pinned)
    assert not re.search(r"^[A-Za-z0-9][\w.-]*(>=|<=|~=|>|<)", text, re.M)


def test_make_and_the_image_install_only_the_locks_with_hashes():
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements-dev.lock" in makefile
    assert "--require-hashes -r requirements-tools.lock" in makefile
    assert "--no-deps --require-hashes -r /tmp/requirements.lock" in dockerfile
    assert "requirements.txt" not in dockerfile


def test_a_new_requirement_without_make_lock_is_refused_by_name(checkout):
    with (checkout / "requirements.txt").open("a") as f:
        f.write("humanize==4.12.3\n")
    result = check(checkout)
    assert result.returncode == 1
    assert "humanize==4.12.3 (from requirements.txt) is not in requirements.lock" in result.stderr
    assert "make lock" in result.stderr


def test_a_changed_pin_or_a_removed_requirement_is_refused(checkout):
    source = checkout / "requirements-dev.txt"
    text = source.read_text()
    pytest_pin = re.search(r"^pytest==\S+$", text, re.M).group(0)
    source.write_text(text.replace(pytest_pin, "pytest==1.0.0"))
    assert "but requirements-dev.lock pins pytest==" in check(checkout).stderr
    source.write_text(text.replace(pytest_pin + "\n", ""))
    result = check(checkout)
    assert result.returncode == 1
    assert "requirements-dev.txt changed since requirements-dev.lock was made" in result.stderr


def test_comments_and_blank_lines_do_not_stale_a_lock(checkout):
    with (checkout / "requirements.txt").open("a") as f:
        f.write("\n# a note about the runtime dependencies\n")
    assert check(checkout).returncode == 0
