"""Signing identities and report export in the GUI (issue 18, item 7): create and
import an identity from the Signing menu, a wrong password at export asked again in
place with every other choice kept, and the completion dialog with the report's
path and its Open / Verify now / Show in folder buttons.

A tiny model and synthetic images (no dlib): the face finder is replaced by one
fixed face per exhibit, so that a case with a comparison is made in a second."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QMessageBox

from core.report import identities
from core.report.api import read_manifest, verify_report
from core.report.signing import (
    WrongPasswordError,
    create_identity,
    load_certificate,
    read_pkcs12,
)
from tests.gui.tiny_case import (
    add_exhibits,
    make_window,
    new_case,
    tiny_model_class,
    tiny_registry,
    use_one_fixed_face,
    write_images,
)
from xfr_desktop.dialogs.identity_dialog import ImportIdentityDialog, NewIdentityDialog
from xfr_desktop.main_window import MainWindow
from xfr_desktop.theme import PROBLEM_TEXT

pytestmark = pytest.mark.usefixtures("no_qt_leaks")
WAIT_MS = 30_000
PASSWORD = "correct horse 1"
TinyModel = tiny_model_class(
    "tiny-identity-export",
    "cosine",
    0.5,
    name="Tiny identity-export model",
    weights=b"tiny identity weights",
)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A window with a case holding one comparison (Q1 x K1)."""
    use_one_fixed_face(monkeypatch)
    models = tiny_registry(TinyModel, "Tiny")
    window = make_window(qtbot, models, new_case(tmp_path / "case"), wait_ms=WAIT_MS)
    probe, gallery = write_images(tmp_path, ["q1", "k1"], seed=7)
    add_exhibits(qtbot, window, [probe], "probe", wait_ms=WAIT_MS)
    add_exhibits(qtbot, window, [gallery], "gallery", wait_ms=WAIT_MS)
    qtbot.waitUntil(
        lambda: (
            bool(window.controller.case.comparisons())
            and not window.controller._ranker.is_busy()
        ),
        timeout=WAIT_MS,
    )
    opened: list[QUrl] = []
    window.open_url = opened.append  # never opens anything in a test
    window.opened_urls = opened
    yield window
    for box in window.findChildren(QMessageBox):
        box.close()


def make_identity_in_gui(qtbot, window: MainWindow, name: str = "Dr. Ann Example"):
    dialog = window.new_identity()
    assert isinstance(dialog, NewIdentityDialog) and dialog.isVisible()
    dialog.name.setText(name)
    dialog.organisation.setText("Forensic Lab")
    dialog.email.setText("ann@example.org")
    dialog.password.setText(PASSWORD)
    dialog.repeat.setText(PASSWORD)
    with qtbot.waitSignal(dialog.identity_ready, timeout=WAIT_MS) as made:
        dialog.ok_button.click()
    return dialog, made.args[0]


def export_dialog_filled_in(qtbot, window: MainWindow, out: Path):
    """A new identity made, then the export dialog with ``out`` and the right
    password filled in; the identity and the dialog."""
    _, identity = make_identity_in_gui(qtbot, window)
    window.identity_dialog.close()
    window.ask_export_report()
    dialog = window.report_dialog
    dialog.path.setText(str(out))
    dialog.password.setText(PASSWORD)
    return identity, dialog


def test_a_new_identity_is_made_in_the_gui_and_shows_subject_and_fingerprint(
    qtbot, window
):
    dialog = window.new_identity()
    dialog.name.setText("Dr. Ann Example")
    dialog.password.setText("short")
    dialog.repeat.setText("short")
    dialog.ok_button.click()  # the CLI's rule: at least 8 characters
    assert dialog.problem.isVisible() and "at least 8 characters" in (
        dialog.problem.text()
    )
    assert dialog.isVisible() and not dialog.runner.is_busy()
    dialog.password.setText(PASSWORD)
    dialog.repeat.setText(PASSWORD + "x")
    dialog.ok_button.click()
    assert dialog.problem.text() == (
        "The two passwords differ: type the same one twice."
    )
    assert dialog.focusWidget() is dialog.repeat
    dialog.close()

    dialog, identity = make_identity_in_gui(qtbot, window)
    folder = identities.identities_folder()
    assert identity.p12.parent == folder and identity.p12.is_file()
    assert os.stat(identity.p12).st_mode & 0o077 == 0  # readable by the owner only
    cert = load_certificate(identity.p12, PASSWORD)  # the core API opens it
    digest = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert identity.fingerprint_sha256 == digest
    shown = dialog.result_view.text()
    assert "Dr. Ann Example, Forensic Lab, ann@example.org" in shown
    assert identity.fingerprint_sha256 in shown
    assert dialog.ok_button.text() == "Close" and not dialog.name.isEnabled()
    assert [i.p12 for i in identities.known_identities()] == [identity.p12]


