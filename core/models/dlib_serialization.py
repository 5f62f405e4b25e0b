"""Pure-Python reader for dlib's serialised DNN files (``.dat``), no dlib needed.

Format, as read from dlib's own source (``dlib/serialize.h``, ``dlib/dnn/core.h``,
``dlib/dnn/layers.h``, ``dlib/dnn/input.h``, ``dlib/cuda/tensor.h``):

* Integers: one control byte (low nibble = number of payload bytes, bit 0x80 = negative
  for signed types), then the magnitude little-endian.  Zero is ``01 00``.
* ``float``/``double`` (scalars): ``float_details`` - a signed 64-bit mantissa and a
  signed 16-bit exponent, both as integers above; value = mantissa * 2**exponent,
  with exponents 32000/32001/32002 meaning +inf/-inf/NaN.
* ``bool``: one ASCII byte, ``'1'`` or ``'0'``.  ``std::string``: length (integer)
  then the bytes.
* ``resizable_tensor``: version 2, then num_samples, k, nr, nc, then the values as
  raw little-endian IEEE float32 (not the scalar float format).
* ``alias_tensor``: version 1, then num_samples, k, nr, nc (a view into ``params``).
* A network is serialised outermost layer first, and every wrapper writes its version
  and then its sub-network *before* its own details.  So the file reads: the loss
  layer (version, details), then a run of wrapper versions from the top of the
  network down (``add_layer`` writes 2, or 3 when its sub-network is the input layer;
  ``add_tag_layer`` / ``add_skip_layer`` write 1 and nothing else), then the input
  layer's details, then each ``add_layer``'s details from the bottom up, each
  followed by bookkeeping (three bools and the x_grad / cached_output / params_grad
  tensors).

Which tag an ``add_prev`` refers to and where a ``skip`` jumps are template
parameters in C++, not data; the architecture is therefore fixed by the code that
builds the torch module, and this reader returns the layer sequence it validates
against (``DlibNetFile.layers``, bottom-up, with ``"marker"`` entries where a tag or
skip wrapper sits).
"""

from __future__ import annotations

import builtins
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelFileError

_FLOAT_SPECIAL = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class _DlibFormatError(Exception):
    """Internal: raised by the reader, turned into ModelFileError with the path."""


class DlibReader:
    """Sequential reader of dlib's serialisation primitives over a bytes buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise _DlibFormatError(
                f"file ends early (wanted {count} bytes at offset {self.pos}, "
                f"file has {len(self.data)})"
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def int(self, signed: bool = True) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise _DlibFormatError(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size), "little")
        negative = bool(control & 0x80)
        if negative and not signed:
            raise _DlibFormatError("negative value where an unsigned one is expected")
        return -value if negative else value

    def float(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise _DlibFormatError("old ASCII float format is not supported")
        mantissa = self.int()
        exponent = self.int()
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        return math.ldexp(float(mantissa), exponent)

    def bool(self) -> bool:
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise _DlibFormatError(f"bad boolean byte {byte!r}")
        return byte == b"1"

    # ``builtins.int``: in annotations below ``def int``, ``int`` is that method
    def string(self, max_length: builtins.int = 256) -> str:
        length = self.int(signed=False)
        if length > max_length:
            raise _DlibFormatError(f"implausible string length {length}")
        try:
            return self._take(length).decode("ascii")
        except UnicodeDecodeError as error:
            raise _DlibFormatError("layer name is not ASCII text") from error

    def peek_string(self) -> str | None:
        """The next string if the next bytes read as a plausible layer name."""
        saved = self.pos
        try:
            text = self.string(max_length=64)
            return text if text and text.isprintable() else None
        except _DlibFormatError:
            return None
        finally:
            self.pos = saved

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise _DlibFormatError(f"unexpected tensor version {version}")
        shape = tuple(self.int() for _ in range(4))
        if any(dim < 0 for dim in shape):
            raise _DlibFormatError(f"negative tensor dimension {shape}")
        count = int(np.prod(shape, dtype=np.int64))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(
        self,
    ) -> tuple[builtins.int, builtins.int, builtins.int, builtins.int]:
        version = self.int()
        if version != 1:
            raise _DlibFormatError(f"unexpected alias_tensor version {version}")
        first, second, third, fourth = (self.int() for _ in range(4))
        return first, second, third, fourth


@dataclass
class DlibLayer:
    """One layer read from the file: its serialised name and decoded contents."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc", …
    version: str  # the exact version string in the file (e.g. "con_4", "bn_con2")
    attrs: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def describe(self) -> str:
        shown = {k: v for k, v in self.attrs.items() if not isinstance(v, float)}
        return f"{self.kind}{shown}" if shown else self.kind


