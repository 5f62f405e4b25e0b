"""Pick explanation methods, edit their parameters, queue them, follow the jobs.

The parameter form is generated from each method's typed ``Param`` defaults
(``xfr_desktop.widgets.param_form``); the method's plain-language description is
its tooltip.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.explain import ExplainerInfo, infos
from xfr_desktop.case_controller import ExplainJob
from xfr_desktop.masking import Masking
from xfr_desktop.widgets.param_form import INT_LIMIT, editor_for, value_of


class ExplainPanel(QWidget):
    """Methods (checkable), the current method's parameters, Run and the job list."""

    run_requested = Signal(dict, int)  # {method: params}, seed
    cancel_requested = Signal(object)  # ExplainJob or None (= all)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.infos: dict[str, ExplainerInfo] = {i.method_id: i for i in infos()}
        self.methods = QListWidget()
        # Long names end in "…" (the tooltip has them in full) instead of a
        # sideways scroll bar in a narrow panel.
        self.methods.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.methods.setTextElideMode(Qt.TextElideMode.ElideRight)
        for info in self.infos.values():
            item = QListWidgetItem(info.display_name)
            item.setData(Qt.ItemDataRole.UserRole, info.method_id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked
                if info.method_id == "fggb"
                else Qt.CheckState.Unchecked
            )
            item.setToolTip(
                f"<b>{info.display_name}</b><br>{info.description}<br><i>"
                f"{info.citation}</i><br>"
                + (
                    "Gives similarity and dissimilarity maps."
                    if info.has_dissimilarity
                    else "Gives a similarity map only."
                )
            )
            self.methods.addItem(item)
            item.setHidden(info.control)
        # Controls (the face-centre prior) test metrics and verdicts; they are not
        # evidence, so they are offered only when asked for.
        self.show_controls = QCheckBox("Show controls (not evidence)")
        self.show_controls.setToolTip(
            "Methods that are the same for every pair, run to test the faithfulness "
            "check against them"
        )
        self.show_controls.toggled.connect(self._show_controls)
        self.methods.currentItemChanged.connect(self._show_params)
        # A fixed short title: "Parameters of <long method name>" as the box's
        # title set the whole window's minimum width; the name wraps in a label.
        self.params_box = QGroupBox("Parameters")
        self.params_of = QLabel()
        self.params_of.setWordWrap(True)
        box_layout = QVBoxLayout(self.params_box)
        box_layout.addWidget(self.params_of)
        self.params_form = QFormLayout()
        self.params_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        box_layout.addLayout(self.params_form)
        self._editors: dict[str, dict[str, QWidget]] = {}
        self.seed = QSpinBox()
        self.seed.setRange(0, INT_LIMIT)
        self.seed.setToolTip(
            "Random methods give the same maps again for the same seed"
        )
        self.run_button = QPushButton("Run checked methods")
        self.run_button.clicked.connect(self._run)
        self.cancel_button = QPushButton("Cancel all")
        self.cancel_button.clicked.connect(lambda: self.cancel_requested.emit(None))
        self.jobs = QTableWidget(0, 3)
        self.jobs.setHorizontalHeaderLabels(["Method", "State", "Progress"])
        header = self.jobs.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the name
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        self.jobs.setColumnWidth(2, 70)
        self.jobs.verticalHeader().hide()
        self.jobs.cellDoubleClicked.connect(self._cancel_row)
        self._job_rows: list[ExplainJob] = []
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("Seed"))
        seed_row.addWidget(self.seed)
        seed_row.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        heading = QLabel("<b>Explanation methods</b> (hover for what they show)")
        heading.setWordWrap(True)
        layout.addWidget(heading)
        layout.addWidget(self.methods, 2)
        layout.addWidget(self.show_controls)
        layout.addWidget(self.params_box)
        layout.addLayout(seed_row)
        layout.addLayout(buttons)
        jobs_heading = QLabel("Jobs (double-click one to cancel it)")
        jobs_heading.setWordWrap(True)
        layout.addWidget(jobs_heading)
        layout.addWidget(self.jobs, 1)
        checked = self.checked_methods()
        self.methods.setCurrentRow(list(self.infos).index(checked[0]) if checked else 0)
        self.masking: Masking | None = None
        self._masked_run = False  # Run is disabled because the pair is masked

    def set_masking(self, masking: Masking) -> None:
        """Running a method on a masked pair would show its maps: Run is disabled
        (with the reason as its tooltip) until the pair is unmasked."""
        self.masking = masking
        masking.changed.connect(self.apply_masking)
        self.apply_masking()

    def apply_masking(self) -> None:
        hidden = "" if self.masking is None else self.masking.shown_pair_hidden()
        if hidden:
            self._masked_run = True
            self.run_button.setEnabled(False)
            self.run_button.setToolTip(hidden)
            return
        if self._masked_run:  # back to what the case allows
            self._masked_run = False
            assert self.masking is not None
            case = self.masking.controller.case
            writable = case is None or not case.read_only
            self.run_button.setEnabled(writable)
            self.run_button.setToolTip(
                "" if writable else "The case is open read-only."
            )

    def _show_params(self, item: QListWidgetItem | None) -> None:
        while self.params_form.rowCount():
            self.params_form.takeRow(0).fieldItem.widget().setParent(None)  # type: ignore[union-attr]
        if item is None:
            return
        method = item.data(Qt.ItemDataRole.UserRole)
        info = self.infos[method]
        self.params_of.setText(f"Of {info.display_name}")
        editors = self._editors.setdefault(
            method, {p.name: editor_for(p) for p in info.params}
        )
        for param in info.params:
            self.params_form.addRow(param.name, editors[param.name])
        if not info.params:
            self.params_form.addRow(QLabel("(no parameters)"), QWidget())

    def _show_controls(self, shown: bool) -> None:
        for i in range(self.methods.count()):
            item = self.methods.item(i)
            if self.infos[item.data(Qt.ItemDataRole.UserRole)].control:
                item.setHidden(not shown)

    def offered_methods(self) -> list[str]:
        """The methods the list shows (controls only with 'Show controls')."""
        return [
            self.methods.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.methods.count())
            if not self.methods.item(i).isHidden()
        ]

    def checked_methods(self) -> list[str]:
        """Checked methods among those shown (a hidden control never runs)."""
        return [
            self.methods.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.methods.count())
            if self.methods.item(i).checkState() == Qt.CheckState.Checked
            and not self.methods.item(i).isHidden()
        ]

    def set_checked(self, methods: list[str]) -> None:
        for i in range(self.methods.count()):
            item = self.methods.item(i)
            state = item.data(Qt.ItemDataRole.UserRole) in methods
            item.setCheckState(
                Qt.CheckState.Checked if state else Qt.CheckState.Unchecked
            )

    def params_for(self, method: str) -> dict[str, Any]:
        """Only the parameters the examiner changed from the defaults."""
        editors = self._editors.get(method, {})
        changed = {}
        for param in self.infos[method].params:
            if param.name in editors:
                value = value_of(editors[param.name])
                default = param.default
                shown = (
                    ",".join(str(v) for v in default)
                    if isinstance(default, tuple)
                    else default
                )
                if value != shown and not (value == "" and default is None):
                    changed[param.name] = value
        return changed

    def _run(self) -> None:
        if self.masking is not None and self.masking.shown_pair_hidden():
            return  # disabled; a shortcut must not run it either
        methods = {m: self.params_for(m) for m in self.checked_methods()}
        if methods:
            self.run_requested.emit(methods, self.seed.value())

    def _cancel_row(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._job_rows):
            self.cancel_requested.emit(self._job_rows[row])

    def set_jobs(self, jobs: list[ExplainJob]) -> None:
        self._job_rows = list(jobs)
        self.jobs.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            name = (
                self.infos[job.method].display_name
                if job.method in self.infos
                else job.method
            )
            self.jobs.setItem(
                row, 0, QTableWidgetItem(f"{name} ({job.probe}×{job.gallery})")
            )
            state = QTableWidgetItem(job.state)
            state.setToolTip(job.message)
            self.jobs.setItem(row, 1, state)
            bar = self.jobs.cellWidget(row, 2)
            if not isinstance(bar, QProgressBar):
                bar = QProgressBar()
                self.jobs.setCellWidget(row, 2, bar)
            bar.setRange(0, max(1, job.total))
            bar.setValue(job.done)
        self.cancel_button.setEnabled(
            any(j.state in ("queued", "running") for j in jobs)
        )
