"""The self-test: check an installation end to end in about half a minute, headless.

Support staff and the bundle's build script run it (``xfr self-test``,
``xfr-desktop --self-test``) to learn whether a workstation's copy works: the model
and its weights, the landmark files, the demo case, a verification that must accept
and one that must reject, two explanation methods, a signed report that verifies,
the shipped calibration.  Each step catches its own failure, so the summary names
every step that failed and why instead of stopping at the first traceback.

Everything is written to a temporary folder (or the folder given with ``workdir``):
nothing goes to the install folder, and the user's config, data and cache folders
are redirected there for the duration (matplotlib and platformdirs would otherwise
create folders in the user's home).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import APP_NAME, __version__
from core.errors import BadInputError
from core.progress import ProgressCallback

OK, FAILED, SKIPPED = "ok", "failed", "skipped"

# The demo's fixed expectations: Q1 (CCTV still of the astronaut) against K1 (the
# astronaut) must be accepted, against K2 (Grace Hopper) rejected.
EXPECTED_DECISIONS = {"K1": "accept", "K2": "reject"}

# Reduced parameters so each method takes seconds on two CPU cores.  FGGB's chunk
# changes only speed (all 128 embedding dimensions back-propagated at once); xFace
# with one patch size and a coarse stride occludes ~100 positions per image.
FGGB_PARAMS: dict[str, Any] = {"chunk": 128}
PERTURBATION_METHOD = "xface"
PERTURBATION_PARAMS: dict[str, Any] = {"patch_sizes": "28", "stride": 20}

# The cheap randomisation test (Adebayo et al. 2018): two fast methods, one pair,
# full randomisation only.  Its verdicts describe the methods on this model; the
# step fails only when the test itself misbehaves (see ``_SelfTest.sanity``).
SANITY_METHODS = ("gradient", "gradcam")
SANITY_STEP = "Randomisation sanity check"

SELF_TEST_EXAMINER = "XFR self-test"
_IDENTITY_PASSWORD = "self-test"  # a throw-away identity made in the temp folder


class StepSkipped(Exception):
    """Raised by a step that does not apply to this installation (not a failure)."""


class _Blocked(Exception):
    """A step cannot run because an earlier step it needs failed."""


@dataclass(frozen=True)
class SelfTestStep:
    """One checked thing: ``status`` is ``ok``, ``failed`` or ``skipped``."""

    name: str
    status: str
    seconds: float
    detail: str

    @property
    def ok(self) -> bool:
        """A skipped step is not a failure."""
        return self.status != FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


@dataclass
class SelfTestReport:
    steps: list[SelfTestStep] = field(default_factory=list)
    workdir: Path | None = None  # set when the work files were kept

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failed(self) -> list[SelfTestStep]:
        return [step for step in self.steps if not step.ok]

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "software": f"{APP_NAME} {__version__}",
            "ok": self.ok,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "workdir": None if self.workdir is None else str(self.workdir),
            "steps": [step.to_dict() for step in self.steps],
        }

    def format_summary(self) -> str:
        """Plain text for a terminal or a support ticket: one line per step."""
        skipped = sum(step.status == SKIPPED for step in self.steps)
        verdict = "PASSED" if self.ok else "FAILED"
        lines = [
            f"{APP_NAME} {__version__} self-test: {verdict} ({len(self.steps)} steps, "
            f"{len(self.failed)} failed, {skipped} skipped, {self.seconds:.1f} s)"
        ]
        width = max((len(step.name) for step in self.steps), default=0)
        for step in self.steps:
            label = step.status.upper() if step.status == FAILED else step.status
            first, *rest = step.detail.splitlines() or [""]
            lines.append(
                f"  {label:<8}{step.name:<{width}}  {step.seconds:6.1f} s  {first}"
            )
            lines += [f"  {'':<8}{'':<{width}}  {'':>8}  {line}" for line in rest]
        if self.workdir is not None:
            lines.append(f"Work files kept in {self.workdir}")
        for step in self.failed:
            lines.append(f"FAILED: {step.name}: {step.detail.splitlines()[0]}")
        return "\n".join(lines)


def run_step(name: str, check: Callable[[], str]) -> SelfTestStep:
    """Run one check; its return value is the detail, an exception its failure."""
    start = time.perf_counter()
    try:
        detail, status = check(), OK
    except StepSkipped as reason:
        detail, status = str(reason), SKIPPED
    except _Blocked as reason:
        detail, status = f"not run: {reason}", FAILED
    except Exception as error:  # every failure is reported, none stops the test
        detail, status = _describe(error), FAILED
    return SelfTestStep(name, status, time.perf_counter() - start, detail)


def _describe(error: Exception) -> str:
    message = str(error).strip() or "(no message)"
    return f"{type(error).__name__}: {message}"


# ---- where things are --------------------------------------------------------------
def is_frozen() -> bool:
    """True inside the PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def install_dir() -> Path:
    """The bundle's folder, or the source tree's root."""
    if is_frozen():
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    """The project's ``resources/`` folder, where the calibration is looked up."""
    from core.calibration import default_calibration_path

    return default_calibration_path("x").parent.parent