MARKER = "marker"  # a tag or skip wrapper: carries no data, only a position


@dataclass
class DlibNetFile:
    """A parsed dlib network: loss details, input layer, layers bottom-up."""

    loss: DlibLayer
    input: DlibLayer
    layers: list[DlibLayer]

    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


def _read_con(reader: DlibReader, version: str) -> DlibLayer:
    if version not in ("con_4", "con_5", "con_6"):
        raise _DlibFormatError(f"unsupported convolution version '{version}'")
    params = reader.tensor()
    attrs: dict[str, Any] = {"num_filters": reader.int()}
    attrs["nr"], attrs["nc"] = reader.int(), reader.int()
    attrs["stride_y"], attrs["stride_x"] = reader.int(), reader.int()
    attrs["padding_y"], attrs["padding_x"] = reader.int(), reader.int()
    filters_shape = reader.alias_tensor()
    biases_shape = reader.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        reader.float()
    attrs["use_bias"] = reader.bool() if version in ("con_5", "con_6") else True
    if version == "con_6" and reader.bool():
        raise _DlibFormatError("convolution with fused ReLU is not supported")
    flat = params.ravel()
    n_filters = int(np.prod(filters_shape))
    n_biases = int(np.prod(biases_shape)) if attrs["use_bias"] else 0
    if flat.size != n_filters + n_biases:
        raise _DlibFormatError("convolution parameter count does not match its shape")
    arrays = {"weight": flat[:n_filters].reshape(filters_shape)}
    if attrs["use_bias"]:
        arrays["bias"] = flat[n_filters : n_filters + n_biases].copy()
    return DlibLayer("con", version, attrs, arrays)


def _read_affine(reader: DlibReader, version: str) -> DlibLayer:
    """``affine_`` layers, or ``bn_con2``/``bn_fc2`` that dlib folds into an affine.

    dlib's ``affine_(const bn_&)`` constructor folds batch-norm running statistics:
    gamma' = gamma / sqrt(running_var + eps), beta' = beta - gamma' * running_mean.
    """
    if version in ("bn_con2", "bn_fc2"):
        params = reader.tensor().ravel()
        gamma_shape = reader.alias_tensor()
        reader.alias_tensor()  # beta, same shape as gamma
        reader.tensor()  # means of the last training batch
        reader.tensor()  # invstds of the last training batch
        running_means = reader.tensor().ravel()
        running_variances = reader.tensor().ravel()
        reader.int(signed=False)  # num_updates
        reader.int(signed=False)  # running_stats_window_size
        for _ in range(4):
            reader.float()
        eps = reader.float()
        channels = int(np.prod(gamma_shape))
        gamma, beta = params[:channels], params[channels : 2 * channels]
        if running_means.size != channels or running_variances.size != channels:
            raise _DlibFormatError("batch-norm statistics do not match channel count")
        scale = gamma / np.sqrt(running_variances.astype(np.float64) + eps)
        shift = beta - scale * running_means
        mode = "conv" if version == "bn_con2" else "fc"
        return DlibLayer(
            "affine",
            version,
            {"mode": mode, "channels": channels, "eps": eps},
            {"gamma": scale.astype(np.float32), "beta": shift.astype(np.float32)},
        )
    if version not in ("affine_", "affine_2"):
        raise _DlibFormatError(f"unsupported affine version '{version}'")
    params = reader.tensor().ravel()
    gamma_shape = reader.alias_tensor()
    reader.alias_tensor()
    mode_number = reader.int()
    disabled = reader.bool() if version == "affine_2" else False
    channels = int(np.prod(gamma_shape))
    return DlibLayer(
        "affine",
        version,
        {"mode": "conv" if mode_number == 0 else "fc", "channels": channels},
        {"gamma": params[:channels].copy(), "beta": params[channels:].copy()}
        if not disabled
        else {},
    )


def _read_pool(reader: DlibReader, version: str, kind: str) -> DlibLayer:
    if version != f"{kind}_2":
        raise _DlibFormatError(f"unsupported {kind} version '{version}'")
    attrs = {
        "nr": reader.int(),
        "nc": reader.int(),
        "stride_y": reader.int(),
        "stride_x": reader.int(),
        "padding_y": reader.int(),
        "padding_x": reader.int(),
    }
    return DlibLayer(kind, version, attrs)


