"""core.engine: the local and the Ray runner give the same tables; checkpoints
resume, never reuse a stale shard, and refuse a damaged one; a bad address, a
missing ray and wrong weights are one line each.

One real local Ray (two CPUs) starts for the module, for the tests marked slow.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.evaluation as evaluation
from core.engine import Shard, make_engine, run_sharded, shard_key
from core.engine.base import Engine, LocalRunner, read_shard
from core.engine.payload import model_from_payload, payload_for
from core.errors import BadInputError, Cancelled

pytestmark = pytest.mark.dlib  # the real detector and ResNet embed the faces


# ---- a small synthetic identities set ----------------------------------------------
@pytest.fixture(scope="module")
def identities(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> Path:
    """Two people, four shifted / mirrored photos each (8 images, 28 pairs)."""
    root = tmp_path_factory.mktemp("engine-identities")
    hopper = Image.open(grace_hopper_path).convert("RGB").resize((256, 300))
    faces = {"collins": astronaut_rgb[0:260, 90:350], "hopper": np.asarray(hopper)}
    for name, rgb in faces.items():
        (root / name).mkdir()
        for number, (dy, dx) in enumerate([(0, 0), (6, 0), (0, 6), (4, 4)]):
            variant = rgb[dy:, dx:]
            if number % 2:
                variant = variant[:, ::-1]
            Image.fromarray(np.ascontiguousarray(variant)).save(
                root / name / f"{number}.png"
            )
    return root


def copy_of(root: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(root, target)
    return target


def table(report: evaluation.VerificationReport) -> dict:
    return {k: v for k, v in report.to_dict().items() if k not in ("seconds", "data")}


def local_engine(checkpoint: Path | None = None, shard_size: int = 2) -> Engine:
    engine = make_engine("local", checkpoint=checkpoint)
    engine.shard_size = shard_size
    return engine


@pytest.fixture(scope="module")
def ray_engine():
    """One local Ray for the module (two CPUs), shut down at its end."""
    pytest.importorskip("ray")
    from core.engine.ray_runner import RayRunner

    runner = RayRunner(num_cpus=2)
    yield runner
    runner.close()


def on_ray(runner, checkpoint: Path | None = None, shard_size: int = 2) -> Engine:
    from core.engine.base import checkpoint_folder

    folder = None if checkpoint is None else checkpoint_folder(checkpoint)
    return Engine(runner, folder, shard_size=shard_size)


# ---- the same tables ---------------------------------------------------------------
@pytest.mark.slow
def test_local_and_ray_give_exactly_the_same_verification_table(
    identities, dlib_model, ray_engine
):
    local = local_engine()
    on_local = evaluation.evaluate_verification(identities, dlib_model, engine=local)
    remote = on_ray(ray_engine)
    on_cluster = evaluation.evaluate_verification(identities, dlib_model, engine=remote)
    assert on_local.pairs_evaluated == 28 and on_local.failures_to_detect == 0
    assert table(on_local) == table(on_cluster)  # exactly: every float
    assert local.stats.computed == remote.stats.computed == 4


@pytest.mark.slow
def test_local_and_ray_calibration_scores_and_qualities_are_equal(
    identities, dlib_model, ray_engine
):
    pairs, _ = evaluation.pairs_for(identities)
    here = evaluation.scored_pairs(
        pairs, dlib_model, quality=True, engine=local_engine()
    )
    there = evaluation.scored_pairs(
        pairs, dlib_model, quality=True, engine=on_ray(ray_engine)
    )
    assert np.array_equal(here.genuine, there.genuine)
    assert np.array_equal(here.impostor, there.impostor)
    assert here.qualities == there.qualities and len(here.qualities) == 8


@pytest.mark.slow
def test_gallery_built_on_ray_holds_the_local_templates(
    identities, dlib_model, ray_engine, tmp_path
):
    from core.gallery.build import build_gallery

    build_gallery(identities, dlib_model, tmp_path / "a.xfrgallery",
                  engine=local_engine())  # fmt: skip
    build_gallery(identities, dlib_model, tmp_path / "b.xfrgallery",
                  engine=on_ray(ray_engine))  # fmt: skip
    a = np.load(tmp_path / "a.xfrgallery" / "templates.npy")
    b = np.load(tmp_path / "b.xfrgallery" / "templates.npy")
    assert a.shape == (8, 128) and np.array_equal(a, b)


# ---- checkpoints -------------------------------------------------------------------
def test_a_cancelled_run_resumes_with_only_the_rest_computed(
    identities, dlib_model, tmp_path
):
    checkpoint = tmp_path / "checkpoint"
    finished = []

    def stop_after_two() -> bool:
        return len(finished) >= 2

    first = local_engine(checkpoint)
    first.progress = lambda done, total, message: finished.append(done)
    first.cancel = stop_after_two
    with pytest.raises(Cancelled):
        evaluation.evaluate_verification(identities, dlib_model, engine=first)
    assert first.stats.computed == 2 and len(list(checkpoint.glob("shard-*"))) == 2

    again = local_engine(checkpoint)
    resumed = evaluation.evaluate_verification(identities, dlib_model, engine=again)
    assert (again.stats.reused, again.stats.computed) == (2, 2)
    whole = evaluation.evaluate_verification(
        identities, dlib_model, engine=local_engine()
    )
    assert table(resumed) == table(whole)


def test_a_changed_image_is_computed_again_never_taken_from_the_checkpoint(
    identities, dlib_model, tmp_path
):
    data = copy_of(identities, tmp_path / "ids")
    checkpoint = tmp_path / "checkpoint"
    evaluation.evaluate_verification(data, dlib_model, engine=local_engine(checkpoint))
    changed = data / "hopper" / "3.png"
    rgb = np.asarray(Image.open(changed))
    Image.fromarray(np.ascontiguousarray(rgb[:, ::-1])).save(changed)  # mirrored
    engine = local_engine(checkpoint)
    after = evaluation.evaluate_verification(data, dlib_model, engine=engine)
    # the shard holding the changed file only (2 images a shard, sorted paths)
    assert (engine.stats.reused, engine.stats.computed) == (3, 1)
    assert len(list(checkpoint.glob("shard-*.json"))) == 5  # the old one stays
    fresh = evaluation.evaluate_verification(data, dlib_model, engine=local_engine())
    assert table(after) == table(fresh)


def test_other_parameters_or_weights_make_other_keys():
    files = [("a.png", "1" * 64)]
    key = shard_key("eval verification", {"centre_fallback": False}, files, "w")
    assert key == shard_key("eval verification", {"centre_fallback": False},
                            files, "w")  # fmt: skip
    assert key != shard_key("eval verification", {"centre_fallback": True}, files, "w")
    assert key != shard_key("eval verification", {"centre_fallback": False},
                            [("a.png", "2" * 64)], "w")  # fmt: skip
    assert key != shard_key("eval verification", {"centre_fallback": False},
                            files, "other weights")  # fmt: skip
    assert key != shard_key("gallery build", {"centre_fallback": False}, files, "w")
    assert key != shard_key("eval verification", {"centre_fallback": False},
                            files, "w", version="0.0.1")  # fmt: skip


def test_an_altered_checkpoint_shard_is_refused_in_one_line(tmp_path):
    engine = Engine(LocalRunner(), tmp_path, shard_size=1)
    shards = [Shard(0, "k" * 64, 3, 1)]

    def double(model, payload, options):
        return payload * 2

    result = run_sharded(
        engine, double, None, shards, None,
        command="test", total=1, encode=lambda r: r, decode=lambda r: r,
    )  # fmt: skip
    assert result == [6]
    path = _only_shard(tmp_path)
    record = json.loads(path.read_text())
    record["result"] = 7  # edited by hand: its checksum no longer matches
    path.write_text(json.dumps(record))
    with pytest.raises(BadInputError) as caught:
        run_sharded(
            Engine(LocalRunner(), tmp_path), double, None, shards, None,
            command="test", total=1, encode=lambda r: r, decode=lambda r: r,
        )  # fmt: skip
    assert "altered checkpoint shard" in str(caught.value)
    assert "\n" not in str(caught.value) and path.name in str(caught.value)


def test_a_file_changed_during_the_run_is_refused(identities, dlib_model, tmp_path):
    data = copy_of(identities, tmp_path / "ids")
    engine = local_engine()
    victim = data / "collins" / "0.png"

    def change_it(done: int, total: int, message: str) -> None:
        if done == 2:  # after the first shard (it holds victim)
            victim.write_bytes(victim.read_bytes() + b"\0")

    engine.progress = change_it
    with pytest.raises(BadInputError) as caught:
        evaluation.evaluate_verification(data, dlib_model, engine=engine)
    assert "changed" in caught.value.reason and caught.value.path == victim


# ---- one-line errors ---------------------------------------------------------------
def test_wrong_weights_are_refused_by_the_worker_before_loading(dlib_model):
    payload = payload_for(dlib_model)
    tampered = dataclasses.replace(
        payload, weights=bytes([payload.weights[0] ^ 1]) + payload.weights[1:]
    )
    with pytest.raises(BadInputError) as caught:
        model_from_payload(tampered)
    text = str(caught.value)
    assert "weights a worker received have SHA-256" in text and "\n" not in text
    assert payload.weights_sha256[:12] in text


def test_the_right_weights_rebuild_the_same_model(dlib_model, astronaut_rgb):
    rebuilt = model_from_payload(payload_for(dlib_model))
    assert rebuilt is not dlib_model
    assert rebuilt.weights_sha256 == dlib_model.weights_sha256
    chips = np.zeros((1, 150, 150, 3), np.uint8) + astronaut_rgb[:150, :150]
    assert np.array_equal(rebuilt.embed_chips(chips), dlib_model.embed_chips(chips))


@pytest.mark.slow
def test_wrong_weights_on_a_ray_worker_are_one_line(identities, dlib_model,
                                                   ray_engine):  # fmt: skip
    good = payload_for(dlib_model)
    bad = dataclasses.replace(
        good, weights=bytes([good.weights[0] ^ 1]) + good.weights[1:]
    )
    ray = ray_engine._ray
    saved = dict(ray_engine._payloads)
    ray_engine._payloads[dlib_model.weights_sha256] = ray.put(bad)
    try:
        with pytest.raises(BadInputError) as caught:
            evaluation.evaluate_verification(
                identities, dlib_model, engine=on_ray(ray_engine)
            )
    finally:
        ray_engine._payloads.clear()
        ray_engine._payloads.update(saved)
    assert "weights a worker received" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_ray_address_is_one_line_without_waiting():
    pytest.importorskip("ray")
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(BadInputError) as caught:
        make_engine("ray", address=f"127.0.0.1:{port}")
    assert "no Ray cluster answers there" in str(caught.value)
    with pytest.raises(BadInputError, match="is not HOST:PORT"):
        make_engine("ray", address="head-node")


def test_ray_address_without_ray_engine_is_refused():
    with pytest.raises(BadInputError, match="--ray-address is for --engine ray"):
        make_engine("local", address="10.0.0.5:6379")


def test_without_ray_installed_the_engine_is_one_line(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from core.engine import make_engine\n"
        "from core.errors import BadInputError\n"
        "try:\n    make_engine('ray')\n"
        "except BadInputError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    assert done.stdout.strip() == (
        "ray is not installed: pip install 'xfr-desktop[distributed]'"
    )


def test_cli_verification_checkpoint_resumes_and_says_so(identities, tmp_path, capsys):
    from core.cli import main

    argv = ["eval", "verification", "--data", str(identities), "--json",
            "--checkpoint", str(tmp_path / "ck")]  # fmt: skip
    assert main(argv) == 0
    first = capsys.readouterr()
    assert main(argv) == 0
    second = capsys.readouterr()
    assert "1 computed, 0 from the checkpoint" in first.err
    assert "0 computed, 1 from the checkpoint" in second.err
    a, b = json.loads(first.out), json.loads(second.out)
    a.pop("seconds"), b.pop("seconds")
    ran, resumed = a.pop("engine"), b.pop("engine")
    assert a == b  # the same table, and the output says where it came from
    folder = str(tmp_path / "ck")
    assert ran == {"engine": "local", "checkpoint": folder, "shards": 1,
                   "computed": 1, "reused": 0}  # fmt: skip
    assert resumed == {**ran, "computed": 0, "reused": 1}
    argv.remove("--json")
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"engine local, checkpoint folder {folder}: 1 shard(s), 0 computed in " \
        "this run, 1 reused from the checkpoint" in text  # fmt: skip


@pytest.mark.slow
def test_cli_calibrate_and_gallery_build_on_ray_equal_local(
    identities, tmp_path, capsys, ray_engine
):
    from core.cli import main

    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.json"
        argv = ["calibrate", "--data", str(identities), "--out", str(out),
                "--engine", engine]  # fmt: skip
        assert main(argv) == 0
        calibration = json.loads(out.read_text())
        for volatile in ("created", "reference"):
            calibration.pop(volatile)
        gallery = tmp_path / f"{engine}.xfrgallery"
        assert main(["gallery", "build", str(identities), "--out", str(gallery),
                     "--engine", engine, "--json"]) == 0  # fmt: skip
        outputs[engine] = (calibration, np.load(gallery / "templates.npy"))
    err = capsys.readouterr().err
    assert err.count("engine ray: 1 shard(s), 1 computed") == 2
    assert outputs["local"][0] == outputs["ray"][0]
    assert np.array_equal(outputs["local"][1], outputs["ray"][1])
    assert ray_engine._ray.is_initialized()  # a Ray it did not start is left running


def test_quality_measures_come_back_from_the_checkpoint_unchanged(
    identities, dlib_model, tmp_path
):
    pairs, _ = evaluation.pairs_for(identities)
    checkpoint = tmp_path / "checkpoint"
    computed = evaluation.scored_pairs(
        pairs, dlib_model, quality=True, engine=local_engine(checkpoint)
    )
    engine = local_engine(checkpoint)
    read_back = evaluation.scored_pairs(pairs, dlib_model, quality=True, engine=engine)
    assert engine.stats.computed == 0 and engine.stats.reused == 4
    assert read_back.qualities == computed.qualities and len(computed.qualities) == 8
    assert np.array_equal(read_back.genuine, computed.genuine)
    plain = evaluation.scored_pairs(pairs, dlib_model, quality=True)  # no engine
    assert plain.qualities == computed.qualities


# ---- xfr eval faithfulness: the maps in shards -------------------------------------
def faithfulness_rows(table) -> tuple[list, dict]:
    timing = ("s/pair explain", "s/pair metric")
    rows = [{k: v for k, v in row.items() if k not in timing} for row in table.rows]
    return rows, table.curves


@pytest.mark.slow
def test_faithfulness_maps_on_ray_give_the_local_table_and_resume(
    identities, dlib_model, ray_engine, tmp_path
):
    from core.metrics.evaluate import evaluate_faithfulness

    def run(engine):
        return evaluate_faithfulness(
            identities, dlib_model, ["gradient"], "deletion-insertion",
            max_pairs=4, steps=3, random_orders=1, engine=engine,
        )  # fmt: skip

    plain = run(None)
    checkpoint = tmp_path / "checkpoint"
    remote = on_ray(ray_engine, checkpoint, shard_size=2)
    on_cluster = run(remote)
    assert remote.stats.computed == 2 and plain.pairs_used == 4
    assert faithfulness_rows(on_cluster) == faithfulness_rows(plain)
    again = local_engine(checkpoint)  # every shard read back from the checkpoint
    resumed = run(again)
    assert (again.stats.computed, again.stats.reused) == (0, 2)
    assert faithfulness_rows(resumed) == faithfulness_rows(plain)


# ---- xfr eval sanity: the pairs in shards ------------------------------------------
@pytest.mark.slow
def test_sanity_on_ray_gives_the_local_table_and_resumes(
    identities, dlib_model, ray_engine, tmp_path
):
    from core.metrics.evaluate import aligned_pairs
    from core.metrics.sanity import sanity_check

    _, pairs, _, _ = aligned_pairs(identities, dlib_model, 0, 4)

    def run(engine):
        table = sanity_check(dlib_model, pairs, ["gradient", "gradcam"],
                             depths=[6], engine=engine)  # fmt: skip
        rows = [{k: v for k, v in r.items() if k != "s/pair"} for r in table.rows]
        return rows, table.verdicts

    plain = run(None)
    checkpoint = tmp_path / "checkpoint"
    remote = on_ray(ray_engine, checkpoint, shard_size=2)
    on_cluster = run(remote)
    assert remote.stats.computed == 2
    # Gradients differ in their last bits when a worker's OpenMP started with
    # another thread count than this process (docs/distributed.md): equal to 1e-4
    # here, exactly equal when the counts match (a fresh local Ray inherits them)
    assert on_cluster[1] == plain[1]
    assert len(on_cluster[0]) == len(plain[0])
    for ray_row, local_row in zip(on_cluster[0], plain[0], strict=True):
        assert ray_row.keys() == local_row.keys()
        for key, value in local_row.items():
            if isinstance(value, float):
                assert ray_row[key] == pytest.approx(value, rel=1e-4, abs=1e-6)
            else:
                assert ray_row[key] == value
    again = local_engine(checkpoint)
    assert run(again) == on_cluster  # read back exactly from the checkpoint
    assert (again.stats.computed, again.stats.reused) == (0, 2)
    assert len(plain[0]) == 2 and {v["method"] for v in plain[1]} == {
        "gradient",
        "gradcam",
    }


@pytest.mark.slow
def test_probe_chains_travel_to_ray_workers_and_give_the_same_table(
    identities, dlib_model, ray_engine
):
    from core.processing import parse_step

    chains = evaluation.ProbeChains((parse_step("gaussian_blur:sigma=2"),), ())

    def run(engine):
        return table(evaluation.evaluate_verification(
            identities, dlib_model, probe_chains=chains, engine=engine
        ))  # fmt: skip

    plain = run(None)
    assert plain["probe_processing"]["degrade"]["steps"]
    # one shard of 32 is the one-pass run's batch: the same table
    assert run(local_engine(shard_size=evaluation.SHARD_IMAGES)) == plain
    # shards of 2 are other batches (last bits may differ from one pass), the
    # same on both runners
    assert run(local_engine()) == run(on_ray(ray_engine))


# ---- review fixes: authenticated shards, model identity, address, writes ----------
def _double(model, payload, options):
    return payload * 2


def _run_double(engine, model=None, payloads=(3,)):
    shards = [Shard(i, f"{i}" * 64, p, 1) for i, p in enumerate(payloads)]
    return run_sharded(
        engine, _double, model, shards, None,
        command="test", total=len(shards), encode=lambda r: r, decode=lambda r: r,
    )  # fmt: skip


def _only_shard(folder: Path) -> Path:
    (path,) = folder.glob("shard-*.json")
    return path


def test_a_forged_shard_with_its_checksum_recomputed_is_refused(tmp_path):
    from core.engine.base import _digest

    assert _run_double(Engine(LocalRunner(), tmp_path)) == [6]
    path = _only_shard(tmp_path)
    record = json.loads(path.read_text())
    record["result"] = 7  # edited by hand, the unkeyed checksum made to match
    record["result_sha256"] = _digest(7)
    path.write_text(json.dumps(record))
    engine = Engine(LocalRunner(), tmp_path)
    with pytest.raises(BadInputError) as caught:
        _run_double(engine)
    message = str(caught.value)
    assert "not authenticated" in message and "HMAC" in message
    assert path.name in message and "\n" not in message


def test_the_key_is_a_private_file_outside_the_checkpoint_or_the_environment(
    tmp_path, monkeypatch
):
    from core.engine.base import CHECKPOINT_KEY_ENV, CHECKPOINT_KEY_FILE
    from core.io.userdirs import user_config_dir

    monkeypatch.delenv(CHECKPOINT_KEY_ENV, raising=False)
    folder = tmp_path / "ck"
    folder.mkdir()
    assert _run_double(Engine(LocalRunner(), folder)) == [6]
    key_file = user_config_dir() / CHECKPOINT_KEY_FILE
    assert key_file.is_file() and (key_file.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in folder.iterdir()] == [_only_shard(folder).name]
    engine = Engine(LocalRunner(), folder)
    assert _run_double(engine) == [6] and engine.stats.reused == 1  # same key
    monkeypatch.setenv(CHECKPOINT_KEY_ENV, "another lab secret, 32 characters")
    with pytest.raises(BadInputError, match="not authenticated"):
        _run_double(Engine(LocalRunner(), folder))  # written under the file's key
    monkeypatch.setenv(CHECKPOINT_KEY_ENV, "short")
    with pytest.raises(BadInputError, match="at least 16 characters"):
        _run_double(Engine(LocalRunner(), folder))


class _CardModel:
    """What the shard's stored key reads of a model: ids, card, device."""

    def __init__(self, card: Path, device: str = "cpu") -> None:
        from types import SimpleNamespace

        from core.models.base import Preprocessing

        self.model_id = "byom"
        self.weights_sha256 = "w" * 64
        self.card = SimpleNamespace(path=card, embedding_output=None)
        self.preprocessing = Preprocessing((112, 112))
        self.embedding_dim = 4
        self.device = device


