"""The desktop bundle without building it: the PyInstaller spec's data lists and
exclusions, the third-party notices, and the self-test that checks a build."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from core import resources, selftest, version
from core.cli import main as xfr_main
from core.errors import BadInputError

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "xfr-desktop.spec"
NOTICES = ROOT / "packaging" / "THIRD_PARTY_NOTICES.md"


def load_spec(monkeypatch, work_dir: Path, variant: str = "cpu") -> dict:
    """Execute the spec's data-collection part (no PyInstaller, no analysis), with
    ``work_dir`` as PyInstaller's work folder (where the build commit is written)."""
    monkeypatch.setenv("XFR_VARIANT", variant)
    namespace = {
        "__file__": str(SPEC),
        "__name__": "xfr_desktop_spec",
        "workpath": str(work_dir),
    }
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), namespace)
    assert namespace["BUILDING"] is False
    return namespace


@pytest.fixture
def spec(monkeypatch, tmp_path) -> dict:
    return load_spec(monkeypatch, tmp_path)


def bundled(spec: dict) -> dict[str, str]:
    """Destination path in the bundle -> source file, for the spec's own data."""
    return {
        f"{dest}/{Path(source).name}".removeprefix("./"): source
        for source, dest in spec["DATAS"]
    }


# ---- the spec ------------------------------------------------------------------------
def test_spec_ships_every_file_of_resources(spec):
    files = bundled(spec)
    shipped = [
        path
        for path in (ROOT / "resources").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    assert shipped, "resources/ is empty?"
    for path in shipped:
        dest = path.relative_to(ROOT).as_posix()
        assert files.get(dest) == str(path), f"{dest} is not bundled"


def test_spec_ships_dlibs_four_model_files_where_core_looks(spec):
    files = bundled(spec)
    models = {
        dest.rsplit("/", 1)[1]
        for dest in files
        if dest.startswith("face_recognition_models/models/")
    }
    expected = {
        resources.RESNET_FILE,
        resources.SHAPE_5_FILE,
        resources.SHAPE_68_FILE,
        resources.MMOD_FILE,
    }
    assert models == expected
    for name in expected:  # the very files the installed app uses
        source = Path(files[f"face_recognition_models/models/{name}"])
        assert source == resources.dlib_model_file(name)


def test_spec_ships_fonts_demo_image_and_notices(spec):
    files = bundled(spec)
    for dest in (
        "rinoh_typeface_notosanscjk/notosanscjkjp-regular.otf",
        "rinoh_typeface_notosanscjk/notosanscjkjp-bold.otf",
        "rinoh_typeface_notosanscjk/SIL-OPEN-FONT-LICENSE.txt",
        "skimage/data/astronaut.png",
        "THIRD_PARTY_NOTICES.md",
    ):
        assert dest in files, dest
    assert all(Path(source).is_file() for source in files.values())
    # of skimage's sample images only the demo's: the rest is test data
    assert [d for d in files if d.startswith("skimage/")] == [
        "skimage/data/astronaut.png"
    ]


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs git and a git checkout",
)
def test_spec_bundles_the_source_commit_where_core_version_reads_it(spec, tmp_path):
    written = tmp_path / "_build_commit.txt"
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    assert written.read_text(encoding="utf-8") == (
        commit + ("-dirty" if dirty else "") + "\n"
    )
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", written.read_text().strip())
    files = bundled(spec)
    # the bundle's core/version.py looks beside itself
    assert files["core/_build_commit.txt"] == str(written)
    assert version.BUILD_COMMIT_FILE.relative_to(ROOT).as_posix() == (
        "core/_build_commit.txt"
    )
    # never written into the source tree, where it would outvote git
    assert not version.BUILD_COMMIT_FILE.exists()


def test_spec_without_git_bundles_no_commit(monkeypatch, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "_build_commit.txt").write_text("0123abc\n")  # a previous build's
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    spec = load_spec(monkeypatch, work)
    assert not any(dest.startswith("core/") for dest in bundled(spec))
    assert not (work / "_build_commit.txt").exists()
    assert bundled(spec)["THIRD_PARTY_NOTICES.md"]  # the rest is still there


