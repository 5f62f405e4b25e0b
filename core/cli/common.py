"""What every ``xfr`` command shares: exit codes, JSON output, the terminal
progress printer, ``--param``/landmark parsing and the model options.

Torch-free: building the parser imports this module, and ``xfr --version`` must
not wait for torch.  Model loading imports its backends inside the function.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.errors import BadInputError, describe_os_error
from core.progress import ProgressCallback

if TYPE_CHECKING:
    from core.models.base import FaceModel

EXIT_OK = 0
EXIT_FAILED = 1  # a verification failed (case verify, report verify, an import)
EXIT_TAMPERED = EXIT_FAILED  # the same failure, said of a case or an archive
EXIT_INTERNAL = 1  # a fault in XFR
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

DEVICES = ("auto", "cpu", "cuda")
CARD_HELP = "model card of a model file (default: the .card.toml beside it)"
TRUST_MODEL_CODE_HELP = (
    "allow a TorchScript model file: it contains program code, which then runs on "
    "this computer with your rights; use it only for a file whose origin you trust "
    "(ONNX files need no trust)"
)


# ---- model options ---------------------------------------------------------------
def add_card_option(parser: argparse.ArgumentParser, help: str = CARD_HELP) -> None:
    """``--card`` for a command that takes a model file."""
    parser.add_argument("--card", help=help)


def add_trust_model_code(parser: argparse.ArgumentParser) -> None:
    """``--trust-model-code`` for a command that takes a model file."""
    parser.add_argument(
        "--trust-model-code", action="store_true", help=TRUST_MODEL_CODE_HELP
    )


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` (auto: CUDA when available)."""
    parser.add_argument("--device", default="auto", choices=list(DEVICES))


def apply_compute_options() -> None:
    """The model's thread count for a command (``core.compute``): ``XFR_THREADS``
    when it is set (a bad value is one clear error before any work), else torch's
    default (one thread per core this process may use).  Imports torch only when
    the variable is set."""
    from core import compute

    if os.environ.get(compute.THREADS_ENV, "").strip():
        compute.configure()


def note_trusted_code(model: object, source: str) -> None:
    """One line on stderr when a model file's program code was trusted to run."""
    if getattr(model, "code_trusted", False):
        print(
            f"xfr: note: {source}: the program code in this TorchScript model file "
            "is trusted and runs (--trust-model-code)",
            file=sys.stderr,
        )


def load_model(
    model: str,
    device: str,
    card: str | None = None,
    trust_code: bool = False,
    *,
    analysis: bool = False,
) -> FaceModel:
    """A registry id, or a path to an ONNX / TorchScript file with a model card
    (``core.models.loading.load_model``), with the note on stderr when the file's
    program code was trusted.

    A TorchScript file is refused unless ``trust_code`` (``--trust-model-code``).
    ``analysis``: layer taps wherever they can be had (the channel analysis and
    training).
    """
    from core.models.loading import load_model as load

    loaded = load(
        model, card=card, device=device, trust_code=trust_code, analysis=analysis
    )
    note_trusted_code(loaded, model)
    return loaded


def load_model_from_args(args: argparse.Namespace) -> FaceModel:
    """The model that ``--model``, ``--device``, ``--card`` and
    ``--trust-model-code`` name (a command without ``--card`` passes none)."""
    return load_model(
        args.model,
        args.device,
        getattr(args, "card", None),
        getattr(args, "trust_model_code", False),
    )


# ---- output ----------------------------------------------------------------------
def print_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, sort_keys=False))


ProgressStyle = Literal["percent", "count", "bar", "step"]