def test_import_asks_again_in_place_after_a_wrong_password(qtbot, window, tmp_path):
    source = tmp_path / "lab-issued.p12"
    create_identity("Dr. Bo Imported", source, PASSWORD)
    dialog = window.import_identity()
    assert isinstance(dialog, ImportIdentityDialog)
    dialog.source.setText(str(source))
    dialog.password.setText("not the password")
    with qtbot.waitSignal(dialog.runner.finished, timeout=WAIT_MS):
        dialog.ok_button.click()
    assert dialog.isVisible()  # the same dialog, not a new one
    assert dialog.problem.text() == "Wrong password for lab-issued.p12: try again."
    assert PROBLEM_TEXT["light"] in dialog.problem.styleSheet()
    assert dialog.focusWidget() is dialog.password
    assert dialog.source.text() == str(source)  # the file is kept
    assert identities.known_identities() == []  # nothing copied

    dialog.password.setText(PASSWORD)
    assert not dialog.problem.isVisible()  # retyping clears the red line
    with qtbot.waitSignal(dialog.identity_ready, timeout=WAIT_MS) as imported:
        dialog.ok_button.click()
    identity = imported.args[0]
    assert identity.name == "Dr. Bo Imported"
    assert identity.p12.parent == identities.identities_folder()
    assert read_pkcs12(identity.p12, PASSWORD)[0] == source.read_bytes()
    assert identity.fingerprint_sha256 in dialog.result_view.text()


def test_a_damaged_identity_file_is_named_not_a_wrong_password(qtbot, window, tmp_path):
    source = tmp_path / "broken.p12"
    source.write_bytes(b"this is no identity")
    dialog = window.import_identity()
    dialog.source.setText(str(source))
    dialog.password.setText(PASSWORD)
    with qtbot.waitSignal(dialog.runner.finished, timeout=WAIT_MS):
        dialog.ok_button.click()
    assert dialog.problem.text().startswith(
        f"{source}: not a PKCS#12 identity file, or the file is damaged"
    )
    assert window.errors.last_report is None  # no internal error, no second box


def test_wrong_password_is_a_distinct_error_in_core(tmp_path):
    create_identity("X", tmp_path / "x.p12", PASSWORD)
    with pytest.raises(WrongPasswordError) as raised:
        read_pkcs12(tmp_path / "x.p12", "wrong")
    assert str(raised.value) == (
        f"{tmp_path / 'x.p12'}: wrong password for this identity (or the file is "
        "damaged)"
    )


def test_the_report_dialog_lists_identities_and_a_new_one_appears(qtbot, window):
    window.ask_export_report()
    dialog = window.report_dialog
    assert dialog.identity.currentText() == "Not signed"
    assert not dialog.password.isEnabled()
    dialog.new_identity.click()  # the same dialog as Signing -> New signing identity…
    assert isinstance(window.identity_dialog, NewIdentityDialog)
    assert window.identity_dialog.isVisible()
    window.identity_dialog.close()
    _, identity = make_identity_in_gui(qtbot, window, "Dr. Cy New")
    assert dialog.identity.currentText() == f"Dr. Cy New ({identity.p12.name})"
    assert dialog.identity_path() == str(identity.p12)
    assert dialog.password.isEnabled()
    window.identity_dialog.close()
    dialog.close()


def checked_ids(dialog) -> set[int]:
    return set(dialog.checked_ids())


def test_wrong_password_at_export_keeps_the_choices_then_the_right_one_signs(
    qtbot, window, tmp_path
):
    _, identity = make_identity_in_gui(qtbot, window)
    window.identity_dialog.close()
    case = window.controller.case
    window.ask_export_report()
    dialog = window.report_dialog
    assert dialog.identity_path() == str(identity.p12)  # the known one is offered
    out = tmp_path / "chosen-name.pdf"
    dialog.path.setText(str(out))
    chosen = checked_ids(dialog)
    assert chosen == {c.id for c in case.comparisons()}
    dialog.password.setText("not my password")
    with qtbot.waitSignal(dialog._unlocker.finished, timeout=WAIT_MS):
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible() and not out.exists()
    assert dialog.problem.text() == (
        f"Wrong password for Dr. Ann Example ({identity.p12.name}): try again."
    )
    assert dialog.focusWidget() is dialog.password
    assert dialog.path.text() == str(out) and checked_ids(dialog) == chosen
    assert dialog.identity_path() == str(identity.p12)

    dialog.password.setText(PASSWORD)
    with qtbot.waitSignal(window.report_exported, timeout=WAIT_MS) as exported:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    outcome = exported.args[0]
    assert outcome.path == out and outcome.signed_by == ("Dr. Ann Example",)
    assert {c["id"] for c in read_manifest(out)["comparisons"]} == chosen