def test_cpu_bundle_leaves_out_cuda_tests_and_unused_qt(spec):
    keep = spec["keep_in_bundle"]
    for dropped in (
        "nvidia/cublas/lib/libcublas.so.12",
        "torch/lib/libcudnn.so.9",
        "torch/lib/libtorch_cuda.so",
        "triton/_C/libtriton.so",
        "torch/test/atest",
        "torch/bin/test_jit",
        "torch/include/ATen/ATen.h",
        "torch/lib/libtorchbind_test.so",
        "numpy/_core/tests/data/umath-validation-set-exp.csv",
        "PySide6/Qt/plugins/platforms/libqeglfs.so",
    ):
        assert not keep(dropped), dropped
    for kept in (
        "torch/lib/libtorch_cpu.so",
        "torch/bin/torch_shm_manager",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
        "resources/calibration/dlib-resnet-v1.json",
    ):
        assert keep(kept), kept
    excluded = set(spec["EXCLUDED_MODULES"])
    assert {"nvidia", "triton", "pytest", "tkinter", "ruff", "IPython"} <= excluded
    assert {"PySide6.QtWebEngineCore", "PySide6.QtQml", "PySide6.Qt3DCore"} <= excluded


def test_cuda_variant_keeps_cuda_libraries(monkeypatch, tmp_path):
    spec = load_spec(monkeypatch, tmp_path, "cuda")
    assert spec["keep_in_bundle"]("nvidia/cublas/lib/libcublas.so.12")
    assert "nvidia" not in spec["EXCLUDED_MODULES"]
    assert not spec["keep_in_bundle"]("torch/test/atest")


def test_spec_excludes_no_qt_module_the_code_imports(spec):
    used = set()
    for folder in ("xfr_desktop", "core"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"PySide6\.(Qt\w+)", path.read_text("utf-8")))
    assert {"QtCore", "QtGui", "QtWidgets"} <= used
    used |= {"QtOpenGL", "QtOpenGLWidgets"}  # pyqtgraph imports them unconditionally
    assert not {f"PySide6.{m}" for m in used} & set(spec["EXCLUDED_MODULES"])