def progress_printer(
    label: str, quiet: bool, style: ProgressStyle = "percent"
) -> ProgressCallback:
    """The terminal's progress line, on stderr, only when stderr is a terminal
    (a pipe or a log file gets none) and not ``quiet`` (``--json``).

    ``percent``: ``label: 42 %``; ``count``: ``label 3/7``; ``bar``: a bar and the
    job's message; ``step``: ``label 4/7: message`` naming the step about to run,
    the line cleared at the end.  The line ends when the job is done.
    """

    def progress(done: int, total: int, message: str = "") -> None:
        if quiet or not sys.stderr.isatty():
            return
        end = "\n" if done >= total else ""
        if style == "step":
            if done < total:
                line = f"\r{label} {done + 1}/{total}: {message:<50}"
                print(line, end="", file=sys.stderr)
            else:
                print("\r" + " " * 72 + "\r", end="", file=sys.stderr)
        elif style == "bar":
            bar = "#" * (30 * done // max(total, 1))
            print(f"\r[{bar:<30}] {message:<48}", end=end, file=sys.stderr)
        elif style == "count":
            print(f"\r{label} {done}/{total}", end=end, file=sys.stderr)
        else:
            print(
                f"\r{label}: {100 * done // max(total, 1)} %", end=end, file=sys.stderr
            )

    return progress


def line_printer(label: str, every: int, quiet: bool) -> ProgressCallback:
    """Progress as plain lines (also into a log file), every ``every`` steps: for
    the hours-long training and analysis runs whose output is kept."""

    def progress(done: int, total: int, message: str = "") -> None:
        if quiet:
            return
        if done == total or done == 1 or (every > 0 and done % every == 0):
            print(f"{label} {done}/{total}: {message}", file=sys.stderr, flush=True)

    return progress


# ---- argument parsing ------------------------------------------------------------
class CommandParser(argparse.ArgumentParser):
    """argparse's parser, plus verbs: sub-commands chosen by the first word.

    ``xfr report CASE --out PDF`` writes a report and ``xfr report verify PDF``
    checks one.  argparse cannot have a sub-parser beside a positional argument (it
    would take CASE for a sub-command's name), so a verb is a parser of its own that
    gets every word after its name.  Both are then plain argparse: ``--help``
    answers, options may come before CASE, and usage errors name the command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verbs: dict[str, argparse.ArgumentParser] = {}

    def add_verb(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A parser for ``PROG NAME ...``."""
        verb = argparse.ArgumentParser(prog=f"{self.prog} {name}", **kwargs)
        self.verbs[name] = verb
        return verb

    def parse_known_args(  # type: ignore[override]  # not typeshed's overloads
        self,
        args: Sequence[str] | None = None,
        namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        if not self.verbs:
            return super().parse_known_args(words, namespace)
        verb = self.verbs.get(words[0]) if words else None
        if verb is not None:
            return verb.parse_args(words[1:], namespace), []
        parsed, unknown = super().parse_known_args(words, namespace)
        if unknown:  # named by this command, not by the top-level parser
            self.error("unrecognized arguments: " + " ".join(unknown))
        return parsed, []


def parse_params(items: Sequence[str] | None) -> dict[str, str]:
    """``--param NAME=VALUE`` (repeatable) -> ``{NAME: VALUE}``."""
    params = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BadInputError(f"--param needs NAME=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    return params


def _numbers(text: str, option: str, count: int, names: str) -> list[float]:
    """``count`` comma-separated numbers, or one line naming what is needed."""
    try:
        values = [float(v) for v in text.replace(";", ",").split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise BadInputError(f"{option} needs {count} numbers: {names}")
    return values


def parse_landmarks(text: str | None, option: str) -> list[list[float]] | None:
    """'x1,y1,...,x5,y5' -> five points (dlib's 5-point order)."""
    if text is None:
        return None
    values = _numbers(text, option, 10, "x1,y1,...,x5,y5")
    return [values[i : i + 2] for i in range(0, 10, 2)]


def parse_box(text: str | None, option: str) -> list[float] | None:
    """'left,top,right,bottom' -> a face box in image pixels."""
    if text is None:
        return None
    return _numbers(text, option, 4, "left,top,right,bottom")


def check_output_folder(path: str | os.PathLike[str] | None) -> None:
    """``BadInputError`` when the folder ``path`` would be written into is missing.

    Checked before any long work starts, so that an hour of computing is not lost
    to a typing mistake in --out.
    """
    if not path:
        return
    parent = Path(path).absolute().parent
    if not parent.exists():
        raise BadInputError("folder does not exist", parent)
    if not parent.is_dir():
        raise BadInputError("not a folder", parent)


# ---- examination options ---------------------------------------------------------
BLIND_HELP = (
    "a verifier's blind session (needs --user NAME): the first examiner's ACE-V "
    "records and annotations are hidden, and what is recorded is the verifier's"
)


def add_blind_options(parser: argparse.ArgumentParser) -> None:
    """``--blind`` for the commands a blind verifier uses (with ``--user``)."""
    parser.add_argument("--blind", action="store_true", help=BLIND_HELP)


def split_assignment(item: str, option: str, form: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> (NAME, VALUE), both stripped; one line naming ``form``
    otherwise."""
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise BadInputError(f"{option} needs {form}, got {item!r}")
    return name.strip(), value.strip()


def open_case(args: argparse.Namespace, read_only: bool = False) -> Any:
    """The case named by ``args.case``, opened as ``args.user``; a read-only
    folder opened for writing is one line saying what can still be done."""
    from core.case.store import Case

    try:
        return Case.open(args.case, user=args.user, read_only=read_only)
    except OSError as error:
        if read_only or error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        # Opening for writing takes the case's lock file: the first write refused.
        raise BadInputError(
            f"the case is read-only ({describe_os_error(error)}); it can still be "
            "read: info, log, verify, report verify --case",
            args.case,
        ) from None
