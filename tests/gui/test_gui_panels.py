"""Settings, the Settings dialog, themes, the audit-trail view and the conclusion
editor, in real (offscreen) Qt with real case folders and real INI files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox

from core.case.store import Case
from xfr_desktop.dialogs.settings_dialog import NO_CUDA_TOOLTIP, SettingsDialog
from xfr_desktop.panels.audit_view import (
    ALL_ACTIONS,
    DETAILS_COLUMN,
    DETAILS_JSON_ROLE,
    SEQ_COLUMN,
    USER_COLUMN,
    AuditTrailView,
)
from xfr_desktop.panels.conclusion_editor import ConclusionEditor
from xfr_desktop.settings import (
    MAX_RECENT,
    SCHEMA_VERSION,
    Settings,
    default_store,
    load_settings,
    login_name,
    migrate,
    save_settings,
)
from xfr_desktop.theme import apply_theme, current_theme, uses_theme_style

Role = QPalette.ColorRole


def write_ini(path: Path, text: str) -> QSettings:
    """A store over a hand-written INI file (values come back as strings)."""
    path.write_text("[General]\n" + text, encoding="utf-8")
    return QSettings(str(path), QSettings.Format.IniFormat)


# ---- settings ------------------------------------------------------------------------
def test_settings_round_trip_in_temp_config_dir(tmp_path):
    config_home = Path(os.environ["XDG_CONFIG_HOME"])  # set by the autouse fixture
    assert load_settings() == Settings()  # nothing stored yet: all defaults

    case_folder = tmp_path / "case-1"
    case_folder.mkdir()
    settings = Settings(
        device="cpu",
        model_id="arcface-onnx",
        threshold=0.42,
        colour_map="viridis",
        user_name="Examiner A",
        theme="dark",
        overlay_opacity=0.25,
        sync_views=False,
    )
    settings.add_recent(case_folder)
    save_settings(settings)

    path = Path(default_store().fileName())
    assert path.is_file()
    assert path.is_relative_to(config_home)  # the real ~/.config is untouched
    assert path == config_home / "XFR" / "XFR Desktop.ini"
    text = path.read_text(encoding="utf-8")
    assert "device=cpu" in text
    assert f"schema_version={SCHEMA_VERSION}" in text

    loaded = load_settings()
    assert loaded == settings
    assert loaded.recent_cases == [str(case_folder)]

    # Read back from the file itself, as a later session would (strings only).
    copy = tmp_path / "copy.ini"
    copy.write_text(text, encoding="utf-8")
    assert load_settings(QSettings(str(copy), QSettings.Format.IniFormat)) == settings

    # Back to "the model's own threshold": the key goes away.
    loaded.threshold = None
    save_settings(loaded)
    assert load_settings().threshold is None


def test_default_store_follows_the_config_dir(tmp_path, monkeypatch):
    # Qt caches the user config dir per process; default_store must not.
    first = Path(default_store().fileName())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other"))
    second = Path(default_store().fileName())
    assert second.is_relative_to(tmp_path / "other")
    assert first != second


def test_bad_stored_values_fall_back_to_defaults(tmp_path):
    store = write_ini(
        tmp_path / "bad.ini",
        "device=quantum\ntheme=purple\nthreshold=-1\ncolour_map=rainbow\n"
        "overlay_opacity=7\nsync_views=maybe\nmodel_id=\nuser_name=\n"
        "recent_cases=/cases/a, /cases/b, /cases/a\nschema_version=1\n",
    )
    settings = load_settings(store)
    defaults = Settings()
    assert settings.device == defaults.device == "auto"
    assert settings.theme == "light"
    assert settings.threshold is None
    assert settings.colour_map == "jet"
    assert settings.overlay_opacity == defaults.overlay_opacity
    assert settings.sync_views is True
    assert settings.model_id == defaults.model_id
    assert settings.recent_cases == ["/cases/a", "/cases/b"]  # duplicates dropped


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("0.42", 0.42),
        (0.6, 0.6),
        ("0", None),
        ("-0.5", None),
        ("nan", None),
        ("inf", None),
        ("abc", None),
        (True, None),
        (None, None),
    ],
)
def test_threshold_validation(stored, expected):
    assert Settings.from_dict({"threshold": stored}).threshold == expected


def test_v0_settings_are_migrated(tmp_path):
    raw = {"recent": "/old/a;/old/b; ;/old/a", "theme": "dark"}
    migrated = migrate(raw, 0)
    assert migrated["recent_cases"] == ["/old/a", "/old/b", "/old/a"]
    assert "recent" not in migrated
    assert migrated["schema_version"] == SCHEMA_VERSION
    assert raw["recent"] == "/old/a;/old/b; ;/old/a"  # the input is not changed

    path = tmp_path / "v0.ini"
    # As QSettings wrote it: quoted, because ';' starts a comment in INI files.
    store = write_ini(path, 'recent="/old/a;/old/b;/old/a"\ntheme=dark\n')
    settings = load_settings(store)
    assert settings.recent_cases == ["/old/a", "/old/b"]
    assert settings.theme == "dark"
    assert settings.schema_version == SCHEMA_VERSION

    save_settings(settings, store)
    text = path.read_text(encoding="utf-8")
    assert "recent=" not in text.replace("recent_cases=", "")
    assert f"schema_version={SCHEMA_VERSION}" in text


def test_recent_cases_deduplicated_capped_and_filtered(tmp_path):
    folders = [tmp_path / f"case-{n}" for n in range(MAX_RECENT + 2)]
    settings = Settings()
    for folder in folders:
        settings.add_recent(folder)
    assert len(settings.recent_cases) == MAX_RECENT
    assert settings.recent_cases[0] == str(folders[-1])  # most recent first

    settings.add_recent(str(folders[5]) + "/")  # same folder, other spelling
    assert settings.recent_cases[0] == str(folders[5])
    assert settings.recent_cases.count(str(folders[5])) == 1
    assert len(settings.recent_cases) == MAX_RECENT

    folders[5].mkdir()
    folders[-1].mkdir()
    assert settings.existing_recent_cases() == [str(folders[5]), str(folders[-1])]
    assert len(settings.recent_cases) == MAX_RECENT  # missing ones are kept


def test_effective_user():
    assert Settings().effective_user() == ""  # the case's examiner
    assert Settings(user_name="  Dr Jones ").effective_user() == "Dr Jones"


# ---- the settings dialog -------------------------------------------------------------
def test_settings_dialog_returns_edited_copy(qtbot):
    original = Settings(recent_cases=["/cases/x"])
    dialog = SettingsDialog(
        original, ["dlib-resnet-v1", "arcface-onnx"], cuda_available=False
    )
    qtbot.addWidget(dialog)
    assert not dialog.is_device_enabled("cuda")
    cuda_item = dialog.device_combo.model().item(dialog.device_combo.findData("cuda"))
    assert cuda_item.toolTip() == NO_CUDA_TOOLTIP
    assert dialog.own_threshold_check.isChecked()
    assert not dialog.threshold_spin.isEnabled()
    assert dialog.user_edit.placeholderText() == "the case's examiner"
    assert login_name() in dialog.user_edit.toolTip()

    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("arcface-onnx"))
    dialog.own_threshold_check.setChecked(False)
    assert dialog.threshold_spin.isEnabled()
    dialog.threshold_spin.setValue(0.42)
    dialog.colour_map_combo.setCurrentIndex(dialog.colour_map_combo.findData("magma"))
    dialog.user_edit.setText("Examiner A")
    dialog.theme_combo.setCurrentIndex(dialog.theme_combo.findData("dark"))
    dialog.opacity_slider.setValue(35)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    assert dialog.result() == QDialog.DialogCode.Accepted
    edited = dialog.settings()
    assert edited.device == "cpu"
    assert edited.model_id == "arcface-onnx"
    assert edited.threshold == pytest.approx(0.42)
    assert edited.colour_map == "magma"
    assert edited.user_name == "Examiner A"
    assert edited.theme == "dark"
    assert edited.overlay_opacity == pytest.approx(0.35)
    assert edited.recent_cases == ["/cases/x"]  # passed through
    assert original == Settings(recent_cases=["/cases/x"])  # never changed


def test_settings_dialog_keeps_unlisted_values(qtbot):
    stored = Settings(device="cuda", model_id="custom-model", threshold=0.3)
    dialog = SettingsDialog(stored, ["dlib-resnet-v1"], cuda_available=False)
    qtbot.addWidget(dialog)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    assert dialog.result() == QDialog.DialogCode.Rejected
    assert dialog.settings() == stored  # nothing silently changed


# ---- themes --------------------------------------------------------------------------
def luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in (colour.redF(), colour.greenF(), colour.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def app_look(qapp):
    """Restore the application's style, palette and theme after a theme test."""
    style, palette = qapp.style().name(), QPalette(qapp.palette())
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)
    qapp.setProperty("xfr_theme", None)


