"""The "Channels" view (paper 004) in real offscreen Qt: it loads the model's layers in
a worker, analyses the faces of a folder in a worker and shows the figures and the
per-channel top-10 % maps."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from xfr_desktop.errors import ErrorReporter
from xfr_desktop.panels.channels_panel import CURRENT, ChannelsPanel

pytestmark = pytest.mark.usefixtures("no_qt_leaks")

WAIT_MS = 60_000


@pytest.mark.slow
def test_channels_panel_analyses_a_folder(qtbot, tmp_path, astronaut_rgb, dlib_model):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(astronaut_rgb).save(folder / "astronaut.png")
    Image.fromarray(astronaut_rgb[:, ::-1].copy()).save(folder / "mirrored.png")
    errors = ErrorReporter(show_dialogs=False)
    panel = ChannelsPanel(errors, lambda: dlib_model)
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


CARD = """
id = "tiny-script"
input_size = [32, 32]
mean = [127.5, 127.5, 127.5]
std = [128.0, 128.0, 128.0]

[threshold]
metric = "cosine"
value = 0.3
source = "test value"
"""


@pytest.fixture
def torchscript_file(tmp_path):
    import warnings

    import torch
    from torch import nn

    network = nn.Sequential(nn.Conv2d(3, 4, 3, 2), nn.Flatten(), nn.LazyLinear(8))
    network(torch.zeros(1, 3, 32, 32))  # materialise the lazy layer
    path = tmp_path / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation note
        torch.jit.trace(network.eval(), torch.zeros(1, 3, 32, 32)).save(str(path))
    (tmp_path / "tiny.pt.card.toml").write_text(CARD)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("answer", ["No", "Yes"])
def test_torchscript_file_loads_only_when_the_examiner_trusts_it(
    qtbot, monkeypatch, torchscript_file, answer
):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from xfr_desktop.panels.channels_panel import FILE

    asked = []

    def question(_parent, _title, text, _buttons, default):
        asked.append((text, default))
        return getattr(QMessageBox.StandardButton, answer)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", lambda *a, **k: (str(torchscript_file), "")
    )
    errors = ErrorReporter(show_dialogs=False)
    panel = ChannelsPanel(errors, lambda: None)
    qtbot.addWidget(panel)
    try:
        panel.model_choice.setCurrentText(FILE)
        panel._choose_model()
        assert len(asked) == 1
        text, default = asked[0]
        assert "program code" in text and str(torchscript_file) in text
        assert "trust where it came from" in text
        assert default == QMessageBox.StandardButton.No
        if answer == "No":
            assert not panel.loader.is_busy()
            qtbot.wait(200)
            assert panel.model is None and "not loaded" in panel.status.text()
        else:
            qtbot.waitUntil(lambda: panel.model is not None, timeout=WAIT_MS)
            assert panel.model.code_trusted and panel.model.model_id == "tiny-script"
        assert errors.last_report is None
    finally:
        panel.shutdown()
