"""A case with processed exhibits survives export and import (issue 21): the
derivations (schema 5) come back with their chains and hashes, the imported case
verifies, and the import's verification really re-runs every chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.case import workflow
from core.case.archive import ArchiveVerificationError, export_case, import_case
from core.case.store import Case
from core.cli import main
from core.processing import make_step
from core.processing.operations.levels import Levels

STEPS = [
    make_step("crop", {"x": 64, "y": 32, "w": 300, "h": 280}),
    make_step("levels", {"black": 12, "white": 240, "gamma": 1.3}),
]


@pytest.fixture
def processed(tmp_path, astronaut_rgb) -> Path:
    """A case with Q1, Q1.1 = crop + levels of Q1, Q1.1.1 = unsharp of Q1.1."""
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut_rgb).save(photo, quality=90)
    folder = tmp_path / "case"
    with Case.create(folder, "2026-0021", "A. Examiner") as case:
        case.add_exhibits([photo], "probe")
        workflow.derive_exhibit(case, "Q1", STEPS, detect=False)
        workflow.derive_exhibit(case, "Q1.1", [make_step("unsharp")], detect=False)
    return folder


def _records(folder: Path) -> dict[str, dict]:
    with Case.open(folder, read_only=True) as case:
        return {d.mark: d.to_dict() for d in case.derivations.derivations()}


def test_derivations_survive_export_and_import_and_verify(processed, tmp_path):
    before = _records(processed)
    assert list(before) == ["Q1.1", "Q1.1.1"]
    zip_path = tmp_path / "case.zip"
    export_case(processed, zip_path)
    target = tmp_path / "imported"
    result = import_case(zip_path, target)
    assert result.warnings == ()
    after = _records(target)
    assert after == before  # chain, inputs, hashes, versions, who and when
    assert after["Q1.1"]["steps"] == [s.to_dict() for s in STEPS]
    with Case.open(target, read_only=True) as case:
        report = case.verify()
        assert report.intact, report.problems
        checks = case.derivations.check_all()
        assert [(c.mark, c.ok) for c in checks] == [("Q1.1", True), ("Q1.1.1", True)]
        assert all(c.recreated == c.recorded == c.stored for c in checks)
        assert [d.mark for d in case.derivations.lineage("Q1.1.1")] == [
            "Q1.1",
            "Q1.1.1",
        ]
        note = workflow.derived_note(case, "Q1.1.1")
    assert note is not None and note.startswith("Q1.1.1 is a processed copy of Q1")


def test_the_command_line_round_trip_keeps_the_chain(processed, tmp_path, capsys):
    zip_path, target = tmp_path / "cli.zip", tmp_path / "cli-imported"
    assert main(["case", "export", str(processed), str(zip_path)]) == 0
    assert main(["case", "import", str(zip_path), str(target)]) == 0
    capsys.readouterr()
    assert main(["case", "processed", str(target), "--check", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["intact"] is True
    assert listed["processed"] == [
        record | {"file_sha256": entry["file_sha256"], "lineage": entry["lineage"]}
        for record, entry in zip(
            _records(processed).values(), listed["processed"], strict=True
        )
    ]
    assert main(["case", "verify", str(target)]) == 0


def test_import_refuses_a_case_whose_chain_no_longer_recreates_its_pixels(
    processed, tmp_path, monkeypatch
):
    """The import's verification re-runs the chains: with levels computing other
    pixels here (as another version of it would), the archive is refused and
    nothing is left behind."""
    zip_path = tmp_path / "case.zip"
    export_case(processed, zip_path)
    real_run = Levels.run

    def other_levels(self, rgb, params, ctx):
        out = real_run(self, rgb, params, ctx)
        return np.ascontiguousarray(out[..., ::-1])  # red and blue swapped

    monkeypatch.setattr(Levels, "run", other_levels)
    target = tmp_path / "refused"
    with pytest.raises(ArchiveVerificationError) as raised:
        import_case(zip_path, target)
    assert "processed exhibit Q1.1" in str(raised.value)
    assert not target.exists()