def test_dark_and_light_themes(app_look):
    app: QApplication = app_look
    apply_theme(app, "dark")
    palette = app.palette()
    assert current_theme(app) == "dark"
    assert uses_theme_style(app)  # Fusion, with visible indicator frames
    assert app.style().baseStyle().name().lower() == "fusion"
    assert palette.color(Role.Window).lightness() < 80
    assert palette.color(Role.WindowText).lightness() > 200
    assert palette.color(Role.Text).lightness() > 200
    assert contrast(palette.color(Role.Text), palette.color(Role.Base)) >= 7
    assert contrast(palette.color(Role.WindowText), palette.color(Role.Window)) >= 7
    assert (
        contrast(palette.color(Role.ToolTipText), palette.color(Role.ToolTipBase)) >= 7
    )
    highlight = (palette.color(Role.HighlightedText), palette.color(Role.Highlight))
    assert contrast(*highlight) >= 4.5
    disabled = palette.color(QPalette.ColorGroup.Disabled, Role.Text)
    assert contrast(disabled, palette.color(Role.Window)) >= 3
    assert disabled != palette.color(Role.Text)  # disabled looks disabled

    apply_theme(app, "dark")  # idempotent
    assert app.palette().color(Role.Window) == palette.color(Role.Window)
    assert current_theme(app) == "dark"

    apply_theme(app, "light")
    palette = app.palette()
    assert current_theme(app) == "light"
    assert palette.color(Role.Window).lightness() > 200
    assert palette.color(Role.WindowText).lightness() < 60
    assert contrast(palette.color(Role.Text), palette.color(Role.Base)) >= 7

    with pytest.raises(ValueError, match="unknown theme"):
        apply_theme(app, "neon")
    assert current_theme(app) == "light"  # unchanged by the bad name


