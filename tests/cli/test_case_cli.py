"""`xfr case ...`: the whole round trip on real photos, with --json everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main


def xfr(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    as_json = "--json" in argv and captured.out.strip()
    return code, json.loads(captured.out) if as_json else {}, captured.err


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut_rgb, grace_hopper_path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli-photos")
    files = {
        "probe": folder / "still.jpg",
        "same": folder / "astronaut.png",
        "other": Path(grace_hopper_path),
    }
    small = Image.fromarray(astronaut_rgb).resize((300, 300))
    small.convert("L").save(files["probe"], quality=40)
    Image.fromarray(astronaut_rgb).save(files["same"])
    return files


@pytest.mark.slow
@pytest.mark.dlib
def test_round_trip_new_add_compare_explain_annotate_export_import_verify(
    capsys, tmp_path, photos
):
    case = tmp_path / "smith.xfrcase"
    code, out, _ = xfr(
        capsys, "case", "new", case, "--number", "2026-0077", "--examiner", "J. Doe",
        "--title", "Smith burglary", "--user", "jdoe", "--json",
        "--no-sequential-unmasking",  # scores at once (masking: test_cli_examination)
    )  # fmt: skip
    assert code == 0 and out["case_number"] == "2026-0077"

    code, out, _ = xfr(
        capsys, "case", "add", case, photos["probe"], "--role", "probe",
        "--note", "CCTV export, camera 3", "--user", "jdoe", "--json",
    )  # fmt: skip
    assert code == 0 and out["added"][0]["mark"] == "Q1" and out["added"][0]["faces"]
    code, out, _ = xfr(
        capsys, "case", "add", case, photos["same"], photos["other"], "--role",
        "gallery", "--user", "jdoe", "--json",
    )  # fmt: skip
    assert code == 0 and [e["mark"] for e in out["added"]] == ["K1", "K2"]

    code, out, _ = xfr(capsys, "case", "faces", case, "--json")
    assert {f["mark"] for f in out["faces"]} == {"Q1", "K1", "K2"}

    code, out, _ = xfr(
        capsys, "case", "compare", case, "--device", "cpu", "--user", "jdoe", "--json"
    )
    ranking = out["rankings"]["Q1"]
    assert code == 0 and ranking[0]["gallery"] == "K1"
    assert ranking[0]["decision"] == "accept"
    by_face = {entry["gallery"]: entry for entry in ranking}
    assert by_face["K2"]["decision"] == "reject"  # Grace Hopper

    explain = ["case", "explain", case, "--probe", "Q1", "--gallery", "K1"]
    explain += ["--method", "gradcam", "--device", "cpu", "--json"]
    code, first, _ = xfr(capsys, *explain, "--out", tmp_path / "maps")
    assert code == 0 and not first["from_cache"]
    assert Path(first["files"]["probe_combined"]["overlay_png"]).is_file()
    code, again, _ = xfr(capsys, *explain)
    assert again["from_cache"] and again["explanation_id"] == first["explanation_id"]

    code, out, _ = xfr(
        capsys, "case", "annotate", case, "--on", "Q1", "--shape", "rectangle",
        "--points", "100,80", "180,200", "--label", "left eyebrow", "--component",
        "eyebrows", "--note", "gap in the outer third", "--user", "jdoe", "--json",
    )  # fmt: skip
    assert code == 0 and out["annotations"][0]["component"] == "eyebrows"
    code, out, _ = xfr(
        capsys, "case", "annotate", case, "--on",
        f"explanation:{first['explanation_id']}", "--shape", "point", "--points",
        "75,60", "--label", "hot spot", "--json",
    )  # fmt: skip
    assert code == 0 and len(out["annotations"]) == 2

    archive = tmp_path / "smith.zip"
    code, out, _ = xfr(capsys, "case", "export", case, archive, "--json")
    assert code == 0 and archive.is_file() and len(out["sha256"]) == 64

    restored = tmp_path / "restored.xfrcase"
    code, out, _ = xfr(capsys, "case", "import", archive, restored, "--json")
    assert code == 0 and out["verify"]["intact"]

    code, out, _ = xfr(capsys, "case", "verify", restored, "--json")
    assert code == 0 and out["intact"] and out["evidence_files"] == 3

    code, log, _ = xfr(capsys, "case", "log", restored, "--json")
    actions = [e["action"] for e in log["entries"]]
    for action in (
        "case.create",
        "exhibits.add",
        "faces.detect",
        "comparisons.record",
        "explanation.store",
        "annotation.add",
        "case.import",
    ):
        assert action in actions, action
    assert {e["user"] for e in log["entries"][:8]} == {"jdoe"}
    code, info, _ = xfr(capsys, "case", "info", restored, "--json")
    assert info["case_number"] == "2026-0077" and info["counts"]["explanations"] == 1
    # the original case recorded the export with the archive's hash
    code, log, _ = xfr(capsys, "case", "log", case, "--json")
    assert log["entries"][-1]["action"] == "case.export"


def test_verify_exit_code_names_the_tampered_file(capsys, tmp_path, photos):
    case = tmp_path / "c"
    xfr(capsys, "case", "new", case, "--number", "1", "--examiner", "X")
    xfr(capsys, "case", "add", case, photos["same"], "--role", "gallery", "--no-detect")
    (stored,) = (case / "evidence").iterdir()
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[-100] ^= 0xFF
    stored.write_bytes(bytes(data))
    code, out, _ = xfr(capsys, "case", "verify", case, "--json")
    assert code == 1 and not out["intact"]
    assert "K1" in out["problems"][0] and "astronaut.png" in out["problems"][0]


def test_clear_errors_exit_2(capsys, tmp_path, photos):
    code, _, err = xfr(capsys, "case", "verify", tmp_path / "nothing-here")
    assert code == 2 and "not a case folder" in err
    damaged = tmp_path / "damaged"
    xfr(capsys, "case", "new", damaged, "--number", "1", "--examiner", "X")
    (damaged / "case.sqlite").write_bytes(np.random.default_rng(0).bytes(8192))
    for companion in ("case.sqlite-wal", "case.sqlite-shm"):
        (damaged / companion).unlink(missing_ok=True)
    code, _, err = xfr(capsys, "case", "info", damaged)
    assert code == 2 and "damaged or not an XFR case" in err and "Traceback" not in err
    code, _, err = xfr(capsys, "case", "import", photos["same"], tmp_path / "new")
    assert code == 2 and "astronaut.png" in err
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
@pytest.mark.dlib
def test_demo_case_from_the_command_line(capsys, tmp_path):
    code, out, _ = xfr(
        capsys, "case", "demo", tmp_path / "demo", "--device", "cpu", "--json"
    )
    assert code == 0 and out["counts"]["exhibits"] == 3
    assert out["counts"]["comparisons"] >= 2


# ---- signed export / import ---------------------------------------------------------
def _xfr_without_terminal(*argv: str, env: dict | None = None):
    """Run ``xfr`` as a batch job would: no terminal, stdin closed."""
    environment = {k: v for k, v in os.environ.items() if k != "XFR_PASSWORD"}
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *map(str, argv)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


@pytest.fixture
def small_case(tmp_path, photos) -> Path:
    from core.case.store import Case

    folder = tmp_path / "smith.xfrcase"
    with Case.create(folder, "2026-0099", "J. Doe") as case:
        assert not case.add_exhibits([photos["same"]], "gallery").rejected
        case.add_conclusion("no identification")
    return folder


@pytest.fixture(scope="module")
def examiner_identity(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(identity .p12, a file holding its password, its public certificate)."""
    from core.report.signing import create_identity, export_certificate

    folder = tmp_path_factory.mktemp("examiner")
    p12, password_file = folder / "jane.p12", folder / "password.txt"
    create_identity("Jane Examiner", p12, "correct horse")
    password_file.write_text("correct horse\n", encoding="utf-8")
    export_certificate(p12, "correct horse", folder / "jane.pem")
    return p12, password_file, folder / "jane.pem"


