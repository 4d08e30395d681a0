"""The hashed lock files and the requirements they come from (standard library only).

    python3 scripts/locks.py check            exit 1, naming the file and what to run, when a
                                              requirements file changed since its lock was made
                                              or pins something its lock does not hold
    python3 scripts/locks.py update UV        regenerate every lock with uv (`make lock`)

Each lock (`requirements*.lock`) pins every package, transitive ones included, with the sha256
of every file PyPI serves for it; `make` and the Dockerfile install it with --require-hashes.
A lock's first line records a digest of the requirement lines it was made from (comments and
blank lines aside), so a changed requirements file is caught whatever the files' times say
(a git checkout or merge sets them arbitrarily).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# lock -> (input, extra uv arguments). Order matters: the dev lock is constrained by the
# runtime lock, so tests run the very versions the image ships.
LOCKS = {
    "requirements-tools.lock": ("requirements-tools.txt", []),
    "requirements.lock": ("requirements.txt", []),
    "requirements-dev.lock": ("requirements-dev.txt", ["--constraint", "requirements.lock"]),
}
DIGEST_LINE = "# input-digest: "
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path, seen: set[Path] | None = None) -> list[str]:
    """The requirement lines of a file and of the files it includes with -r, normalized."""
    seen = seen if seen is not None else set()
    if path in seen:
        return []
    seen.add(path)
    lines: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            lines += requirement_lines(path.parent / line.split(None, 1)[1].strip(), seen)
        else:
            lines.append(re.sub(r"\s+", "", line))
    return lines


def digest(requirements: Path) -> str:
    return "sha256:" + hashlib.sha256("\n".join(requirement_lines(requirements)).encode()).hexdigest()


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a lock."""
    found = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def problems(lock_name: str, root: Path = ROOT) -> list[str]:
    """Why a lock no longer matches its requirements file (empty: it does)."""
    source_name, _ = LOCKS[lock_name]
    source, lock = root / source_name, root / lock_name
    if not lock.exists():
        return [f"{lock_name} is missing"]
    found = []
    locked = pins(lock)
    for line in requirement_lines(source):
        if line.startswith("-"):
            continue
        match = NAME.match(line.split(";", 1)[0])
        if not match:
            continue
        name, spec = canonical(match.group(1)), match.group(3)
        if name not in locked:
            found.append(f"{line} (from {source_name}) is not in {lock_name}")
        elif spec.startswith("==") and spec[2:] != locked[name]:
            found.append(f"{line} (from {source_name}) but {lock_name} pins {name}=={locked[name]}")
    head = lock.read_text().splitlines()[:1]
    if not found and (not head or head[0] != DIGEST_LINE + digest(source)):
        found.append(f"{source_name} changed since {lock_name} was made")
    return found


def check(root: Path = ROOT) -> int:
    found = [p for lock in LOCKS for p in problems(lock, root)]
    if not found:
        return 0
    print("The lock files are out of date with the requirements:", file=sys.stderr)
    for problem in found:
        print(f"  - {problem}", file=sys.stderr)
    print(
        "Run `make lock` (it re-resolves requirements*.txt into the hashed *.lock files), "
        "check the diff, and commit the .lock files with the requirements.",
        file=sys.stderr,
    )
    return 1


def update(uv: str) -> int:
    for lock_name, (source_name, extra) in LOCKS.items():
        command = [
            uv,
            "pip",
            "compile",
            "--quiet",
            source_name,
            "--output-file",
            lock_name,
            "--generate-hashes",
            "--universal",
            "--python-version",
            "3.11",
            "--custom-compile-command",
            "make lock",
            *extra,
        ]
        print("+", " ".join(command[1:]), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
        lock = ROOT / lock_name
        body = lock.read_text()
        lock.write_text(f"{DIGEST_LINE}{digest(ROOT / source_name)}\n{body}")
        if problems(lock_name):
            print("\n".join(problems(lock_name)), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["check"]:
        sys.exit(check(Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT))
    if sys.argv[1:2] == ["update"] and len(sys.argv) == 3:
        sys.exit(update(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
