"""The README's layout section matches the tree (issue 15): every file it names exists, and every
package, module and test folder of the tree is named in it, so a new engineer can trust it."""

from __future__ import annotations

import re

from tests.helpers.settings import ROOT

README = ROOT / "README.md"


def layout() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def words(text: str) -> set[str]:
    """Every name in the text; `graph.py` and `crm_meta/meta/` count as their parts."""
    return set(re.findall(r"\w+", text))


def stems(folder: str) -> set[str]:
    return {path.stem for path in (ROOT / folder).glob("*.py") if path.stem != "__init__"}


def packages(folder: str) -> set[str]:
    """The names of the packages below `folder`, at any depth."""
    return {path.parent.name for path in (ROOT / folder).rglob("*/__init__.py")}


def test_every_file_the_layout_names_exists():
    files = {path.name for folder in ("crm_meta", "meta_sandbox", "tests")
             for path in (ROOT / folder).rglob("*.py")} | {path.name for path in ROOT.glob("*.py")}
    named = set(re.findall(r"[\w.]+\.py\b", layout()))
    assert named, "the layout names no module"
    assert named - files == set()


def package_folders(folder: str) -> list[str]:
    """`folder` and every package below it, as paths relative to the root."""
    return [folder, *sorted(path.parent.relative_to(ROOT).as_posix()
                            for path in (ROOT / folder).rglob("*/__init__.py"))]


def test_every_package_module_and_test_folder_is_named():
    mentioned = words(layout())
    expected = {
        "crm_meta packages": packages("crm_meta"),
        **{f"{folder} modules": stems(folder) for folder in package_folders("crm_meta")},
        "meta_sandbox modules": stems("meta_sandbox"),
        "test folders": packages("tests"),
    }
    missing = {what: sorted(names - mentioned) for what, names in expected.items()}
    assert missing == dict.fromkeys(expected, [])


def test_the_layout_needs_no_catch_all_line():
    """Every module is placed in a package that says what it is (issue 21): no `crm_meta/*.py`."""
    assert not re.search(r"\*\.py|crm_meta/\*", layout())
    loose = stems("crm_meta")
    assert loose == {"app", "runtime", "jobs"}, "only composition and process roles stay loose"
