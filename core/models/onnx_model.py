"""Bring-your-own face model: ONNX (converted to torch) or TorchScript, with a card.

* ONNX files are read with ``onnx`` (protobuf, no code executed), checked, and
  converted to a torch ``GraphModule`` with ``onnx2torch`` so that gradients flow
  through the model for the explainers.
* TorchScript archives are program code: the file's ``forward`` is compiled and run
  with the examiner's rights (TorchScript can, for instance, read and write files).
  They are refused unless the caller trusts the file's code (``trust_code=True``,
  ``--trust-model-code`` on the command line, a question in the GUI); a model so
  loaded says so in ``code_trusted``.  Plain pickles (``torch.save`` of a module or
  state dict, ``.pth``) are always refused: unpickling them would execute code
  from the file, and a state dict has no architecture anyway.

The card beside the file (``core.models.model_card``) says how to preprocess, align
and decide.  Weights are identified by the SHA-256 of the file.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from core.errors import ModelFileError
from core.models.base import FaceModel, LayerTap
from core.models.ids import MODEL_SUFFIXES, ONNX_SUFFIXES, ModelInfo
from core.models.model_card import ModelCard, card_path_for, load_card
from core.models.model_registry import ModelRegistry
from core.resources import sha256_file


def _install_torchvision_stand_in() -> None:
    """Let ``onnx2torch`` import without torchvision.

    onnx2torch imports torchvision eagerly, only for its NonMaxSuppression and
    RoiAlign converters, which face embedders never contain.  torchvision from PyPI
    would replace the CPU build of torch with a CUDA one, so it is not a dependency:
    when it is absent, a stand-in whose functions raise is registered instead.  A real
    torchvision, when installed, is always used.
    """
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision"):
        return

    def unavailable(*_args, **_kwargs):
        raise NotImplementedError(
            "this ONNX model uses detection operators (NMS / RoiAlign) that need "
            "torchvision; face embedding models do not"
        )

    package = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.nms = ops.roi_align = ops.box_convert = unavailable
    package.ops = ops
    package.__xfr_stand_in__ = True
    sys.modules["torchvision"] = package
    sys.modules["torchvision.ops"] = ops


class _SelectOutput(nn.Module):
    """Picks the embedding from a network with several outputs."""

    def __init__(self, network: nn.Module, index: int) -> None:
        super().__init__()
        self.network = network
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)[self.index]


def load_onnx_network(path: Path, card: ModelCard) -> nn.Module:
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # protobuf DecodeError, ValidationError, OSError, …
        lines = str(error).strip().splitlines()
        detail = (
            f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
        )
        raise ModelFileError(f"not a valid ONNX model ({detail})", path) from None
    graph_inputs = [
        i
        for i in model.graph.input
        if i.name not in {t.name for t in model.graph.initializer}
    ]
    if len(graph_inputs) != 1:
        raise ModelFileError(
            f"expected one image input, the model has {len(graph_inputs)}", path
        )
    dims = [d.dim_value for d in graph_inputs[0].type.tensor_type.shape.dim]
    if (
        len(dims) == 4
        and dims[2]
        and dims[3]
        and tuple(dims[2:]) != card.preprocessing.input_size
    ):
        raise ModelFileError(
            f"model input is {dims[2]}×{dims[3]} but its card ({card.path.name}) says "
            f"{card.preprocessing.input_size[0]}×{card.preprocessing.input_size[1]}",
            path,
        )
    outputs = [o.name for o in model.graph.output]
    if card.embedding_output is not None and card.embedding_output not in outputs:
        raise ModelFileError(
            f"card names output '{card.embedding_output}', the model has {outputs}",
            path,
        )
    _install_torchvision_stand_in()
    from onnx2torch import convert

    try:
        network = convert(model)
    except Exception as error:
        raise ModelFileError(
            f"cannot convert this ONNX model to torch: {error}", path
        ) from None
    if len(outputs) > 1:
        index = outputs.index(card.embedding_output) if card.embedding_output else 0
        network = _SelectOutput(network, index)
    return network


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in f"/{name}" for name in archive.namelist())


TORCHSCRIPT_REFUSED = (
    "TorchScript model files contain program code that runs on this computer; "
    "load it only if you trust where it came from (--trust-model-code), or export "
    "the model to ONNX"
)


def is_torchscript_file(path: str | Path) -> bool:
    """Whether ``FileFaceModel`` would load ``path`` as TorchScript (run its code).

    Every suffix but ONNX's is read as TorchScript; ``.pth`` is refused anyway.
    """
    suffix = Path(path).suffix.lower()
    return suffix not in ONNX_SUFFIXES and suffix != ".pth"


def load_torchscript_network(path: Path, trust_code: bool = False) -> nn.Module:
    if path.suffix.lower() == ".pth" or not _is_torchscript_archive(path):
        raise ModelFileError(
            "not a TorchScript archive; plain pickled models and state dicts are "
            "refused (unpickling can run code from the file, and a state dict has no "
            "architecture) - export the model to ONNX or TorchScript",
            path,
        )
    if not trust_code:
        raise ModelFileError(TORCHSCRIPT_REFUSED, path)
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated in favour of torch.export, but loading works.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise ModelFileError(
            f"cannot load TorchScript archive: {error}", path
        ) from None


def _default_taps(
    network: nn.Module, input_size: tuple[int, int]
) -> tuple[LayerTap, ...]:
    """The deepest module at each spatial resolution, found with one dry run."""
    if isinstance(network, torch.jit.ScriptModule):
        return ()  # hooks cannot be attached to compiled TorchScript modules
    order: list[tuple[str, tuple[int, ...]]] = []
    handles = []
    for name, module in network.named_modules():
        if name and not list(module.children()):

            def hook(_module, _inputs, output, _name=name):
                if isinstance(output, torch.Tensor) and output.dim() == 4:
                    order.append((_name, tuple(output.shape)))

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            network(torch.zeros(1, 3, *input_size))
    finally:
        for handle in handles:
            handle.remove()
    deepest: dict[tuple[int, int], tuple[str, tuple[int, ...]]] = {}
    for name, shape in order:
        # later modules overwrite earlier ones; the hook kept 4-d outputs only
        deepest[(shape[2], shape[3])] = (name, shape)
    taps = [
        LayerTap(f"res{h}x{w}", name, f"{shape[1]} channels, {h}×{w}")
        for (h, w), (name, shape) in deepest.items()
    ]
    return tuple(taps)


class FileFaceModel(FaceModel):
    """A face model loaded from an ONNX or TorchScript file with its card.

    ``trust_code`` must be true for a TorchScript file (it runs code from the file);
    ``code_trusted`` then records that the model's code was trusted.
    """

    def __init__(
        self,
        path: str | Path,
        card: str | Path | ModelCard | None = None,
        *,
        trust_code: bool = False,
    ):
        path = Path(path)
        if not path.is_file():
            raise ModelFileError("model file not found", path)
        if card is None:
            card = card_path_for(path)
            if card is None:
                raise ModelFileError(
                    f"no model card beside the model (expected {path.name}.card.toml "
                    "or .card.json giving input size, normalisation and threshold)",
                    path,
                )
        self.card = card if isinstance(card, ModelCard) else load_card(card)
        self.path = path
        suffix = path.suffix.lower()
        if suffix in ONNX_SUFFIXES:
            self.network = load_onnx_network(path, self.card)
            self.format = "onnx"
        else:
            self.network = load_torchscript_network(path, trust_code)
            self.format = "torchscript"
            self.code_trusted = True
        self.network.eval()
        self.model_id = self.card.model_id
        self.display_name = self.card.name
        self.weights_sha256 = sha256_file(path)
        self.preprocessing = self.card.preprocessing
        self.threshold = self.card.threshold
        height, width = self.preprocessing.input_size
        try:
            with torch.no_grad():
                probe = self.network(torch.zeros(1, 3, height, width))
                pair = self.network(torch.zeros(2, 3, height, width))
        except Exception as error:
            raise ModelFileError(
                f"model does not run on a {height}×{width} input: {error}", path
            ) from None
        if not isinstance(probe, torch.Tensor):
            raise ModelFileError("model output is not a single tensor", path)
        self.embedding_dim = int(probe.reshape(1, -1).shape[1])
        # Some exported graphs hard-code batch size 1 (e.g. a Reshape to [1, -1]):
        # a batch would silently mix samples, so such models run one image at a time.
        self.batch_of_one = pair.shape[0] != 2 or pair.reshape(2, -1).shape[1] != (
            self.embedding_dim
        )
        modules = dict(self.network.named_modules())
        for tap in self.card.taps:
            if tap.module_path not in modules:
                raise ModelFileError(
                    f"card tap '{tap.name}' names unknown module '{tap.module_path}'",
                    self.card.path,
                )
        self.taps = self.card.taps or _default_taps(self.network, (height, width))

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.batch_of_one and batch.shape[0] != 1:
            return torch.cat(
                [self.network(batch[i : i + 1]) for i in range(len(batch))]
            )
        return self.network(batch)


def load_model_file(
    path: str | Path, card: str | Path | None = None, *, trust_code: bool = False
) -> FileFaceModel:
    return FileFaceModel(path, card, trust_code=trust_code)


def register_model_file(
    target: ModelRegistry,
    path: str | Path,
    card: str | Path | None = None,
    *,
    trust_code: bool = False,
) -> ModelInfo:
    """Register a model file (its card is read now, the weights when first used)."""
    path = Path(path)
    card_file = Path(card) if card is not None else card_path_for(path)
    if card_file is None:
        raise ModelFileError("no model card beside the model", path)
    parsed = load_card(card_file)
    info = ModelInfo(
        model_id=parsed.model_id,
        display_name=parsed.name,
        description=parsed.description or f"user model ({path.suffix[1:]})",
        source=str(path),
    )
    target.register(info, lambda: FileFaceModel(path, parsed, trust_code=trust_code))
    return info


def discover_models(folder: str | Path) -> list[Path]:
    """Model files in a folder that have a card beside them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in MODEL_SUFFIXES and card_path_for(p) is not None
    )