# ---- the audit trail -----------------------------------------------------------------
EXTRA_VIEWS = 10  # enough entries that "#" must sort as a number, not as text


@pytest.fixture
def case_folder(tmp_path) -> Path:
    """A real case: created by alice, conclusions by alice and bob."""
    folder = tmp_path / "c"
    case = Case.create(folder, "1", "X", user="alice")
    case.add_conclusion("First impression: similar nose shape.")
    case.close()
    case = Case.open(folder, user="bob")
    case.add_conclusion("Review <b>&</b> second opinion:\nears differ.")
    for n in range(EXTRA_VIEWS):
        case.log("view.open", {"panel": "audit", "n": n})
    case.close()
    return folder


def test_audit_view_with_real_case(qtbot, case_folder):
    with Case.open(case_folder, read_only=True) as case:
        entries = case.audit_log()
        report = case.verify()
    view = AuditTrailView()
    qtbot.addWidget(view)
    view.set_entries(entries)

    assert view.model.rowCount() == len(entries) == 3 + EXTRA_VIEWS
    assert view.visible_row_count() == len(entries)
    actions = sorted({e.action for e in entries})
    combo = [view.action_combo.itemText(i) for i in range(view.action_combo.count())]
    assert combo == [ALL_ACTIONS, *actions]

    # Details: compact text in the cell, full JSON in the tooltip and JSON role.
    model = view.model
    row = next(i for i, e in enumerate(entries) if e.user == "bob")
    cell = model.index(row, DETAILS_COLUMN)
    assert model.data(cell).startswith("comparison: none; text: Review <b>&</b>")
    assert json.loads(model.data(cell, DETAILS_JSON_ROLE)) == entries[row].details
    assert "&lt;b&gt;" in model.data(cell, Qt.ItemDataRole.ToolTipRole)
    assert not model.flags(cell) & Qt.ItemFlag.ItemIsEditable  # read-only

    # Text filter: action, user or details, case-insensitive.
    view.filter_edit.setText("ALICE")
    alice = [e for e in entries if e.user == "alice"]
    assert view.visible_row_count() == len(alice) == 2
    view.filter_edit.setText("ears DIFFER")  # inside bob's conclusion text
    assert view.visible_row_count() == 1
    view.filter_edit.setText("")

    # Action filter, alone and with the text filter.
    view.action_combo.setCurrentIndex(view.action_combo.findData("conclusion.add"))
    assert view.visible_row_count() == 2
    view.filter_edit.setText("bob")
    assert view.visible_row_count() == 1
    shown = view.proxy.index(0, USER_COLUMN)
    assert view.proxy.data(shown) == f"bob [{login_name()}]"  # the login beside
    view.filter_edit.setText("")
    view.action_combo.setCurrentIndex(0)
    assert view.visible_row_count() == len(entries)
    assert view.count_label.text() == f"{len(entries)} entries"

    # Sorting by "#": numeric, both ways.
    seqs = [e.seq for e in entries]
    view.table.sortByColumn(SEQ_COLUMN, Qt.SortOrder.DescendingOrder)
    column = [
        int(view.proxy.data(view.proxy.index(r, SEQ_COLUMN)))
        for r in range(view.proxy.rowCount())
    ]
    assert column == sorted(seqs, reverse=True)
    view.table.sortByColumn(SEQ_COLUMN, Qt.SortOrder.AscendingOrder)
    assert int(view.proxy.data(view.proxy.index(0, SEQ_COLUMN))) == min(seqs)

    # Verify: the button asks, the owner answers.
    with qtbot.waitSignal(view.verify_requested, timeout=1000):
        view.verify_button.click()
    assert report.intact
    view.show_verify_result(report.intact, list(report.problems), list(report.warnings))
    assert view.verify_label.isVisibleTo(view)
    assert view.verify_label.text().startswith("✔ Case verified")
    assert "#14532d" in view.verify_label.styleSheet()

    view.show_verify_result(False, ["audit entry 3 was altered"], ["one warning"])
    text = view.verify_label.text()
    assert text.startswith("✘ Case NOT intact: 1 problem found.")
    assert "audit entry 3 was altered" in text
    assert "one warning" in text
    assert "#7f1d1d" in view.verify_label.styleSheet()


