"""Bring-your-own model: ONNX -> torch (onnx2torch) and TorchScript, with a card."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import ModelFileError
from core.models import ModelRegistry
from core.models.model_card import load_card
from core.models.onnx_model import (
    FileFaceModel,
    discover_models,
    load_model_file,
    register_model_file,
)

ort = pytest.importorskip("onnxruntime")

CARD = """
id = "tiny-resnet"
name = "Tiny test ResNet"
input_size = [112, 112]
channel_order = "{order}"
mean = [127.5, 120.0, 110.0]
std = [64.0, 60.0, 58.0]
alignment = "arcface"
flip_average = false
embedding_output = "embedding"

[threshold]
metric = "cosine"
value = 0.35
source = "test value"
"""


class Block(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.prelu = nn.PReLU(channels_out)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False))
            if stride != 1 or channels_in != channels_out
            else nn.Identity()
        )

    def forward(self, x):
        y = self.prelu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class TinyEmbedder(nn.Module):
    """A small ResNet-style embedder (random weights, BN statistics randomised)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2), Block(16, 32, 2))
        self.head = nn.Linear(32, 64)

    def forward(self, x):
        features = self.blocks(self.stem(x))
        return self.head(features.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny() -> TinyEmbedder:
    torch.manual_seed(0)
    model = TinyEmbedder()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _export_onnx(model: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns it is legacy
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 112, 112),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["embedding"],
            dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
        )


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, tiny) -> Path:
    folder = tmp_path_factory.mktemp("byom")
    path = folder / "tiny.onnx"
    _export_onnx(tiny, path)
    (folder / "tiny.onnx.card.toml").write_text(CARD.format(order="RGB"))
    return path


def test_onnx_model_matches_onnxruntime(onnx_file):
    model = load_model_file(onnx_file)
    rng = np.random.default_rng(0)
    batch = torch.from_numpy(rng.normal(0, 1, (4, 3, 112, 112)).astype(np.float32))
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"input": batch.numpy()})[0]
    with torch.no_grad():
        ours = model.embed(batch).numpy()
    assert ours.shape == (4, 64) == reference.shape
    assert np.abs(ours - reference).max() <= 1e-4
    assert model.embedding_dim == 64
    assert model.model_id == "tiny-resnet" and model.threshold.metric == "cosine"
    assert len(model.weights_sha256) == 64


def test_gradients_flow_and_taps_capture(onnx_file):
    model = load_model_file(onnx_file)
    taps = model.layer_taps()
    assert [t.name for t in taps] == ["res56x56", "res28x28", "res14x14"]
    batch = torch.zeros(2, 3, 112, 112).uniform_(-1, 1).requires_grad_()
    with model.capture([t.name for t in taps]) as activations:
        model.embed(batch).sum().backward()
    assert batch.grad is not None and float(batch.grad.abs().sum()) > 0
    assert activations["res14x14"].shape == (2, 32, 14, 14)


def test_prepare_applies_card_normalisation(onnx_file, tmp_path):
    rgb = load_model_file(onnx_file)
    chip = np.zeros((112, 112, 3), np.uint8)
    chip[..., 0], chip[..., 1], chip[..., 2] = 10, 20, 30
    tensor = rgb.prepare(chip)
    expected = [(10 - 127.5) / 64.0, (20 - 120.0) / 60.0, (30 - 110.0) / 58.0]
    assert torch.allclose(tensor[0, :, 0, 0], torch.tensor(expected))
    # BGR model: channel 0 of the tensor is blue, normalised with blue's mean/std.
    bgr_file = tmp_path / "bgr.onnx"
    bgr_file.write_bytes(onnx_file.read_bytes())
    (tmp_path / "bgr.onnx.card.toml").write_text(CARD.format(order="BGR"))
    tensor = load_model_file(bgr_file).prepare(chip)
    assert torch.allclose(tensor[0, :, 0, 0], torch.tensor(expected[::-1]))


@pytest.fixture(scope="module")
def torchscript_file(tmp_path_factory, tiny) -> Path:
    folder = tmp_path_factory.mktemp("byom-ts")
    path = folder / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(tiny, torch.zeros(1, 3, 112, 112)).save(str(path))
    (folder / "tiny.pt.card.toml").write_text(CARD.format(order="RGB"))
    return path


@pytest.mark.slow
def test_torchscript_is_refused_unless_its_code_is_trusted(torchscript_file):
    with pytest.raises(ModelFileError) as caught:
        load_model_file(torchscript_file)
    message = str(caught.value)
    assert message.startswith(f"{torchscript_file}: ") and "\n" not in message
    assert "program code" in message
    assert "--trust-model-code" in message and "ONNX" in message
    with pytest.raises(ModelFileError, match="program code"):
        FileFaceModel(torchscript_file)
    registry = ModelRegistry()
    register_model_file(registry, torchscript_file)  # the card is read, not the code
    with pytest.raises(ModelFileError, match="program code"):
        registry.load("tiny-resnet", "cpu")


