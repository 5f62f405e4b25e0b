"""Image processing operations: the protocol, the registry, steps and chains.

An examiner's enhancement of a still (crop, turn, levels, sharpen, ...) is a
*chain*: an ordered list of *steps*, each one registered operation with its
version and its checked parameters.  Applying a chain to an exhibit's pixels gives
a derived exhibit (``core/case/derivations.py``) whose record holds the chain, so
the pixels can be re-created from the original and the record, bit for bit.

Rules every operation keeps (tests in ``tests/core/test_processing*.py``):

- **non-generative**: a fixed, documented signal-processing function of the input
  pixels (OpenCV, scikit-image or numpy); nothing learned, nothing synthesised.
  Super-resolution, learned denoising or "face enhancement" are out of scope.
- **deterministic**: the same input and parameters give the same bytes; every
  interpolation, border rule and rounding is pinned (stated in its description),
  and floating-point results are rounded half to even (``numpy.rint``) and clipped
  to 0..255 once, at the end of the step.
- **versioned**: ``OperationInfo.version`` is raised whenever a change alters the
  output for the same input; a chain recorded with another version is refused
  rather than replayed as something else.
- **8-bit RGB in, 8-bit RGB out**: the pixels the case analyses
  (``core.imageio.load_image``: EXIF orientation applied, converted to RGB8); a
  grey result keeps three equal channels, so everything downstream is unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from core.errors import BadInputError, Cancelled
from core.imageio import MAX_PIXELS
from core.params import Param, ParamValue
from core.progress import ProgressCallback

CHAIN_FORMAT = 1  # the JSON layout of a recorded chain (``chain_to_json``)
CATEGORIES = (
    "geometry",
    "tone",
    "colour",
    "noise",
    "sharpness",
    "restoration",
    "video",
)


class ProcessingError(BadInputError):
    """A step that cannot run: a bad parameter, an image it cannot apply to."""


@dataclass(frozen=True)
class OperationInfo:
    """What the registry lists without running anything."""

    op_id: str
    display_name: str
    # one sentence for the report and the GUI: what is done to the pixels, with the
    # interpolation / border / rounding rule it pins
    description: str
    category: str  # one of CATEGORIES
    implementation: str  # the library function(s) used, e.g. "OpenCV cv2.createCLAHE"
    params: tuple[Param, ...] = ()
    version: int = 1  # raised whenever the output changes for the same input
    # reads neighbouring frames of the video the source exhibit was taken from
    # (frame averaging): allowed as the first step only, on a video frame exhibit
    needs_frames: bool = False

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        known = ", ".join(p.name for p in self.params) or "none"
        raise ProcessingError(
            f"operation {self.op_id} has no parameter {name!r} (parameters: {known})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "op_id": self.op_id,
            "display_name": self.display_name,
            "description": self.description,
            "category": self.category,
            "implementation": self.implementation,
            "version": self.version,
            "needs_frames": self.needs_frames,
            "params": [
                {
                    "name": p.name,
                    "type": p.type.__name__,
                    "default": p.default,
                    "description": p.description,
                    "minimum": p.minimum,
                    "maximum": p.maximum,
                    "choices": list(p.choices) if p.choices else None,
                    "optional": p.optional,
                }
                for p in self.params
            ],
        }


@dataclass(frozen=True)
class FrameSet:
    """Decoded frames around the source frame of a video (for frame averaging).

    ``frames`` maps an offset from the source frame (-2, -1, 1, ...) to its RGB
    pixels; offsets the video does not have (before its first frame, after its
    last) are absent.  ``describe`` records which frames were read, by number and
    pixel hash, into the derivation's record.
    """

    frames: Mapping[int, np.ndarray]
    records: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


FrameReader = Callable[[Sequence[int]], FrameSet]


@dataclass
class StepContext:
    """What a step may use beyond its input pixels; filled in by ``run_chain``."""

    index: int  # the step's place in the chain, from 0
    read_frames: FrameReader | None = None  # only for a video frame exhibit
    # what the step read besides its input (frame numbers and hashes), recorded
    inputs: dict[str, Any] = field(default_factory=dict)
    cancel: Callable[[], bool] | None = None  # the caller's "stop", for long steps

    def check_cancelled(self) -> None:
        """Raise ``Cancelled`` when the caller asked to stop (long steps call it
        between iterations; the result is then never stored)."""
        if self.cancel is not None and self.cancel():
            raise Cancelled()

    def frames(self, op_id: str, offsets: Sequence[int]) -> FrameSet:
        if self.read_frames is None:
            raise ProcessingError(
                f"operation {op_id} needs the video a frame was taken from: apply it "
                "to a frame exhibit taken from a video"
            )
        return self.read_frames(offsets)


class Operation:
    """One processing operation; subclasses set ``info`` and implement ``run``."""

    info: ClassVar[OperationInfo]

    def run(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, params: Mapping[str, ParamValue], height: int, width: int) -> None:
        """Refuse parameters that do not fit an image of this size (one line)."""

    def apply(
        self, rgb: np.ndarray, params: Mapping[str, ParamValue], ctx: StepContext
    ) -> np.ndarray:
        """``run`` with its input and output checked: HxWx3 uint8, C-contiguous."""
        image = _checked_rgb(rgb, f"input of {self.info.op_id}")
        self.check(params, *image.shape[:2])
        out = self.run(image, params, ctx)
        return _checked_rgb(out, f"output of {self.info.op_id}")


def _checked_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise ProcessingError(f"the {what} is not 8-bit pixels")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ProcessingError(f"the {what} is not an RGB image ({rgb.shape})")
    if rgb.shape[0] * rgb.shape[1] > MAX_PIXELS:
        raise ProcessingError(
            f"the {what} would be {rgb.shape[1]}x{rgb.shape[0]} pixels, more than "
            f"the {MAX_PIXELS // 1_000_000} MP an image may have"
        )
    return np.ascontiguousarray(rgb)


# ---- the registry ---------------------------------------------------------------
_REGISTRY: dict[str, type[Operation]] = {}


def register(cls: type[Operation]) -> type[Operation]:
    """Class decorator: make an operation available by its id."""
    op_id = cls.info.op_id
    if op_id in _REGISTRY and _REGISTRY[op_id] is not cls:
        raise ValueError(f"operation id {op_id!r} registered twice")
    if cls.info.category not in CATEGORIES:
        raise ValueError(f"operation {op_id}: unknown category {cls.info.category!r}")
    _REGISTRY[op_id] = cls
    return cls


def _load_operations() -> None:
    # Importing the package imports every module in it; each registers itself.
    import core.processing.operations  # noqa: F401


def infos() -> list[OperationInfo]:
    """Every registered operation, by category and then id."""
    _load_operations()
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(
        (cls.info for cls in _REGISTRY.values()),
        key=lambda info: (order[info.category], info.op_id),
    )


def get(op_id: str) -> Operation:
    _load_operations()
    try:
        return _REGISTRY[op_id.strip().lower()]()
    except KeyError:
        raise ProcessingError(
            f"unknown processing operation {op_id!r} (known: "
            f"{', '.join(sorted(_REGISTRY))}; `xfr processing ops` lists them)"
        ) from None


# ---- steps and chains -------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One operation of a chain, with its version and every parameter's value."""

    op_id: str
    version: int
    params: Mapping[str, ParamValue]

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op_id,
            "version": self.version,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
        }

    @property
    def info(self) -> OperationInfo:
        return get(self.op_id).info

    def describe(self) -> str:
        """ "Levels and gamma (v1): black=10, white=240, gamma=1.2"."""
        values = ", ".join(f"{k}={_shown(v)}" for k, v in self.params.items())
        name = self.info.display_name if self.op_id in _REGISTRY else self.op_id
        return f"{name} (v{self.version})" + (f": {values}" if values else "")


