"""Signing → New signing identity… / Import signing identity….

The examiner's identities live in one folder of the user's data
(``core.report.identities.identities_folder``): a PKCS#12 file and its public
certificate beside it.  Both dialogs run the core call in a ``TaskRunner`` (an RSA
key takes a moment to make, a PKCS#12 a moment to decrypt), stay open while it runs
and afterwards show what was made: the certificate's subject and its SHA-256
fingerprint, which verifiers are given to trust the examiner's signatures.  A
problem (a wrong password, a file that is no identity) is a red line in the dialog
with the field to fix focused: the examiner retypes instead of starting over.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.report import identities
from core.report.identities import IDENTITY_PASSWORD_MIN_LENGTH, StoredIdentity
from core.report.signing import WrongPasswordError
from xfr_desktop.errors import WARNING, ErrorReporter, describe, level, next_step
from xfr_desktop.theme import problem_style
from xfr_desktop.workers import TaskRunner


def problem_label() -> QLabel:
    """A hidden red line that says why the dialog did not go on."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)  # file names may hold < or &
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def show_problem(label: QLabel, text: str) -> None:
    label.setStyleSheet(problem_style(label.palette()))
    label.setText(text)
    label.show()


def wrong_password_text(identity: str) -> str:
    """The one sentence every dialog shows for a wrong identity password."""
    return f"Wrong password for {identity}: try again."


