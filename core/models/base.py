"""The face-model protocol every FR backend implements.

A face model turns aligned face chips into embeddings with a differentiable torch
forward pass, and exposes named *layer taps* (intermediate activations) so that
explainers can build layer-by-layer heatmaps.  Concrete backends:

* ``core.models.dlib_resnet`` - dlib's ResNet re-implemented in torch (default).
* ``core.models.onnx_model`` - bring-your-own ONNX / TorchScript model with a card.

The registry of models is ``core.models.model_registry``, the one loader
``core.models.loading.load_model``; this module imports neither, nor any backend.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from core.errors import BadInputError

Metric = Literal["euclidean", "cosine"]
ChannelOrder = Literal["RGB", "BGR"]


@dataclass(frozen=True)
class Preprocessing:
    """How an aligned chip becomes the model's input tensor.

    ``tensor = (pixel - mean) / std`` per channel, with pixels in 0..255 and the
    channels in ``channel_order``.  ``alignment`` names the chip geometry the model
    was trained on (see ``core.faces.align``).
    """

    input_size: tuple[int, int]  # (height, width) of the aligned chip
    channel_order: ChannelOrder = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    alignment: str = "dlib"  # "dlib" (get_face_chip, 25 % padding) or "arcface"
    flip_average: bool = False  # embed = mean of the chip's and its mirror's embedding


@dataclass(frozen=True)
class Threshold:
    """Decision rule of a model: accept when the score is on the accepting side.

    ``euclidean``: accept when distance < value; ``cosine``: accept when
    similarity >= value.  ``source`` says where the value comes from, because an
    examiner must be able to say why this number.
    """

    metric: Metric
    value: float
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "source": self.source}

    def rule_text(self) -> str:
        """The decision rule in plain words ("same person when ...")."""
        if self.metric == "euclidean":
            return f"same person when the distance is below {self.value:g}"
        return f"same person when the cosine similarity is at least {self.value:g}"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Threshold:
        return cls(values["metric"], float(values["value"]), values.get("source", ""))

    def accepts(self, cosine_similarity: float, euclidean_distance: float) -> bool:
        if self.metric == "euclidean":
            return euclidean_distance < self.value
        return cosine_similarity >= self.value


@dataclass(frozen=True)
class LayerTap:
    """A named intermediate activation of the network, shallow to deep."""

    name: str
    module_path: str  # dotted path of the nn.Module whose output is tapped
    description: str = ""


class FaceModel:
    """Base class of face-recognition backends.

    Subclasses set the attributes in ``__init__`` and provide ``network`` (an
    ``nn.Module`` mapping a preprocessed batch to embeddings).  Everything else -
    preprocessing, device handling, layer taps - lives here once.
    """

    model_id: str
    display_name: str
    weights_sha256: str
    embedding_dim: int
    preprocessing: Preprocessing
    threshold: Threshold
    network: torch.nn.Module
    taps: tuple[LayerTap, ...] = ()
    # True for a model file whose program code (TorchScript) was trusted to run.
    code_trusted: bool = False
    # The layer tap Grad-CAM explains by default, where it was measured for this
    # model (benchmarks/gradcam_layer.py); None: the generic rule in
    # ``core.explain.layers.default_cam_layer``.
    cam_layer: str | None = None

    # ---- device -----------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: str | torch.device) -> FaceModel:
        self.network.to(resolve_device(device))
        return self

    # ---- preprocessing ----------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        return self.preprocessing.input_size

    def prepare(self, chips: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Aligned RGB uint8 chips ``(N, H, W, 3)`` -> input tensor ``(N, 3, H, W)``.

        The returned tensor is on the model's device, float32, normalised.  Callers
        that need gradients w.r.t. the input call ``requires_grad_()`` on it.
        """
        batch = np.asarray(chips if isinstance(chips, np.ndarray) else np.stack(chips))
        if batch.ndim == 3:
            batch = batch[None]
        height, width = self.input_size
        if batch.ndim != 4 or batch.shape[1:] != (height, width, 3):
            raise BadInputError(
                f"model {self.model_id} expects aligned RGB chips of "
                f"{height}x{width}x3, got array of shape {batch.shape}"
            )
        if self.preprocessing.channel_order == "BGR":
            batch = batch[..., ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        tensor = tensor.permute(0, 3, 1, 2).to(self.device)
        order = self.preprocessing.channel_order
        mean = torch.tensor(self.preprocessing.mean, device=self.device)
        std = torch.tensor(self.preprocessing.std, device=self.device)
        if order == "BGR":  # mean/std are given in RGB order in cards
            mean, std = mean.flip(0), std.flip(0)
        return (tensor - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)

    # ---- forward ------------------------------------------------------------------
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Preprocessed ``(N, 3, H, W)`` -> embeddings ``(N, D)``; differentiable."""
        embeddings = self._forward(batch)
        if self.preprocessing.flip_average:
            embeddings = 0.5 * (embeddings + self._forward(batch.flip(-1)))
        return embeddings.reshape(embeddings.shape[0], -1)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The network on a batch (backends with batch limits override this)."""
        return self.network(batch)

    @property
    def forwards_whole_batches(self) -> bool:
        """False when the backend splits a batch into several network passes, so a
        layer hook sees sub-batches (code that replaces or reads a tap's output for
        a whole batch must then go one chip at a time)."""
        return type(self)._forward is FaceModel._forward

    @torch.no_grad()
    def embed_chips(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Convenience: aligned uint8 chips -> embeddings as float64 numpy (no grad)."""
        was_training = self.network.training
        self.network.eval()
        try:
            return self.embed(self.prepare(chips)).double().cpu().numpy()
        finally:
            self.network.train(was_training)

    # ---- layer taps ---------------------------------------------------------------
    def layer_taps(self) -> list[LayerTap]:
        return list(self.taps)

    def tap(self, name: str) -> LayerTap:
        """The layer tap called ``name``; ``BadInputError`` listing the known ones."""
        for tap in self.taps:
            if tap.name == name:
                return tap
        known = ", ".join(t.name for t in self.taps)
        raise BadInputError(
            f"model {self.model_id} has no layer tap '{name}' ({known})"
        )

    @contextlib.contextmanager
    def capture(self, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
        """Record the activations of the named taps during forward passes.

        Usage::

            with model.capture(["stage2"]) as activations:
                embedding = model.embed(batch)
            activations["stage2"]  # (N, C, h, w), still part of the autograd graph

        Only passes run by the calling thread are recorded: the network is shared
        (the GUI's Channels panel or a ranking may embed from another thread while a
        layer-by-layer job runs), and another thread's pass must neither overwrite
        these activations nor be affected by them.  Captures nest (each records
        independently).  Hooks are removed on exit, also when the body raises.
        """
        activations: dict[str, torch.Tensor] = {}

        def record(name: str) -> Callable[[torch.Tensor], None]:
            def store(output: torch.Tensor) -> None:
                activations[name] = output

            return store

        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(self._this_thread_hook(name, record(name)))
            yield activations

    @contextlib.contextmanager
    def replacing_output(
        self, name: str, replacement: Callable[[torch.Tensor], torch.Tensor]
    ) -> Iterator[None]:
        """Replace the named tap's output by ``replacement(output)`` in forward
        passes of the calling thread only (other threads' passes are untouched)."""
        with self._this_thread_hook(name, replacement):
            yield

    @contextlib.contextmanager
    def _this_thread_hook(
        self, name: str, action: Callable[[torch.Tensor], torch.Tensor | None]
    ) -> Iterator[None]:
        """A forward hook on the tap's module that acts only in this thread.

        A thread filter rather than a model lock: a lock held around a captured
        pass would have to be taken by every forward of every caller (including
        ``network(...)`` called directly and passes nested inside a capture), and
        would stall the GUI behind a long job; the filter needs neither.  Forward
        hooks run in the thread that calls the module, so the filter is exact.
        """
        module = dict(self.network.named_modules())[self.tap(name).module_path]
        owner = threading.get_ident()

        def hook(_module, _inputs, output):
            if threading.get_ident() == owner:
                return action(output)
            return None

        handle = module.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()


# ---- similarity -------------------------------------------------------------------
def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denominator) if denominator > 0 else 0.0


def euclidean_distance(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.linalg.norm(a - b))


# ---- device -----------------------------------------------------------------------
def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError("device 'cuda' requested but no CUDA GPU is available")
    if name == "cpu" or name.startswith("cuda"):
        return torch.device(name)
    raise BadInputError(f"unknown device '{device}' (use auto, cpu or cuda)")