@contextlib.contextmanager
def _user_dirs_in(folder: Path) -> Iterator[None]:
    """Point config/data/cache folders (XDG, matplotlib) into ``folder``."""
    names = {
        "XDG_CONFIG_HOME": "config",
        "XDG_DATA_HOME": "data",
        "XDG_CACHE_HOME": "cache",
        "MPLCONFIGDIR": "matplotlib",
    }
    saved = {name: os.environ.get(name) for name in names}
    for name, sub in names.items():
        (folder / sub).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(folder / sub)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---- the steps ---------------------------------------------------------------------
class _SelfTest:
    """The steps, in order, sharing what earlier steps made (model, case)."""

    def __init__(self, folder: Path, device: str) -> None:
        self.folder = folder
        self.device = device
        self.model: Any = None
        self.case: Any = None
        self.report_path: Path | None = None
        self.identity: Path | None = None

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("Environment", self.environment),
            ("Landmark and detector models", self.landmark_files),
            ("Report fonts", self.fonts),
            ("Load the default model", self.load_model),
            ("Shipped calibration", self.calibration),
            ("Build the demo case", self.demo_case),
            ("Verify the demo pairs", self.verify_pairs),
            ("FGGB explanation", self.fggb),
            (f"Perturbation explanation ({PERTURBATION_METHOD})", self.perturbation),
            ("DDFV reconstructor", self.ddfv),
            (SANITY_STEP, self.sanity),
            ("Build and sign a report", self.signed_report),
            ("Verify the report and the case", self.verify_report),
        ]

    def need_model(self) -> Any:
        if self.model is None:
            raise _Blocked("needs the model (step 'Load the default model' failed)")
        return self.model

    def need_case(self) -> Any:
        if self.case is None:
            raise _Blocked("needs the demo case (step 'Build the demo case' failed)")
        return self.case

    # -- installation --------------------------------------------------------------
    def environment(self) -> str:
        import torch

        from core.models.base import resolve_device

        device = resolve_device(self.device)
        gpu = (
            f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        )
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
        return "\n".join(
            [
                f"{APP_NAME} {__version__}; Python {platform.python_version()} "
                f"on {platform.system()} {platform.machine()}",
                f"torch {torch.__version__} ({build}); device {device}{gpu}; "
                f"{torch.get_num_threads()} CPU threads",
                f"{'bundle (frozen)' if is_frozen() else 'source install'}: "
                f"{install_dir()}",
                f"resources: {resources_dir()}",
            ]
        )

    def landmark_files(self) -> str:
        from core import resources

        names = (
            resources.RESNET_FILE,
            resources.SHAPE_5_FILE,
            resources.SHAPE_68_FILE,
            resources.MMOD_FILE,
        )
        sizes = [
            f"{name} ({resources.dlib_model_file(name).stat().st_size / 1e6:.1f} MB)"
            for name in names
        ]
        return f"in {resources.dlib_models_dir()}:\n" + "\n".join(sizes)

    def fonts(self) -> str:
        from core.report import fonts

        dejavu = fonts.dejavu_dir()
        names = fonts.DEJAVU_FILES.values()
        missing = [name for name in names if not (dejavu / name).is_file()]
        if missing:
            raise BadInputError(f"DejaVu fonts missing: {', '.join(missing)}", dejavu)
        cjk = fonts.cjk_dir()
        if cjk is None:
            if is_frozen():  # the bundle ships Noto Sans CJK: its absence is a defect
                raise BadInputError("Noto Sans CJK is missing from the bundle")
            cjk_text = (
                "Noto Sans CJK not installed: CJK names use fonts that are not "
                "embedded (pip install --no-deps rinoh-typeface-notosanscjk)"
            )
        else:
            cjk_text = f"Noto Sans CJK: {cjk}"
        return f"DejaVu: {dejavu}\n{cjk_text}"

    def load_model(self) -> str:
        from core.models import DEFAULT_MODEL_ID, registry

        self.model = registry().load(DEFAULT_MODEL_ID, self.device)
        return (
            f"{self.model.model_id} ({self.model.display_name}) on "
            f"{self.model.device}\nweights SHA-256 {self.model.weights_sha256}"
        )

    def calibration(self) -> str:
        from core.calibration import default_calibration_path, load_calibration

        model = self.need_model()
        path = default_calibration_path(model.model_id)
        cal = load_calibration(
            path, model_id=model.model_id, sha256=model.weights_sha256
        )
        lr = cal.lr(0.9)
        if not np.isfinite(lr) or lr <= 0:
            raise BadInputError(f"LR at cosine 0.9 is {lr}", path)
        return (
            f"{path.name}: {cal.method}, {cal.n_genuine} genuine + "
            f"{cal.n_impostor} impostor pairs, Cllr {cal.cllr:.3f}; "
            f"LR at cosine 0.9 = {lr:.3g}"
        )

    # -- a case ----------------------------------------------------------------------
    def demo_case(self) -> str:
        from core.case.demo import create_demo_case

        model = self.need_model()
        self.case = create_demo_case(
            self.folder / "demo.xfrcase",
            examiner=SELF_TEST_EXAMINER,
            model=model,
        )
        exhibits = self.case.exhibits()
        marks = [exhibit.mark for exhibit in exhibits]
        faces = {mark: len(self.case.faces(mark)) for mark in marks}
        for mark in ("Q1", *EXPECTED_DECISIONS):
            if not faces.get(mark):
                raise BadInputError(f"no face detected in demo exhibit {mark}")
        return f"exhibits {', '.join(marks)}; faces per exhibit {faces}"

    def verify_pairs(self) -> str:
        from core.case import workflow

        model, case = self.need_model(), self.need_case()
        lines, wrong = [], []
        for gallery, expected in EXPECTED_DECISIONS.items():
            comparison = workflow.compare(case, "Q1", gallery, model)
            lines.append(
                f"Q1 x {gallery}: cosine {comparison.similarity:.4f}, distance "
                f"{comparison.distance:.4f} -> {comparison.decision}"
            )
            if comparison.decision != expected:
                wrong.append(
                    f"Q1 x {gallery} must {expected}, got {comparison.decision}"
                )
        if wrong:
            raise AssertionError("; ".join(wrong) + " (" + "; ".join(lines) + ")")
        return "\n".join(lines)

    def _explain(self, method_id: str, params: dict[str, Any]) -> str:
        from core.case import workflow

        model, case = self.need_model(), self.need_case()
        done = workflow.explain(case, "Q1", "K1", method_id, model, params=params)
        checked = []
        for maps in done.result.images:
            for kind, values in maps.chip_maps().items():
                checked.append(_check_map(values, f"{maps.side} {kind} map"))
        return (
            f"{done.result.method_name}: {done.result.seconds:.1f} s, "
            f"{done.result.decision}; {len(checked)} maps (probe and gallery) "
            "finite and non-constant"
        )

    def fggb(self) -> str:
        return self._explain("fggb", FGGB_PARAMS)

    def perturbation(self) -> str:
        return self._explain(PERTURBATION_METHOD, PERTURBATION_PARAMS)

    def ddfv(self) -> str:
        from core.explain.methods.ddfv import reconstructor_for

        model = self.need_model()
        loaded = reconstructor_for(model)  # found, readable, made for these weights
        return (
            f"{loaded.path.name} (SHA-256 {loaded.sha256[:12]}…) decodes layer "
            f"{loaded.card.tap} of {model.model_id}"
        )

    def sanity(self) -> str:
        from core.case.workflow import face_view
        from core.explain.base import FacePair
        from core.metrics import sanity

        model, case = self.need_model(), self.need_case()
        pair = FacePair(  # the bundled photos: the astronaut (K1), Grace Hopper (K2)
            *(
                face_view(case, case.face(mark), model, side)
                for mark, side in (("K1", "probe"), ("K2", "gallery"))
            )
        )
        before = sanity.parameters_sha256(model.network)
        blocks = len(sanity.model_blocks(model))
        table = sanity.sanity_check(model, [pair], SANITY_METHODS, depths=[blocks])
        if sanity.parameters_sha256(model.network) != before:
            raise AssertionError("the randomisation test changed the shared model")
        if table.copy_check != 0.0:
            raise AssertionError(
                f"a copy of the model gives other embeddings ({table.copy_check:.3g})"
            )
        for row in table.rows:
            values = [row[k] for k in ("spearman_abs_mean", "spearman_signed_mean")]
            if not np.all(np.isfinite(values)) or row["constant_maps"]:
                raise AssertionError(f"{row['method']}: no usable randomised map")
        lines = [
            f"{v['method']}: rank correlation with a fully randomised model "
            f"{v['spearman_abs_full']:+.2f} (absolute maps), "
            f"{v['spearman_signed_full']:+.2f} (signed): {v['verdict']}"
            for v in table.verdicts
        ]
        return (
            f"all {blocks} blocks re-initialised (seed 0) on a copy; the shared "
            "model is unchanged; verdicts describe the methods, not the "
            "installation:\n" + "\n".join(lines)
        )

    # -- a report --------------------------------------------------------------------
    def signed_report(self) -> str:
        from core.report.api import Signer, generate_report
        from core.report.signing import create_identity

        case = self.need_case()
        self.identity = self.folder / "self-test-identity.p12"
        info = create_identity(
            SELF_TEST_EXAMINER, self.identity, _IDENTITY_PASSWORD, days=2
        )
        outcome = generate_report(
            case,
            self.folder / "self-test-report.pdf",
            sign=Signer(self.identity, _IDENTITY_PASSWORD),
        )
        self.report_path = outcome.path
        return (
            f"{outcome.pages} pages, signed by {', '.join(outcome.signed_by)} "
            f"(throw-away identity {info.fingerprint_sha256[:23]}…)\n"
            f"PDF SHA-256 {outcome.sha256}"
        )

    def verify_report(self) -> str:
        from core.report.api import verify_report
        from core.report.signing import load_certificate

        case = self.need_case()
        if self.report_path is None or self.identity is None:
            raise _Blocked("needs the report (step 'Build and sign a report' failed)")
        trust = [load_certificate(self.identity, _IDENTITY_PASSWORD)]
        check = verify_report(self.report_path, trust=trust, case=case)
        case_check = case.verify()
        problems = [*check.evidence_problems, *case_check.problems]
        if not check.ok or problems:
            statuses = "; ".join(s.summary for s in check.signatures) or "no signature"
            raise AssertionError(
                f"report check failed: {statuses}"
                + (f"; problems: {'; '.join(problems)}" if problems else "")
            )
        return (
            f"{len(check.signatures)} signature(s) intact, valid and trusted; "
            f"manifest matches the case; case intact ({case_check.audit_entries} "
            f"audit entries, {case_check.evidence_files} evidence files)"
        )

    def close(self) -> None:
        if self.case is not None:
            self.case.close()
            self.case = None


