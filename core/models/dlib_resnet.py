"""dlib's ``dlib_face_recognition_resnet_model_v1`` re-implemented in PyTorch.

The weights are read in pure Python from the ``.dat`` file shipped by the PyPI package
``face-recognition-models`` (``core.models.dlib_serialization``); dlib is not needed
at run time.  The architecture is dlib's ``anet_type`` from
``examples/dnn_face_recognition_ex.cpp``: a 29-convolution ResNet on 150×150 RGB
chips giving a 128-d descriptor (dlib's documented decision rule: same person when
the Euclidean distance is below 0.6).

Layer semantics taken from dlib's source and reproduced here:

* ``con<N,k,k,s,s>``: dlib's default padding is ``k/2`` for stride 1 and **0** for
  stride 2 (``_padding = stride != 1 ? 0 : k/2``).  The same rule gives
  ``max_pool<3,3,2,2>`` and ``avg_pool<2,2,2,2>`` no padding.
* ``affine``: the file stores batch-norm layers (``bn_con2``); dlib folds them into a
  per-channel scale and shift with the running statistics (done by the reader).
* ``add_prev`` of tensors of different shapes (the down-sampling blocks): the output
  has the larger size in every dimension and each input contributes where it has an
  element, i.e. the smaller tensor is zero-padded at the end of the channel, row and
  column axes (``tt::add`` in ``dlib/cuda/cpu_dlib.cpp``).  This matters: in the last
  two stages the stride-2 convolution gives 3×3 (1×1) maps while the 2×2 average-pool
  shortcut gives 4×4 (2×2).
* Input: ``(pixel - mean) / 256`` with the per-channel means stored in the file.
* ``avg_pool_everything`` then ``fc_no_bias<128>``: ``output = input × W`` with W
  stored as (inputs, outputs).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as functional
from torch import nn

from core.errors import ModelFileError
from core.models.base import FaceModel, LayerTap, Preprocessing, Threshold
from core.models.dlib_serialization import MARKER, DlibLayer, read_dlib_net
from core.models.ids import DEFAULT_MODEL_ID
from core.resources import RESNET_FILE, dlib_model_file, sha256_file

DLIB_EUCLIDEAN_THRESHOLD = 0.6


class Affine(nn.Module):
    """Per-channel ``x * gamma + beta`` (dlib's ``affine`` layer, folded batch-norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev`` for unequal shapes: pad both to the larger size, then add."""
    if a.shape == b.shape:
        return a + b
    channels = max(a.shape[1], b.shape[1])
    rows = max(a.shape[2], b.shape[2])
    cols = max(a.shape[3], b.shape[3])

    def pad(t: torch.Tensor) -> torch.Tensor:
        # F.pad order: (left, right, top, bottom, front, back) for the last 3 dims.
        return functional.pad(
            t, (0, cols - t.shape[3], 0, rows - t.shape[2], 0, channels - t.shape[1])
        )

    return pad(a) + pad(b)


class ResidualBlock(nn.Module):
    """dlib's ``ares`` (identity shortcut) or ``ares_down`` (2×2 avg-pool shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.downsample = downsample
        # padding 0 for stride 2, k/2 for stride 1: dlib's default (see module doc).
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, 0 if downsample else 1
        )
        self.affine1 = Affine(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.affine2 = Affine(out_channels)
        self.relu_out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.affine2(self.conv2(self.relu1(self.affine1(self.conv1(x)))))
        shortcut = functional.avg_pool2d(x, 2, 2) if self.downsample else x
        return self.relu_out(add_zero_padded(branch, shortcut))


class DlibResNet(nn.Module):
    """The network: stem, five stages of residual blocks, global average, FC 128."""

    def __init__(
        self, stage_specs: list[list[tuple[int, int, bool]]], dim: int
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 7, 2, 0),
            Affine(32),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 0),
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(i, o, d) for i, o, d in blocks))
            for blocks in stage_specs
        )
        last_channels = stage_specs[-1][-1][1]
        self.fc = nn.Linear(last_channels, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.fc(x.mean(dim=(2, 3)))


# ---- building the module from the parsed file ------------------------------------
class _LayerStream:
    """Consumes the parsed layer list, checking each layer is what the architecture
    expects, so a file of another network fails loudly instead of mis-loading."""

    def __init__(self, layers: list[DlibLayer], path: Path) -> None:
        self.layers = layers
        self.index = 0
        self.path = path

    def peek(self, offset: int = 0) -> DlibLayer | None:
        position = self.index + offset
        return self.layers[position] if position < len(self.layers) else None

    def take(self, kind: str, **expected: object) -> DlibLayer:
        layer = self.peek()
        if layer is None or layer.kind != kind:
            found = "end of network" if layer is None else layer.describe()
            raise ModelFileError(
                f"unexpected network structure at layer {self.index}: expected "
                f"{kind}, found {found}",
                self.path,
            )
        for key, value in expected.items():
            if layer.attrs.get(key) != value:
                raise ModelFileError(
                    f"layer {self.index} ({kind}): {key}={layer.attrs.get(key)!r}, "
                    f"expected {value!r}",
                    self.path,
                )
        self.index += 1
        return layer


def _set(parameter: torch.Tensor, array: np.ndarray, path: Path, what: str) -> None:
    if tuple(parameter.shape) != tuple(array.shape):
        raise ModelFileError(
            f"{what}: weight shape {array.shape} does not fit {tuple(parameter.shape)}",
            path,
        )
    with torch.no_grad():
        parameter.copy_(torch.from_numpy(np.ascontiguousarray(array)))


def _load_conv(conv: nn.Conv2d, layer: DlibLayer, path: Path, what: str) -> None:
    _set(conv.weight, layer.arrays["weight"], path, what)
    if conv.bias is not None:
        _set(conv.bias, layer.arrays["bias"], path, what)


def _load_affine(affine: Affine, layer: DlibLayer, path: Path, what: str) -> None:
    _set(affine.gamma, layer.arrays["gamma"], path, what)
    _set(affine.beta, layer.arrays["beta"], path, what)


def _read_blocks(stream: _LayerStream) -> Iterator[tuple[DlibLayer, ...]]:
    """Yield (conv1, affine1, conv2, affine2, downsample) per residual block."""
    while (layer := stream.peek()) is not None and layer.kind == MARKER:
        stream.take(MARKER)  # tag1: the block input
        conv1 = stream.take("con", nr=3, nc=3)
        stride = conv1.attrs["stride_y"]
        affine1 = stream.take("affine")
        stream.take("relu", disabled=False)
        conv2 = stream.take("con", nr=3, nc=3, stride_y=1, stride_x=1)
        affine2 = stream.take("affine")
        if stride == 2:
            stream.take(MARKER)  # tag2: the block output
            stream.take(MARKER)  # skip1: back to the block input
            stream.take("avg_pool", nr=2, nc=2, stride_y=2, stride_x=2, padding_y=0)
        elif stride != 1:
            raise ModelFileError(f"unsupported block stride {stride}", stream.path)
        stream.take("add_prev")
        stream.take("relu", disabled=False)
        yield conv1, affine1, conv2, affine2, stride == 2


def build_dlib_resnet(path: str | Path) -> tuple[DlibResNet, dict[str, float]]:
    """Parse a dlib face-recognition ``.dat`` file and return the loaded torch module
    plus the input means (``avg_red``, ``avg_green``, ``avg_blue``)."""
    path = Path(path)
    parsed = read_dlib_net(path)
    if parsed.loss.kind != "loss_metric" or parsed.input.attrs.get("rows") != 150:
        raise ModelFileError(
            "not a dlib face-recognition network (expected a metric-loss network "
            "on 150x150 RGB input)",
            path,
        )
    stream = _LayerStream(parsed.layers, path)
    stem_conv = stream.take("con", nr=7, nc=7, stride_y=2, padding_y=0)
    stem_affine = stream.take("affine")
    stream.take("relu", disabled=False)
    stream.take("max_pool", nr=3, nc=3, stride_y=2, stride_x=2, padding_y=0)

    blocks = list(_read_blocks(stream))
    stream.take("avg_pool", nr=0, nc=0)  # avg_pool_everything
    fc = stream.take("fc", bias=False)
    if stream.peek() is not None:
        raise ModelFileError("extra layers after the embedding layer", path)

    # Stages start at each down-sampling block (the first stage follows the stem).
    stage_specs: list[list[tuple[int, int, bool]]] = []
    channels = stem_conv.attrs["num_filters"]
    for conv1, _, _, _, downsample in blocks:
        out_channels = conv1.attrs["num_filters"]
        if downsample or not stage_specs:
            stage_specs.append([])
        stage_specs[-1].append((channels, out_channels, downsample))
        channels = out_channels
    if fc.attrs["num_inputs"] != channels:
        raise ModelFileError("embedding layer input does not match last stage", path)

    network = DlibResNet(stage_specs, fc.attrs["num_outputs"])
    _load_conv(network.stem[0], stem_conv, path, "stem convolution")
    _load_affine(network.stem[1], stem_affine, path, "stem affine")
    modules = [block for stage in network.stages for block in stage]
    for number, (module, (conv1, affine1, conv2, affine2, _)) in enumerate(
        zip(modules, blocks, strict=True)
    ):
        what = f"residual block {number}"
        _load_conv(module.conv1, conv1, path, what)
        _load_affine(module.affine1, affine1, path, what)
        _load_conv(module.conv2, conv2, path, what)
        _load_affine(module.affine2, affine2, path, what)
    _set(network.fc.weight, fc.arrays["weight"].T, path, "embedding layer")
    network.eval()
    return network, parsed.input.attrs


class DlibResNetModel(FaceModel):
    """The default face model: dlib's ResNet, torch port, weights from the .dat file."""

    def __init__(self, path: str | Path | None = None) -> None:
        path = Path(path) if path is not None else dlib_model_file(RESNET_FILE)
        self.path = path
        self.network, means = build_dlib_resnet(path)
        self.model_id = DEFAULT_MODEL_ID
        self.display_name = "dlib ResNet v1 (torch port)"
        self.weights_sha256 = _cached_sha256(str(path), path.stat().st_mtime_ns)
        self.embedding_dim = self.network.fc.out_features
        mean = (means["avg_red"], means["avg_green"], means["avg_blue"])
        self.preprocessing = Preprocessing(
            input_size=(150, 150),
            channel_order="RGB",
            mean=mean,
            std=(256.0, 256.0, 256.0),  # dlib divides by 256, not 255
            alignment="dlib",
        )
        # Grad-CAM's default layer, by measurement (benchmarks/gradcam_layer.py,
        # 79 LFW + fr-examples pairs): the 17x17 end of stage 2 puts the largest
        # share of the map on the face (landmark hull); the 4x4 stage-4 taps put
        # less there than a map blind to the face would.
        self.cam_layer = "stage2.block3"
        self.threshold = Threshold(
            "euclidean",
            DLIB_EUCLIDEAN_THRESHOLD,
            "dlib's documented threshold for this model: same person when the "
            "Euclidean distance of the 128-d descriptors is below 0.6 "
            "(99.38 % on LFW per dlib)",
        )
        self.taps = _taps(self.network)


@cache
def _cached_sha256(path: str, mtime_ns: int) -> str:
    del mtime_ns  # part of the cache key only: a replaced file is hashed again
    return sha256_file(path)


def _taps(network: DlibResNet) -> tuple[LayerTap, ...]:
    """Stem, every residual block (shallow to deep) and the embedding."""
    sizes = {1: "35×35", 2: "17×17", 3: "8×8", 4: "4×4", 5: "2×2"}
    taps = [LayerTap("stem", "stem", "after the 7×7 convolution and max-pool, 35×35")]
    for stage_number, stage in enumerate(network.stages, start=1):
        for block_number, block in enumerate(stage):
            channels = block.conv2.out_channels
            taps.append(
                LayerTap(
                    f"stage{stage_number}.block{block_number}",
                    f"stages.{stage_number - 1}.{block_number}",
                    f"residual block, {channels} channels, "
                    f"{sizes.get(stage_number, '')}".rstrip(", "),
                )
            )
    taps.append(LayerTap("embedding", "fc", "128-d descriptor"))
    return tuple(taps)
