"""The feature worksheet (ACE-V's C): the ASTM E3149 / FISWG components, each with
its characteristics under it, an observation, notes and links to annotations on
the questioned and the known image.

Beside the examiner's columns, and only when the pair's results are unmasked and
the ``components`` method was run on it, a read-only column shows what hiding
that component did to the *model's* score: the model's behaviour, not evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QHeaderView,
    QMenu,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from core.case.acev import FEATURE_LIST, OBSERVATIONS, FeatureObservation, Worksheet

COMPONENT, OBSERVATION, NOTES, ON_QUESTIONED, ON_KNOWN, MODEL = range(6)
HEADERS = (
    "Component",
    "Observation",
    "Notes (double-click)",
    "On Q",
    "On K",
    "Model's behaviour (not evidence)",
)
NOT_RECORDED = "—"  # the combo's first entry: nothing recorded for this row
KEY_ROLE = Qt.ItemDataRole.UserRole


class AnnotationPicker(QToolButton):
    """A button whose menu ticks the annotations linked to one row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setMenu(QMenu(self))
        self.set_choices([], ())

    def set_choices(
        self, choices: Sequence[tuple[int, str]], chosen: Sequence[int]
    ) -> None:
        menu = self.menu()
        menu.clear()
        for annotation_id, name in choices:
            action = QAction(f"#{annotation_id} {name}", menu)
            action.setCheckable(True)
            action.setChecked(annotation_id in chosen)
            action.setData(annotation_id)
            action.toggled.connect(self._update_text)
            menu.addAction(action)
        self.setEnabled(bool(choices))
        self.setToolTip(
            "" if choices else "No annotation on this image yet (Comparison tab)"
        )
        self._update_text()

    def chosen(self) -> tuple[int, ...]:
        return tuple(int(a.data()) for a in self.menu().actions() if a.isChecked())

    def set_chosen(self, ids: Sequence[int]) -> None:
        for action in self.menu().actions():
            action.setChecked(int(action.data()) in ids)

    def _update_text(self) -> None:
        ids = self.chosen()
        self.setText(", ".join(f"#{i}" for i in ids) if ids else "link…")


