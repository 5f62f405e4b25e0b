"""The report's processing log (issue 21): a processed exhibit's chain, hashes and
re-run result are printed, the exhibits list and the comparisons say which images
are processed, and a case without processing still says no enhancement was
applied.  Tiny model, no dlib: fast."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader
from skimage import data

from core import wording
from core.case import workflow
from core.case.store import Case
from core.faces.detect import Face
from core.processing import make_step
from core.report.api import generate_report
from core.report.content import ReportRequest, gather_content
from core.report.layout import Styles
from core.report.processing_content import gather_processing
from core.report.sections import processing
from tests.gui.tiny_case import tiny_model_class

TinyModel = tiny_model_class("tiny-report-processing", "cosine", 0.5)
SHOTS = Path("/work/shots21/report")
LEVELS = {"black": 12, "white": 235, "gamma": 1.25}
UNSHARP = {"radius": 2.5, "amount": 0.75, "threshold": 3}
# the astronaut's face, roughly: a box and five landmarks in dlib's order
FACE = Face(
    (160.0, 40.0, 280.0, 190.0),
    np.array([[250, 100], [230, 100], [190, 100], [170, 100], [210, 150]], float),
    None,
    1.0,
    "manual",
)
GREY_FACE = Face(
    (40.0, 40.0, 160.0, 160.0),
    np.array([[130, 80], [110, 80], [70, 80], [90, 80], [100, 120]], float),
    None,
    1.0,
    "manual",
)


def pdf_text(path: Path) -> str:
    """The PDF's text as pypdf reads it, page headers and footers left out (a
    paragraph across a page break reads as one), whitespace collapsed."""
    text = " ".join(
        (page.extract_text() or "")
        for page in PdfReader(io.BytesIO(path.read_bytes())).pages
    )
    text = re.sub(r"Case \S+ · report \w+\s+page \d+ of \d+", " ", text)
    text = text.replace("XFR Desktop examiner report", " ")
    return " ".join(text.split())


def plain(text: str) -> str:
    """A wording sentence as pdftotext gives it back (no markup, one space)."""
    return " ".join(text.replace("<i>", "").replace("</i>", "").split())


def make_case(folder: Path, *, process: bool) -> Case:
    case = Case.create(
        folder / "case", "2026-21", "A. Examiner", sequential_unmasking=False
    )
    probe = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).save(probe)
    grey = folder / "k1.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(grey)
    case.add_exhibits([probe], "probe")
    case.add_exhibits([grey], "gallery")
    case.set_faces("K1", [GREY_FACE], detector="manual")
    if process:
        steps = [make_step("levels", LEVELS), make_step("unsharp", UNSHARP)]
        case.derivations.derive("Q1", steps)
        case.set_faces("Q1.1", [FACE], detector="manual")
        workflow.compare(case, "Q1.1", "K1", TinyModel())
    else:
        case.set_faces("Q1", [FACE], detector="manual")
        workflow.compare(case, "Q1", "K1", TinyModel())
    return case


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, str, dict]:
    folder = tmp_path_factory.mktemp("report-processing")
    with make_case(folder, process=True) as case:
        derivation = case.derivations.derivation("Q1.1")
        facts = {
            "derivation": derivation,
            "stored": case.exhibit("Q1.1").sha256,
            "source": case.exhibit("Q1").sha256,
            "note": workflow.derived_note(case, "Q1.1"),
        }
        out = folder / "report.pdf"
        generate_report(case, out, ReportRequest(model=TinyModel()))
    # pages to look at, where the screenshot folder exists (the lead's)
    if shutil.which("pdftoppm") and SHOTS.parent.is_dir():
        SHOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-r", "60", "-png", str(out), str(SHOTS / "report")],
            check=True,
        )
    return out, pdf_text(out), facts


def section(text: str, start: str, end: str) -> str:
    """The text from the heading ``start`` to the next heading ``end``."""
    begin = text.index(start)
    return text[begin : text.index(end, begin)]


def test_the_processing_log_states_every_step_and_parameter(reported):
    _out, text, _facts = reported
    log = section(text, "Processing log", "Method and tools")
    for name in ("Levels and gamma", "Unsharp mask"):
        assert name in log
    assert "levels" in log and "unsharp" in log  # the ids, as the CLI spells them
    for key, value in {**LEVELS, **UNSHARP}.items():
        assert f"{key} = {value:g}" in log, key
    # the defaults are printed too: every parameter the chain ran with
    assert "output_black = 0" in log and "output_white = 255" in log
    assert log.index("Levels and gamma") < log.index("Unsharp mask")  # the order
    assert "rounded half to even" in log  # the operations' own sentences
    assert "Q1 → Q1.1" in log


def test_the_processing_log_states_the_hashes_and_versions(reported):
    _out, text, facts = reported
    log = section(text, "Processing log", "Method and tools")
    derivation = facts["derivation"]
    for sha256 in (
        derivation.output_sha256,
        derivation.source_pixels_sha256,
        facts["source"],
        facts["stored"],
    ):
        assert sha256 in log
    assert derivation.output_sha256 != facts["stored"]  # pixels' and file's differ
    for library, version in derivation.libraries.items():
        if library.endswith(" cpu"):  # the processor features, a row of their own
            assert f"{library.removesuffix(' cpu')}: {version}" in log
        elif library != "platform":
            assert f"{library} {version}" in log
    assert f"XFR Desktop {derivation.software_version}" in log
    assert f"{derivation.created} by {derivation.created_by}" in log


def test_the_processing_log_states_the_rerun_and_the_statements(reported):
    _out, text, facts = reported
    log = section(text, "Processing log", "Method and tools")
    ok = plain(wording.processing_rerun_ok("Q1.1", facts["derivation"].output_sha256))
    assert ok in log
    assert "NOT re-created" not in log
    assert plain(wording.NON_GENERATIVE_STATEMENT) in log
    assert plain(wording.PROCESSING_OUT_OF_SCOPE) in log
    applied = section(text, "Processing applied •", "Processing log")
    assert "No enhancement" not in applied
    assert "Q1.1 from Q1 (levels and gamma, unsharp mask)" in applied
    # the EXIF / alignment lines stay
    assert "aligned on its five landmarks" in applied


def test_processed_exhibits_are_marked_where_they_appear(reported):
    _out, text, facts = reported
    received = section(text, "Evidence received", "Analysis")
    assert plain(wording.processed_from_text("Q1.1", "Q1")) in received
    assert "Q1 — processed" not in received  # the original is not marked
    comparisons = section(text, "Comparisons", "Verification")
    assert "Processed image: " + plain(facts["note"]) in comparisons
    # the examiner's analysis and the quality measured are of the processed image
    analysis = section(text, "Analysis and suitability", "Processing applied •")
    assert analysis.count("Processed image: " + plain(facts["note"])) == 2


def test_a_failed_rerun_is_printed_as_one(tmp_path):
    with make_case(tmp_path, process=True) as case:
        content = gather_content(case, ReportRequest())
        stored = case.evidence_path(case.exhibit("Q1.1"))
        stored.chmod(0o644)
        stored.write_bytes(stored.read_bytes()[:-40])  # the stored PNG damaged
        (damaged,) = gather_processing(case)
    assert not damaged.rerun_ok
    assert damaged.rerun and all("NOT re-created" in line for line in damaged.rerun)
    assert any("the image of Q1.1" in line for line in damaged.rerun), damaged.rerun
    styles = Styles()
    for item, wanted in ((content.processed[0], True), (damaged, False)):
        changed = dataclasses.replace(content, processed=(item,))
        story = processing.lay_out(changed, styles)
        words = " ".join(
            getattr(f, "getPlainText", lambda: "")() for f in _flatten(story)
        )
        assert ("re-created the pixels of Q1.1 bit for bit" in words) is wanted
        assert ("NOT re-created" in words) is not wanted


def _flatten(story):
    """Every paragraph in a story, tables and KeepTogether opened."""
    for flowable in story:
        inner = getattr(flowable, "_content", None)
        cells = getattr(flowable, "_cellvalues", None)
        if inner is not None:
            yield from _flatten(inner)
        elif cells is not None:
            for row in cells:
                yield from _flatten(row)
        else:
            yield flowable


def test_a_case_without_processing_says_no_enhancement(tmp_path):
    with make_case(tmp_path, process=False) as case:
        assert gather_processing(case) == ()
        out = tmp_path / "plain.pdf"
        generate_report(case, out, ReportRequest(model=TinyModel()))
    text = pdf_text(out)
    applied = section(text, "Processing applied •", "Method and tools")
    assert plain(wording.no_enhancement_text()) in applied
    assert "Processing log" not in text
    assert "processed from" not in text
    assert "Processed image:" not in text
    assert plain(wording.PROCESSING_OUT_OF_SCOPE) in applied


def test_what_a_step_read_and_an_unknown_operation_are_put_in_words():
    from core.report.processing_content import _step

    inputs = {
        "frames": [
            {"offset": -1, "frame_number": 41, "frame_sha256": "a" * 64},
            {
                "offset": 1,
                "frame_number": 43,
                "frame_sha256": "b" * 64,
                "shift": [0.5, -0.25],
            },
        ],
        "missing_offsets": [2],
    }
    step = _step(1, {"op": "levels", "version": 1, "params": {"black": 3}}, inputs)
    assert step.read == (
        f"frame 41 (offset -1), decoded pixels SHA-256 {'a' * 64}",
        f"frame 43 (offset +1), decoded pixels SHA-256 {'b' * 64}, shifted by "
        "(0.50, -0.25) pixels to register it",
        "offsets +2 asked for but not in the video (left out of the average)",
    )
    assert step.params_text == "black=3"
    assert step.params[0].meaning == "input value that becomes output_black"
    gone = _step(2, {"op": "retired_op", "version": 3, "params": {"k": [1, 2]}}, {})
    assert (gone.name, gone.version, gone.params_text) == ("retired_op", 3, "k=1,2")
    assert gone.description == wording.PROCESSING_OPERATION_UNKNOWN
    assert gone.read == ()