# ---- notices ----------------------------------------------------------------------
def notice_packages() -> list[str]:
    """Distribution names in the notices' Python-package table (first column)."""
    text = NOTICES.read_text(encoding="utf-8")
    section = text.split("## Python packages", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_every_package_in_the_notices_exists():
    names = notice_packages()
    assert len(names) >= 20
    missing = []
    for name in names:
        try:
            distribution(name)
        except PackageNotFoundError:
            missing.append(name)
    assert not missing, f"named in THIRD_PARTY_NOTICES.md but not installed: {missing}"


def test_notices_cover_every_declared_dependency_and_the_models():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    text = NOTICES.read_text(encoding="utf-8").lower()

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    named = {norm(name) for name in notice_packages()}
    for requirement in pyproject["project"]["dependencies"]:
        name = norm(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
        assert name in named or f"`{name}`" in text, name
    for needed in (
        "public domain",
        "ibug 300-w",
        "commercial",
        "lgpl",
        "dejavu",
        "noto sans cjk",
        "pyinstaller",
    ):
        assert needed in text, needed


# ---- the self-test ------------------------------------------------------------------
@pytest.fixture(scope="module")
def passed_report() -> selftest.SelfTestReport:
    """The real self-test, once: real model, demo case, FGGB, xFace, signed report."""
    return selftest.run_self_test(device="cpu")


@pytest.mark.slow
@pytest.mark.dlib
def test_self_test_passes_end_to_end(passed_report):
    report = passed_report
    assert report.ok and report.exit_code == 0, report.format_summary()
    names = [step.name for step in report.steps]
    for expected in (
        "Environment",
        "Landmark and detector models",
        "Load the default model",
        "Shipped calibration",
        "Build the demo case",
        "Verify the demo pairs",
        "FGGB explanation",
        "DDFV reconstructor",
        selftest.SANITY_STEP,
        "Build and sign a report",
        "Verify the report and the case",
    ):
        assert expected in names
        assert next(s for s in report.steps if s.name == expected).status == "ok"
    summary = report.format_summary()
    assert "PASSED" in summary and "accept" in summary and "reject" in summary
    assert "weights SHA-256" in summary
    sanity = next(s for s in report.steps if s.name == selftest.SANITY_STEP)
    for method_id in selftest.SANITY_METHODS:  # one verdict line per method
        assert f"{method_id}: rank correlation with a fully randomised" in sanity.detail
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()  # plain data
    assert report.workdir is None  # nothing kept


def test_a_failed_step_names_itself_and_fails_the_run(monkeypatch, tmp_path):
    from core.models import ModelRegistry

    def broken_load(self, model_id, device="auto"):
        raise RuntimeError("weights damaged on this disk")

    monkeypatch.setattr(ModelRegistry, "load", broken_load)
    names = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR")
    before = {name: os.environ.get(name) for name in names}
    report = selftest.run_self_test(
        tmp_path / "kept",
        device="cpu",
        extra_steps=[("Cache folder", lambda: os.environ["XDG_CACHE_HOME"])],
    )
    # user folders were redirected into the work folder (extra steps included),
    # and are restored after
    assert {name: os.environ.get(name) for name in names} == before
    assert report.steps[-1].detail == str(tmp_path / "kept" / "user" / "cache")
    assert not report.ok and report.exit_code == 1
    step = next(s for s in report.steps if s.name == "Load the default model")
    assert step.status == "failed"
    assert step.detail == "RuntimeError: weights damaged on this disk"
    demo = next(s for s in report.steps if s.name == "Build the demo case")
    assert demo.status == "failed"
    assert demo.detail.startswith("not run: needs the model")
    assert next(s for s in report.steps if s.name == "Environment").ok
    summary = report.format_summary()
    assert "self-test: FAILED" in summary
    assert (
        "FAILED: Load the default model: RuntimeError: weights damaged on this disk"
        in summary
    )
    assert report.workdir == tmp_path / "kept" and report.workdir.is_dir()


def test_self_test_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "evidence.jpg").write_bytes(b"x")
    with pytest.raises(BadInputError, match="new or empty folder"):
        selftest.run_self_test(tmp_path)


def test_run_step_reports_ok_failed_and_skipped():
    def skip() -> str:
        raise selftest.StepSkipped("not shipped")

    def fail() -> str:
        raise ValueError("bad value")

    ok = selftest.run_step("a", lambda: "fine")
    skipped = selftest.run_step("b", skip)
    failed = selftest.run_step("c", fail)
    assert (ok.status, ok.detail) == ("ok", "fine")
    assert (skipped.status, skipped.ok) == ("skipped", True)
    assert (failed.status, failed.ok, failed.detail) == (
        "failed",
        False,
        "ValueError: bad value",
    )
    report = selftest.SelfTestReport([ok, skipped])
    assert report.exit_code == 0
    report.steps.append(failed)
    assert report.exit_code == 1 and report.failed == [failed]


def canned_report(ok: bool) -> selftest.SelfTestReport:
    status = "ok" if ok else "failed"
    return selftest.SelfTestReport(
        [selftest.SelfTestStep("Load the default model", status, 0.1, "detail")]
    )


@pytest.mark.parametrize("ok", [True, False])
def test_xfr_self_test_command(monkeypatch, capsys, ok):
    seen = {}

    def fake(workdir=None, progress=None, *, device="auto"):
        seen.update(workdir=workdir, device=device)
        return canned_report(ok)

    monkeypatch.setattr(selftest, "run_self_test", fake)
    assert xfr_main(["self-test", "--json", "--device", "cpu"]) == (0 if ok else 1)
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is ok
    assert payload["steps"][0]["name"] == "Load the default model"
    assert seen == {"workdir": None, "device": "cpu"}
    assert xfr_main(["self-test", "--keep", "somewhere"]) == (0 if ok else 1)
    assert seen["workdir"] == "somewhere"
    assert "self-test: " + ("PASSED" if ok else "FAILED") in capsys.readouterr().out


def test_desktop_self_test_option_runs_core_then_qt(monkeypatch, capsys):
    from xfr_desktop import app

    def fake(*, device, extra_steps):
        report = canned_report(True)
        report.steps += [selftest.run_step(*step) for step in extra_steps]
        return report

    monkeypatch.setattr(selftest, "run_self_test", fake)
    monkeypatch.setattr(app, "qt_libraries_check", lambda: "Qt fine")
    assert app.main(["--self-test"]) == 0
    out = capsys.readouterr().out
    assert "Load the default model" in out and "Qt GUI libraries" in out
    assert "Qt fine" in out and "PASSED" in out

    def broken_qt() -> str:
        raise ImportError("libQt6Widgets.so.6: cannot open shared object file")

    monkeypatch.setattr(app, "qt_libraries_check", broken_qt)
    assert app.main(["--self-test"]) == 1
    assert "FAILED: Qt GUI libraries: ImportError: libQt6Widgets" in (
        capsys.readouterr().out
    )


@pytest.mark.usefixtures("no_qt_leaks")
def test_qt_libraries_check_renders_a_widget(qapp):
    from xfr_desktop.app import qt_libraries_check

    detail = qt_libraries_check()
    assert "PySide6" in detail and "rendered a widget" in detail
