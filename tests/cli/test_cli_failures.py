"""Every ``xfr`` command fails in one line, never with a traceback (issue 15 item 8).

* The walk: every command of the real argparse tree is run with bad arguments (a
  missing file, a folder instead of a file, garbage bytes, a name with invalid
  UTF-8 bytes, an unknown case folder, --out in a missing folder), many command
  lines in one process (tests/cli_runner.py) to keep the torch imports few.
* Faults injected in-process: Ctrl-C, a full disk (ENOSPC) in report export,
  case export, explanation files and intake, an internal error.
* Real file systems where this machine allows (root, ``mount``): a full tmpfs and
  a read-only bind mount; skipped with the reason elsewhere.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import build_parser, main
from core.errors import (
    BadInputError,
    describe_os_error,
    describe_sqlite_error,
    plain_message,
    printable,
)

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "cli_runner.py"

# Commands that ask a password on the terminal before they read their input.
PROMPTS_FOR_PASSWORD: set[tuple[str, ...]] = set()
# How the messages say the disk is full (ours, the OS's, sqlite's in archive.py).
FULL_DISK_WORDS = ("disk full", "No space left on device", "disk is full")


# ---- the messages themselves --------------------------------------------------------
def test_printable_escapes_invalid_file_name_bytes():
    name = os.fsdecode(b"/cases/still\xff.png")
    assert printable(name) == "/cases/still\\xff.png"
    assert printable(Path(name)) == "/cases/still\\xff.png"
    assert printable("/cases/Zoë.png") == "/cases/Zoë.png"  # valid text stays
    assert printable("lone \ud800 surrogate").encode("utf-8")
    error = BadInputError("file not found", name)
    assert str(error) == "/cases/still\\xff.png: file not found"
    str(error).encode("utf-8")  # printable on a strict terminal


def test_os_errors_name_the_file_and_the_problem():
    full = OSError(errno.ENOSPC, "No space left on device")
    assert describe_os_error(full, "/out/r.pdf") == (
        "/out/r.pdf: disk full (no space left on the device)"
    )
    read_only = OSError(errno.EROFS, "Read-only file system", "/cases/c/case.lock")
    assert describe_os_error(read_only) == "/cases/c/case.lock: read-only file system"
    denied = PermissionError(errno.EACCES, "Permission denied", "/x")
    assert describe_os_error(denied, "/elsewhere") == "/x: permission denied"
    short = OSError("16256 requested and 2016 written")  # numpy's, no errno
    assert "is the disk full?" in describe_os_error(short, "/out")


def test_sqlite_errors_name_the_case_and_see_through_a_failed_rollback():
    db = sqlite3.connect(":memory:")
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.Error:
            db.execute("ROLLBACK")  # "cannot rollback - no transaction is active"
    except sqlite3.Error as error:
        masked = error
    assert "cannot rollback" in str(masked)
    # an error raised by Python carries no sqlite code: the generic text, named
    assert describe_sqlite_error(masked, "/cases/smith").startswith("/cases/smith: ")
    assert plain_message(RuntimeError("bug")) is None
    assert plain_message(EOFError()).startswith("no input available")


# ---- the walk over every command -----------------------------------------------
def _leaf_commands(parser: argparse.ArgumentParser, prefix=()) -> dict:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix: parser}
    leaves = {}
    for name, sub in subs[0].choices.items():
        leaves |= _leaf_commands(sub, (*prefix, name))
    return leaves


@pytest.fixture(scope="module")
def world(tmp_path_factory, astronaut_rgb):
    """A real case, a photo, a PDF and the bad inputs, in one folder."""
    from pypdf import PdfWriter

    from core.case.store import Case

    root = tmp_path_factory.mktemp("failures")
    photo = root / "astronaut.png"
    Image.fromarray(astronaut_rgb).resize((200, 200)).save(photo)
    case = root / "case"
    with Case.create(case, "2024-1", "Ann Examiner") as opened:
        opened.add_exhibits([photo], "probe")
    pdf = root / "plain.pdf"
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    with open(pdf, "wb") as handle:
        writer.write(handle)
    garbage = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
    (root / "garbage.png").write_bytes(garbage.tobytes())
    (root / "garbage.onnx").write_bytes(garbage.tobytes())
    bad_name = root / os.fsdecode(b"bad\xff.png")
    bad_name.write_bytes(garbage.tobytes())
    (root / "empty-folder").mkdir()
    return {
        "root": root,
        "photo": str(photo),
        "case": str(case),
        "pdf": str(pdf),
        "garbage": str(root / "garbage.png"),
        "inputs": {
            "missing file": str(root / "missing.png"),
            "folder instead of a file": str(root / "empty-folder"),
            "garbage bytes": str(root / "garbage.png"),
            "invalid UTF-8 name": str(bad_name),
        },
        "nowhere": itertools.count(),
    }


def _nowhere(world, name: str = "out") -> str:
    """A path in a folder that does not exist (a fresh one each time: a command
    that wrongly creates it must not hide the next one's fault)."""
    return str(world["root"] / f"nowhere-{next(world['nowhere'])}" / name)


def _fill_ins(world, placeholder: str) -> list[str]:
    """The bad values of one placeholder of a template."""
    inputs = list(world["inputs"].values())
    if placeholder == "IN":  # an input file, case folder, data set, certificate
        return inputs
    if placeholder == "FILES":  # case add takes folders too
        return [
            v for k, v in world["inputs"].items() if k != "folder instead of a file"
        ]
    if placeholder == "NEWCASE":  # a case to create (parents are made, as mkdir -p)
        return [world["garbage"], world["case"]]
    if placeholder == "OUT":  # a file or folder to write
        odd = os.fsdecode(os.fsencode(_nowhere(world)) + b"\xff")
        return [_nowhere(world), world["garbage"], odd]
    raise AssertionError(placeholder)


PLACEHOLDERS = ("IN", "FILES", "NEWCASE", "OUT")


def _templates(world) -> dict[tuple[str, ...], list[list[str]]]:
    """Command lines with placeholders (PLACEHOLDERS) for the bad values."""
    photo, case, pdf = world["photo"], world["case"], world["pdf"]
    fine = str(world["root"] / f"fresh-{uuid.uuid4().hex}")
    return {
        ("models",): [["models", "--bogus-option"]],
        ("layers",): [["layers", "--model", "IN"], ["layers", "--card", "IN"]],
        ("verify",): [["verify", "IN", photo], ["verify", photo, "IN"]],
        ("methods",): [["methods", "--bogus-option"]],
        ("explain",): [["explain", "IN", photo, "--method", "gradient"]],
        ("case", "new"): [["case", "new", "NEWCASE", "--number=1", "--examiner=E"]],
        ("case", "demo"): [["case", "demo", "NEWCASE", "--no-compare"]],
        ("case", "info"): [["case", "info", "IN"]],
        ("case", "add"): [
            ["case", "add", "IN", photo, "--role", "probe", "--no-detect"],
            ["case", "add", case, "FILES", "--role", "gallery", "--no-detect"],
        ],
        ("case", "faces"): [["case", "faces", "IN"]],
        ("case", "compare"): [["case", "compare", "IN"]],
        ("case", "explain"): [
            "case explain IN --probe Q1 --gallery K1 --method gradient".split()
        ],
        ("case", "annotate"): [["case", "annotate", "IN", "--list"]],
        ("case", "conclude"): [["case", "conclude", "IN", "--text", "t"]],
        ("case", "log"): [["case", "log", "IN"]],
        ("case", "verify"): [
            ["case", "verify", "IN"],
            ["case", "verify", case, "--anchor", "IN"],
        ],
        ("case", "anchor"): [
            ["case", "anchor", "IN", "--out", fine + ".anchor"],
            ["case", "anchor", case, "--out", "OUT"],
        ],
        ("case", "export"): [
            ["case", "export", "IN", fine + ".zip"],
            ["case", "export", case, "OUT"],
        ],
        ("case", "import"): [
            ["case", "import", "IN", fine],
            ["case", "import", world["garbage"], "OUT"],
        ],
        ("case", "settings"): [
            ["case", "settings", "IN"],
            ["case", "settings", case, "--scale", "IN"],
        ],
        ("case", "analysis"): [["case", "analysis", "IN", "Q1"]],
        ("case", "features"): [
            ["case", "features", "IN", "Q1", "K1"],
            ["case", "features", case, "Q1", "K1", "--from", "IN"],
        ],
        ("case", "evaluate"): [["case", "evaluate", "IN", "Q1", "K1"]],
        ("case", "unmask"): [["case", "unmask", "IN", "Q1", "K1"]],
        ("case", "verification"): [["case", "verification", "IN", "Q1", "K1"]],
        ("case", "acev"): [["case", "acev", "IN"]],
        ("case", "quality"): [
            ["case", "quality", "IN"],
            ["case", "quality", case, "--face", "Q9"],
        ],
        ("case", "videos"): [["case", "videos", "IN"]],
        ("case", "tracks"): [
            ["case", "tracks", "IN", "V1", "--show"],
            ["case", "tracks", "IN", "V1", "--no-model"],
            ["case", "tracks", case, "V1", "--no-model"],  # no video V1
            ["case", "tracks", case, "V1", "--show", "--run", "2"],
        ],
        ("case", "frames"): [
            ["case", "frames", "IN", "--list"],
            ["case", "frames", "IN", "--check"],
            ["case", "frames", "IN", "V1", "--track", "T1", "--best", "1"],
            ["case", "frames", case, "V1", "--track", "T1", "--best", "1"],
            ["case", "frames", case, "V1", "--track", "T1", "--frame", "x"],
            ["case", "tracks", case, "V1", "--every", "x", "--no-model"],
        ],
        ("case", "process"): [
            ["case", "process", "IN", "Q1", "--op", "levels", "--no-detect"],
            ["case", "process", case, "Q1", "--no-detect"],  # no --op
            ["case", "process", case, "Q1", "--op", "bogus"],
            ["case", "process", case, "Q1", "--op", "levels:gamma=0"],
            ["case", "process", case, "Q9", "--op", "levels"],
        ],
        ("case", "processed"): [
            ["case", "processed", "IN", "--check"],
            ["case", "processed", case, "Q9"],
        ],
        ("case", "gallery-search"): [
            ["case", "gallery-search", case, "--probe", "Q1", "--gallery", "IN"],
            "case gallery-search CASE --probe Q1 --gallery IN --top 0".replace(
                "CASE", case
            ).split(),
            "case gallery-search CASE --probe Q1#1 --face 2 --gallery IN".replace(
                "CASE", case
            ).split(),
        ],
        ("case", "pull-candidate"): [
            ["case", "pull-candidate", "IN", "--search", "S1", "--rank", "1"],
            [
                "case",
                "pull-candidate",
                case,
                "--search",
                "S1",
                "--rank",
                "1",
                "--image",
                "IN",
            ],
            ["case", "pull-candidate", case, "--search", "x", "--rank", "1"],
        ],
        ("processing", "ops"): [["processing", "ops", "--bogus-option"]],
        ("identity", "new"): [["identity", "new", "--name", "N", "--out", "OUT"]],
        ("identity", "export"): [["identity", "export", "IN", "--out", fine]],
        ("report",): [
            ["report", "IN", "--out", fine + ".pdf", "--no-faithfulness"],
            ["report", case, "--out", "OUT", "--no-faithfulness"],
            ["report", "verify", "IN"],
            ["report", "verify", pdf, "--trust", "IN"],
            ["report", "verify", pdf, "--case", "IN"],
        ],
        ("calibrate",): [
            ["calibrate", "--data", "IN", "--out", fine + ".json"],
            ["calibrate", "--data", "IN", "--evaluate", "IN"],
        ],
        ("channels",): [["channels", "--layer", "x", "--data", "IN"]],
        ("self-test",): [["self-test", "--keep", "OUT"]],
        ("train", "reconstructor"): [
            ["train", "reconstructor", "--data", "IN", "--out", fine + ".pt"]
        ],
        ("train", "ecloss"): [
            ["train", "ecloss", "--data", "IN", "--layer", "x", "--out", fine]
        ],
        ("eval", "faithfulness"): [
            "eval faithfulness --data IN --methods gradient --metric "
            "deletion-insertion".split()
        ],
        ("eval", "verification"): [["eval", "verification", "--data", "IN"]],
        ("eval", "sanity"): [
            "eval sanity --data IN --methods gradient --max-pairs 1 --out OUT".split()
        ],
        ("eval", "models"): [["eval", "models", "--data", "IN", "--models", "x"]],
        ("gallery", "build"): [
            ["gallery", "build", "IN", "--out", fine + ".xfrgallery"]
        ],
        ("gallery", "search"): [
            ["gallery", "search", "IN", photo],
            ["gallery", "search", case, photo, "--top", "0"],
        ],
    }


def _bad_command_lines(world) -> list[list[str]]:
    """Every template with each bad value of its placeholder (one at a time)."""
    lines = []
    for templates in _templates(world).values():
        for template in templates:
            slots = [i for i, part in enumerate(template) if part in PLACEHOLDERS]
            values = [_fill_ins(world, template[i]) for i in slots] or [[None]]
            for index in range(max(len(v) for v in values)):
                argv = list(template)
                for slot, choices in zip(slots, values, strict=False):
                    argv[slot] = choices[index % len(choices)]
                lines.append(argv)
    return lines


def _missing_out_folder_lines(world, leaves) -> list[list[str]]:
    """Each command with --out, plausible inputs and --out in a missing folder."""
    good = {"IN": world["photo"], "FILES": world["photo"]}
    lines = [["report", world["case"], "--out", _nowhere(world, "r.pdf")]]
    for command, templates in _templates(world).items():
        if not any(a.dest == "out" for a in leaves[command]._actions):
            continue
        argv = [
            world["case"] if part == "IN" and command[0] == "case" else part
            for part in templates[0]
        ]
        argv = [good.get(part, part) for part in argv]
        if "--out" in argv:
            argv[argv.index("--out") + 1] = _nowhere(world)
        else:
            argv += ["--out", _nowhere(world)]
        lines.append(argv)
    return lines


def _run_in_one_process(argvs: list[list[str]], tmp_path: Path) -> list[dict]:
    source, target = tmp_path / "argvs.json", tmp_path / "results.json"
    source.write_text(json.dumps(argvs), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "XFR_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    completed = subprocess.run(
        [sys.executable, str(RUNNER), str(source), str(target)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        start_new_session=True,  # no controlling terminal: getpass cannot block
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return json.loads(target.read_text(encoding="utf-8"))


def _short(stderr: str) -> bool:
    return len(stderr.strip().splitlines()) <= 3


@pytest.mark.dlib
@pytest.mark.slow
def test_every_command_fails_in_one_line(world, tmp_path):
    leaves = _leaf_commands(build_parser())
    assert set(_templates(world)) == set(leaves), "a command without bad arguments"
    bad = _bad_command_lines(world)
    missing_out = _missing_out_folder_lines(world, leaves)
    results = _run_in_one_process(bad + missing_out, tmp_path)
    failures = []
    for result in results:
        argv, stderr = result["argv"], result["stderr"]
        problems = []
        if result["escaped"]:
            problems.append("escaped main: " + result["escaped"].splitlines()[-1])
        if result["code"] not in (1, 2):
            problems.append(f"exit {result['code']}")
        if "Traceback" in stderr:
            problems.append("traceback")
        if tuple(argv[:2]) not in PROMPTS_FOR_PASSWORD and not _short(stderr):
            problems.append(f"{len(stderr.splitlines())} lines")
        if argv in missing_out and "folder does not exist" not in stderr:
            problems.append("missing --out folder not named")
        if problems:
            failures.append(f"xfr {printable(' '.join(argv))}: {problems}\n{stderr}")
    assert not failures, "\n".join(failures)
    assert len(results) == len(bad) + len(missing_out) > 90  # the walk really ran


@pytest.mark.slow
def test_password_commands_without_a_terminal_fail_in_one_line(world, tmp_path):
    argvs = [
        ["identity", "export", world["inputs"]["missing file"], "--out", "x.pem"],
        ["identity", "new", "--name", "N", "--out", str(tmp_path / "id.p12")],
    ]
    for result in _run_in_one_process(argvs, tmp_path):
        assert result["code"] == 2 and _short(result["stderr"]), result


@pytest.mark.slow
def test_an_odd_file_name_prints_on_a_strict_terminal(world, tmp_path):
    """Real stdout/stderr with a strict UTF-8 encoding (e.g. an en_US.UTF-8
    terminal), not the C locale's forgiving one."""
    env = {k: v for k, v in os.environ.items() if k != "XFR_DEBUG"}
    env |= {"PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8:strict"}
    bad = world["inputs"]["invalid UTF-8 name"]
    completed = subprocess.run(
        [sys.executable, "-m", "core.cli", "case", "info", bad],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        start_new_session=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert b"Traceback" not in completed.stderr
    assert b"bad\\xff.png: not a case folder" in completed.stderr


# ---- faults injected in-process -----------------------------------------------------
@pytest.fixture
def case_with_photo(tmp_path, astronaut_rgb):
    from core.case.store import Case

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut_rgb).resize((200, 200)).save(photo)
    case = tmp_path / "case"
    with Case.create(case, "2024-1", "Ann Examiner") as opened:
        opened.add_exhibits([photo], "probe")
    return case, photo


def _verify_exit(case: Path) -> int:
    return main(["case", "verify", str(case)])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_ctrl_c_at_a_password_prompt_exits_130(monkeypatch, capsys, tmp_path):
    import getpass

    def interrupted(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(getpass, "getpass", interrupted)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)  # as at a terminal
    monkeypatch.delenv("XFR_PASSWORD", raising=False)
    out = tmp_path / "id.p12"
    assert main(["identity", "new", "--name", "N", "--out", str(out)]) == 130
    assert _one_line_error(capsys) == "xfr: interrupted"
    assert not out.exists()


def test_an_internal_error_is_one_line_and_the_traceback_only_with_xfr_debug(
    monkeypatch, capsys
):
    import core.cli.verify

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(core.cli.verify, "cmd_methods", broken)
    monkeypatch.delenv("XFR_DEBUG", raising=False)
    assert main(["methods"]) == 1
    line = _one_line_error(capsys)
    assert line.startswith("xfr: error: internal error: ZeroDivisionError")
    assert "please report this" in line
    monkeypatch.setenv("XFR_DEBUG", "1")
    assert main(["methods"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_out_in_a_missing_folder_is_refused_before_any_work(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    code = main(["identity", "new", "--name", "N", "--out", str(missing / "i.p12")])
    assert code == 2  # refused before the password is asked
    assert _one_line_error(capsys) == f"xfr: error: {missing}: folder does not exist"


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.slow
def test_disk_full_during_report_export_leaves_no_report(
    monkeypatch, capsys, case_with_photo
):
    case, _photo = case_with_photo
    out = case.parent / "report.pdf"
    monkeypatch.setattr(Path, "write_bytes", _disk_full)
    code = main(["report", str(case), "--out", str(out), "--no-faithfulness"])
    monkeypatch.undo()
    assert code == 2
    assert _one_line_error(capsys) == (
        f"xfr: error: {out}: disk full (no space left on the device)"
    )
    assert sorted(p.name for p in case.parent.iterdir()) == ["astronaut.png", "case"]
    assert _verify_exit(case) == 0


def test_disk_full_during_case_export_leaves_no_archive(
    monkeypatch, capsys, case_with_photo
):
    case, _photo = case_with_photo
    archive = case.parent / "case.zip"
    monkeypatch.setattr(os, "fsync", _disk_full)  # the disk is full on the flush
    code = main(["case", "export", str(case), str(archive)])
    monkeypatch.undo()
    assert code == 2
    line = _one_line_error(capsys)
    assert str(archive) in line and "No space left on device" in line
    assert not any(p.name.startswith("case.zip") for p in case.parent.iterdir())
    assert _verify_exit(case) == 0


def test_a_failed_write_of_explanation_files_leaves_the_earlier_ones(tmp_path):
    from core.explain.export import staged_folder

    final = tmp_path / "gradient"
    with staged_folder(final) as folder:
        (folder / "result.json").write_text("first")
    assert (final / "result.json").read_text() == "first"
    with pytest.raises(OSError), staged_folder(final) as folder:
        (folder / "result.json").write_text("second, half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradient"]  # no staging
    assert (final / "result.json").read_text() == "first"
    with staged_folder(final) as folder:
        (folder / "result.json").write_text("third")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradient"]
    assert (final / "result.json").read_text() == "third"


def test_disk_full_during_intake_is_one_line_and_loses_nothing(
    monkeypatch, capsys, case_with_photo, grace_hopper_path
):
    case, _photo = case_with_photo
    monkeypatch.setattr(os, "fsync", _disk_full)
    code = main(
        [
            "case",
            "add",
            str(case),
            str(grace_hopper_path),
            "--role=gallery",
            "--no-detect",
        ]
    )
    monkeypatch.undo()
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err + captured.out
    assert "No space left on device" in captured.out
    assert _verify_exit(case) == 0
    capsys.readouterr()
    assert main(["case", "info", str(case), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [e["mark"] for e in info["exhibits"]] == ["Q1"]  # nothing lost, nothing half
    assert len(list((case / "evidence").iterdir())) == 1


# ---- real file systems: a full tmpfs, a read-only bind mount ------------------
def _can_mount() -> str | None:
    """None when this process may mount file systems, else the reason it cannot."""
    if sys.platform != "linux":
        return "tmpfs and bind mounts need Linux"
    if os.geteuid() != 0:
        return "mounting needs root"
    return None


@pytest.fixture
def mounted(tmp_path):
    """``mount(kind, target, *options)``; everything is unmounted afterwards."""
    reason = _can_mount()
    if reason:
        pytest.skip(reason)
    mounts: list[Path] = []

    def mount(*argv: str) -> None:
        done = subprocess.run(["mount", *argv], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount is not allowed here: {done.stderr.strip()}")
        mounts.append(Path(argv[-1]))

    yield mount
    for target in reversed(mounts):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _fill(folder: Path, leave_bytes: int) -> None:
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as filler:
        filler.write(b"\0" * max(free - leave_bytes, 0))


def _noise_png(path: Path, side: int, seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.dlib
@pytest.mark.slow
def test_a_really_full_disk_fails_in_one_line_and_loses_nothing(
    mounted, tmp_path, capsys
):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted("-t", "tmpfs", "-o", "size=8M", "tmpfs", str(disk))
    case = disk / "case"
    assert main(["case", "new", str(case), "--number", "1", "--examiner", "E"]) == 0
    first = _noise_png(tmp_path / "first.png", 200, 1)
    assert main(["case", "add", str(case), str(first), "--role", "probe"]) == 0
    capsys.readouterr()
    # intake: the evidence copy cannot be written
    _fill(disk, 60_000)
    big = _noise_png(tmp_path / "big.png", 300, 2)
    code = main(["case", "add", str(case), str(big), "--role", "gallery"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err + captured.out
    assert "No space left on device" in captured.out and _short(captured.out)
    # the database cannot grow (a conclusion larger than the space left)
    (disk / "filler").unlink()
    _fill(disk, 40_000)
    text = "the faces agree " * 8000
    assert main(["case", "conclude", str(case), "--text", text]) == 2
    assert (
        _one_line_error(capsys)
        == f"xfr: error: {case}: disk full: the case database cannot grow"
    )
    (disk / "filler").unlink()
    # outputs on the full disk, the case elsewhere: report, export, explain files
    _fill(disk, 20_000)
    elsewhere = tmp_path / "case"
    assert (
        main(["case", "new", str(elsewhere), "--number", "2", "--examiner", "E"]) == 0
    )
    assert main(["case", "add", str(elsewhere), str(first), "--role", "probe"]) == 0
    capsys.readouterr()
    outputs = disk / "outputs"
    outputs.mkdir()
    for argv in (
        [
            "report",
            str(elsewhere),
            "--out",
            str(outputs / "r.pdf"),
            "--no-faithfulness",
        ],
        ["case", "export", str(elsewhere), str(outputs / "c.zip")],
    ):
        assert main(argv) == 2, argv
        line = _one_line_error(capsys)
        assert any(words in line for words in FULL_DISK_WORDS), line
        assert list(outputs.iterdir()) == [], argv  # nothing half-written
    # import into the full disk: refused, no half case left
    (disk / "filler").unlink()
    archive = tmp_path / "c.zip"
    assert main(["case", "export", str(elsewhere), str(archive)]) == 0
    _fill(disk, 20_000)
    capsys.readouterr()
    assert main(["case", "import", str(archive), str(outputs / "imported")]) == 2
    _one_line_error(capsys)
    assert list(outputs.iterdir()) == []
    (disk / "filler").unlink()
    for folder in (case, elsewhere):
        assert _verify_exit(folder) == 0
    capsys.readouterr()
    assert main(["case", "info", str(case), "--json"]) == 0
    marks = [e["mark"] for e in json.loads(capsys.readouterr().out)["exhibits"]]
    assert marks == ["Q1"]


@pytest.mark.slow
def test_opening_a_case_on_a_nearly_full_disk_does_not_call_it_damaged(
    mounted, tmp_path, capsys
):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted("-t", "tmpfs", "-o", "size=4M", "tmpfs", str(disk))
    case = disk / "case"
    assert main(["case", "new", str(case), "--number", "1", "--examiner", "E"]) == 0
    _fill(disk, 8_000)  # too little for sqlite's -shm index
    capsys.readouterr()
    assert main(["case", "info", str(case)]) == 0  # reading needs no space
    capsys.readouterr()
    assert main(["case", "conclude", str(case), "--text", "t" * 20_000]) == 2
    line = _one_line_error(capsys)
    assert "damaged" not in line and ("disk full" in line or "space" in line)
    assert main(["case", "verify", str(case)]) == 0


@pytest.fixture
def read_only_case(mounted, case_with_photo, tmp_path):
    case, _photo = case_with_photo
    view = tmp_path / "read-only-view"
    view.mkdir()
    mounted("--bind", str(case), str(view))
    mounted("-o", "remount,bind,ro", str(view))
    return view


@pytest.mark.parametrize(
    "argv",
    [
        ["case", "add", "CASE", "PHOTO", "--role", "gallery", "--no-detect"],
        ["case", "compare", "CASE"],
        "case annotate CASE --on Q1 --shape point --points 1,2".split(),
        ["case", "conclude", "CASE", "--text", "same person"],
        "case analysis CASE Q1 --suitability suitable".split(),
        "case features CASE Q1 K1 --set nose=similar".split(),
        "case evaluate CASE Q1 K1 --level neither".split(),
        "case unmask CASE Q1 K1".split(),
        "case settings CASE --first same".split(),
        "case verification CASE Q1 K1 --record".split(),
        "case tracks CASE V1 --no-model".split(),
        "case frames CASE V1 --track T1 --best 1".split(),
    ],
    ids=[
        "add",
        "compare",
        "annotate",
        "conclude",
        "analysis",
        "features",
        "evaluate",
        "unmask",
        "settings",
        "verification",
        "tracks",
        "frames",
    ],
)
def test_writing_to_a_read_only_case_is_one_line(argv, read_only_case, capsys):
    photo = read_only_case.parent / "astronaut.png"
    argv = [{"CASE": str(read_only_case), "PHOTO": str(photo)}.get(a, a) for a in argv]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"xfr: error: {read_only_case}: the case is read-only (")


@pytest.mark.parametrize(
    "command", ["info", "log", "verify", "acev", "settings", "quality", "videos"]
)
def test_a_read_only_case_can_still_be_read(command, read_only_case, capsys):
    assert main(["case", command, str(read_only_case)]) == 0, capsys.readouterr()


@pytest.mark.parametrize("option", ["--list", "--check"])
def test_a_read_only_case_can_still_list_and_check_frames(
    option, read_only_case, capsys
):
    assert main(["case", "frames", str(read_only_case), option]) == 0, (
        capsys.readouterr()
    )


@pytest.mark.slow
def test_report_verify_against_a_read_only_case(read_only_case, tmp_path, capsys):
    from pypdf import PdfWriter

    pdf = tmp_path / "other.pdf"
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    with open(pdf, "wb") as handle:
        writer.write(handle)
    code = main(["report", "verify", str(pdf), "--case", str(read_only_case)])
    err = capsys.readouterr().err
    assert code == 1 and "unable to open" not in err  # NOT OK: no manifest; read
