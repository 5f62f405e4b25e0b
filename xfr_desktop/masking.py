"""Sequential unmasking and blind verification in the GUI: what a panel may show.

``core.case.examination`` decides what is masked; this module is the one place the
panels ask.  ``Masking`` follows the case controller (its ``blind`` flag, case open
and close, ``examination_changed``) and the pair shown in the Comparison tab, and
emits ``changed`` whenever what is masked may have changed, so that every panel
re-asks and shows the model's results as soon as a pair is unmasked.

With no ``Masking`` attached, a panel that has a case still masks what the case's
examination (not blind) masks: forgetting to wire it never shows a masked score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import QObject, Signal

from core.case.examination import MASKED, Examination

if TYPE_CHECKING:
    from core.case.store import Case
    from xfr_desktop.case_controller import CaseController

# What stands in for a masked score, LR, decision or rank in a table cell.
HIDDEN_CELL = MASKED
BLIND_CONCLUSIONS_NOTE = (
    "Blind verification: the first examiner's conclusions are hidden; only your "
    "own are listed. They are shown when the case is opened outside the blind "
    "session."
)

T = TypeVar("T")


def hidden_message(questioned: str, known: str) -> str:
    """The one line shown instead of a masked pair's results (every panel)."""
    return (
        f"The model's results for {questioned} / {known} are hidden until you record "
        "your analysis and evaluation and unmask them (Examination tab) — "
        "sequential unmasking is on for this case."
    )


def hidden_list_message(questioned: str) -> str:
    """The 1:N list's line while a pair of ``questioned`` is masked."""
    return (
        f"Scores, likelihood ratios, decisions and ranks for {questioned} are hidden "
        "until every pair of it is unmasked (Examination tab) — sequential "
        "unmasking is on for this case. The gallery faces are listed in mark order."
    )


def case_examination(case: Case | None) -> Examination | None:
    """The examination a panel without ``Masking`` uses: the case's, not blind."""
    return None if case is None else case.examination()


class Masking(QObject):
    """What the open case lets this session see, for every panel."""

    changed = Signal()

    def __init__(
        self,
        controller: CaseController,
        shown_pair: Callable[[], tuple[str, str] | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self._shown_pair = shown_pair
        controller.examination_changed.connect(self.changed)
        controller.case_opened.connect(lambda _case: self.changed.emit())
        controller.case_closed.connect(self.changed)

    @property
    def blind(self) -> bool:
        return bool(self.controller.blind)

    def examination(self) -> Examination | None:
        return self.controller.examination()

    def masked(self, questioned: str, known: str) -> bool:
        return self.controller.masked(questioned, known)

    def any_masked(self, questioned: str) -> bool:
        examination = self.examination()
        return examination is not None and examination.any_masked(questioned)

    def shown_pair(self) -> tuple[str, str] | None:
        """The (questioned, known) labels of the pair in the Comparison tab."""
        return self._shown_pair()

    def shown_pair_hidden(self) -> str:
        """The hidden line for the shown pair, "" when its results may be shown."""
        pair = self.shown_pair()
        if pair is None or not self.masked(*pair):
            return ""
        return hidden_message(*pair)

    def redact(self, entries: Iterable[Any]) -> list[Any]:
        examination = self.examination()
        return list(entries) if examination is None else examination.redact(entries)

    def visible_annotations(self, annotations: Iterable[T]) -> list[T]:
        examination = self.examination()
        if examination is None:
            return list(annotations)
        return examination.visible_annotations(annotations)

    def visible_conclusions(self, conclusions: Iterable[T]) -> list[T]:
        """In a blind session only the verifier's own conclusions."""
        examination = self.examination()
        if examination is None or not self.blind:
            return list(conclusions)
        user = examination.case.user
        return [c for c in conclusions if getattr(c, "author", None) == user]


def attach_masking(window: Any) -> Masking:
    """Give the main window's panels one ``Masking`` (once; later calls return
    it).  ``window`` is a ``MainWindow``: its controller and its panels."""
    existing = getattr(window, "masking", None)
    if isinstance(existing, Masking):
        return existing
    compare = window.compare

    def shown_pair() -> tuple[str, str] | None:
        loaded = compare.loaded
        return None if loaded is None else (loaded.probe_label, loaded.gallery_label)

    masking = Masking(window.controller, shown_pair, window)
    window.masking = masking
    # a newly loaded pair may be masked: the panels showing its results re-ask
    compare.pair_loaded.connect(lambda _loaded: masking.changed.emit())
    for panel in (
        compare,
        window.explain,
        window.grid,
        window.layers,
        window.audit,
        window.annotation_list,
        window.conclusion,
    ):
        panel.set_masking(masking)
    return masking


__all__ = [
    "BLIND_CONCLUSIONS_NOTE",
    "HIDDEN_CELL",
    "Masking",
    "attach_masking",
    "case_examination",
    "hidden_list_message",
    "hidden_message",
]
