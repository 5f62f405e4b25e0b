"""scripts/typecheck.py: the type-check baseline may only shrink (issue 17)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def typecheck(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "typecheck", ROOT / "scripts" / "typecheck.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"core/a.py": 2}))
    monkeypatch.setattr(module, "BASELINE", baseline)
    return module


def _errors(typecheck, monkeypatch, errors):
    monkeypatch.setattr(typecheck, "run_mypy", lambda: (1 if errors else 0, errors))


def test_a_new_error_fails_and_is_listed(typecheck, monkeypatch, capsys):
    _errors(typecheck, monkeypatch, [("core/b.py", "3: error X  [arg-type]")])
    assert typecheck.main([]) == 1
    out = capsys.readouterr().out
    assert "core/b.py:3: error X" in out and "baseline allows 0" in out


def test_errors_within_the_baseline_pass(typecheck, monkeypatch, capsys):
    _errors(typecheck, monkeypatch, [("core/a.py", "1: e"), ("core/a.py", "2: e")])
    assert typecheck.main([]) == 0
    assert "none new" in capsys.readouterr().out


def test_update_lowers_the_baseline_and_never_raises_it(typecheck, monkeypatch):
    _errors(typecheck, monkeypatch, [("core/a.py", "1: e")])
    assert typecheck.main(["--update"]) == 0
    assert json.loads(typecheck.BASELINE.read_text()) == {"core/a.py": 1}
    _errors(typecheck, monkeypatch, [("core/a.py", "1: e"), ("core/a.py", "2: e")])
    assert typecheck.main(["--update"]) == 1  # growth refused, baseline kept
    assert json.loads(typecheck.BASELINE.read_text()) == {"core/a.py": 1}


def test_mypy_that_does_not_run_is_never_a_pass(typecheck, monkeypatch):
    broken = subprocess.CompletedProcess([], 2, stdout="", stderr="bad config")
    monkeypatch.setattr(typecheck.subprocess, "run", lambda *a, **k: broken)
    with pytest.raises(SystemExit, match="mypy did not run: bad config"):
        typecheck.run_mypy()


def test_the_baseline_names_only_files_that_exist():
    """A file moved away must leave the baseline: its allowance would pass on to
    any new file at that path."""
    baseline = json.loads((ROOT / "scripts" / "mypy-baseline.json").read_text())
    assert sorted(name for name in baseline if not (ROOT / name).is_file()) == []