def test_a_wrong_password_found_while_signing_asks_again_with_the_choices(
    qtbot, window, tmp_path, monkeypatch
):
    """The password passed the first check, then signing refused it (the file
    was replaced meanwhile): the dialog comes back, everything but it kept."""
    out = tmp_path / "kept.pdf"
    identity, first = export_dialog_filled_in(qtbot, window, out)
    chosen = checked_ids(first)
    monkeypatch.setattr(identities, "unlock_identity", lambda p12, password: None)
    monkeypatch.setattr(
        "xfr_desktop.main_window.generate_report",
        lambda *a, **k: (_ for _ in ()).throw(
            WrongPasswordError("wrong password for this identity", identity.p12)
        ),
    )
    with qtbot.waitSignal(first._unlocker.finished, timeout=WAIT_MS):
        first.buttons.button(first.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: window.report_dialog is not first, timeout=WAIT_MS)
    again = window.report_dialog
    qtbot.waitUntil(again.isVisible, timeout=WAIT_MS)
    assert again.problem.text() == f"Wrong password for {identity.p12.name}: try again."
    assert again.path.text() == str(out) and checked_ids(again) == chosen
    assert again.identity_path() == str(identity.p12)
    assert again.password.text() == ""  # never kept
    assert window.errors.last_report is None  # asked again, not a failure box
    again.close()


def test_the_completion_dialog_names_the_report_and_its_buttons_work(
    qtbot, window, tmp_path
):
    out = tmp_path / "report.pdf"
    identity, dialog = export_dialog_filled_in(qtbot, window, out)
    with qtbot.waitSignal(window.report_exported, timeout=WAIT_MS) as exported:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    outcome = exported.args[0]
    done = window.report_done_dialog
    assert done is not None and done.isVisible()
    facts = done.facts.text()
    assert str(out) in facts and outcome.sha256 in facts
    assert hashlib.sha256(out.read_bytes()).hexdigest() == outcome.sha256
    assert "Dr. Ann Example" in facts and outcome.report_id in facts
    assert done.facts.textInteractionFlags() & (
        Qt.TextInteractionFlag.TextSelectableByMouse
    )

    done.open_button.click()
    done.folder_button.click()
    assert window.opened_urls == [
        QUrl.fromLocalFile(str(out.resolve())),
        QUrl.fromLocalFile(str(out.resolve().parent)),
    ]

    with qtbot.waitSignal(window.report_verified, timeout=WAIT_MS) as verified:
        done.verify_button.click()
    check = verified.args[0]
    assert check.ok and check.signatures[0].valid and check.signatures[0].trusted
    assert done.verification.text().startswith("All checks hold.")
    assert check.signatures[0].summary in done.verification.text()
    assert "Evidence hashes match the open case." in done.verification.text()
    # the same verdict as core gives, trusting the identity's certificate
    again = verify_report(out, trust=[identity.certificate])
    assert again.ok
    assert not window.findChildren(QMessageBox)  # shown in the dialog, not a box
    done.close_button.click()
    assert not done.isVisible()


def test_an_unsigned_report_says_so_when_verified(qtbot, window, tmp_path):
    out = tmp_path / "unsigned.pdf"
    with qtbot.waitSignal(window.report_exported, timeout=WAIT_MS):
        window.export_report(str(out))
    done = window.report_done_dialog
    assert "not signed" in done.facts.text()
    with qtbot.waitSignal(window.report_verified, timeout=WAIT_MS) as verified:
        done.verify_button.click()
    assert not verified.args[0].ok
    assert done.verification.text().startswith("Not all checks hold.")
    assert "Not signed: the report can have been changed without trace." in (
        done.verification.text()
    )
    done.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_red_problem_line_is_readable_in_both_themes(qtbot, window, theme):
    from PySide6.QtGui import QColor, QPalette

    from xfr_desktop.theme import contrast_ratio, theme_palette

    background = theme_palette(theme).color(QPalette.ColorRole.Window)
    assert contrast_ratio(QColor(PROBLEM_TEXT[theme]), background) >= 4.5
    window.set_theme(theme)
    dialog = window.import_identity()
    dialog.ok_button.click()  # no file chosen: the red line says so
    assert dialog.problem.text() == (
        "Choose the identity file (.p12 or .pfx) to import."
    )
    assert PROBLEM_TEXT[theme] in dialog.problem.styleSheet()
    assert dialog.focusWidget() is dialog.source
    dialog.close()


def test_an_identity_from_elsewhere_signs_and_verify_now_says_what_it_trusted(
    qtbot, window, tmp_path
):
    elsewhere = tmp_path / "usb-stick.p12"  # chosen with "Choose file…", no .pem
    create_identity("Dr. Di Elsewhere", elsewhere, PASSWORD)
    window.ask_export_report()
    dialog = window.report_dialog
    dialog.select_identity(str(elsewhere))
    assert dialog.identity.currentText() == str(elsewhere)
    out = tmp_path / "elsewhere.pdf"
    dialog.path.setText(str(out))
    dialog.password.setText(PASSWORD)
    with qtbot.waitSignal(window.report_exported, timeout=WAIT_MS) as exported:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert exported.args[0].signed_by == ("Dr. Di Elsewhere",)
    done = window.report_done_dialog
    with qtbot.waitSignal(window.report_verified, timeout=WAIT_MS) as verified:
        done.verify_button.click()
    status = verified.args[0].signatures[0]
    assert status.valid and not status.trusted
    text = done.verification.text()
    assert text.startswith("Not all checks hold.")
    assert "No certificate of the signer was found beside the identity file" in text
    done.close()
