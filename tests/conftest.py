"""Shared fixtures.

Tests never touch ../shared: real photos come from installed packages
(scikit-image's astronaut, matplotlib's grace_hopper.jpg) or are synthesised.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from core.models import FaceModel

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TESTS = Path(__file__).resolve().parent
_QT_FIXTURES = {"qtbot", "qapp", "no_qt_leaks"}
_DLIB_FIXTURES = {"dlib_model"}


def pytest_collection_modifyitems(config, items):
    """Mark tests by what they need, from the fixtures they request (directly or
    through other fixtures), so the markers cannot drift from the code:

    - ``gui``: opens Qt (tests/gui/ and any test using qtbot), so ``-m "not gui"``
      runs where no display stack is installed;
    - ``dlib``: uses the real dlib ResNet weights (``dlib_model``).  Tests that need
      dlib without the fixture (its detector, landmarks, a CLI run on photos) carry
      an explicit ``@pytest.mark.dlib``.
    """
    gui_dir = TESTS / "gui"
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if gui_dir in Path(str(item.path)).parents or _QT_FIXTURES & fixtures:
            item.add_marker(pytest.mark.gui)
        if _DLIB_FIXTURES & fixtures:
            item.add_marker(pytest.mark.dlib)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Never read or write the user's real settings/data while testing."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture(scope="session")
def dlib_model() -> FaceModel:
    """The real dlib ResNet on the CPU, loaded once for the whole run.

    The registry caches one instance per device anyway, so every test already
    shares it; one fixture makes that explicit.  Tests must not change it (device,
    threshold, preprocessing, hooks left behind): use a synthetic model
    (tests/synthetic_models.py) for that.
    """
    from core.models import DEFAULT_MODEL_ID, registry

    return registry().load(DEFAULT_MODEL_ID, "cpu")


@pytest.fixture(autouse=True)
def _no_close_question(monkeypatch):
    """A window closed at teardown with jobs still queued must not wait for an
    answer; the test of the question itself switches it back on."""
    main_window = sys.modules.get("xfr_desktop.main_window")
    if main_window is not None:
        monkeypatch.setattr(main_window.MainWindow, "ask_before_closing", False)


@pytest.fixture(scope="session")
def grace_hopper_path() -> Path:
    """A real colour JPEG portrait shipped inside matplotlib."""
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), 512x512 RGB uint8."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def astronaut_path(tmp_path_factory, astronaut_rgb) -> Path:
    """The astronaut written to a PNG file, for code paths that take a file."""
    from PIL import Image

    path = tmp_path_factory.mktemp("images") / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(path)
    return path


@pytest.fixture
def no_qt_leaks(qapp):
    """Fail a test that leaves top-level widgets or running workers behind.

    pytest-qt closes the widgets given to ``qtbot.addWidget`` before fixtures are
    torn down, so by now only leaked windows remain.  GUI test modules opt in with
    ``pytestmark = pytest.mark.usefixtures("no_qt_leaks")``.
    """
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    from xfr_desktop.workers import active_task_count, wait_all

    def flush_deferred_deletes() -> None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QCoreApplication.processEvents()

    flush_deferred_deletes()
    before = len(QApplication.topLevelWidgets())
    yield
    assert wait_all(10), "a background task did not stop"
    flush_deferred_deletes()
    leaked = QApplication.topLevelWidgets()
    assert len(leaked) == before, f"top-level widgets leaked: {leaked}"
    assert active_task_count() == 0


@pytest.fixture(scope="session")
def bundled_identities(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    """An ``identities/<person>/`` folder for ``xfr eval``: two photos of Eileen
    Collins (one mirrored), one of Grace Hopper (one genuine pair, impostors)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("identities")
    collins, hopper = root / "collins", root / "hopper"
    collins.mkdir()
    hopper.mkdir()
    Image.fromarray(astronaut_rgb).save(collins / "a.png")
    Image.fromarray(astronaut_rgb[:, ::-1]).save(collins / "b.jpg", quality=85)
    photo = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    Image.fromarray(photo).save(hopper / "a.jpg")
    return root
