"""Export report: where to write it, who signs it, which comparisons go in.

The checklist starts with the comparisons the examiner looked at in this session
(accepted and rejected alike), or every current one when none was opened.
Comparisons computed on a face that was replaced since are listed, marked and
unchecked: the report prints one only under a SUPERSEDED banner.

The identity list is the examiner's identity folder (``known_identities``)
plus any file chosen here; New…/Import… open the Signing dialogs and the list is
refreshed when they finish.  OK first checks the password in a worker
(``unlock_identity``): a wrong one is a red line here, with every other
choice kept and the password field focused, instead of a failure after the
whole report has been laid out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.case import workflow
from core.case.examination import MASKED
from core.case.store import Case
from core.report import identities as identity_store
from core.report.identities import StoredIdentity
from core.report.signing import WrongPasswordError
from xfr_desktop.dialogs.identity_dialog import (
    problem_label,
    show_problem,
    wrong_password_text,
)
from xfr_desktop.errors import WARNING, ErrorReporter, describe, level, next_step
from xfr_desktop.theme import problem_colour
from xfr_desktop.workers import TaskRunner


@dataclass(frozen=True)
class ComparisonItem:
    comparison_id: int
    text: str
    superseded: bool
    checked: bool


@dataclass(frozen=True)
class ReportChoice:
    path: str
    identity: str  # "" for an unsigned report
    password: str
    comparison_ids: tuple[int, ...]


def comparison_items(case: Case, viewed: Collection[int]) -> list[ComparisonItem]:
    """Every comparison of the case as the checklist shows it, current ones first."""
    rows = []
    examination = case.examination()
    for comparison in case.comparisons():
        probe = case.face_by_id(comparison.probe_face_id)
        gallery = case.face_by_id(comparison.gallery_face_id)
        superseded = probe.superseded or gallery.superseded
        if examination.masked(probe.label, gallery.label):
            # sequential unmasking: not even the decision in a checklist
            text = f"{probe.label} × {gallery.label} — model's results {MASKED}"
        else:
            strength = workflow.listed_strength(case, comparison)
            lr = "no LR" if strength is None else f"LR {strength.likelihood_ratio:.3g}"
            text = f"{probe.label} × {gallery.label} — {comparison.decision}, {lr}"
        if superseded:
            text += "  (SUPERSEDED: a face was replaced since)"
        rows.append((comparison.id, text, superseded))
    current = [cid for cid, _, old in rows if not old]
    chosen = {cid for cid in current if cid in viewed} or set(current)
    items = [
        ComparisonItem(cid, text, old, cid in chosen and not old)
        for cid, text, old in rows
    ]
    return sorted(items, key=lambda item: item.superseded)


class ReportDialog(QDialog):
    """``initial``: the choices of an export that failed on its password (all
    kept but the password), with ``problem`` as the red line that says why."""

    new_identity_requested = Signal()
    import_identity_requested = Signal()

    def __init__(
        self,
        case: Case,
        viewed: Collection[int],
        default_path: str,
        parent: QWidget | None = None,
        *,
        errors: ErrorReporter | None = None,
        identities: list[StoredIdentity] | None = None,
        initial: ReportChoice | None = None,
        problem: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.errors = errors
        self.path = QLineEdit(initial.path if initial else default_path)
        self.identity = QComboBox()
        self.identity.setMinimumContentsLength(30)
        self.identity.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("never stored")
        self.problem = problem_label()
        self.password.textChanged.connect(self.problem.hide)
        self.identity.currentIndexChanged.connect(self.problem.hide)
        self._unlocker = TaskRunner(self)
        self._unlocker.result.connect(self._on_unlocked)
        self._unlocker.error.connect(self._on_unlock_failed)
        form = QFormLayout()
        form.addRow("Report file*", self._with_button(self.path, self._choose_path))
        choose_id = QPushButton("Choose file…")
        choose_id.clicked.connect(self._choose_id)
        self.new_identity = QPushButton("New…")
        self.new_identity.setToolTip("Create a signing identity (Signing menu)")
        self.new_identity.clicked.connect(self.new_identity_requested)
        self.import_identity = QPushButton("Import…")
        self.import_identity.setToolTip("Import a .p12 identity (Signing menu)")
        self.import_identity.clicked.connect(self.import_identity_requested)
        id_row = QHBoxLayout()
        id_row.addWidget(self.identity, 1)
        for button in (choose_id, self.new_identity, self.import_identity):
            id_row.addWidget(button)
        form.addRow("Sign with identity", id_row)
        form.addRow("Identity password", self.password)
        form.addRow(self.problem)
        self.comparisons = QListWidget()
        items = comparison_items(case, viewed)
        for item in items:
            row = QListWidgetItem(item.text)
            row.setData(Qt.ItemDataRole.UserRole, item.comparison_id)
            row.setFlags(row.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = (
                item.comparison_id in initial.comparison_ids
                if initial is not None
                else item.checked
            )
            state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
            row.setCheckState(state)
            if item.superseded:
                row.setForeground(QColor(problem_colour(self.palette())))
                row.setToolTip(
                    "Computed on a face that was replaced since (corrected, rejected, "
                    "reset or detected again); if checked, the "
                    "report prints it under a SUPERSEDED banner, not as a result."
                )
            self.comparisons.addItem(row)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.path.textChanged.connect(self._update)
        self.identity.currentIndexChanged.connect(self._update)
        self.comparisons.itemChanged.connect(self._update)
        # the first known identity is offered: a new examiner signs by default
        known = identity_store.known_identities() if identities is None else identities
        self.set_identities(
            known,
            select=(
                initial.identity
                if initial is not None
                else (str(known[0].p12) if known else "")
            ),
        )
        layout = QVBoxLayout(self)
        # never smaller than its content: a result or a problem line shown later
        # must push the dialog open, not be drawn over the fields
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addLayout(form)
        opened = any(i.checked and i.comparison_id in viewed for i in items)
        layout.addWidget(
            QLabel(
                "Comparisons in the report (with their explanations); checked: "
                + (
                    "the ones you opened in this session:"
                    if opened
                    else "every current one (you opened none in this session):"
                )
            )
        )
        layout.addWidget(self.comparisons, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 440)
        self._update()
        if problem:
            show_problem(self.problem, problem)
            self.password.setFocus()

    @staticmethod
    def _with_button(edit: QLineEdit, choose) -> QHBoxLayout:
        button = QPushButton("Choose…")
        button.clicked.connect(choose)
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        return row

    def _choose_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export report", self.path.text(), "PDF (*.pdf)"
        )
        if path:
            self.path.setText(path)

    def _choose_id(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Sign with your identity", "", "Identity (*.p12 *.pfx)"
        )
        if path:
            self.select_identity(path)

    def set_identities(
        self, identities: list[StoredIdentity], select: str | None = None
    ) -> None:
        """List ``identities`` (after New…/Import…), keeping the current choice
        unless ``select`` names another file ("" selects "not signed")."""
        chosen = self.identity_path() if select is None else select
        others = [  # files chosen here that are not in the folder: kept
            self.identity.itemData(i)
            for i in range(self.identity.count())
            if self.identity.itemData(i)
            and self.identity.itemData(i) not in {str(k.p12) for k in identities}
        ]
        self.identity.blockSignals(True)
        self.identity.clear()
        self.identity.addItem("Not signed", "")
        for known in identities:
            self.identity.addItem(known.title, str(known.p12))
            self.identity.setItemData(
                self.identity.count() - 1,
                f"{known.subject}\nSHA-256 {known.fingerprint_sha256}\n{known.p12}",
                Qt.ItemDataRole.ToolTipRole,
            )
        for path in others:
            self.identity.addItem(path, path)
        self.identity.blockSignals(False)
        self.select_identity(chosen)

    def select_identity(self, path: str) -> None:
        """Choose the identity file ``path`` (added to the list when new)."""
        index = self.identity.findData(str(path))
        if index < 0:
            self.identity.addItem(str(path), str(path))
            index = self.identity.count() - 1
        self.identity.setCurrentIndex(index)
        self._update()

    def identity_path(self) -> str:
        """The chosen identity file, "" for an unsigned report."""
        return str(self.identity.currentData() or "")

    def checked_ids(self) -> tuple[int, ...]:
        rows = (self.comparisons.item(i) for i in range(self.comparisons.count()))
        return tuple(
            row.data(Qt.ItemDataRole.UserRole)
            for row in rows
            if row.checkState() == Qt.CheckState.Checked
        )

    def _update(self) -> None:
        self.password.setEnabled(bool(self.identity_path()))
        # no comparison checked would mean "the default choice": ask for one instead
        ready = bool(self.path.text().strip()) and (
            self.comparisons.count() == 0 or bool(self.checked_ids())
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ready)

    def accept(self) -> None:
        """Unsigned: done.  Signed: first check that the password opens the
        identity (in a worker); only then does the dialog close and the export
        start."""
        identity = self.identity_path()
        if not identity:
            super().accept()
            return
        if self._unlocker.is_busy():
            return
        if not self.password.text():
            self._show_problem(
                f"Type the password of {self.identity.currentText()}, or choose "
                "“Not signed”.",
                focus_password=True,
            )
            return
        self.problem.hide()
        self.buttons.setEnabled(False)
        self._unlocker.start(
            identity_store.unlock_identity, Path(identity), self.password.text()
        )

    def reject(self) -> None:
        self._unlocker.cancel()
        super().reject()

    def _on_unlocked(self, _identity: StoredIdentity) -> None:
        self.buttons.setEnabled(True)
        super().accept()

    def _on_unlock_failed(self, error: BaseException, details: str) -> None:
        self.buttons.setEnabled(True)
        if isinstance(error, WrongPasswordError):
            self._show_problem(
                wrong_password_text(self.identity.currentText()), focus_password=True
            )
        elif level(error) == WARNING:
            _title, message = describe(error)
            step = next_step(error)
            self._show_problem(f"{message}\n{step}" if step else message)
        elif self.errors is not None:
            self.errors.report(error, details, context="Could not open the identity.")
        else:
            self._show_problem(describe(error)[1])

    def _show_problem(self, text: str, focus_password: bool = False) -> None:
        show_problem(self.problem, text)
        if focus_password:
            self.password.setFocus()
            self.password.selectAll()

    def choice(self) -> ReportChoice:
        identity = self.identity_path()
        return ReportChoice(
            path=str(Path(self.path.text().strip())),
            identity=identity,
            password=self.password.text() if identity else "",
            comparison_ids=self.checked_ids(),
        )
