"""The "Channels" view (paper 004) in real offscreen Qt: it loads the model's layers in
a worker, analyses the faces of a folder in a worker and shows the figures and the
per-channel top-10 % maps."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from core.models.base import registry
from xfr_desktop.channels_panel import CURRENT, ChannelsPanel
from xfr_desktop.errors import ErrorReporter

pytestmark = pytest.mark.usefixtures("no_qt_leaks")

WAIT_MS = 60_000


def test_channels_panel_analyses_a_folder(qtbot, tmp_path, astronaut_rgb):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(astronaut_rgb).save(folder / "astronaut.png")
    Image.fromarray(astronaut_rgb[:, ::-1].copy()).save(folder / "mirrored.png")
    model = registry().load("dlib-resnet-v1", "cpu")
    errors = ErrorReporter(show_dialogs=False)
    panel = ChannelsPanel(errors, lambda: model)
    qtbot.addWidget(panel)
    try:
        panel.load_model(CURRENT)
        qtbot.waitUntil(lambda: panel.layer.count() > 0, timeout=WAIT_MS)
        layers = [panel.layer.itemText(i) for i in range(panel.layer.count())]
        assert layers[0] == "stage5.block0" and "embedding" not in layers
        panel.layer.setCurrentText("stage4.block2")
        panel.set_folder(str(folder))
        assert panel.analyse.isEnabled()
        panel.start()
        qtbot.waitUntil(lambda: panel.report is not None, timeout=WAIT_MS)
        qtbot.waitUntil(panel.analyse.isEnabled, timeout=WAIT_MS)
        assert errors.last_report is None
        report = panel.report
        assert report.faces == 2 and report.layer == "stage4.block2"
        text = panel.figures.text()
        assert "PE =" in text and "LS =" in text and "AR =" in text
        assert "face part" in text  # the plain-language lines
        assert panel.chip.rendered_rgb() is not None
        assert not panel.grid.pixmap().isNull()
        panel.channel.setValue(7)
        assert "Channel 7" in panel.channel_text.text()
        panel.face.setValue(1)
        assert panel.parts_view.rendered_rgb() is not None
    finally:
        panel.shutdown()


def test_channels_panel_without_a_model_says_so(qtbot):
    errors = ErrorReporter(show_dialogs=False)
    panel = ChannelsPanel(errors, lambda: None)
    qtbot.addWidget(panel)
    panel.load_model(CURRENT)
    assert "No model" in panel.status.text()
    assert not panel.analyse.isEnabled()
    panel.start()  # nothing to run
    assert panel.report is None and errors.last_report is None
    panel.shutdown()