def test_an_edited_card_or_another_device_computes_the_shards_again(tmp_path):
    card = tmp_path / "model.toml"
    card.write_text('[preprocessing]\nchannel_order = "RGB"\n')
    folder = tmp_path / "ck"
    folder.mkdir()
    for model, computed in [
        (_CardModel(card), 1),
        (_CardModel(card), 0),  # the same model and card: reused
        (_CardModel(card, device="cuda:0"), 1),  # another device
    ]:
        engine = Engine(LocalRunner(), folder)
        assert _run_double(engine, model) == [6]
        assert engine.stats.computed == computed
    card.write_text('[preprocessing]\nchannel_order = "BGR"\n')  # same weights
    engine = Engine(LocalRunner(), folder)
    assert _run_double(engine, _CardModel(card)) == [6]
    assert engine.stats.computed == 1 and engine.stats.reused == 0


def test_two_runs_writing_the_same_shard_at_once_both_succeed(tmp_path):
    import threading

    from core.engine.base import write_shard

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer() -> None:
        start.wait()
        try:
            for _ in range(40):
                write_shard(tmp_path, "k" * 64, "test", list(range(2000)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert read_shard(tmp_path, "k" * 64) == list(range(2000))
    assert [p.name for p in tmp_path.iterdir()] == [f"shard-{'k' * 64}.json"]


def test_a_checkpoint_write_that_fails_is_one_line_naming_the_file(tmp_path):
    code = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "from pathlib import Path\n"
        "from core.engine.base import write_shard\n"
        "from core.errors import BadInputError\n"
        "try:\n"
        f"    write_shard(Path({str(tmp_path)!r}), 'k' * 64, 't', list(range(9000)))\n"
        "except BadInputError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        cwd=Path(__file__).parents[2], check=True,
        env={**__import__("os").environ, "XFR_CHECKPOINT_KEY": "x" * 32},
    )  # fmt: skip
    line = done.stdout.strip()
    assert "cannot write the checkpoint shard (File too large)" in line, done.stderr
    assert f"shard-{'k' * 64}.json" in line and "\n" not in line
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_a_server_that_is_not_ray_is_one_line_without_starting_ray():
    pytest.importorskip("ray")
    import socket
    import time

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        with pytest.raises(BadInputError) as caught:
            make_engine("ray", address=f"127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait()
    message = str(caught.value)
    assert "no Ray cluster answers there (a server answers, but not Ray's)" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("address", "words"),
    [("[::1]:6379", "IPv6 addresses are not supported"),
     ("localhost:99999", "port out of range")],
)  # fmt: skip
def test_ipv6_and_out_of_range_addresses_are_named(address, words):
    pytest.importorskip("ray")
    with pytest.raises(BadInputError, match=words):
        make_engine("ray", address=address)


@pytest.mark.slow
def test_the_address_check_accepts_a_real_ray(ray_engine):
    from core.engine.ray_runner import check_address

    check_address(ray_engine._ray.get_runtime_context().gcs_address)


def test_calibration_record_and_gallery_manifest_say_shards_were_reused(
    identities, tmp_path, capsys
):
    from core.cli import main

    folder = str(tmp_path / "ck")
    for run in ("first", "second"):
        out = tmp_path / f"{run}.json"
        assert main(["calibrate", "--data", str(identities), "--out", str(out),
                     "--checkpoint", folder]) == 0  # fmt: skip
    reference = json.loads(out.read_text())["reference"]
    assert f"engine local, checkpoint folder {folder}: 1 shard(s), 0 computed in " \
        "this run, 1 reused from the checkpoint" in reference  # fmt: skip
    manifests = []
    for run in ("first", "second"):
        gallery = tmp_path / f"{run}.xfrgallery"
        assert main(["gallery", "build", str(identities), "--out", str(gallery),
                     "--checkpoint", folder, "--json"]) == 0  # fmt: skip
        manifests.append(json.loads((gallery / "manifest.json").read_text()))
    ran = {"engine": "local", "checkpoint": folder, "shards": 1}
    assert manifests[0]["engine"] == {**ran, "computed": 1, "reused": 0}
    assert manifests[1]["engine"] == {**ran, "computed": 0, "reused": 1}
    capsys.readouterr()
