"""The Settings dialog: edits a copy of ``Settings``; OK keeps it, Cancel drops it.

The dialog never saves anything itself: the caller reads ``settings()`` after the
dialog was accepted and decides what to store (``save_settings``) and what to
apply (theme, device, model).  ``recent_cases`` and ``schema_version`` pass through
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from xfr_desktop.settings import COLOUR_MAPS, DEVICES, THEMES, Settings, login_name

DEVICE_LABELS = {
    "auto": "Automatic (CUDA when available)",
    "cpu": "CPU",
    "cuda": "CUDA (NVIDIA GPU)",
}
NO_CUDA_TOOLTIP = "No CUDA device is available on this computer."
THRESHOLD_DEFAULT = 0.6  # the spin box's value before the examiner sets one
OPACITY_STEPS = 100  # the slider runs 0..100 %


class SettingsDialog(QDialog):
    """Edit ``settings`` (a copy is edited; the argument is never changed).

    ``model_ids`` fills the model combo; the current ``model_id`` is added when it
    is not among them, so opening and accepting the dialog never changes it.
    ``cuda_available`` defaults to ``torch.cuda.is_available()``.
    """

    def __init__(
        self,
        settings: Settings,
        model_ids: Sequence[str],
        parent: QWidget | None = None,
        *,
        cuda_available: bool | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings.copy()
        if cuda_available is None:
            cuda_available = torch.cuda.is_available()

        self.device_combo = QComboBox()
        for device in DEVICES:
            self.device_combo.addItem(DEVICE_LABELS[device], device)
        if not cuda_available:
            self._disable_item(self.device_combo, "cuda", NO_CUDA_TOOLTIP)

        self.model_combo = QComboBox()
        ids = list(dict.fromkeys(model_ids))
        if settings.model_id not in ids:
            ids.append(settings.model_id)
        for model_id in ids:
            self.model_combo.addItem(model_id, model_id)

        self.own_threshold_check = QCheckBox("Use the model's own threshold")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setRange(0.001, 10.0)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_spin.setToolTip(
            "Decision threshold in the model's own score units; changing it changes "
            "which comparisons are flagged, so record why you did."
        )
        self.own_threshold_check.toggled.connect(
            lambda own: self.threshold_spin.setEnabled(not own)
        )

        self.colour_map_combo = QComboBox()
        for name in COLOUR_MAPS:
            self.colour_map_combo.addItem(name, name)

        self.user_edit = QLineEdit()
        self.user_edit.setPlaceholderText("the case's examiner")
        self.user_edit.setToolTip(
            "The name recorded in the audit trail; empty means the examiner named "
            f"in the case. Your login name ({login_name()}) is recorded beside it."
        )

        self.theme_combo = QComboBox()
        for name in THEMES:
            self.theme_combo.addItem(name.capitalize(), name)

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, OPACITY_STEPS)
        self.opacity_label = QLabel()
        self.opacity_label.setMinimumWidth(
            self.opacity_label.fontMetrics().horizontalAdvance("100 %")
        )
        self.opacity_slider.valueChanged.connect(
            lambda value: self.opacity_label.setText(f"{value} %")
        )

        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.own_threshold_check)
        threshold_row.addWidget(self.threshold_spin, 1)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(self.opacity_slider, 1)
        opacity_row.addWidget(self.opacity_label)

        form = QFormLayout()
        form.addRow("&Device:", self.device_combo)
        form.addRow("&Face model:", self.model_combo)
        form.addRow("Threshold:", threshold_row)
        form.addRow("&Colour map:", self.colour_map_combo)
        form.addRow("Overlay opacity:", opacity_row)
        form.addRow("&Your name:", self.user_edit)
        form.addRow("&Theme:", self.theme_combo)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

        self._show(self._settings)

    @staticmethod
    def _disable_item(combo: QComboBox, data: str, tooltip: str) -> None:
        index = combo.findData(data)
        model = combo.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(index)
            item.setEnabled(False)
            item.setToolTip(tooltip)

    def is_device_enabled(self, device: str) -> bool:
        """Whether ``device`` can be chosen in the device combo."""
        model = self.device_combo.model()
        index = self.device_combo.findData(device)
        if index < 0:
            return False
        if isinstance(model, QStandardItemModel):
            return model.item(index).isEnabled()
        return True

    def _show(self, settings: Settings) -> None:
        # A stored "cuda" stays selected even where CUDA is missing (the item is
        # greyed out), so opening and accepting the dialog never changes it.
        self.device_combo.setCurrentIndex(self.device_combo.findData(settings.device))
        self.model_combo.setCurrentIndex(self.model_combo.findData(settings.model_id))
        own = settings.threshold is None
        self.own_threshold_check.setChecked(own)
        self.threshold_spin.setEnabled(not own)
        self.threshold_spin.setValue(
            THRESHOLD_DEFAULT if settings.threshold is None else settings.threshold
        )
        self.colour_map_combo.setCurrentIndex(
            max(0, self.colour_map_combo.findData(settings.colour_map))
        )
        self.user_edit.setText(settings.user_name)
        self.theme_combo.setCurrentIndex(
            max(0, self.theme_combo.findData(settings.theme))
        )
        self.opacity_slider.setValue(round(settings.overlay_opacity * OPACITY_STEPS))
        self.opacity_label.setText(f"{self.opacity_slider.value()} %")

    def settings(self) -> Settings:
        """The edited copy (the original passed in is never changed)."""
        edited = self._settings.copy()
        edited.device = self.device_combo.currentData()
        edited.model_id = self.model_combo.currentData()
        edited.threshold = (
            None
            if self.own_threshold_check.isChecked()
            else float(self.threshold_spin.value())
        )
        edited.colour_map = self.colour_map_combo.currentData()
        edited.user_name = self.user_edit.text().strip()
        edited.theme = self.theme_combo.currentData()
        edited.overlay_opacity = self.opacity_slider.value() / OPACITY_STEPS
        return edited