def _jsonable(value: ParamValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _shown(value: Any) -> str:
    """A value as ``--op`` takes it (a list as 1,2,3), so a listed step can be
    typed again."""
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "auto" if value is None else str(value)


def make_step(op_id: str, given: Mapping[str, Any] | None = None) -> Step:
    """A checked step of the current version: every parameter given a value of its
    type (defaults for those not given), unknown names refused."""
    operation = get(op_id)
    info = operation.info
    given = dict(given or {})
    for name in given:
        info.param(name)  # refuses an unknown name
    values = {
        p.name: p.coerce(given.get(p.name, p.default), info.op_id, owner="operation")
        for p in info.params
    }
    return Step(info.op_id, info.version, values)


def recorded_step(data: Mapping[str, Any]) -> Step:
    """A step read back from a recorded chain: its version must be this software's
    (a step of another version would compute something else)."""
    try:
        op_id = str(data["op"])
        version = int(data["version"])
        params = dict(data.get("params") or {})
    except (KeyError, TypeError, ValueError):
        raise ProcessingError(f"a recorded step is malformed: {data!r:.120}") from None
    info = get(op_id).info
    if version != info.version:
        raise ProcessingError(
            f"the chain was recorded with version {version} of operation {op_id}; "
            f"this XFR has version {info.version}, which computes other pixels: it "
            "cannot re-create the image (use the XFR version named in the record)"
        )
    step = make_step(op_id, params)
    if set(params) != set(step.params):
        missing = sorted(set(step.params) - set(params))
        raise ProcessingError(
            f"the recorded step {op_id} lacks parameter(s) {', '.join(missing)}"
        )
    # replayed only as recorded: a value that checking would change (a fraction
    # where a whole number belongs, a number as text) is not what was run
    canonical = step.to_dict()["params"]
    odd = sorted(
        k
        for k in params
        if params[k] != canonical[k]
        or (
            type(params[k]) is not type(canonical[k])
            and not (isinstance(params[k], int) and isinstance(canonical[k], float))
        )
    )
    if odd:
        raise ProcessingError(
            f"the recorded step {op_id} holds parameter value(s) this XFR would not "
            f"have recorded ({', '.join(f'{k}={params[k]!r}' for k in odd)})"
        )
    return step


def parse_step(text: str) -> Step:
    """``"crop:x=10,y=20,w=200,h=240"`` (the command line's ``--op``) -> a step.

    A list value keeps its commas: ``frame_average:offsets=-2,-1,1,2`` (a part
    without ``=`` continues the value before it).
    """
    op_id, _, rest = text.strip().partition(":")
    if not op_id:
        raise ProcessingError(f"--op {text!r}: name an operation (e.g. clahe:clip=2)")
    given: dict[str, str] = {}
    last: str | None = None
    for part in (p.strip() for p in rest.split(",")) if rest.strip() else ():
        name, equals, value = part.partition("=")
        if equals:
            last = name.strip().lower()
            if last in given:
                raise ProcessingError(f"--op {text!r}: {last} is given twice")
            given[last] = value.strip()
        elif last is not None and part:
            given[last] += "," + part
        else:
            raise ProcessingError(
                f"--op {text!r}: {part!r} is not name=value (e.g. clahe:clip=2)"
            )
    return make_step(op_id, given)


def chain_to_json(steps: Sequence[Step]) -> str:
    """The recorded form of a chain (canonical JSON: sorted keys)."""
    return json.dumps(
        {"format": CHAIN_FORMAT, "steps": [s.to_dict() for s in steps]},
        sort_keys=True,
        separators=(",", ":"),
    )


def chain_from_json(text: str) -> list[Step]:
    """A recorded chain read back, each step checked (``recorded_step``)."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or int(data.get("format", 0)) != CHAIN_FORMAT:
            raise ValueError("not a chain of format 1")
        steps = data["steps"]
        if not isinstance(steps, list):
            raise ValueError("steps is not a list")
    except (ValueError, TypeError, KeyError) as error:
        raise ProcessingError(f"the recorded chain cannot be read ({error})") from None
    return [recorded_step(s) for s in steps]


def check_chain(steps: Sequence[Step]) -> None:
    """Refuse a chain that cannot be right whatever the image."""
    if not steps:
        raise ProcessingError("the chain has no step: add at least one operation")
    for index, step in enumerate(steps):
        if step.info.needs_frames and index != 0:
            raise ProcessingError(
                f"{step.op_id} reads the video's own frames: it must be the first "
                f"step (it is step {index + 1})"
            )


def run_chain(
    rgb: np.ndarray,
    steps: Sequence[Step],
    *,
    read_frames: FrameReader | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Apply the steps in order; the result and, per step, what it read besides
    its input (``StepContext.inputs``)."""
    check_chain(steps)
    image = rgb
    inputs: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        if cancel is not None and cancel():
            raise Cancelled()
        if progress:
            progress(index, len(steps), step.describe())
        operation = get(step.op_id)
        if step.version != operation.info.version:
            raise ProcessingError(
                f"step {index + 1} ({step.op_id}) is version {step.version}; this XFR "
                f"has version {operation.info.version}"
            )
        ctx = StepContext(index, read_frames, cancel=cancel)
        try:
            image = operation.apply(image, step.params, ctx)
        except BadInputError as error:  # a bad value, named with its step
            raise ProcessingError(
                f"step {index + 1} ({step.op_id}): {error.reason}", error.path
            ) from None
        inputs.append(ctx.inputs)
    if progress:
        progress(len(steps), len(steps), "processing done")
    return image, inputs


# ---- what a record holds -----------------------------------------------------------
def pixels_sha256(rgb: np.ndarray) -> str:
    """SHA-256 of an image's pixels, bound to their shape: ``"HxWx3:"`` then the
    RGB bytes row by row (the output hash of a derivation)."""
    image = np.ascontiguousarray(rgb)
    digest = hashlib.sha256(f"{image.shape[0]}x{image.shape[1]}x3:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """The libraries the operations use, the platform and the processor features
    their optimised code paths were chosen by: recorded with every derivation, and
    named when a chain re-runs to other pixels elsewhere.

    The same OpenCV on a processor without AVX2 (an older or virtual machine, an
    x86 Python under emulation) takes other code paths whose 8-bit rounding can
    differ by a grey level, so the dispatched features are part of the setup
    (``cv2.getCPUFeaturesLine``: a feature marked ``?`` is built but not used here).
    """
    import cv2
    import scipy
    import skimage

    return {
        "opencv": str(getattr(cv2, "__version__", "unknown")),
        "opencv cpu": str(cv2.getCPUFeaturesLine()),
        "scikit-image": str(getattr(skimage, "__version__", "unknown")),
        "scipy": str(scipy.__version__),
        "numpy": str(np.__version__),
        "numpy cpu": _numpy_cpu_features(),
        "platform": f"{platform.system()} {platform.machine()}",
    }


def _numpy_cpu_features() -> str:
    """The processor features numpy's optimised loops use here."""
    try:  # a private table (numpy >= 2): read by name, so its absence is one word
        module = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:
        return "unknown"
    features = getattr(module, "__cpu_features__", None)
    if not isinstance(features, dict):
        return "unknown"
    return " ".join(sorted(str(name) for name, on in features.items() if on))