# ---- the conclusion editor -----------------------------------------------------------
def test_conclusion_editor_save_button(qtbot):
    editor = ConclusionEditor()
    qtbot.addWidget(editor)
    assert "never proposes" in editor.header.text()
    assert not editor.save_button.isEnabled()  # empty
    editor.editor.setPlainText("   \n ")
    assert not editor.save_button.isEnabled()  # only blanks
    editor.editor.setPlainText("Strong support for the same person.")
    assert editor.save_button.isEnabled()
    with qtbot.waitSignal(editor.save_requested, timeout=1000) as blocker:
        editor.save_button.click()
    assert blocker.args == ["Strong support for the same person."]


def test_conclusion_editor_with_real_case(qtbot, tmp_path):
    folder = tmp_path / "c"
    case = Case.create(folder, "1", "X", user="alice")
    first = case.add_conclusion("Revision one.\nWith detail on the ears.")
    case.close()
    case = Case.open(folder, user="bob")

    editor = ConclusionEditor()
    qtbot.addWidget(editor)

    def save(text: str) -> None:  # what the owning window does
        case.add_conclusion(text)
        editor.set_revisions(case.conclusions())

    editor.save_requested.connect(save)
    try:
        case.add_conclusion("Revision two.\nSecond line.")
        editor.set_revisions(case.conclusions())

        # Newest first; the editor continues from the newest text, unchanged.
        assert editor.revision_list.count() == 2
        top = editor.revision_list.item(0).text()
        assert "bob" in top and "Revision two." in top and "Second line" not in top
        assert "alice" in editor.revision_list.item(1).text()
        assert editor.text() == "Revision two.\nSecond line."
        assert not editor.save_button.isEnabled()  # unchanged since the last save

        # The preview shows the full, read-only text; copy starts a new revision.
        editor.select_revision(1)
        assert editor.preview.toPlainText() == first.text
        assert editor.preview.isReadOnly()
        assert editor.copy_button.isEnabled()
        editor.copy_button.click()
        assert editor.text() == first.text
        assert editor.save_button.isEnabled()

        editor.save_button.click()  # -> save -> set_revisions
        texts = [c.text for c in case.conclusions()]
        assert texts == [first.text, "Revision two.\nSecond line.", first.text]
        assert editor.revision_list.count() == 3
        assert not editor.save_button.isEnabled()

        # Unsaved edits survive a refresh of the list.
        editor.editor.setPlainText("Work in progress")
        editor.set_revisions(case.conclusions())
        assert editor.text() == "Work in progress"
        assert editor.status_label.text() == "Unsaved changes."
    finally:
        case.close()


def test_conclusion_first_lines_are_short():
    from xfr_desktop.panels.conclusion_editor import FIRST_LINE_CHARS, first_line

    assert first_line("\n\n  hello  \nworld") == "hello"
    long = first_line("x" * 500)
    assert len(long) == FIRST_LINE_CHARS and long.endswith("…")


def test_audit_tooltips_are_wrapped_key_value_lines_not_raw_json():
    """Raw JSON ran off the screen: nested details become ``key.sub`` lines no
    wider than the tooltip, and a very long entry says how much is left out."""
    from xfr_desktop.panels.audit_view import (
        TOOLTIP_LINES,
        TOOLTIP_WIDTH,
        readable_details,
    )

    details = {
        "archive": "/cases/" + "a" * 200,
        "results": [{"gallery": "K1", "distance": 0.51}, {"gallery": "K2"}],
        "threshold": {"metric": "euclidean", "value": 0.6},
    }
    text = readable_details(details)
    assert text.startswith("<pre>") and "{" not in text
    lines = text.removeprefix("<pre>").removesuffix("</pre>").split("\n")
    assert "results[1].distance: 0.51" in lines and "threshold.value: 0.6" in lines
    assert max(len(line) for line in lines) <= TOOLTIP_WIDTH
    assert "".join(line.strip() for line in lines[:4]).startswith(
        "archive: /cases/" + "a" * 60
    )  # the long path is broken, not cut

    many = readable_details({f"k{i}": i for i in range(TOOLTIP_LINES + 7)})
    assert many.endswith("… 7 more lines</pre>")
