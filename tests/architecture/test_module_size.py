"""No module of the product is over 300 lines (issue 15): past that, a module holds more than one
idea, and the next engineer reads it all to change one. Split it by what its parts do.

Counted: every Python file of crm_meta/ and meta_sandbox/, and the top-level modules (config.py,
wsgi.py, gunicorn.conf.py). Tests, benchmarks, scripts and migrations are not product modules.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 300


def product_modules() -> list[Path]:
    found = [*ROOT.joinpath("crm_meta").rglob("*.py"), *ROOT.joinpath("meta_sandbox").rglob("*.py"),
             *ROOT.glob("*.py")]
    return sorted(path for path in found if "__pycache__" not in path.parts)


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_count_sees_the_product():
    names = {path.relative_to(ROOT).as_posix() for path in product_modules()}
    assert {"config.py", "wsgi.py", "crm_meta/app.py", "crm_meta/meta/graph.py",
            "meta_sandbox/state.py"} <= names


def test_no_product_module_is_over_300_lines():
    oversize = {path.relative_to(ROOT).as_posix(): count for path in product_modules()
                if (count := line_count(path)) > LIMIT}
    assert oversize == {}, f"modules over {LIMIT} lines: {oversize}"
