"""The README's "Layout" map against the tree (issue 12): every folder and file it names exists,
and every package of the four roots and every module of ``monitor/`` is named in it, so the map
cannot silently fall behind a move."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOTS = ("monitor", "probes", "notifiers", "npsp_common")
PATH = re.compile(r"(?<![\w./-])((?:[a-z_]+/)+(?:[\w.-]+\.(?:py|md))?)")


def layout() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Layout\n")
    return readme[start : readme.index("\n## ", start + 1)]


def test_every_path_the_map_names_exists() -> None:
    named = set(PATH.findall(layout()))
    assert len(named) > 20, named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == [], f"the Layout names paths that are not in the tree: {missing}"


def test_every_package_and_every_module_of_monitor_is_named() -> None:
    text = layout()
    packages = sorted(
        f"{init.parent.relative_to(ROOT).as_posix()}/"
        for root in ROOTS
        for init in (ROOT / root).rglob("__init__.py")
    )
    unnamed = [p for p in packages if p not in text]
    assert unnamed == [], f"packages missing from the Layout: {unnamed}"
    words = set(re.findall(r"\w+", text))
    modules = sorted(
        m.stem for m in (ROOT / "monitor").glob("*.py") if m.stem not in ("__init__", "__main__")
    )
    assert [m for m in modules if m not in words] == []


def test_the_map_fails_on_a_path_that_is_gone() -> None:
    """The check itself: a name that is not in the tree is caught."""
    assert not (ROOT / "monitor/http_api.py").exists()
    assert "monitor/http_api.py" in PATH.findall("see monitor/http_api.py here")
