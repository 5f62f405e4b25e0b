"""Which layer taps have a spatial extent, and a default layer for CAM methods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.errors import BadInputError
from core.models.base import FaceModel


@dataclass(frozen=True)
class TapShape:
    name: str
    channels: int
    size: tuple[int, int] | None  # (h, w); None for vectors such as the embedding


def tap_shapes(model: FaceModel) -> list[TapShape]:
    """Every layer tap with its output shape (one forward pass on a black chip)."""
    names = [tap.name for tap in model.layer_taps()]
    height, width = model.input_size
    black = model.prepare(np.zeros((1, height, width, 3), np.uint8))
    with torch.inference_mode(), model.capture(names) as activations:
        model.embed(black)
    shapes = []
    for name in names:
        shape = tuple(activations[name].shape) if name in activations else ()
        spatial = (int(shape[2]), int(shape[3])) if len(shape) == 4 else None
        shapes.append(TapShape(name, int(shape[1]) if len(shape) > 1 else 0, spatial))
    return shapes


def output_shapes(model: FaceModel) -> dict[str, tuple[int, ...]]:
    """Each tap's output shape without the batch: ``(channels, h, w)`` for a
    feature map, ``(channels,)`` for a vector; taps the pass did not reach are
    left out (the one forward pass of ``tap_shapes``)."""
    return {
        shape.name: (shape.channels, *shape.size) if shape.size else (shape.channels,)
        for shape in tap_shapes(model)
        if shape.channels
    }


def default_cam_layer(model: FaceModel) -> str:
    """The model's measured Grad-CAM layer (``FaceModel.cam_layer``), else the
    deepest tap with at least 4x4 positions.

    Grad-CAM is usually taken at the last convolutional layer; that is often too
    coarse to point at a facial region (dlib's last stage is 2x2), hence at least
    4x4 when nothing was measured.  On dlib the measurement
    (``benchmarks/gradcam_layer.py``) found the 4x4 taps put their mass off the
    face, so dlib names its layer.
    """
    shapes = tap_shapes(model)
    if model.cam_layer is not None:
        for shape in shapes:
            if shape.name == model.cam_layer and shape.size is not None:
                return shape.name
        raise BadInputError(
            f"model {model.model_id} names Grad-CAM layer {model.cam_layer}, "
            "which is not one of its spatial layer taps"
        )
    candidates = [s for s in shapes if s.size and min(s.size) >= 4]
    if not candidates:
        raise BadInputError(f"model {model.model_id} has no spatial layer tap")
    return candidates[-1].name


def spatial_layer(model: FaceModel, name: str | None) -> str:
    if name is None:
        return default_cam_layer(model)
    for shape in tap_shapes(model):
        if shape.name == name:
            if shape.size is None:
                raise BadInputError(
                    f"layer {name} of model {model.model_id} has no spatial extent; "
                    "choose a convolutional layer (see 'xfr layers')"
                )
            return name
    known = ", ".join(tap.name for tap in model.layer_taps())
    raise BadInputError(f"model {model.model_id} has no layer '{name}' ({known})")