class WorksheetTree(QTreeWidget):
    """The 18 components (expandable into their characteristics)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(HEADERS))
        self.setHeaderLabels(list(HEADERS))
        self.setAlternatingRowColors(True)
        header = self.header()
        header.setSectionResizeMode(NOTES, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        # at 1280 x 720 the examiner's five columns fit without scrolling
        self.setColumnWidth(COMPONENT, 150)
        self.setColumnWidth(OBSERVATION, 170)
        self.setColumnWidth(ON_QUESTIONED, 80)
        self.setColumnWidth(ON_KNOWN, 80)
        self.setColumnWidth(MODEL, 260)
        header.setMinimumSectionSize(60)
        for column, tip in (
            (ON_QUESTIONED, "Annotations on the questioned image linked to the row"),
            (ON_KNOWN, "Annotations on the known image linked to the row"),
            (NOTES, "Double-click a row's notes to type them"),
        ):
            self.headerItem().setToolTip(column, tip)
        self.combos: dict[tuple[str, str], QComboBox] = {}
        # links of a characteristic's row (recorded on the command line) have no
        # picker here: kept as they are, so saving again does not drop them
        self._characteristic_links: dict[
            tuple[str, str], tuple[tuple[int, ...], tuple[int, ...]]
        ] = {}
        self.pickers: dict[str, tuple[AnnotationPicker, AnnotationPicker]] = {}
        self.items: dict[tuple[str, str], QTreeWidgetItem] = {}
        for component in FEATURE_LIST:
            top = self._row(None, component.key, "", component.name)
            q_pick, k_pick = AnnotationPicker(), AnnotationPicker()
            self.setItemWidget(top, ON_QUESTIONED, q_pick)
            self.setItemWidget(top, ON_KNOWN, k_pick)
            self.pickers[component.key] = (q_pick, k_pick)
            for characteristic in component.characteristics:
                self._row(top, component.key, characteristic, characteristic)
        self.show_model_effects(None)

    def _row(
        self, parent: QTreeWidgetItem | None, key: str, characteristic: str, text: str
    ) -> QTreeWidgetItem:
        item = QTreeWidgetItem([text])
        item.setData(COMPONENT, KEY_ROLE, (key, characteristic))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        if parent is None:
            self.addTopLevelItem(item)
        else:
            parent.addChild(item)
        combo = QComboBox()
        combo.addItem(NOT_RECORDED, "")
        for code, words in OBSERVATIONS.items():
            combo.addItem(words, code)
        combo.setToolTip("What you observe for this component in the two images")
        self.setItemWidget(item, OBSERVATION, combo)
        self.combos[(key, characteristic)] = combo
        self.items[(key, characteristic)] = item
        return item

    def edit(self, index, trigger=None, event=None):  # type: ignore[no-untyped-def]
        """Only the notes are typed in the tree itself (the names are the list's)."""
        if index.column() != NOTES:
            return False
        if trigger is None:
            return super().edit(index)
        return super().edit(index, trigger, event)

    # ---- filling and reading ------------------------------------------------------
    def set_annotation_choices(
        self, questioned: Sequence[tuple[int, str]], known: Sequence[tuple[int, str]]
    ) -> None:
        for q_pick, k_pick in self.pickers.values():
            q_pick.set_choices(questioned, q_pick.chosen())
            k_pick.set_choices(known, k_pick.chosen())

    def show_worksheet(self, worksheet: Worksheet | None) -> None:
        self._characteristic_links = {}
        for component in FEATURE_LIST:  # nothing expanded from another record
            self.items[(component.key, "")].setExpanded(False)
        for (key, characteristic), combo in self.combos.items():
            found = worksheet.observation(key, characteristic) if worksheet else None
            if characteristic and found is not None:
                self._characteristic_links[(key, characteristic)] = (
                    found.questioned_annotations,
                    found.known_annotations,
                )
                self.items[(key, "")].setExpanded(True)  # show what is recorded
            combo.setCurrentIndex(
                max(0, combo.findData(found.value)) if found is not None else 0
            )
            self.items[(key, characteristic)].setText(
                NOTES, found.notes if found is not None else ""
            )
            if not characteristic:
                q_pick, k_pick = self.pickers[key]
                q_pick.set_chosen(found.questioned_annotations if found else ())
                k_pick.set_chosen(found.known_annotations if found else ())

    def worksheet(self, notes: str = "") -> Worksheet:
        """The rows with an observation chosen (linked annotations and notes only
        count with one: a row without an observation is not recorded)."""
        observations = []
        for (key, characteristic), combo in self.combos.items():
            value = str(combo.currentData() or "")
            if not value:
                continue
            links = self._characteristic_links.get((key, characteristic), ((), ()))
            if not characteristic:
                q_pick, k_pick = self.pickers[key]
                links = (q_pick.chosen(), k_pick.chosen())
            observations.append(
                FeatureObservation(
                    component=key,
                    value=value,
                    characteristic=characteristic,
                    notes=self.items[(key, characteristic)].text(NOTES).strip(),
                    questioned_annotations=links[0],
                    known_annotations=links[1],
                )
            )
        return Worksheet(tuple(observations), notes).sorted()

    def show_model_effects(self, effects: Mapping[str, str] | None) -> None:
        """``effects``: component key -> the model's measured change, in words;
        None hides the column (masked, or no components explanation)."""
        self.setColumnHidden(MODEL, effects is None)
        for component in FEATURE_LIST:
            item = self.items[(component.key, "")]
            text = (effects or {}).get(component.key, "")
            item.setText(MODEL, text)
            item.setToolTip(
                MODEL,
                "What hiding this component did to the model's score (the "
                "components explanation): the model's behaviour, not evidence."
                if text
                else "",
            )

    def set_editable(self, on: bool, why: str = "") -> None:
        for combo in self.combos.values():
            combo.setEnabled(on)
            combo.setToolTip("What you observe for this component" if on else why)
        for pickers in self.pickers.values():
            for picker in pickers:
                if not on:
                    picker.setEnabled(False)
                    picker.setToolTip(why)
        flags_on = Qt.ItemFlag.ItemIsEditable
        for item in self.items.values():
            item.setFlags(item.flags() | flags_on if on else item.flags() & ~flags_on)


def model_effects(details: Mapping[str, Any]) -> dict[str, str]:
    """Component key -> "probe −0.012, gallery +0.003, both −0.020 (flips)" from a
    stored ``components`` explanation's table (``details["components"]``)."""
    out: dict[str, str] = {}
    for row in details.get("components", ()):
        parts = []
        for side in ("probe", "gallery", "both"):
            change = (row.get(side) or {}).get("change")
            parts.append(f"{side} {'-' if change is None else f'{change:+.3f}'}")
        flips = (row.get("both") or {}).get("flips")
        out[str(row.get("name", ""))] = ", ".join(parts) + (
            " (decision flips)" if flips else ""
        )
    return out
