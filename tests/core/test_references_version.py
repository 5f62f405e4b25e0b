"""The bibliography (core.references) and the running code's version and commit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import core
from core import version
from core.explain import infos
from core.references import REFERENCES

ROOT = Path(core.__file__).resolve().parent.parent


def test_no_file_number_is_cited_instead_of_the_paper():
    offenders = []
    for package in ("core", "xfr_desktop"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines()):
                if re.search(r"\bpapers? 00\d", line, re.IGNORECASE):
                    offenders.append(f"{relative}:{number + 1}: {line.strip()}")
    assert offenders == []


def test_every_explainer_reference_is_in_the_bibliography():
    for info in infos():
        assert info.reference, info.method_id
        assert info.reference in REFERENCES, (info.method_id, info.reference)
    for key, reference in REFERENCES.items():
        assert reference.key == key
        assert str(reference.year) in reference.short or reference.short.endswith("b")


def test_core_version_has_one_source():
    assert core.__version__ == version.__version__


def _run_copy(folder: Path) -> str:
    """source_commit() of a copy of core/version.py at ``folder``/core."""
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('v', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(module.source_commit())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder / "core" / "version.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_source_commit_outside_a_checkout_is_not_recorded(tmp_path):
    (tmp_path / "core").mkdir()
    shutil.copy(ROOT / "core" / "version.py", tmp_path / "core" / "version.py")
    assert _run_copy(tmp_path) == "not recorded"
    # a bundle records the commit it was built from
    (tmp_path / "core" / "_build_commit.txt").write_text("0123abc\n")
    assert _run_copy(tmp_path) == "0123abc"


@pytest.mark.skipif(
    not (ROOT / ".git").exists() or not shutil.which("git"), reason="no git checkout"
)
def test_source_commit_in_a_checkout_is_head():
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    commit = version.source_commit()
    assert commit in (head, head + "-dirty")
    assert version.source_commit() is commit  # cached
