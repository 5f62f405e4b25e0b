"""The LR with its cautions on the faces' image conditions, as the pair view and
the report give it (issue 20 item 5).  Tiny model, a calibration made for it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import core.calibration as calibration_module
from core.calibration import fit_calibration, quality_distribution, save_calibration
from core.case import workflow
from core.report.content import _strength_text
from tests.core.test_quality_calibration import face
from tests.core.test_report_quality import TinyModel, make_case
from xfr_desktop.panels.compare_panel import plain_words


def test_the_report_and_the_pair_view_give_the_lr_with_its_cautions(
    tmp_path, monkeypatch, astronaut_rgb
):
    """A calibrated model, a questioned face smaller than every reference face:
    the report's strength-of-evidence sentence and the pair view both carry the
    caution, and the pair view's LR is the report's."""
    model = TinyModel()
    rng = np.random.default_rng(2)
    fitted = fit_calibration(
        rng.normal(0.9, 0.03, 200),
        rng.normal(0.3, 0.1, 200),
        model_id=model.model_id,
        model_sha256=model.weights_sha256,
        reference="synthetic",
    )
    # reference faces 200-300 px apart: the astronaut's 43 px is below all of them
    faces = [face(200.0 + i) for i in range(101)]
    path = save_calibration(
        replace(fitted, quality=quality_distribution(faces, source="test")),
        tmp_path / "cal.json",
    )
    monkeypatch.setattr(calibration_module, "default_calibration_path", lambda _: path)
    with make_case(tmp_path, astronaut_rgb, masked=False) as case:
        comparison = workflow.compare(case, "Q1", "K1", model)
        strength = workflow.comparison_strength(case, comparison)
        text = _strength_text(case, comparison)
        listed = workflow.listed_strength(case, comparison)
    assert strength is not None and listed is not None
    assert listed.likelihood_ratio == strength.likelihood_ratio
    below = [c for c in strength.cautions if "questioned face's inter-eye" in c]
    assert len(below) == 1 and "below every face the calibration" in below[0]
    assert f"Caution: {below[0]}" in text
    shown = plain_words(comparison, strength)
    assert "<b>Caution:</b> The questioned face&#x27;s inter-eye distance" in shown