@pytest.mark.slow
def test_signed_export_with_a_password_file_and_trusted_import(
    capsys, tmp_path, small_case, examiner_identity
):
    p12, password_file, certificate = examiner_identity
    archive = tmp_path / "smith.zip"
    done = _xfr_without_terminal(
        "case", "export", small_case, archive, "--sign", p12,
        "--password-file", password_file, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["signed_by"]["name"] == "Jane Examiner"
    assert out["format_version"] == 2 and len(out["state_digest"]) == 64
    code, log, _ = xfr(capsys, "case", "log", small_case, "--json")
    export = log["entries"][-1]
    assert export["action"] == "case.export"
    assert export["details"]["signed_by"] == out["signed_by"]
    assert export["details"]["audit_head"] == out["audit_head"]

    restored = tmp_path / "restored.xfrcase"
    code, _, err = xfr(capsys, "case", "import", archive, restored, "--trust",
                       certificate)  # fmt: skip
    assert code == 0, err
    code, log, _ = xfr(capsys, "case", "log", restored, "--json")
    imported = log["entries"][-1]
    assert imported["action"] == "case.import"
    assert imported["details"]["archive_audit_head"] == out["audit_head"]
    assert imported["details"]["archive_state_digest"] == out["state_digest"]
    assert imported["details"]["signed_by"] == {
        **out["signed_by"],
        "trusted": True,
    }


@pytest.mark.slow
def test_import_prints_the_signer_and_whether_trusted(
    capsys, tmp_path, small_case, examiner_identity, monkeypatch
):
    from core.case.archive import export_case
    from core.case.archive_signature import load_signer

    p12, _, _ = examiner_identity
    archive = tmp_path / "smith.zip"
    export_case(small_case, archive, signer=load_signer(p12, "correct horse"))
    monkeypatch.setenv("XFR_PASSWORD", "correct horse")  # for --trust ID.p12
    code = main(
        ["case", "import", str(archive), str(tmp_path / "a"), "--trust", str(p12)]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == f"imported into {tmp_path / 'a'}; intact"
    assert out[1].startswith("the database is the one the manifest describes")
    assert out[2].startswith("signed by Jane Examiner (certificate SHA-256 ")
    assert out[2].endswith("signature valid, signer trusted")

    unsigned = tmp_path / "unsigned.zip"
    export_case(small_case, unsigned)
    code = main(["case", "import", str(unsigned), str(tmp_path / "b")])
    assert code == 0 and capsys.readouterr().out.splitlines()[2] == "not signed"


@pytest.mark.slow
def test_export_sign_without_a_password_or_terminal_exits_2(
    tmp_path, small_case, examiner_identity
):
    p12, _, _ = examiner_identity
    archive = tmp_path / "smith.zip"
    done = _xfr_without_terminal("case", "export", small_case, archive, "--sign", p12)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert str(p12) in line and "--password-file" in line and "XFR_PASSWORD" in line
    assert not archive.exists()
    assert not list(tmp_path.glob("smith.zip*"))


@pytest.mark.slow
def test_import_of_a_tampered_signed_archive_exits_1_and_leaves_nothing(
    capsys, tmp_path, small_case, examiner_identity
):
    import zipfile

    from core.case.archive import export_case
    from core.case.archive_signature import load_signer

    p12, _, _ = examiner_identity
    archive = tmp_path / "smith.zip"
    export_case(small_case, archive, signer=load_signer(p12, "correct horse"))
    with zipfile.ZipFile(archive) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as target:
        for info, data in members:
            if info.filename == "manifest.json":
                data = data.replace(b'"seq": ', b'"seq":  ')
            target.writestr(info, data)
    code, _, err = xfr(capsys, "case", "import", forged, tmp_path / "restored")
    assert code == 1
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert (
        str(forged) in line and "'manifest.json.p7s' is not a valid signature" in line
    )
    assert not (tmp_path / "restored").exists()
    assert not list(tmp_path.glob("*.importing-*"))


@pytest.mark.dlib
def test_faces_reject_restore_box_and_reset_from_the_command_line(
    capsys, tmp_path, photos
):
    """The astronaut's mission patch is found as a second face: the examiner
    rejects it, restores it, draws a box for a face and resets a correction."""
    case = tmp_path / "faces.xfrcase"
    xfr(capsys, "case", "new", case, "--number", "1", "--examiner", "J. Doe")
    code, out, _ = xfr(
        capsys, "case", "add", case, photos["same"], "--role", "gallery", "--json"
    )
    assert code == 0 and out["added"][0]["faces"] == 2  # face and patch
    code, out, err = xfr(
        capsys, "case", "faces", case, "--reject", "K1#1", "--reason", "patch",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert [f["label"] for f in out["faces"]] == ["K1"]
    assert [f["label"] for f in out["rejected"]] == ["K1#1"]
    assert main(["case", "faces", str(case)]) == 0
    listing = capsys.readouterr().out
    assert "K1#1   rejected: patch (restore with --restore K1#1)" in listing
    code, out, _ = xfr(capsys, "case", "faces", case, "--restore", "K1#1", "--json")
    assert [f["label"] for f in out["faces"]] == ["K1", "K1#1"] and not out["rejected"]
    code, out, _ = xfr(
        capsys, "case", "faces", case, "--box", "K1", "--bbox", "150,40,300,220",
        "--json",
    )  # fmt: skip
    (k1,) = [f for f in out["faces"] if f["label"] == "K1"]
    assert k1["source"] == "box"
    code, out, _ = xfr(capsys, "case", "faces", case, "--reset", "K1", "--json")
    (k1,) = [f for f in out["faces"] if f["label"] == "K1"]
    assert k1["source"] == "hog"
    code, out, _ = xfr(capsys, "case", "faces", case, "--history", "K1", "--json")
    assert [(f["source"], f["superseded"]) for f in out["history"]] == [
        ("hog", False),
        ("box", True),
    ]
    code, _, err = xfr(capsys, "case", "faces", case, "--reset", "K1")
    assert code != 0 and "already the detected face" in err
    assert "Traceback" not in err
    code, _, err = xfr(capsys, "case", "verify", case)
    assert code == 0, err
