"""``xfr`` - the command-line interface.

Exit codes: 0 success, 2 bad input (one line on stderr saying which file and why),
1 an unexpected internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from core import APP_NAME, __version__
from core.errors import BadInputError, XfrError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2


def _load_model(model: str, device: str, card: str | None = None):
    """A registry id, or a path to an ONNX / TorchScript file with a model card."""
    from core.models.base import registry, resolve_device
    from core.models.onnx_model import MODEL_SUFFIXES, load_model_file

    if model in registry() and card is None:
        return registry().load(model, device)
    if Path(model).suffix.lower() in MODEL_SUFFIXES:
        return load_model_file(model, card).to(resolve_device(device))
    return registry().load(model, device)  # raises UnknownModelError listing ids


def _print_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, sort_keys=False))


def cmd_models(args: argparse.Namespace) -> int:
    from core.models.base import registry

    infos = registry().infos()
    if args.json:
        _print_json([info.__dict__ for info in infos])
        return EXIT_OK
    for info in infos:
        print(f"{info.model_id}\t{info.display_name}\n\t{info.description}")
    return EXIT_OK


def cmd_layers(args: argparse.Namespace) -> int:
    model = _load_model(args.model, "cpu", args.card)
    taps = model.layer_taps()
    if args.json:
        _print_json(
            {
                "model_id": model.model_id,
                "weights_sha256": model.weights_sha256,
                "layers": [tap.__dict__ for tap in taps],
            }
        )
        return EXIT_OK
    print(
        f"{model.display_name} [{model.model_id}] - "
        f"{len(taps)} layer taps, shallow first"
    )
    for tap in taps:
        print(f"  {tap.name:<16} {tap.description}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from core.verify import make_threshold, verify_files

    for path in (args.probe, args.gallery):
        if not Path(path).exists():
            raise BadInputError("file not found", path)
    model = _load_model(args.model, args.device, args.card)
    threshold = make_threshold(model, args.metric, args.threshold)
    result = verify_files(
        args.probe,
        args.gallery,
        model,
        probe_face_index=_first(args.probe_face_index, args.face_index),
        gallery_face_index=_first(args.gallery_face_index, args.face_index),
        probe_landmarks5=_landmarks(args.probe_landmarks, "--probe-landmarks"),
        gallery_landmarks5=_landmarks(args.gallery_landmarks, "--gallery-landmarks"),
        threshold=threshold,
        detector_method=args.detector,
    )
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.summary())
    return EXIT_OK


def _landmarks(text: str | None, option: str) -> list[list[float]] | None:
    """'x1,y1,...,x5,y5' -> five points (dlib's 5-point order)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(";", ",").split(",")]
    except ValueError:
        values = []
    if len(values) != 10:
        raise BadInputError(f"{option} needs 10 numbers: x1,y1,...,x5,y5")
    return [values[i : i + 2] for i in range(0, 10, 2)]


def _first(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)


def cmd_eval_verification(args: argparse.Namespace) -> int:
    from core.evaluation import evaluate_verification

    model = _load_model(args.model, args.device, args.card)

    def progress(done: int, total: int, _path: str) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\rembedding images {done}/{total}", end="", file=sys.stderr)

    report = evaluate_verification(
        args.data,
        model,
        seed=args.seed,
        max_pairs=args.max_pairs,
        centre_fallback=args.centre_fallback,
        progress=progress,
    )
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from core.models.base import DEFAULT_MODEL_ID

    parser = argparse.ArgumentParser(
        prog="xfr", description=f"{APP_NAME} {__version__} - command-line tools"
    )
    parser.add_argument(
        "--version", action="version", version=f"{APP_NAME} {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the available face models")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=cmd_models)

    layers = commands.add_parser("layers", help="list a model's layer taps")
    layers.add_argument("--model", default=DEFAULT_MODEL_ID, help="model id or file")
    layers.add_argument(
        "--card", help="model card of a model file (default: the .card.toml beside it)"
    )
    layers.add_argument("--json", action="store_true")
    layers.set_defaults(run=cmd_layers)

    verify = commands.add_parser("verify", help="compare the faces in two images")
    verify.add_argument("probe", help="probe image (e.g. the questioned image)")
    verify.add_argument("gallery", help="gallery image (e.g. the known image)")
    verify.add_argument("--model", default=DEFAULT_MODEL_ID, help="model id or file")
    verify.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    verify.add_argument(
        "--face-index",
        type=int,
        help="which face to use when several are found (0 = largest) in both images",
    )
    verify.add_argument(
        "--detector",
        default="hog",
        choices=["hog", "cnn"],
        help="dlib HOG (fast, default) or MMOD CNN (slower on CPU, finds more faces)",
    )
    verify.add_argument("--probe-face-index", type=int, help="face index in the probe")
    verify.add_argument(
        "--gallery-face-index", type=int, help="face index in the gallery"
    )
    landmark_help = (
        "the examiner's 5 landmarks instead of detection, as x1,y1,...,x5,y5 in "
        "pixels, dlib's order: outer and inner corner of the eye on the image's "
        "right, outer and inner corner of the other eye, base of the nose"
    )
    verify.add_argument("--probe-landmarks", help=landmark_help)
    verify.add_argument("--gallery-landmarks", help=landmark_help)
    verify.add_argument(
        "--threshold", type=float, help="decision threshold (default: the model's)"
    )
    verify.add_argument(
        "--metric", choices=["euclidean", "cosine"], help="metric of --threshold"
    )
    verify.add_argument(
        "--card", help="model card of a model file (default: the .card.toml beside it)"
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(run=cmd_verify)

    evaluate = commands.add_parser("eval", help="evaluate a model on a data set")
    eval_kinds = evaluate.add_subparsers(dest="eval_kind", required=True)
    verification = eval_kinds.add_parser(
        "verification", help="EER, ROC AUC and accuracy on genuine/impostor pairs"
    )
    verification.add_argument(
        "--data",
        required=True,
        help="folder of identities (DIR/<person>/<image>) or LFW pairs.txt",
    )
    verification.add_argument("--model", default=DEFAULT_MODEL_ID)
    verification.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"]
    )
    verification.add_argument("--max-pairs", type=int)
    verification.add_argument("--seed", type=int, default=0)
    verification.add_argument(
        "--centre-fallback",
        action="store_true",
        help="when no face is detected use the image centre (dlib's LFW convention) "
        "instead of leaving the pair out",
    )
    verification.add_argument(
        "--card", help="model card of a model file (default: the .card.toml beside it)"
    )
    verification.add_argument("--json", action="store_true")
    verification.set_defaults(run=cmd_eval_verification)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BadInputError as error:
        print(f"xfr: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except XfrError as error:
        print(f"xfr: error: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