def _read_fc(reader: DlibReader, version: str) -> DlibLayer:
    if version not in ("fc_2", "fc_3"):
        raise _DlibFormatError(f"unsupported fully-connected version '{version}'")
    num_outputs = reader.int()
    num_inputs = reader.int()
    params = reader.tensor().ravel()
    weights_shape = reader.alias_tensor()
    biases_shape = reader.alias_tensor()
    has_bias = reader.int() == 0  # fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        reader.float()
    if version == "fc_3":
        has_bias = reader.bool() and has_bias
    n_weights = int(np.prod(weights_shape))
    if n_weights != num_inputs * num_outputs:
        raise _DlibFormatError("fully-connected weight count does not match its shape")
    # dlib computes output = input x W with W stored row-major as (inputs, outputs).
    arrays = {"weight": params[:n_weights].reshape(num_inputs, num_outputs).copy()}
    if has_bias:
        arrays["bias"] = params[n_weights : n_weights + int(np.prod(biases_shape))]
    attrs = {"num_outputs": num_outputs, "num_inputs": num_inputs, "bias": has_bias}
    return DlibLayer("fc", version, attrs, arrays)


def _read_layer_details(reader: DlibReader) -> DlibLayer:
    version = reader.string()
    if version.startswith("con_"):
        return _read_con(reader, version)
    if version.startswith(("bn_", "affine_")):
        return _read_affine(reader, version)
    if version.startswith("max_pool_"):
        return _read_pool(reader, version, "max_pool")
    if version.startswith("avg_pool_"):
        return _read_pool(reader, version, "avg_pool")
    if version.startswith("fc_"):
        return _read_fc(reader, version)
    if version in ("relu_", "relu_2"):
        disabled = reader.bool() if version == "relu_2" else False
        return DlibLayer("relu", version, {"disabled": disabled})
    if version == "add_prev_":
        return DlibLayer("add_prev", version)
    raise _DlibFormatError(f"unsupported layer type '{version}'")


def _read_input(reader: DlibReader) -> DlibLayer:
    version = reader.string()
    if version == "input_rgb_image_sized":
        means = [reader.float() for _ in range(3)]
        rows, cols = reader.int(signed=False), reader.int(signed=False)
        return DlibLayer(
            "input_rgb_image_sized",
            version,
            {
                "avg_red": means[0],
                "avg_green": means[1],
                "avg_blue": means[2],
                "rows": rows,
                "cols": cols,
            },
        )
    raise _DlibFormatError(f"unsupported input layer '{version}'")


def _read_loss(reader: DlibReader) -> DlibLayer:
    version = reader.int()
    if version != 1:
        raise _DlibFormatError(f"unexpected loss-layer version {version}")
    name = reader.string()
    if name == "loss_metric_":
        return DlibLayer("loss_metric", name, {"margin": 0.1, "dist_thresh": 0.75})
    if name == "loss_metric_2":
        return DlibLayer(
            "loss_metric",
            name,
            {"margin": reader.float(), "dist_thresh": reader.float()},
        )
    raise _DlibFormatError(f"unsupported loss layer '{name}'")


def parse_dlib_net(data: bytes) -> DlibNetFile:
    """Parse a serialised dlib network held in memory; see the module docstring."""
    reader = DlibReader(data)
    loss = _read_loss(reader)
    # Wrapper versions from the top of the network down to the input layer.
    wrappers: list[int] = []
    while True:
        name = reader.peek_string()
        if name is not None and name.startswith("input"):
            break
        version = reader.int()
        if version not in (1, 2, 3):
            raise _DlibFormatError(f"unexpected layer wrapper version {version}")
        wrappers.append(version)
        if len(wrappers) > 10_000:
            raise _DlibFormatError("no input layer found")
    input_layer = _read_input(reader)
    layers: list[DlibLayer] = []
    for depth, version in enumerate(reversed(wrappers)):
        if version == 1:  # tag or skip: serialised nothing after its sub-network
            layers.append(DlibLayer(MARKER, "tag_or_skip"))
            continue
        layer = _read_layer_details(reader)
        reader.bool()  # this_layer_setup_called
        reader.bool()  # gradient_input_is_stale
        reader.bool()  # get_output_and_gradient_input_disabled
        reader.tensor()  # x_grad
        reader.tensor()  # cached_output
        if depth == 0:  # add_layer directly on the input layer (version 2 or 3)
            reader.tensor()  # grad_final
            if version == 3:
                reader.int()  # sample_expansion_factor
        elif version == 2:
            reader.tensor()  # params_grad
        layers.append(layer)
    if reader.pos != len(data):
        raise _DlibFormatError(
            f"{len(data) - reader.pos} unexpected bytes after the network"
        )
    return DlibNetFile(loss, input_layer, layers)


def read_dlib_net(path: str | Path) -> DlibNetFile:
    """Read and parse a dlib ``.dat`` network file; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelFileError(
            f"cannot read model file ({error.strerror})", path
        ) from None
    try:
        return parse_dlib_net(data)
    except (_DlibFormatError, struct.error, ValueError) as error:
        raise ModelFileError(f"not a valid dlib network file: {error}", path) from None
