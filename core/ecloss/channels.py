"""The channel analysis of ECLoss (Lin, Liu, Li and Shen 2023) in one import.

``xfr channels`` and the GUI's channels panel use the analysis as a whole: read
faces, analyse a layer, draw and write the result.  This module is that public API;
the code lives in one module per responsibility:

* :mod:`core.ecloss.channel_metrics` - the measures on arrays: the top-10 % area
  (eqs. 8-9), part IoU (eq. 10), PE, LS and peak counting (§5.2), and their plain
  explanations;
* :mod:`core.ecloss.channel_data` - aligned face chips with 68 landmarks from a
  folder, a ``pairs.txt`` or a case, and a layer's feature maps over them;
* :mod:`core.ecloss.channel_analysis` - :func:`analyse_channels` and the
  :class:`ChannelReport` it returns (with the split standard errors);
* :mod:`core.ecloss.channel_figures` - overlays, the channel grid and the output
  folder (summary, table, PNGs).
"""

from __future__ import annotations

from core.ecloss.channel_analysis import (
    REPEATS,
    ChannelExamples,
    ChannelReport,
    ChannelStats,
    analyse_channels,
)
from core.ecloss.channel_data import (
    FaceChips,
    case_face_chips,
    detect_face_chips,
    layer_maps,
    load_face_chips,
)
from core.ecloss.channel_figures import (
    PART_COLOURS,
    channel_grid,
    overlay_parts,
    overlay_top_area,
    write_channel_outputs,
)
from core.ecloss.channel_metrics import (
    MIN_PROMINENCE,
    PLAIN_EXPLANATIONS,
    TOP_FRACTION,
    best_parts,
    channel_consistency,
    count_peaks,
    face_part_explainability,
    location_consistency,
    part_iou,
    peak_prominences,
    top_area,
    top_threshold,
    upsample,
)

__all__ = [
    "MIN_PROMINENCE",
    "PART_COLOURS",
    "PLAIN_EXPLANATIONS",
    "REPEATS",
    "TOP_FRACTION",
    "ChannelExamples",
    "ChannelReport",
    "ChannelStats",
    "FaceChips",
    "analyse_channels",
    "best_parts",
    "case_face_chips",
    "channel_consistency",
    "channel_grid",
    "count_peaks",
    "detect_face_chips",
    "face_part_explainability",
    "layer_maps",
    "load_face_chips",
    "location_consistency",
    "overlay_parts",
    "overlay_top_area",
    "part_iou",
    "peak_prominences",
    "top_area",
    "top_threshold",
    "upsample",
    "write_channel_outputs",
]