def _check_map(values: np.ndarray, what: str) -> str:
    values = np.asarray(values)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise AssertionError(f"{what} has non-finite values")
    if float(np.ptp(values)) <= 0.0:
        raise AssertionError(f"{what} is constant ({float(values.flat[0])})")
    return what


def run_self_test(
    workdir: Path | None = None,
    progress: ProgressCallback | None = None,
    *,
    device: str = "auto",
    extra_steps: Sequence[tuple[str, Callable[[], str]]] = (),
) -> SelfTestReport:
    """Run every step; ``workdir`` (new or empty) keeps the files, else a temp dir.

    ``extra_steps`` (name, check) run last, inside the same redirected user folders
    (the GUI adds its Qt check this way).  The report's ``exit_code`` is 0 only when
    no step failed.
    """
    if workdir is not None:
        workdir = Path(workdir)
        if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
            raise BadInputError("the self-test needs a new or empty folder", workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    report = SelfTestReport(workdir=workdir)
    with contextlib.ExitStack() as stack:
        folder = (
            workdir
            if workdir is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xfr-")))
        )
        stack.enter_context(_user_dirs_in(folder / "user"))
        test = _SelfTest(folder, device)
        stack.callback(test.close)  # the case closes before its folder is removed
        steps = [*test.steps(), *extra_steps]
        for number, (name, check) in enumerate(steps):
            if progress is not None:
                progress(number, len(steps), name)
            report.steps.append(run_step(name, check))
        if progress is not None:
            progress(len(steps), len(steps), "done")
    return report
