"""A small view of one aligned face chip, optionally with its explanation heatmap.

The chip is what the model actually saw, so examiners look at it beside the
evidence image; the heatmap is blended in numpy with the same colour mapping as the
evidence viewer (``core.colours.colourise``), so both views agree on every colour.
No model or disk work happens here.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.colours import colourise
from xfr_desktop.widgets.qimage import rgb_to_qimage

DEFAULT_CHIP_SIZE = 150


def blend_overlay(rgb: np.ndarray, rgba: np.ndarray, opacity: float) -> np.ndarray:
    """``rgb`` with ``rgba`` laid over it (alpha scaled by ``opacity``), uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0 * float(np.clip(opacity, 0, 1))
    mixed = rgb.astype(np.float32) * (1.0 - alpha) + rgba[..., :3] * alpha
    return np.round(mixed).astype(np.uint8)


class ChipView(QWidget):
    """An aligned face chip scaled to a fixed box, with a caption under it."""

    def __init__(
        self, size: int = DEFAULT_CHIP_SIZE, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._size = int(size)
        self._chip: np.ndarray | None = None
        self._overlay: (
            tuple[np.ndarray, bool, str, float, float, float | None] | None
        ) = None
        self._rendered: np.ndarray | None = None
        self._image = QLabel(self)
        self._image.setFixedSize(self._size, self._size)
        self._image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._image.setStyleSheet("background: #282828")
        self._caption = QLabel(self)
        self._caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._caption.setWordWrap(True)
        self._caption.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self._caption)

    def set_chip(self, rgb: np.ndarray | None) -> None:
        """Show a chip (RGB uint8 (h, w, 3)), or nothing.

        The overlay is kept when it still fits the chip's size, dropped otherwise.
        """
        if rgb is None:
            self._chip = None
        else:
            chip = np.asarray(rgb)
            if chip.ndim != 3 or chip.shape[2] != 3 or chip.dtype != np.uint8:
                raise ValueError(
                    f"a chip must be (h, w, 3) uint8, got {chip.shape} {chip.dtype}"
                )
            self._chip = np.ascontiguousarray(chip)
            if self._overlay is not None and self._overlay[0].shape != chip.shape[:2]:
                self._overlay = None  # a heatmap of another chip: meaningless here
        self._render()

    def set_overlay(
        self,
        values: np.ndarray | None,
        signed: bool = False,
        colour_map: str = "jet",
        opacity: float = 0.6,
        top_percent: float = 100.0,
        peak: float | None = None,
        floor: float | None = None,
    ) -> None:
        """Blend a heatmap at chip resolution over the chip (None removes it).

        ``peak``: the end of a scale shared with other chips (None: this map's)."""
        if values is None:
            self._overlay = None
        else:
            array = np.array(values, dtype=np.float32, copy=True)
            if array.ndim != 2:
                raise ValueError(f"a heatmap must be 2-D, got shape {array.shape}")
            if self._chip is not None and array.shape != self._chip.shape[:2]:
                raise ValueError(
                    f"heatmap shape {array.shape} does not match the chip "
                    f"{self._chip.shape[:2]}"
                )
            self._overlay = (
                array, bool(signed), colour_map, opacity, top_percent, peak, floor
            )  # fmt: skip
        self._render()

    def set_caption(self, text: str) -> None:
        """Text under the chip (e.g. "probe" or the model's name)."""
        self._caption.setText(text)
        self._caption.setVisible(bool(text))

    def caption(self) -> str:
        return self._caption.text()

    def rendered_rgb(self) -> np.ndarray | None:
        """The chip as displayed before scaling (overlay blended), or None."""
        return None if self._rendered is None else self._rendered.copy()

    def pixmap(self) -> QPixmap:
        """The scaled pixmap on screen (null without a chip)."""
        return self._image.pixmap()

    def _render(self) -> None:
        if self._chip is None:
            self._rendered = None
            self._image.clear()
            return
        shown = self._chip
        if self._overlay is not None:
            values, signed, colour_map, opacity, top_percent, peak, floor = (
                self._overlay
            )
            rgba, _, _ = colourise(
                values, signed, colour_map, top_percent, peak, floor=floor
            )
            shown = blend_overlay(shown, rgba, opacity)
        self._rendered = shown
        pixmap = QPixmap.fromImage(rgb_to_qimage(shown)).scaled(
            self._size,
            self._size,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self._image.setPixmap(pixmap)