def identity_summary_html(identity: StoredIdentity) -> str:
    """What a new or imported identity is, for the examiner to note and pass on."""
    rows = [
        ("Subject", identity.subject or identity.name or "(unknown)"),
        ("SHA-256 fingerprint", identity.fingerprint_sha256 or "(unknown)"),
        ("Identity file", str(identity.p12)),
        ("Certificate for verifiers", str(identity.certificate or "(none)")),
    ]
    return (
        "<table>"
        + "".join(
            f"<tr><td><b>{html.escape(k)}</b>&nbsp;</td><td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        + "</table><p>Give verifiers the certificate file (or read them the "
        "fingerprint) so that they can trust your signatures.</p>"
    )


class _IdentityDialog(QDialog):
    """What both dialogs share: a worker, a problem line, a result panel."""

    identity_ready = Signal(object)  # StoredIdentity, once made or imported

    def __init__(
        self,
        title: str,
        action: str,
        errors: ErrorReporter | None,
        parent: QWidget | None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._action = action
        self.errors = errors
        self.identity: StoredIdentity | None = None
        self.form = QFormLayout()
        self.problem = problem_label()
        self.result_view = QLabel()
        self.result_view.setWordWrap(True)
        self.result_view.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.result_view.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(action)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.runner = TaskRunner(self)
        self.runner.result.connect(self._on_result)
        self.runner.error.connect(self._on_error)
        layout = QVBoxLayout(self)
        # never smaller than its content: a result or a problem line shown later
        # must push the dialog open, not be drawn over the fields
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addLayout(self.form)
        layout.addWidget(self.problem)
        layout.addWidget(self.result_view)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

    def _password_edit(self) -> QLineEdit:
        edit = QLineEdit()
        edit.setEchoMode(QLineEdit.EchoMode.Password)
        edit.setPlaceholderText("never stored")
        edit.textChanged.connect(self.problem.hide)
        return edit

    # ---- subclasses ----------------------------------------------------------------
    def _problem_before_start(self) -> tuple[str, QLineEdit | None]:
        """What stops the work before it starts, and the field to fix."""
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _password_field(self) -> QLineEdit:
        raise NotImplementedError

    def _inputs(self) -> list[QWidget]:
        raise NotImplementedError

    # ---- the flow ------------------------------------------------------------------
    def accept(self) -> None:
        """OK starts the work; the dialog stays open until the examiner closes it."""
        if self.identity is not None:  # done: OK now reads "Close"
            super().accept()
            return
        if self.runner.is_busy():
            return
        problem, field = self._problem_before_start()
        if problem:
            self._show_problem(problem, field)
            return
        self.problem.hide()
        self._set_busy(True)
        self._start()

    def reject(self) -> None:
        self.runner.cancel()
        super().reject()

    def _set_busy(self, busy: bool) -> None:
        for widget in self._inputs():
            widget.setEnabled(not busy)
        self.ok_button.setEnabled(not busy)
        self.ok_button.setText("Working…" if busy else self._action)

    def _show_problem(self, text: str, field: QLineEdit | None) -> None:
        show_problem(self.problem, text)
        self.adjustSize()
        if field is not None:
            field.setFocus()
            field.selectAll()

    def _on_result(self, identity: StoredIdentity) -> None:
        self.identity = identity
        self._set_busy(False)
        for widget in self._inputs():
            widget.setEnabled(False)
        self.result_view.setText(identity_summary_html(identity))
        self.result_view.show()
        self.ok_button.setText("Close")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).hide()
        self.adjustSize()  # the summary's rows: grow, never draw over the fields
        self.identity_ready.emit(identity)

    def _on_error(self, error: BaseException, details: str) -> None:
        self._set_busy(False)
        if isinstance(error, WrongPasswordError):
            self._show_problem(
                wrong_password_text(error.path.name if error.path else "it"),
                self._password_field(),
            )
        elif level(error) == WARNING:  # the examiner's input or the system
            _title, message = describe(error)
            step = next_step(error)
            self._show_problem(f"{message}\n{step}" if step else message, None)
        elif self.errors is not None:  # a fault of ours: the one error path
            self.errors.report(error, details, context=self.windowTitle() + " failed.")
        else:
            self._show_problem(describe(error)[1], None)


class NewIdentityDialog(_IdentityDialog):
    """Name, organisation, e-mail and a password typed twice, as
    ``xfr identity new`` asks them; a self-signed identity in the folder."""

    def __init__(
        self,
        default_name: str = "",
        errors: ErrorReporter | None = None,
        parent: QWidget | None = None,
        folder: Path | None = None,
    ) -> None:
        super().__init__("New signing identity", "Create", errors, parent)
        self.folder = folder
        self.name = QLineEdit(default_name)
        self.name.setPlaceholderText("your full name, as it should appear on reports")
        self.organisation = QLineEdit()
        self.email = QLineEdit()
        self.password = self._password_edit()
        self.password.setPlaceholderText(
            f"at least {IDENTITY_PASSWORD_MIN_LENGTH} characters; never stored"
        )
        self.repeat = self._password_edit()
        self.form.addRow("Name*", self.name)
        self.form.addRow("Organisation", self.organisation)
        self.form.addRow("E-mail", self.email)
        self.form.addRow("Password*", self.password)
        self.form.addRow("Repeat password*", self.repeat)
        where = identities.identities_folder() if folder is None else folder
        note = QLabel(
            f"Kept in {where}. The password protects the signing key: without it "
            "nobody (you included) can sign with this identity, and it cannot be "
            "recovered."
        )
        note.setWordWrap(True)
        self.form.addRow(note)
        self.name.textChanged.connect(self.problem.hide)
        self.resize(560, 360)

    def _inputs(self) -> list[QWidget]:
        return [self.name, self.organisation, self.email, self.password, self.repeat]

    def _password_field(self) -> QLineEdit:
        return self.password

    def _problem_before_start(self) -> tuple[str, QLineEdit | None]:
        if not self.name.text().strip():
            return "Type the name the signature should carry.", self.name
        if len(self.password.text()) < IDENTITY_PASSWORD_MIN_LENGTH:
            return (
                f"Use a password of at least {IDENTITY_PASSWORD_MIN_LENGTH} "
                "characters.",
                self.password,
            )
        if self.repeat.text() != self.password.text():
            return "The two passwords differ: type the same one twice.", self.repeat
        return "", None

    def _start(self) -> None:
        self.runner.start(
            identities.create_stored_identity,
            self.name.text().strip(),
            self.password.text(),
            organisation=self.organisation.text().strip(),
            email=self.email.text().strip(),
            folder=self.folder,
        )


class ImportIdentityDialog(_IdentityDialog):
    """A PKCS#12 file made elsewhere (a lab's PKI, another workstation) and its
    password; copied into the folder once the password opens it."""

    def __init__(
        self,
        source: str = "",
        errors: ErrorReporter | None = None,
        parent: QWidget | None = None,
        folder: Path | None = None,
    ) -> None:
        super().__init__("Import signing identity", "Import", errors, parent)
        self.folder = folder
        self.source = QLineEdit(source)
        self.source.setPlaceholderText("identity file (.p12 or .pfx)")
        self.source.textChanged.connect(self.problem.hide)
        self.choose = QPushButton("Choose…")
        self.choose.clicked.connect(self._choose)
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(self.choose)
        self.password = self._password_edit()
        self.form.addRow("Identity file*", row)
        self.form.addRow("Its password*", self.password)
        where = identities.identities_folder() if folder is None else folder
        note = QLabel(f"A copy is kept in {where}; the file you choose is not changed.")
        note.setWordWrap(True)
        self.form.addRow(note)
        self.resize(560, 300)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import signing identity",
            self.source.text(),
            "Identity (*.p12 *.pfx)",
        )
        if path:
            self.source.setText(path)

    def _inputs(self) -> list[QWidget]:
        return [self.source, self.choose, self.password]

    def _password_field(self) -> QLineEdit:
        return self.password

    def _problem_before_start(self) -> tuple[str, QLineEdit | None]:
        if not self.source.text().strip():
            return "Choose the identity file (.p12 or .pfx) to import.", self.source
        if not self.password.text():
            return "Type the password of that identity file.", self.password
        return "", None

    def _start(self) -> None:
        self.runner.start(
            identities.import_identity,
            Path(self.source.text().strip()),
            self.password.text(),
            folder=self.folder,
        )
