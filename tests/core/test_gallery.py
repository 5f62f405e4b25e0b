"""Reference galleries outside a case (issue 22): the .xfrgallery format, the
approximate index against exact search, building from identities or a CSV, and
``xfr gallery build|search`` - with a stand-in embedder (no dlib, no detector)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import core.cli.gallery as gallery_cli
import core.evaluation as evaluation
from core import wording
from core.cli import EXIT_BAD_INPUT, EXIT_OK, main
from core.errors import BadInputError
from core.gallery import index as gi
from core.gallery.build import build_gallery, search_probe, source_images
from core.gallery.store import (
    CHECKSUMS,
    INDEX,
    MANIFEST,
    TEMPLATES,
    Entry,
    open_gallery,
    write_gallery,
)
from core.imageio import load_image

MODEL = SimpleNamespace(model_id="stand-in", weights_sha256="a" * 64)
OTHER_MODEL = SimpleNamespace(model_id="stand-in", weights_sha256="b" * 64)


def thumbnail_embedding(rgb: np.ndarray) -> np.ndarray | None:
    """A stand-in model: the 16x16 grey thumbnail, standardised (None: a flat
    image, which has no 'face')."""
    grey = Image.fromarray(rgb).convert("L").resize((16, 16), Image.BILINEAR)
    values = np.asarray(grey, np.float64).ravel()
    if values.std() < 1e-6:
        return None
    return (values - values.mean()) / values.std()


@pytest.fixture
def stand_in(monkeypatch):
    """``embed_images`` replaced by one that reads the real files and reports a
    flat image as no face found, as the real one reports its failures."""
    calls: list[list[Path]] = []

    def embed_images(images, model, **options):
        calls.append(list(images))
        result = evaluation.EmbeddedImages({}, [])
        for path in images:
            embedding = thumbnail_embedding(load_image(path).rgb)
            if embedding is None:
                result.failures_to_detect += 1
                result.failed.append(f"{path}: no face found")
            else:
                result.embeddings[path] = embedding
        return result

    monkeypatch.setattr(evaluation, "embed_images", embed_images)
    monkeypatch.setattr(gallery_cli, "load_model", lambda *a, **k: MODEL)
    return calls


@pytest.fixture
def identities(tmp_path, astronaut_rgb, grace_hopper_path) -> Path:
    """collins: the astronaut and a brighter JPEG of it, and a blank image (no
    face); hopper: Grace Hopper and a crop of her."""
    root = tmp_path / "identities"
    (root / "collins").mkdir(parents=True)
    (root / "hopper").mkdir()
    Image.fromarray(astronaut_rgb).save(root / "collins" / "a.png")
    brighter = np.clip(astronaut_rgb.astype(int) + 25, 0, 255).astype(np.uint8)
    Image.fromarray(brighter).save(root / "collins" / "b.jpg", quality=80)
    Image.new("RGB", (64, 64), (120, 120, 120)).save(root / "collins" / "blank.png")
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    Image.fromarray(hopper).save(root / "hopper" / "a.jpg")
    Image.fromarray(hopper[10:-10, 8:-8]).save(root / "hopper" / "b.png")
    return root


@pytest.fixture
def probe(tmp_path, astronaut_rgb) -> Path:
    """Another photo of 'collins': darker, with noise."""
    rng = np.random.default_rng(1)
    darker = astronaut_rgb.astype(float) * 0.8 + rng.normal(0, 6, astronaut_rgb.shape)
    path = tmp_path / "probe.png"
    Image.fromarray(np.clip(darker, 0, 255).astype(np.uint8)).save(path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- building ----
def test_build_from_identities_writes_the_manifest_and_lists_failures(
    stand_in, identities, tmp_path
):
    out = tmp_path / "G.xfrgallery"
    result = build_gallery(identities, MODEL, out)
    assert (result.count, result.identities) == (4, 2)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST, TEMPLATES, INDEX, CHECKSUMS]
    )
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == "xfrgallery" and manifest["format_version"] == 1
    assert manifest["model"] == {"id": "stand-in", "weights_sha256": "a" * 64}
    assert (manifest["embedding_dim"], manifest["metric"]) == (256, "cosine")
    assert manifest["index"]["kind"] == "flat-ip"
    assert manifest["index"]["exact_search"] is True
    files = [(t["identity"], t["file"]) for t in manifest["templates"]]
    assert files == [
        ("collins", "collins/a.png"),
        ("collins", "collins/b.jpg"),
        ("hopper", "hopper/a.jpg"),
        ("hopper", "hopper/b.png"),
    ]
    for entry in manifest["templates"]:
        assert entry["image_sha256"] == sha256(identities / entry["file"])
        assert entry["face_index"] == 0
    assert manifest["failures"] == [
        {"identity": "collins", "file": "collins/blank.png", "reason": "no face found"}
    ]
    templates = np.load(out / TEMPLATES)
    assert templates.dtype == np.float32 and templates.shape == (4, 256)
    assert np.allclose(np.linalg.norm(templates, axis=1), 1, atol=1e-6)
    expected = thumbnail_embedding(load_image(identities / "hopper/b.png").rgb)
    assert np.allclose(templates[3], expected / np.linalg.norm(expected), atol=1e-6)
    lines = (out / CHECKSUMS).read_text(encoding="utf-8").splitlines()
    assert lines == [f"{sha256(out / n)}  {n}" for n in (MANIFEST, TEMPLATES, INDEX)]
    assert len(stand_in) == 1  # every image embedded once, in one call


def test_search_ranks_the_right_identity_first(stand_in, identities, probe, tmp_path):
    build_gallery(identities, MODEL, tmp_path / "G.xfrgallery")
    gallery = open_gallery(tmp_path / "G.xfrgallery")
    embedding, candidates = search_probe(gallery, probe, MODEL, top=50)
    assert [c.rank for c in candidates] == [1, 2, 3, 4]  # top capped at the size
    assert candidates[0].identity == "collins"
    assert {c.identity for c in candidates[:2]} == {"collins"}
    # every score is the exact cosine of the probe and the stored template
    unit = embedding / np.linalg.norm(embedding)
    for c in candidates:
        assert c.similarity == pytest.approx(float(gallery.templates[c.row] @ unit))
    assert [c.similarity for c in candidates] == sorted(
        (c.similarity for c in candidates), reverse=True
    )


def test_a_csv_builds_the_same_templates_as_the_folder(stand_in, identities, tmp_path):
    csv = identities / "list.csv"
    csv.write_text(
        "identity,path\ncollins,collins/a.png\n"
        f"hopper,{identities / 'hopper/a.jpg'}\ncollins,collins/blank.png\n",
        encoding="utf-8",
    )
    build_gallery(csv, MODEL, tmp_path / "C.xfrgallery")
    build_gallery(identities, MODEL, tmp_path / "D.xfrgallery")
    from_csv = open_gallery(tmp_path / "C.xfrgallery")
    from_folder = open_gallery(tmp_path / "D.xfrgallery")
    assert [(e.identity, e.file) for e in from_csv.entries] == [
        ("collins", "collins/a.png"),
        ("hopper", str(identities / "hopper/a.jpg")),
    ]
    assert np.array_equal(from_csv.templates[0], from_folder.templates[0])
    assert np.array_equal(from_csv.templates[1], from_folder.templates[2])
    assert from_csv.manifest["failures"][0]["file"] == "collins/blank.png"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("collins\n", "line 1: expected identity,path"),
        ("a,b,c\n", "line 1: expected identity,path"),
        ("identity,path\nx,a.png\nx,a.png\n", "line 3: x,a.png listed twice"),
        ("identity,path\n", "no identity,path lines"),
        ('x,"a.png\n', "line 1: unexpected end of data"),  # unterminated quote
        ("identity,path\nx,missing.png\n", "line 2: no such image file"),
    ],
)
def test_a_bad_csv_is_one_line_naming_the_line(tmp_path, text, problem):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    csv = tmp_path / "bad.csv"
    csv.write_text(text, encoding="utf-8")
    with pytest.raises(BadInputError, match=problem) as error:
        source_images(csv)
    assert "\n" not in str(error.value) and str(csv) in str(error.value)


def test_no_template_at_all_is_refused_and_nothing_is_written(stand_in, tmp_path):
    (tmp_path / "src" / "x").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "src" / "x" / "flat.png")
    with pytest.raises(BadInputError, match="no image gave a template"):
        build_gallery(tmp_path / "src", MODEL, tmp_path / "G.xfrgallery")
    assert not (tmp_path / "G.xfrgallery").exists()


def test_a_failed_write_leaves_no_gallery_and_no_partial_folder(
    stand_in, identities, tmp_path, monkeypatch
):
    import core.gallery.store as store

    def broken(index, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_index", broken)
    with pytest.raises(OSError):
        build_gallery(identities, MODEL, tmp_path / "G.xfrgallery")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identities"]


def test_an_existing_gallery_is_never_overwritten(stand_in, identities, tmp_path):
    out = tmp_path / "G.xfrgallery"
    build_gallery(identities, MODEL, out)
    before = sha256(out / CHECKSUMS)
    with pytest.raises(BadInputError, match="never overwritten"):
        build_gallery(identities, MODEL, out)
    assert sha256(out / CHECKSUMS) == before


# ---- the approximate index against exact search ----
def clustered(count: int, dim: int, centres: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = gi.normalised(rng.normal(size=(centres, dim)))
    owners = rng.integers(0, centres, count)
    noise = rng.normal(scale=1 / np.sqrt(dim), size=(count, dim))
    return gi.normalised(middle[owners] + noise)


def test_approximate_search_ranks_the_top_10_as_exact_search(tmp_path):
    templates = clustered(20_000, 32, 400, seed=3)
    spec = gi.spec_for(len(templates))
    assert spec.kind == "hnsw-flat-ip" and (spec.m, spec.ef_construction) == (32, 200)
    entries = [Entry(f"id{i % 400}", f"{i}.png", "0" * 64) for i in range(20_000)]
    write_gallery(
        tmp_path / "S.xfrgallery",
        templates=templates,
        entries=entries,
        index=gi.build_index(templates, spec, threads=1),
        spec=spec,
        model_id="synthetic",
        weights_sha256="c" * 64,
        source="synthetic",
        failures=[],
        build_threads=1,
        software_version="test",
        software_commit="test",
    )
    gallery = open_gallery(tmp_path / "S.xfrgallery")  # the index as stored
    rng = np.random.default_rng(9)  # probes near templates, not in the gallery
    probes = templates[rng.integers(0, 20_000, 30)] + rng.normal(0, 0.1, (30, 32))
    for probe in probes:
        approximate = gallery.search(probe, 10, threads=1)
        exact = gi.exact_search(templates, probe, 10)
        assert [c.row for c in approximate] == [h.row for h in exact]
        assert [c.similarity for c in approximate] == [h.score for h in exact]
        assert approximate[0].identity == entries[exact[0].row].identity
    # the same answer with more threads (a search does not depend on them)
    assert [c.row for c in gallery.search(probes[0], 10, threads=2)] == [
        h.row for h in gi.exact_search(templates, probes[0], 10)
    ]


def test_a_one_thread_hnsw_build_is_reproducible():
    templates = clustered(gi.EXACT_BELOW, 16, 50, seed=5)
    spec = gi.spec_for(len(templates))
    first = gi.build_index(templates, spec, threads=1)
    second = gi.build_index(templates.copy(), spec, threads=1)
    assert type(first).__name__ == "IndexHNSWFlat"
    serialised = [gi.faiss_bytes(index) for index in (first, second)]
    assert serialised[0] == serialised[1]


def test_the_index_kind_follows_the_size():
    assert gi.spec_for(gi.EXACT_BELOW - 1).kind == "flat-ip"
    assert gi.spec_for(gi.EXACT_BELOW).kind == "hnsw-flat-ip"
    assert gi.spec_for(10**6).ef_search == gi.HNSW_EF_SEARCH


def test_a_template_without_direction_is_refused():
    with pytest.raises(BadInputError, match="template 1 has no direction"):
        gi.normalised(np.array([[1.0, 0.0], [0.0, 0.0]]))


# ---- refusing a changed gallery, or another model ----
@pytest.fixture
def built(stand_in, identities, tmp_path) -> Path:
    out = tmp_path / "G.xfrgallery"
    build_gallery(identities, MODEL, out)
    return out


@pytest.mark.parametrize("name", [TEMPLATES, MANIFEST, INDEX])
def test_a_changed_file_is_refused_in_one_line(built, name):
    data = bytearray((built / name).read_bytes())
    data[-3] ^= 0x01
    (built / name).write_bytes(bytes(data))
    with pytest.raises(BadInputError) as error:
        open_gallery(built)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(built / name)) and "changed since" in message


def test_a_manifest_edited_with_its_checksum_still_has_to_match_the_arrays(built):
    manifest = json.loads((built / MANIFEST).read_text(encoding="utf-8"))
    manifest["templates"].pop()  # one entry fewer than templates.npy has rows
    (built / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    lines = (built / CHECKSUMS).read_text(encoding="utf-8").splitlines()
    lines[0] = f"{sha256(built / MANIFEST)}  {MANIFEST}"
    (built / CHECKSUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"the manifest says float32 \(3, 256\)"):
        open_gallery(built)


def test_a_missing_or_damaged_checksum_file_is_refused(built):
    (built / CHECKSUMS).write_text("nonsense\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="damaged: unexpected line"):
        open_gallery(built)
    (built / CHECKSUMS).unlink()
    with pytest.raises(BadInputError, match="not a gallery"):
        open_gallery(built)


def test_another_models_gallery_is_refused(built, probe):
    gallery = open_gallery(built)
    with pytest.raises(BadInputError, match="cannot be compared") as error:
        search_probe(gallery, probe, OTHER_MODEL, top=5)
    assert "aaaaaaaaaaaa" in str(error.value) and "bbbbbbbbbbbb" in str(error.value)


# ---- the CLI ----
def test_cli_build_and_search(stand_in, identities, probe, tmp_path, capsys):
    out = tmp_path / "G.xfrgallery"
    assert main(["gallery", "build", str(identities), "--out", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "4 templates of 2 identities" in text
    assert "collins/blank.png: no face found" in text
    assert main(["gallery", "search", str(out), str(probe), "--top", "3"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "   1  " in text and "collins / collins/" in text
    # the lead sentence closes the output (wrapped to 79 columns)
    assert " ".join(text.split()).endswith(wording.GALLERY_SEARCH_LEAD)
    lead = text.rstrip("\n").split("\n\n")[-1].splitlines()
    assert len(lead) > 1 and max(len(line) for line in lead) <= 79
    argv = ["gallery", "search", str(out), str(probe), "--top", "2", "--json"]
    assert main(argv) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["note"] == wording.GALLERY_SEARCH_LEAD
    assert payload["probe"]["sha256"] == sha256(probe)
    assert payload["gallery"]["digest_sha256"] == sha256(out / CHECKSUMS)
    assert [c["rank"] for c in payload["candidates"]] == [1, 2]
    assert payload["candidates"][0]["identity"] == "collins"


def one_line_failure(capsys, argv: list[str], *expected: str) -> None:
    assert main(argv) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xfr: error: "), captured.err
    for part in expected:
        assert part in lines[0]


def test_cli_failures_are_one_line(
    stand_in, built, identities, probe, tmp_path, capsys, monkeypatch
):
    one_line_failure(
        capsys,
        ["gallery", "build", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")],
        "no such folder or CSV file",
    )
    one_line_failure(
        capsys,
        ["gallery", "build", str(identities), "--out", str(built)],
        "never overwritten",
    )
    one_line_failure(
        capsys,
        ["gallery", "build", str(identities), "--out", str(tmp_path / "no/G")],
        "folder does not exist",
    )
    one_line_failure(
        capsys, ["gallery", "search", str(built), str(probe), "--top", "0"], "--top"
    )
    one_line_failure(
        capsys, ["gallery", "search", str(probe), str(probe)], "not a gallery"
    )
    one_line_failure(
        capsys,
        ["gallery", "search", str(built), str(tmp_path / "none.png")],
        "no such image file",
    )
    blank = identities / "collins" / "blank.png"
    one_line_failure(
        capsys, ["gallery", "search", str(built), str(blank)], "no face found"
    )
    monkeypatch.setattr(gallery_cli, "load_model", lambda *a, **k: OTHER_MODEL)
    one_line_failure(
        capsys, ["gallery", "search", str(built), str(probe)], "cannot be compared"
    )
    (built / TEMPLATES).write_bytes(b"changed")
    one_line_failure(
        capsys,
        ["gallery", "search", str(built), str(probe)],
        str(built / TEMPLATES),
        "changed since",
    )


def rehash(folder: Path) -> None:
    """Rewrite manifest.sha256 for the files as they now are (an editor who knows
    the format: the checksums alone do not catch this)."""
    lines = []
    for line in (folder / CHECKSUMS).read_text(encoding="utf-8").splitlines():
        name = line.partition("  ")[2]
        lines.append(f"{sha256(folder / name)}  {name}")
    (folder / CHECKSUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_an_index_of_other_vectors_is_refused_even_rehashed(built):
    """Candidates come from the index alone: one that hid a template (here
    negated) would drop the true best match, so the index must hold the
    stored templates exactly."""
    import faiss

    templates = np.load(built / TEMPLATES)
    forged = templates.copy()
    forged[1] = -forged[1]
    index = faiss.IndexFlatIP(forged.shape[1])
    index.add(forged)
    (built / INDEX).write_bytes(faiss.serialize_index(index).tobytes())
    rehash(built)
    with pytest.raises(BadInputError, match="does not hold the gallery's templates"):
        open_gallery(built)


@pytest.mark.parametrize("value", [50.0, np.nan])
def test_a_template_that_is_no_unit_vector_is_refused(built, value):
    """A score shown as a cosine must be one (a scaled row once ranked at 42.3)."""
    templates = np.load(built / TEMPLATES)
    templates[0] = templates[0] * value
    np.save(built / TEMPLATES, templates)
    rehash(built)
    with pytest.raises(BadInputError, match="template 0 is not a unit vector"):
        open_gallery(built)


def test_a_damaged_manifest_field_is_one_line(built):
    manifest = json.loads((built / MANIFEST).read_text(encoding="utf-8"))
    manifest["index"]["rerank_factor"] = 0
    (built / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    rehash(built)
    with pytest.raises(BadInputError, match="rerank_factor 0 is below 1"):
        open_gallery(built)
    del manifest["model"]
    manifest["index"]["rerank_factor"] = 4
    (built / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    rehash(built)
    with pytest.raises(BadInputError, match="damaged: a field is missing"):
        open_gallery(built)


def test_the_same_photo_twice_is_refused(stand_in, identities, tmp_path):
    first = sorted(identities.glob("*/*.png"))[0]
    csv = tmp_path / "twice.csv"
    csv.write_text(f"obama,{first}\nbiden,{first.parent}/./{first.name}\n", "utf-8")
    with pytest.raises(BadInputError, match="is the same image as"):
        build_gallery(csv, MODEL, tmp_path / "G.xfrgallery")