@pytest.mark.slow
def test_torchscript_round_trip_when_trusted(tiny, torchscript_file):
    model = load_model_file(torchscript_file, trust_code=True)
    assert model.code_trusted and model.format == "torchscript"
    batch = torch.zeros(3, 3, 112, 112).normal_()
    with torch.no_grad():
        assert torch.allclose(model.embed(batch), tiny(batch), atol=1e-5)
    registry = ModelRegistry()
    register_model_file(registry, torchscript_file, trust_code=True)
    assert registry.load("tiny-resnet", "cpu").code_trusted


def test_onnx_needs_no_trust(onnx_file):
    assert not load_model_file(onnx_file).code_trusted


@pytest.mark.slow
def test_cli_refuses_torchscript_without_the_flag(torchscript_file, capsys):
    import json

    from core.cli import main

    assert main(["layers", "--model", str(torchscript_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(torchscript_file) in err[0]
    assert "--trust-model-code" in err[0]
    code = main(["layers", "--model", str(torchscript_file), "--trust-model-code",
                 "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    note = captured.err.strip().splitlines()
    assert len(note) == 1 and str(torchscript_file) in note[0]
    assert "trusted" in note[0]
    payload = json.loads(captured.out)
    assert payload["model_id"] == "tiny-resnet" and payload["code_trusted"] is True


@pytest.mark.slow
def test_cli_verify_records_trusted_code(torchscript_file, onnx_file, tmp_path, capsys):
    import json

    from PIL import Image

    from core.cli import main

    # the examiner's landmarks instead of detection: a random net finds no faces
    chip = tmp_path / "face.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(chip)
    marks = "130,80,110,80,70,80,90,80,100,120"
    pair = [str(chip), str(chip), "--probe-landmarks", marks,
            "--gallery-landmarks", marks, "--device", "cpu", "--json"]  # fmt: skip
    assert main(["verify", *pair, "--model", str(torchscript_file)]) == 2
    assert "--trust-model-code" in capsys.readouterr().err
    code = main(["verify", *pair, "--model", str(torchscript_file),
                 "--trust-model-code"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["model"]["code_trusted"] is True
    assert main(["verify", *pair, "--model", str(onnx_file)]) == 0
    captured = capsys.readouterr()
    assert "code_trusted" not in json.loads(captured.out)["model"]
    assert captured.err == ""


def test_plain_pickle_is_refused(tiny, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(tiny.state_dict(), path)
    (tmp_path / "weights.pt.card.toml").write_text(CARD.format(order="RGB"))
    with pytest.raises(ModelFileError, match="not a TorchScript archive") as caught:
        load_model_file(path)
    assert "weights.pt" in str(caught.value)


@pytest.mark.parametrize("damage", ["truncated", "random", "text"])
def test_damaged_onnx_is_named(onnx_file, tmp_path, damage):
    bad = tmp_path / f"{damage}.onnx"
    data = onnx_file.read_bytes()
    bad.write_bytes(
        {
            "truncated": data[: len(data) // 2],
            "random": np.random.default_rng(1).bytes(4096),
            "text": b"this is not a model",
        }[damage]
    )
    (tmp_path / f"{damage}.onnx.card.toml").write_text(CARD.format(order="RGB"))
    with pytest.raises(ModelFileError) as caught:
        load_model_file(bad)
    assert bad.name in str(caught.value)


def test_missing_card_is_explained(onnx_file, tmp_path):
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(onnx_file.read_bytes())
    with pytest.raises(ModelFileError, match="no model card") as caught:
        load_model_file(lonely)
    assert "lonely.onnx" in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("input_size = [112, 112]", "input_size = [112]", "input_size"),
        ("input_size = [112, 112]", "input_size = [96, 96]", "96×96"),
        ('channel_order = "RGB"', 'channel_order = "RBG"', "channel_order"),
        ("std = [64.0, 60.0, 58.0]", "std = [64.0, 0, 58.0]", "std"),
        ('metric = "cosine"', 'metric = "angle"', "threshold.metric"),
        ('source = "test value"', 'source = ""', "threshold.source"),
        ('alignment = "arcface"', 'alignment = "eyes"', "alignment"),
        ('id = "tiny-resnet"', 'id = "bad id!"', "'id'"),
        ("[threshold]", "[threshold", "not valid"),
    ],
)
def test_bad_card_fields_are_named(onnx_file, tmp_path, old, new, field):
    model = tmp_path / "m.onnx"
    model.write_bytes(onnx_file.read_bytes())
    card = tmp_path / "m.onnx.card.toml"
    card.write_text(CARD.format(order="RGB").replace(old, new))
    with pytest.raises(ModelFileError, match=field.replace("[", r"\[")) as caught:
        load_model_file(model)
    assert "m.onnx" in str(caught.value)


def test_registry_and_discovery(onnx_file):
    registry = ModelRegistry()
    info = register_model_file(registry, onnx_file)
    assert info.model_id == "tiny-resnet" and registry.ids() == ["tiny-resnet"]
    assert registry.load("tiny-resnet", "cpu").embedding_dim == 64
    assert discover_models(onnx_file.parent) == [onnx_file]


def test_json_card_is_accepted(onnx_file, tmp_path):
    import json
    import tomllib

    model = tmp_path / "j.onnx"
    model.write_bytes(onnx_file.read_bytes())
    data = tomllib.loads(CARD.format(order="RGB"))
    (tmp_path / "j.onnx.card.json").write_text(json.dumps(data))
    assert load_card(tmp_path / "j.onnx.card.json").model_id == "tiny-resnet"
    assert load_model_file(model).embedding_dim == 64


SIZE, MEAN, STD = (
    "input_size = [112, 112]",
    "mean = [127.5, 120.0, 110.0]",
    ("std = [64.0, 60.0, 58.0]"),
)
THRESHOLD, FLIP = "value = 0.35", "flip_average = false"
ABSURD_VALUES = [
    *[(SIZE, f"input_size = [112, {v}]", "input_size")
      for v in ("nan", "inf", '"112"', "0", "-112", "4097", "1e9", "112.5", "true")],
    *[(MEAN, f"mean = [127.5, {v}, 110.0]", "mean")
      for v in ("nan", "inf", "-inf", '"120"', "-1", "256", "1e30", "false")],
    (MEAN, 'mean = "127.5, 120, 110"', "mean"),
    *[(STD, f"std = [64.0, {v}, 58.0]", "std")
      for v in ("nan", "inf", '"60"', "0", "-60", "1e9", "true")],
    *[(THRESHOLD, f"value = {v}", "threshold.value")
      for v in ("nan", "inf", "-inf", '"0.35"', "1.5", "-1.01", "1e300", "true")],
    (f'metric = "cosine"\n{THRESHOLD}', 'metric = "euclidean"\nvalue = -0.6',
     "threshold.value"),
    (f'metric = "cosine"\n{THRESHOLD}', 'metric = "euclidean"\nvalue = inf',
     "threshold.value"),
    *[(FLIP, f"flip_average = {v}", "flip_average") for v in ('"false"', "0", "1")],
    ('name = "Tiny test ResNet"', "name = 42", "name"),
    ('name = "Tiny test ResNet"', 'name = ""', "name"),
    ('name = "Tiny test ResNet"', 'name = "x"\ndescription = 3', "description"),
    ('name = "Tiny test ResNet"', 'name = "x"\nlicence = ["MIT"]', "licence"),
    ('embedding_output = "embedding"', "embedding_output = 0", "embedding_output"),
    ('embedding_output = "embedding"', 'embedding_output = ""', "embedding_output"),
    ("[threshold]", 'taps = "stem"\n[threshold]', "taps"),
    ("[threshold]", 'taps = [{name = "a", module = 3}]\n[threshold]', "taps[0].module"),
    ("[threshold]", 'taps = [{name = "", module = "stem"}]\n[threshold]',
     "taps[0].name"),
    ("[threshold]", 'taps = [{name = "a", module = "stem"}, {name = "a", module = '
     '"blocks"}]\n[threshold]', "taps[1].name"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "key"), ABSURD_VALUES)
def test_absurd_card_values_are_refused_naming_card_and_key(tmp_path, old, new, key):
    card = tmp_path / "m.onnx.card.toml"
    text = CARD.format(order="RGB")
    assert old in text
    card.write_text(text.replace(old, new))
    with pytest.raises(ModelFileError) as caught:
        load_card(card)
    message = str(caught.value)
    assert message.startswith(f"{card}: '{key}' ") and "\n" not in message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_are_refused(tmp_path, value):
    import json
    import tomllib

    data = tomllib.loads(CARD.format(order="RGB"))
    card = tmp_path / "m.card.json"
    card.write_text(json.dumps(data).replace("0.35", value))
    with pytest.raises(ModelFileError, match=r"'threshold\.value' must be a finite"):
        load_card(card)


def test_sensible_edge_values_are_accepted(tmp_path):
    card = tmp_path / "m.onnx.card.toml"
    text = CARD.format(order="RGB")
    for old, new in (
        (SIZE, "input_size = [1, 4096]"),
        (THRESHOLD, "value = -1.0"),
        (MEAN, "mean = [0, 0, 255]"),
        (STD, "std = [256, 256, 256]"),
    ):
        text = text.replace(old, new)  # fmt: skip
    card.write_text(text)
    parsed = load_card(card)
    assert parsed.preprocessing.input_size == (1, 4096)
    assert parsed.threshold.value == -1.0 and parsed.preprocessing.std[0] == 256
