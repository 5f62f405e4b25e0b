"""Search a case face against a reference gallery (1:N) and pull a candidate into
the case as a known exhibit - an investigative lead (issue 22, item 4).

The dialog is a thin front on ``core.case.workflow``: "Search" runs
``workflow.search_gallery`` (which checks the gallery's files and model, embeds
the probe as the case does and records the search) and "Pull into the case"
runs ``workflow.pull_candidate`` (which checks the image's SHA-256 against the
gallery's record before anything is stored), each in a background
``TaskRunner`` that waits its turn for the cores as a model job
(``core.compute``).  When the candidate's image is not where the gallery's
source had it, the examiner is asked for the file.  Every failure goes to the
window's one error path (``xfr_desktop.errors``).

The investigative-lead statement (``core.wording``) stays above the results.
While sequential unmasking hides a pair's results, its score reads "masked":
a candidate not in the case has no pair to unmask yet, so its score stays
hidden as long as sequential unmasking is on; a pulled candidate's score is
shown once its pair with the probe is unmasked - by this session (the window's
examination: a blind verifier's own unmaskings), decided in one place
(``core.case.gallery_searches``).  Ranks, identities and files are shown (the
rank is what made the candidate a lead).

Closing the dialog, or the case, first cancels its search or pull and waits for
it to end (``case_closing``), so nothing runs on against a closed case.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core import wording
from core.case import workflow
from core.case.gallery_searches import GallerySearch, SearchCandidate
from core.errors import BadInputError

if TYPE_CHECKING:
    from core.case.examination import Examination
    from core.case.store import Case
    from xfr_desktop.case_controller import CaseController

TITLE = "Search a reference gallery"
ACTION_TEXT = "Search a reference gallery…"
MASKED_CELL = "masked"
TOP_MIN, TOP_MAX, TOP_DEFAULT = 1, 1000, 50
NEW_SEARCH = "New search"
COLUMNS = ("Rank", "Identity", "File", "Cosine", "In the case")
RANK, IDENTITY, FILE, SCORE, IN_CASE = range(len(COLUMNS))
READ_ONLY_TIP = (
    "The case is open read-only: a search and a pulled candidate are recorded in "
    "the case, so neither can be made."
)
PULL_TIP = (
    "Add the selected candidate's image as a known exhibit (K), after checking "
    "it is the image the gallery recorded"
)
NO_CASE_TIP = "Open a case first: the probe is a face of the case."
SCORE_TIP = (
    "Exact cosine similarity of the probe's template and the gallery template "
    "(larger = more alike under this model). 'masked': hidden while sequential "
    "unmasking is on, until the pair is unmasked (a candidate must be pulled into "
    "the case to have a pair)."
)


def action_state(case: Case | None) -> tuple[bool, str]:
    """Whether the search action may be used on ``case``, and the tooltip why not."""
    if case is None:
        return False, NO_CASE_TIP
    if case.read_only:
        return False, READ_ONLY_TIP
    return True, ""


def lead_marks(case: Case, search: GallerySearch) -> dict[int, str]:
    """Rank -> the mark of the exhibit pulled in from that rank of ``search``."""
    return {
        lead.candidate.rank: lead.mark
        for lead in case.gallery_searches.leads(examination=None)
        if lead.search.id == search.id
    }


def session_search(
    case: Case, examination: Examination | None, search: GallerySearch | str | int
) -> GallerySearch:
    """``search`` read again with the scores this session (``examination``: the
    window's, blind or not; None: no score) may see - the case side decides."""
    number = search.id if isinstance(search, GallerySearch) else search
    return case.gallery_searches.search(number, examination=examination)


def hidden_ranks(search: GallerySearch) -> set[int]:
    """The ranks of ``search`` whose score is not shown: those it withholds
    (``GallerySearch.score`` None) - read with ``session_search``, so for this
    session's examination, the one function that decides it."""
    return {c.rank for c in search.candidates if search.score(c.rank) is None}


def offered_score(search: GallerySearch, rank: int) -> float | None:
    """Candidate ``rank``'s cosine as the case side offers it (None while masked)."""
    value = search.score(rank)
    return None if value is None else float(value)


def search_summary(search: GallerySearch) -> str:
    kind = "exact" if search.exact else "approximate index, re-scored exactly"
    return (
        f"{search.name}: {search.probe_label} against gallery {search.gallery_uuid} "
        f"({search.gallery_size} templates, digest {search.gallery_digest[:12]}…), "
        f"model {search.model_id}, top {search.k} ({kind}); {_when(search.created)} by "
        f"{search.created_by}"
    )


def _when(stamp: str) -> str:
    """An ISO time stamp as 2026-12-02 06:25:05 (UTC, as the case records it)."""
    return stamp[:19].replace("T", " ") + (" UTC" if stamp.endswith("Z") else "")


def _pull(
    case: Case,
    search: str,
    rank: int,
    image: str | None,
    model: Any,
) -> Any:
    """``workflow.pull_candidate`` with the loaded model (the pulled face is
    embedded to check it against the gallery's template)."""
    return workflow.pull_candidate(case, search, rank, image=image, model=model)


class _Cell(QTableWidgetItem):
    """A read-only cell; numbers sort as numbers (``UserRole``)."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine = self.data(Qt.ItemDataRole.UserRole)
        theirs = other.data(Qt.ItemDataRole.UserRole)
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
            return mine < theirs
        return bool(self.text() < other.text())


class GallerySearchDialog(QDialog):
    """Search a reference gallery from the case, list the candidates, pull one in."""

    def __init__(
        self,
        controller: CaseController,
        probe: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        from xfr_desktop.workers import TaskRunner

        self.controller = controller
        self.errors = controller.errors
        self.search: GallerySearch | None = None  # the one shown
        self._searches_before = 0  # recorded searches when the running one started
        self._pulling: tuple[str, int] | None = None
        self._top_asked = TOP_DEFAULT
        self.setWindowTitle(TITLE)
        self.setMinimumSize(760, 520)

        self.earlier = QComboBox()
        self.earlier.setToolTip("Earlier searches of this case, as recorded")
        self.earlier.activated.connect(self._on_earlier_chosen)
        self.gallery_edit = QLineEdit()
        self.gallery_edit.setPlaceholderText("a .xfrgallery folder")
        self.gallery_edit.textChanged.connect(self._update_buttons)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self.choose_gallery)
        self.probe_combo = QComboBox()
        self.probe_combo.setToolTip("The case face searched against the gallery")
        self.top_spin = QSpinBox()
        self.top_spin.setRange(TOP_MIN, TOP_MAX)
        self.top_spin.setValue(TOP_DEFAULT)
        self.top_spin.setToolTip("How many of the most similar templates to list")
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.start_search)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.lead_label = QLabel(wording.GALLERY_SEARCH_LEAD)
        self.lead_label.setWordWrap(True)
        self.lead_label.setToolTip(wording.GALLERY_SEARCHES_INTRO)
        self.lead_label.setStyleSheet(
            "QLabel { background: #fff3cd; color: #5c4400; padding: 6px; }"
        )
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.horizontalHeaderItem(SCORE).setToolTip(SCORE_TIP)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(FILE, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.pull_button = QPushButton("Pull into the case")
        self.pull_button.setToolTip(PULL_TIP)
        self.pull_button.clicked.connect(self.pull_selected)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        self.status = QLabel()
        self.status.setWordWrap(True)

        gallery_row = QHBoxLayout()
        gallery_row.addWidget(self.gallery_edit, 1)
        gallery_row.addWidget(self.choose_button)
        form = QFormLayout()
        form.addRow("Recorded searches", self.earlier)
        form.addRow("Gallery", gallery_row)
        settings_row = QHBoxLayout()
        settings_row.addWidget(self.probe_combo, 1)
        settings_row.addWidget(QLabel("Top"))
        settings_row.addWidget(self.top_spin)
        settings_row.addWidget(self.search_button)
        settings_row.addWidget(self.cancel_button)
        form.addRow("Probe face", settings_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.pull_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.lead_label)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.searcher = TaskRunner(self, model_job="gallery search")
        self.searcher.progress.connect(self._on_progress)
        self.searcher.result.connect(self._on_searched)
        self.searcher.error.connect(
            lambda error, details: self.errors.report(
                error, details, context="Could not search the gallery."
            )
        )
        self.searcher.cancelled.connect(self._on_search_cancelled)
        self.searcher.finished.connect(self._on_finished)
        self.puller = TaskRunner(self, model_job="pull a candidate")
        self.puller.progress.connect(self._on_progress)
        self.puller.result.connect(self._on_pulled)
        self.puller.error.connect(
            lambda error, details: self.errors.report(
                error, details, context="Could not pull the candidate into the case."
            )
        )
        self.puller.cancelled.connect(
            lambda: self.status.setText("Pull cancelled: nothing was added.")
        )
        self.puller.finished.connect(self._on_finished)
        self.controller.examination_changed.connect(self.show_search_again)
        # before the case closes: stop and wait for this dialog's work first
        self.controller.case_closing.connect(self.stop_work)
        self.controller.case_closed.connect(self.reject)

        self._fill_probes(probe)
        self._fill_earlier()
        self._update_buttons()

    # ---- what is shown ------------------------------------------------------------
    @property
    def case(self) -> Case | None:
        return self.controller.case

    def _fill_probes(self, current: str) -> None:
        case = self.case
        self.probe_combo.clear()
        if case is None:
            return
        labels = [
            face.label
            for face in case.faces()
            if case.exhibit(face.mark).role == "probe"
        ]
        self.probe_combo.addItems(labels)
        if current in labels:
            self.probe_combo.setCurrentText(current)

    def _fill_earlier(self, select: GallerySearch | None = None) -> None:
        case = self.case
        self.earlier.clear()
        self.earlier.addItem(NEW_SEARCH, None)
        searches = (
            [] if case is None else case.gallery_searches.searches(examination=None)
        )
        for search in searches:
            self.earlier.addItem(
                f"{search.name}: {search.probe_label}, top {search.k} of "
                f"{search.gallery_size} ({_when(search.created)[:16]})",
                search.id,
            )
        if select is not None:
            index = self.earlier.findData(select.id)
            self.earlier.setCurrentIndex(max(index, 0))

    def recorded_searches(self) -> list[str]:
        """The names listed as recorded searches (S1, S2, ...)."""
        return [
            self.earlier.itemText(i).partition(":")[0]
            for i in range(1, self.earlier.count())
        ]

    def _on_earlier_chosen(self, index: int) -> None:
        number = self.earlier.itemData(index)
        case = self.case
        if number is None or case is None:
            self.show_search(None)
            return
        try:
            search = session_search(case, self.controller.examination(), int(number))
        except BadInputError as error:
            self.errors.report(error, context="Could not read the recorded search.")
            return
        self.show_search(search)

    def open_search(self, name: str) -> None:
        """Show recorded search ``name`` (S1, S2, ...), as choosing it does."""
        case = self.case
        if case is None:
            return
        search = session_search(case, self.controller.examination(), name)
        self._fill_earlier(select=search)
        self.show_search(search)

    def show_search_again(self) -> None:
        """Re-read the shown search (an unmasking or a pull changes what shows)."""
        if self.search is not None and self.case is not None:
            self.show_search(self.search)

    def show_search(self, search: GallerySearch | None) -> None:
        """Show ``search`` as this session may see it (read again: its scores are
        those the window's examination may see, whoever read it before)."""
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        case = self.case
        if search is None or case is None:
            self.search = None
            self.summary.setText("")
            self._update_buttons()
            return
        search = session_search(case, self.controller.examination(), search)
        self.search = search
        # Search again repeats it: its gallery, probe and top
        if search.gallery_path:
            self.gallery_edit.setText(search.gallery_path)
        if self.probe_combo.findText(search.probe_label) >= 0:
            self.probe_combo.setCurrentText(search.probe_label)
        self.top_spin.setValue(max(TOP_MIN, min(search.k, TOP_MAX)))
        pulled = lead_marks(case, search)
        hidden = hidden_ranks(search)
        summary = search_summary(search)
        if not search.probe_current:
            summary += f" — {wording.gallery_probe_replaced(search.probe_label)}"
        if hidden:
            summary += (
                f" — scores masked: sequential unmasking is on; {len(hidden)} of "
                f"{len(search.candidates)} hidden until the pair is unmasked"
            )
        scale = workflow.search_scale_note(search)
        self.summary.setText(summary + (f"\n{scale}" if scale else ""))
        self.table.setRowCount(len(search.candidates))
        for row, candidate in enumerate(search.candidates):
            self._set_row(row, search, candidate, candidate.rank in hidden, pulled)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(RANK, Qt.SortOrder.AscendingOrder)
        self._update_buttons()

    def _set_row(
        self,
        row: int,
        search: GallerySearch,
        candidate: SearchCandidate,
        hidden: bool,
        pulled: dict[int, str],
    ) -> None:
        shown = None if hidden else offered_score(search, candidate.rank)
        score = MASKED_CELL if shown is None else f"{shown:.4f}"
        cells = {
            RANK: (str(candidate.rank), candidate.rank),
            IDENTITY: (candidate.identity, None),
            FILE: (candidate.file, None),
            SCORE: (score, shown),
            IN_CASE: (pulled.get(candidate.rank, ""), None),
        }
        for column, (text, key) in cells.items():
            item = _Cell(text)
            if key is not None:
                item.setData(Qt.ItemDataRole.UserRole, key)
            item.setData(Qt.ItemDataRole.UserRole + 1, candidate.rank)
            if column in (RANK, SCORE):
                item.setTextAlignment(
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
            if column == FILE:
                item.setToolTip(f"{candidate.file}\nSHA-256 {candidate.image_sha256}")
            self.table.setItem(row, column, item)

    def rows(self) -> list[tuple[str, ...]]:
        """The table as text, row by row (what the examiner reads)."""
        return [
            tuple(
                (self.table.item(r, c).text() if self.table.item(r, c) else "")
                for c in range(self.table.columnCount())
            )
            for r in range(self.table.rowCount())
        ]

    def selected_rank(self) -> int | None:
        items = self.table.selectedItems()
        if not items:
            return None
        return int(items[0].data(Qt.ItemDataRole.UserRole + 1))

    def select_rank(self, rank: int) -> None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, RANK)
            if item is not None and int(item.data(Qt.ItemDataRole.UserRole)) == rank:
                self.table.selectRow(row)
                return

    def busy(self) -> bool:
        return self.searcher.is_busy() or self.puller.is_busy()

    def _update_buttons(self) -> None:
        allowed, why = action_state(self.case)
        busy = self.busy()
        can_search = allowed and not busy and self.probe_combo.count() > 0
        self.search_button.setEnabled(can_search and bool(self.gallery_edit.text()))
        self.search_button.setToolTip(why)
        self.cancel_button.setEnabled(busy)
        rank = self.selected_rank()
        pulled = (
            self.search is not None
            and self.case is not None
            and rank in lead_marks(self.case, self.search)
        )
        self.pull_button.setEnabled(
            allowed and not busy and rank is not None and not pulled
        )
        self.pull_button.setToolTip(
            why or ("This candidate is already in the case." if pulled else PULL_TIP)
        )

    # ---- searching ----------------------------------------------------------------
    def choose_gallery(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a reference gallery (.xfrgallery folder)",
            self.gallery_edit.text(),
        )  # fmt: skip
        if folder:
            self.gallery_edit.setText(folder)

    def start_search(self) -> None:
        case, model = self.case, self.controller.model
        if case is None:
            return
        if model is None:
            self.errors.report(
                BadInputError("no face model is loaded yet; wait for it, or choose "
                              "one in Settings"),
                context="Could not search the gallery.",
            )  # fmt: skip
            return
        gallery = self.gallery_edit.text().strip()
        probe = self.probe_combo.currentText()
        self._searches_before = len(case.gallery_searches.searches(examination=None))
        self._top_asked = self.top_spin.value()
        self.status.setText(f"Searching {probe} against {Path(gallery).name}…")
        self._show_busy("Waiting for the processor…")
        self.searcher.start(
            workflow.search_gallery,
            case,
            probe,
            gallery,
            self.top_spin.value(),
            model,
            examination=self.controller.examination(),
        )
        self._update_buttons()

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(min(done, total))
        self.progress.setFormat(message or "%p%")

    def _show_busy(self, message: str) -> None:
        self.progress.setRange(0, 0)  # busy until the first progress
        self.progress.setFormat(message)
        self.progress.show()

    def _on_searched(self, search: GallerySearch) -> None:
        self.controller.audit_changed.emit()  # the search is in the audit trail
        self._fill_earlier(select=search)
        self.show_search(search)
        capped = workflow.gallery_top_note(self._top_asked, search)
        self.status.setText(
            f"Recorded as {search.name}: {len(search.candidates)} candidate(s)."
            + (f" {capped}" if capped else "")
        )

    def _on_search_cancelled(self) -> None:
        case = self.case
        searches = (
            [] if case is None else case.gallery_searches.searches(examination=None)
        )
        if len(searches) > self._searches_before:
            # it ran to its end before it could stop: say so, it is in the case
            self.controller.audit_changed.emit()
            self._fill_earlier()
            self.status.setText(
                f"The search had finished before it could stop: it is recorded as "
                f"{searches[-1].name} (Recorded searches)."
            )
        else:
            self.status.setText("Search cancelled: nothing was recorded.")

    def _on_finished(self) -> None:
        self.progress.hide()
        self._update_buttons()

    def cancel(self) -> None:
        self.searcher.cancel()
        self.puller.cancel()

    def stop_work(self) -> None:
        """Cancel the search or pull and wait for it to end (closing the dialog
        or the case): nothing of this dialog runs on against a closed case."""
        self.searcher.shutdown()
        self.puller.shutdown()

    def done(self, result: int) -> None:  # Close, Esc, the window's X, reject()
        self.stop_work()
        super().done(result)

    # ---- pulling ------------------------------------------------------------------
    def pull_selected(self) -> None:
        case, search, rank = self.case, self.search, self.selected_rank()
        if case is None or search is None or rank is None:
            return
        candidate = search.candidate(rank)
        image: str | None = None
        if not workflow.candidate_image_path(search, candidate).is_file():
            image = self.ask_image(search, candidate)
            if not image:
                self.status.setText("No image chosen: nothing was added.")
                return
        self.pull(search.name, rank, image)

    def ask_image(self, search: GallerySearch, candidate: SearchCandidate) -> str:
        """Ask where the candidate's image is ('' when the examiner cancels)."""
        expected = workflow.candidate_image_path(search, candidate)
        path, _ = QFileDialog.getOpenFileName(
            self,
            f"Where is {candidate.file} ({candidate.identity}, rank "
            f"{candidate.rank} of {search.name})?",
            str(expected.parent if expected.parent.is_dir() else ""),
            "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp);;All files (*)",
        )
        return path

    def pull(self, search: str, rank: int, image: str | None = None) -> None:
        case = self.case
        if case is None:
            return
        self._pulling = (search, rank)
        self.status.setText(f"Pulling rank {rank} of {search} into the case…")
        self._show_busy("Waiting for the processor…")
        self.puller.start(_pull, case, search, rank, image, self.controller.model)
        self._update_buttons()

    def _on_pulled(self, exhibit: Any) -> None:
        controller = self.controller
        # what an intake announces: every view of the case re-reads it
        controller.exhibits_changed.emit()
        controller.faces_changed.emit()
        controller.audit_changed.emit()
        controller.rank()
        searched, rank = self._pulling or ("", 0)
        self.status.setText(
            f"Added {exhibit.mark}: rank {rank} of {searched}, an investigative "
            "lead - compare it one to one before any conclusion."
        )
        self.show_search_again()
