"""What the GUI tests share, written once: a tiny registered FaceModel (8x8 chips,
no dlib, loads in milliseconds), one fixed face put in place of the face finder,
synthetic images, and a MainWindow with a case open.

Each test file keeps its own model id, metric and threshold on purpose (a distance
model for the candidates, a cosine one elsewhere); this module only builds them.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.case import workflow
from core.case.store import Case
from core.explain.base import ExplanationResult, get
from core.faces.detect import Face
from core.models import FaceModel, ModelInfo, ModelRegistry, Preprocessing, Threshold
from core.models.base import Metric
from xfr_desktop.main_window import MainWindow
from xfr_desktop.panels.compare_panel import ComparePanel
from xfr_desktop.settings import Settings

WAIT_MS = 20_000
DISTANCE_MODEL_ID = "tiny-euclidean"
# One face in the middle of a 200x200 image, landmarks in dlib's 5-point order.
FIXED_FACE = Face(
    bbox=(40.0, 40.0, 160.0, 160.0),
    landmarks5=np.array(
        [[130.0, 80.0], [110.0, 80.0], [70.0, 80.0], [90.0, 80.0], [100.0, 120.0]]
    ),
    source="manual",
)


def tiny_model_class(
    model_id: str,
    metric: Metric = "cosine",
    threshold: float = 0.5,
    *,
    name: str = "Tiny test model",
    weights: bytes = b"tiny test weights",
    seed: int | None = 0,
) -> type[FaceModel]:
    """A real, if useless, FaceModel class: 8x8 chips -> 4-d embeddings.

    ``seed`` fixes the linear layer's weights (None: torch's global generator as
    it stands, for tests that must not reseed it); ``weights`` stands in for the
    weights file whose SHA-256 the window shows and the case records.
    """
    weights_sha256 = hashlib.sha256(weights).hexdigest()

    class TinyModel(FaceModel):
        def __init__(self) -> None:
            if seed is not None:
                torch.manual_seed(seed)
            self.model_id = model_id
            self.display_name = name
            self.weights_sha256 = weights_sha256
            self.embedding_dim = 4
            self.preprocessing = Preprocessing(input_size=(8, 8))
            self.threshold = Threshold(metric, threshold, "test value")
            self.network = torch.nn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)
            )

    # the registry and tiny_registry read these without building a model
    TinyModel.model_id = model_id
    TinyModel.display_name = name
    TinyModel.weights_sha256 = weights_sha256
    return TinyModel


# 1:N decides on the distance, as dlib does (candidates, overlays, window layout).
TinyDistanceModel = tiny_model_class(
    DISTANCE_MODEL_ID,
    "euclidean",
    0.6,
    name="Tiny distance model",
    weights=b"tiny distance weights",
)


def tiny_registry(
    model_class: type[FaceModel], listed_name: str | None = None
) -> ModelRegistry:
    """A fresh registry holding only ``model_class`` (``listed_name``: the name in
    the model list, the model's own display name unless given)."""
    models = ModelRegistry()
    name = listed_name or model_class.display_name
    models.register(ModelInfo(model_class.model_id, name, "test", "tests"), model_class)
    return models


def one_fixed_face(case: Case, mark: str, **_: object) -> list:
    """Stands in for ``workflow.detect_faces``: the same face on every exhibit."""
    return case.set_faces(mark, [FIXED_FACE], detector="test")


def use_one_fixed_face(monkeypatch) -> None:
    """Intake finds ``FIXED_FACE`` on every image instead of running dlib."""
    monkeypatch.setattr(workflow, "detect_faces", one_fixed_face)


def write_images(folder: Path, names: list[str], seed: int | None = None) -> list[str]:
    """Random 200x200 RGB PNGs ``<folder>/<name>.png``; the paths, in order.

    One generator draws them all, so images of one call differ; without ``seed``
    it is seeded from the names, so that two calls (probes, then gallery) do not
    write the same pixels twice.
    """
    if seed is None:
        seed = zlib.crc32(" ".join(names).encode()) % 1000
    rng = np.random.default_rng(seed)
    for name in names:
        pixels = rng.integers(0, 256, (200, 200, 3), np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return [str(folder / f"{name}.png") for name in names]


def new_case(folder: Path, *, sequential_unmasking: bool = False) -> Path:
    """An empty case at ``folder`` (closed again, for the window to open).

    Unmasked unless asked: most GUI tests look at the model's results; the
    masking tests (test_gui_masking) ask for sequential unmasking."""
    Case.create(
        folder, "2026-0018", "A. Examiner", sequential_unmasking=sequential_unmasking
    ).close()
    return folder


def make_window(
    qtbot,
    registry: ModelRegistry,
    case_path: Path | None = None,
    *,
    model_id: str | None = None,
    show_dialogs: bool = True,
    wait_ms: int = WAIT_MS,
) -> MainWindow:
    """A shown MainWindow with its model loaded and, given ``case_path``, that
    case open.  ``model_id``: the registry's first model unless given;
    ``show_dialogs=False``: errors are recorded, not shown in a modal dialog."""
    window = MainWindow(
        model_id=model_id or registry.ids()[0],
        device="cpu",
        model_registry=registry,
        settings=Settings(),
    )
    window.errors.show_dialogs = show_dialogs
    qtbot.addWidget(window)  # closed (workers awaited) and deleted at teardown
    window.show()
    qtbot.waitUntil(lambda: window.model is not None, timeout=wait_ms)
    if case_path is not None:
        window.controller.open_case(case_path)
        qtbot.waitUntil(lambda: window.controller.case is not None, timeout=wait_ms)
    return window


def add_exhibits(
    qtbot, window: MainWindow, files: list[str], role: str, wait_ms: int = WAIT_MS
) -> None:
    """Add ``files`` as ``role`` through the controller and wait for the intake."""
    with qtbot.waitSignal(window.controller.intake_finished, timeout=wait_ms):
        window.controller.add_files(files, role)


def open_pair_window(qtbot, tmp_path: Path, monkeypatch) -> MainWindow:
    """A window with a case of one probe and two gallery images, a pair loaded."""
    use_one_fixed_face(monkeypatch)
    window = make_window(
        qtbot, tiny_registry(TinyDistanceModel), new_case(tmp_path / "case")
    )
    for names, role in ((["q1"], "probe"), (["k1", "k2"], "gallery")):
        add_exhibits(qtbot, window, write_images(tmp_path, names), role)
    qtbot.waitUntil(lambda: window.compare.loaded is not None, timeout=WAIT_MS)
    # nothing in flight that could replace the results a test shows
    busy = (window.controller._ranker, window.compare._loader, window._results_loader)
    qtbot.waitUntil(lambda: not any(r.is_busy() for r in busy), timeout=WAIT_MS)
    qtbot.wait(20)  # their last signals delivered
    return window


def explain(compare: ComparePanel, method: str, **params) -> ExplanationResult:
    """A real explainer's result for the loaded pair (run here: it is fast)."""
    assert compare.loaded is not None and compare.model is not None
    return get(method).explain(compare.loaded.pair, compare.model, params)
