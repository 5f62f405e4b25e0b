"""The one model loader (``core.models.loading.load_model``) and the torch-free ids.

A registry id, a model file with its card (beside it or given), refusals with their
exact one-line messages, and ``analysis=True``: a TorchScript file fine-tuned from a
built-in architecture comes back as an eager, hookable copy of that architecture.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.ecloss.train import export_torchscript, write_card
from core.errors import BadInputError, ModelFileError, UnknownModelError
from core.models import DEFAULT_MODEL_ID, ModelRegistry, load_model, registry
from core.models.ids import (
    BUILTIN_MODELS,
    MODEL_SUFFIXES,
    builtin_model_ids,
    is_model_file,
)
from core.models.loading import EagerFaceModel
from core.models.model_registry import BUILTIN_BACKENDS, register_builtins
from core.models.onnx_model import FileFaceModel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dlib_model():
    return registry().load(DEFAULT_MODEL_ID, "cpu")


@pytest.fixture(scope="module")
def fine_tuned_file(tmp_path_factory, dlib_model) -> Path:
    """dlib's network saved as TorchScript with a card naming its architecture, as
    ``xfr train ecloss`` writes a fine-tuned model (here: weights unchanged)."""
    folder = tmp_path_factory.mktemp("fine-tuned")
    path = folder / "model.pt"
    export_torchscript(dlib_model, path)
    write_card(
        path.with_name("model.pt.card.toml"),
        dlib_model,
        "dlib-fine-tuned",
        "dlib fine-tuned (test)",
        "weights of dlib-resnet-v1, saved as TorchScript",
        {"architecture": DEFAULT_MODEL_ID, "steps": 0},
    )
    return path


def test_registry_id_loads_the_shared_instance(dlib_model):
    assert load_model(DEFAULT_MODEL_ID, device="cpu") is dlib_model
    assert load_model(DEFAULT_MODEL_ID, device="cpu", analysis=True) is dlib_model


def test_unknown_id_lists_the_ids():
    with pytest.raises(UnknownModelError) as caught:
        load_model("no-such-model", device="cpu")
    assert str(caught.value) == (
        f"unknown model 'no-such-model' (available: {DEFAULT_MODEL_ID})"
    )
    with pytest.raises(UnknownModelError, match="available: dlib-resnet-v1"):
        load_model("no-such-model", device="cpu", analysis=True)


def test_a_name_without_a_model_suffix_is_an_id(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"not a model")
    assert not is_model_file(weights)
    with pytest.raises(UnknownModelError, match=r"unknown model '.*model\.bin'"):
        load_model(weights, device="cpu")


def test_a_pickle_is_a_model_file_and_refused(tmp_path, dlib_model):
    pickle = tmp_path / "model.pth"
    pickle.write_bytes(b"\x80\x04not a TorchScript archive")
    write_card(tmp_path / "model.pth.card.toml", dlib_model, "p", "p", "", {})
    assert is_model_file(pickle)
    with pytest.raises(ModelFileError) as caught:
        load_model(pickle, device="cpu", trust_code=True)
    message = str(caught.value)
    assert message.startswith(f"{pickle}: not a TorchScript archive; plain pickled")
    assert "\n" not in message


def test_card_with_a_registry_id_is_refused(tmp_path):
    card = tmp_path / "x.card.toml"
    for analysis in (False, True):
        with pytest.raises(BadInputError) as caught:
            load_model(DEFAULT_MODEL_ID, card=card, device="cpu", analysis=analysis)
        assert str(caught.value) == (
            f"{card}: --card is for a model file (.onnx, .pt); "
            "a registry model has its own"
        )


def test_bad_device_is_one_line():
    with pytest.raises(BadInputError) as caught:
        load_model(DEFAULT_MODEL_ID, device="tpu")
    assert str(caught.value) == "unknown device 'tpu' (use auto, cpu or cuda)"


def test_model_file_needs_trust_and_reads_a_given_card(
    fine_tuned_file, dlib_model, tmp_path
):
    with pytest.raises(ModelFileError, match="program code"):
        load_model(fine_tuned_file, device="cpu")
    # the card elsewhere, given explicitly
    weights = tmp_path / "elsewhere.pt"
    weights.write_bytes(fine_tuned_file.read_bytes())
    card = tmp_path / "its.card.toml"
    card.write_text(
        fine_tuned_file.with_name("model.pt.card.toml").read_text(encoding="utf-8")
    )
    with pytest.raises(ModelFileError, match="no model card beside the model"):
        load_model(weights, device="cpu", trust_code=True)
    loaded = load_model(str(weights), card=str(card), device="cpu", trust_code=True)
    assert isinstance(loaded, FileFaceModel) and loaded.code_trusted
    assert loaded.model_id == "dlib-fine-tuned" and loaded.card.path == card
    assert loaded.layer_taps() == []  # a TorchScript file cannot be hooked
    chips = np.zeros((2, 150, 150, 3), np.uint8)
    np.testing.assert_allclose(
        loaded.embed_chips(chips), dlib_model.embed_chips(chips), atol=1e-4
    )


def test_analysis_puts_fine_tuned_weights_into_the_architecture(
    fine_tuned_file, dlib_model
):
    eager = load_model(fine_tuned_file, device="cpu", trust_code=True, analysis=True)
    assert isinstance(eager, EagerFaceModel) and eager.code_trusted
    assert eager.model_id == "dlib-fine-tuned"
    assert eager.card is not None and eager.card.path.name == "model.pt.card.toml"
    assert [tap.name for tap in eager.layer_taps()] == [
        tap.name for tap in dlib_model.layer_taps()
    ]
    assert eager.network is not dlib_model.network  # the shared model is untouched
    assert not isinstance(eager.network, torch.jit.ScriptModule)
    chips = np.full((1, 150, 150, 3), 90, np.uint8)
    with eager.capture(["stage2.block0"]) as activations:
        eager.embed(eager.prepare(chips))
    assert activations["stage2.block0"].ndim == 4  # its layers can be hooked
    np.testing.assert_allclose(
        eager.embed_chips(chips), dlib_model.embed_chips(chips), atol=1e-4
    )


def test_analysis_refuses_an_architecture_that_is_not_built_in(
    fine_tuned_file, dlib_model, tmp_path
):
    weights = tmp_path / "model.pt"
    weights.write_bytes(fine_tuned_file.read_bytes())
    write_card(
        tmp_path / "model.pt.card.toml",
        dlib_model,
        "other",
        "other",
        "",
        {"architecture": "no-such-architecture"},
    )
    with pytest.raises(ModelFileError) as caught:
        load_model(weights, device="cpu", trust_code=True, analysis=True)
    assert str(caught.value) == (
        f"{tmp_path / 'model.pt.card.toml'}: the card names architecture "
        "'no-such-architecture', which is not built in"
    )


def test_a_given_registry_is_used(dlib_model):
    empty = ModelRegistry()
    with pytest.raises(UnknownModelError, match=r"available: none\)"):
        load_model(DEFAULT_MODEL_ID, device="cpu", models=empty)
    register_builtins(empty)
    fresh = load_model(DEFAULT_MODEL_ID, device="cpu", models=empty)
    assert fresh is not dlib_model and fresh.model_id == DEFAULT_MODEL_ID


def test_every_builtin_has_a_backend():
    assert builtin_model_ids()[0] == DEFAULT_MODEL_ID
    assert set(BUILTIN_BACKENDS) == {info.model_id for info in BUILTIN_MODELS}
    assert registry().infos() == list(BUILTIN_MODELS)
    assert {".onnx", ".pt", ".pth"} <= MODEL_SUFFIXES


def test_listing_models_imports_no_torch():
    """Parsers, menus and settings name models without the seconds torch takes."""
    code = (
        "import sys\n"
        "from core.models import DEFAULT_MODEL_ID, MODEL_SUFFIXES\n"
        "from core.models.ids import BUILTIN_MODELS, builtin_model_ids, is_model_file\n"
        "names = builtin_model_ids() + [info.display_name for info in BUILTIN_MODELS]\n"
        "assert DEFAULT_MODEL_ID in names and is_model_file('a.onnx')\n"
        "assert '.pt' in MODEL_SUFFIXES\n"
        "heavy = sorted({'torch', 'numpy'} & set(sys.modules))\n"
        "print(heavy or 'none')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
