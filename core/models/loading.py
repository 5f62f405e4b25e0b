"""The one model loader: a registry id, or a model file with its card.

The command line, the GUI, training and the analyses all load models here, so a
model named the same way loads the same way everywhere, with the same one-line
errors (``UnknownModelError`` listing the ids, ``ModelFileError`` naming the file,
``BadInputError`` for a card given with a registry id or a bad device).

Printing the note that a TorchScript file's code was trusted is the caller's part
(``FaceModel.code_trusted`` says so): the command line words it for a terminal, the
GUI asked the examiner before loading.
"""

from __future__ import annotations

import copy
import os

import torch

from core.errors import BadInputError, ModelFileError
from core.models.base import FaceModel, LayerTap, resolve_device
from core.models.ids import is_model_file
from core.models.model_card import ModelCard, training_record
from core.models.model_registry import ModelRegistry, registry
from core.models.onnx_model import load_model_file

CARD_WITH_REGISTRY_ID = (
    "--card is for a model file (.onnx, .pt); a registry model has its own"
)


class EagerFaceModel(FaceModel):
    """A face model with an eager (hookable) network and explicit attributes.

    ``card`` is the card of the model file it was made from (None for a copy of a
    registry model): a fine-tuned model's ``[training]`` table lives there.
    """

    card: ModelCard | None

    def __init__(
        self, source: FaceModel, network: torch.nn.Module, taps: tuple[LayerTap, ...]
    ) -> None:
        self.model_id = source.model_id
        self.display_name = source.display_name
        self.weights_sha256 = source.weights_sha256
        self.embedding_dim = source.embedding_dim
        self.preprocessing = source.preprocessing
        self.threshold = source.threshold
        self.network = network
        self.taps = taps
        self.card = getattr(source, "card", None)
        self.path = getattr(source, "path", None)
        self.code_trusted = source.code_trusted


def load_model(
    model: str | os.PathLike[str],
    *,
    card: str | os.PathLike[str] | None = None,
    device: str = "auto",
    trust_code: bool = False,
    analysis: bool = False,
    models: ModelRegistry | None = None,
) -> FaceModel:
    """A registry id, or a path to an ONNX / TorchScript file with a model card.

    ``card``: the model file's card (default: the ``.card.toml`` beside it); refused
    with a registry id, whose card is built in, rather than silently ignored.  A
    TorchScript file is refused unless ``trust_code`` (``--trust-model-code``).
    ``models``: the registry ids are looked up in (default: the process-wide one).

    ``analysis``: layer taps wherever they can be had.  A TorchScript file cannot be
    hooked; when its card says it was fine-tuned here from a built-in architecture
    (``[training] architecture``), the weights are put into an eager copy of that
    architecture, so its layers can be analysed and trained again.  Other files
    load as without ``analysis``.
    """
    source = os.fspath(model)
    card_path = os.fspath(card) if card is not None else None
    known = models if models is not None else registry()
    if analysis:
        return _load_for_analysis(
            source, card_path, resolve_device(device), trust_code, known
        )
    if is_model_file(source):
        loaded = load_model_file(source, card_path, trust_code=trust_code)
        return loaded.to(resolve_device(device))
    if card_path is not None:  # a registry model has its card built in; never ignore it
        raise BadInputError(CARD_WITH_REGISTRY_ID, card_path)
    return known.load(source, device)  # raises UnknownModelError listing ids


def _load_for_analysis(
    model: str,
    card: str | None,
    target: torch.device,
    trust_code: bool,
    known: ModelRegistry,
) -> FaceModel:
    if model in known and card is None:
        return known.load(model, target)
    if not is_model_file(model):
        if card is not None:  # never silently ignored
            raise BadInputError(CARD_WITH_REGISTRY_ID, card)
        return known.load(model, target)  # UnknownModelError listing the ids
    loaded = load_model_file(model, card, trust_code=trust_code)
    architecture = str(training_record(loaded.card.path).get("architecture", ""))
    if not isinstance(loaded.network, torch.jit.ScriptModule) or not architecture:
        return loaded.to(target)
    if architecture not in known:
        raise ModelFileError(
            f"the card names architecture '{architecture}', which is not built in",
            loaded.card.path,
        )
    base = known.load(architecture, "cpu")
    network = copy.deepcopy(base.network)
    try:
        network.load_state_dict(loaded.network.state_dict(), strict=True)
    except RuntimeError as error:
        raise ModelFileError(
            f"weights do not fit architecture '{architecture}': "
            f"{str(error).splitlines()[0]}",
            model,
        ) from None
    network.eval()
    return EagerFaceModel(loaded, network, tuple(base.layer_taps())).to(target)
