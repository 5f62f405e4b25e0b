"""Layer-by-layer maps: what each depth of the network looks at.

After Alonso-Fernandez et al. 2023, §IV-D.

For every layer tap with a spatial extent, and for the embedding itself:

* LIME with that layer's global-average-pooled (GAP) activations as the embedding
  (Alonso-Fernandez et al. 2023: "we utilize the embedding provided by the
  respective intermediate layer"); one set of perturbations serves all layers,
  one surrogate per layer;
* Grad-CAM at that layer with the pair's cosine similarity as target (one
  backward pass serves all layers).

Also reported per layer: the cosine similarity of the two images' GAP features,
which shows at which depth the two faces start to look alike to the model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.explain.base import (
    CancelCallback,
    ExplainContext,
    eval_mode,
    int_param,
    make_context,
)
from core.explain.cam import activations_and_gradients, cam_maps
from core.explain.layers import tap_shapes
from core.explain.methods.lime import LIME_PARAMS, lime_design, lime_map
from core.explain.perturb import blend
from core.models.base import FaceModel
from core.progress import ProgressCallback


@dataclass(frozen=True)
class LayerMaps:
    name: str
    channels: int
    size: tuple[int, int] | None  # spatial (h, w); None for the embedding
    gap_cosine: float  # cosine similarity of the two images' pooled features
    lime_maps: tuple[np.ndarray, np.ndarray] = field(repr=False)  # probe, gallery
    gradcam_maps: tuple[np.ndarray, np.ndarray] | None = field(repr=False)


@dataclass(frozen=True)
class LayerwiseResult:
    model_id: str
    model_sha256: str
    params: Mapping[str, Any]
    seed: int
    seconds: float
    layers: tuple[LayerMaps, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {"id": self.model_id, "weights_sha256": self.model_sha256},
            "params": dict(self.params),
            "seed": self.seed,
            "seconds": round(self.seconds, 4),
            "notes": list(self.notes),
            "layers": [
                {
                    "name": layer.name,
                    "channels": layer.channels,
                    "size_hw": list(layer.size) if layer.size else None,
                    "gap_cosine": layer.gap_cosine,
                }
                for layer in self.layers
            ],
        }


def _pooled(activation: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, C) by global average pooling; vectors pass through."""
    return (
        activation.mean(dim=(2, 3)) if activation.ndim == 4 else activation.flatten(1)
    )


def _pooled_features(
    ctx: ExplainContext, names: list[str], batch: torch.Tensor
) -> dict[str, torch.Tensor]:
    with torch.inference_mode(), ctx.model.capture(names) as captured:
        ctx.model.embed(batch)
    return {name: _pooled(captured[name]).float() for name in names}


def explain_layers(
    pair,
    model: FaceModel,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    *,
    batch_size: int | None = None,
) -> LayerwiseResult:
    """LIME and Grad-CAM maps at every layer tap of ``model``, both images."""
    defaults = {p.name: p.default for p in LIME_PARAMS}
    given = params or {}
    unknown = set(given) - set(defaults)
    if unknown:
        from core.errors import BadInputError

        raise BadInputError(f"layer-by-layer maps take no parameter {sorted(unknown)}")
    resolved = {
        **defaults,
        **{
            k: p.coerce(given[k], "layerwise")
            for p in LIME_PARAMS
            if (k := p.name) in given
        },
    }
    began = time.perf_counter()
    shapes = tap_shapes(model)
    names = [shape.name for shape in shapes]
    spatial = [shape.name for shape in shapes if shape.size is not None]
    with eval_mode(model):
        ctx = make_context(
            pair, model, resolved, seed, progress, cancel, batch_size, None
        )
        samples = int_param(resolved, "samples")
        ctx.start(2 * samples + 2)
        references = [_pooled_features(ctx, names, x) for x in ctx.inputs]
        lime: dict[str, list[np.ndarray]] = {name: [] for name in names}
        gradcam: dict[str, list[np.ndarray]] = {name: [] for name in spatial}
        black = ctx.black_input()
        for side in (0, 1):
            labels, design, keep = lime_design(ctx, side)
            reference = (
                references[1 - side]
                if resolved["reference"] == "pair"
                else references[side]
            )
            scores = torch.empty(
                (samples, len(names)), dtype=torch.float64, device="cpu"
            )
            x = ctx.inputs[side]
            for start in range(0, samples, ctx.batch_size):
                stop = min(samples, start + ctx.batch_size)
                pooled = _pooled_features(ctx, names, blend(x, black, keep[start:stop]))
                for column, name in enumerate(names):
                    scores[start:stop, column] = (
                        torch.nn.functional.cosine_similarity(
                            pooled[name], reference[name], dim=1
                        )
                        .double()
                        .cpu()
                    )
                ctx.step(stop - start, f"{pair.sides[side].side}, layer-by-layer LIME")
            for column, name in enumerate(names):
                scaled, _signed = lime_map(
                    labels, design, scores[:, column].cpu().numpy(), resolved
                )
                lime[name].append(scaled)
            for name, (activation, gradient) in activations_and_gradients(
                ctx, side, spatial
            ).items():
                gradcam[name].append(
                    cam_maps(
                        activation, gradient, model.input_size, plus_plus=False
                    ).similarity
                )
            ctx.step(1)
    layers = tuple(
        LayerMaps(
            name=shape.name,
            channels=shape.channels,
            size=shape.size,
            gap_cosine=float(
                torch.nn.functional.cosine_similarity(
                    references[0][shape.name], references[1][shape.name], dim=1
                )[0]
            ),
            lime_maps=(lime[shape.name][0], lime[shape.name][1]),
            gradcam_maps=(gradcam[shape.name][0], gradcam[shape.name][1])
            if shape.name in gradcam
            else None,
        )
        for shape in shapes
    )
    return LayerwiseResult(
        model.model_id,
        model.weights_sha256,
        resolved,
        int(seed),
        time.perf_counter() - began,
        layers,
        tuple(ctx.notes),
    )


def write_layers(result: LayerwiseResult, out_dir: str | Path) -> dict[str, Any]:
    """``layerwise/{lime,gradcam}_{probe,gallery}.npy`` stacks (layers, H, W) + JSON."""
    from core.explain.export import staged_folder

    final = Path(out_dir) / "layerwise"
    files = {}
    with staged_folder(final) as folder:
        for index, side in enumerate(("probe", "gallery")):
            lime_stack = np.stack([layer.lime_maps[index] for layer in result.layers])
            np.save(folder / f"lime_{side}.npy", lime_stack.astype(np.float32))
            files[f"lime_{side}"] = str(final / f"lime_{side}.npy")
            cam_layers = [
                layer for layer in result.layers if layer.gradcam_maps is not None
            ]
            cam_stack = np.stack([layer.gradcam_maps[index] for layer in cam_layers])
            np.save(folder / f"gradcam_{side}.npy", cam_stack.astype(np.float32))
            files[f"gradcam_{side}"] = str(final / f"gradcam_{side}.npy")
        manifest = {
            **result.to_dict(),
            "files": files,
            "lime_layers": [layer.name for layer in result.layers],
            "gradcam_layers": [
                layer.name for layer in result.layers if layer.gradcam_maps is not None
            ],
        }
        (folder / "layers.json").write_text(json.dumps(manifest, indent=2))
    return manifest
