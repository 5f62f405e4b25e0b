"""``xfr models``, ``xfr layers``, ``xfr verify``, ``xfr methods``; and the
probe/gallery options that ``xfr explain`` shares."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import (
    EXIT_OK,
    add_card_option,
    add_device_option,
    add_trust_model_code,
    load_model,
    load_model_from_args,
    parse_landmarks,
    print_json,
)
from core.errors import BadInputError
from core.models.ids import DEFAULT_MODEL_ID


def cmd_models(args: argparse.Namespace) -> int:
    from core.models import registry

    infos = registry().infos()
    if args.json:
        print_json([info.__dict__ for info in infos])
        return EXIT_OK
    for info in infos:
        print(f"{info.model_id}\t{info.display_name}\n\t{info.description}")
    return EXIT_OK


def cmd_layers(args: argparse.Namespace) -> int:
    model = load_model(args.model, "cpu", args.card, args.trust_model_code)
    taps = model.layer_taps()
    if args.json:
        print_json(
            {
                "model_id": model.model_id,
                "weights_sha256": model.weights_sha256,
                **({"code_trusted": True} if model.code_trusted else {}),
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
    from core.verify import make_threshold, verify_faces

    model = load_model_from_args(args)
    threshold = make_threshold(model, args.metric, args.threshold)
    probe, gallery = prepare_pair(args, model)
    result = verify_faces(probe, gallery, model, threshold)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return EXIT_OK


def cmd_methods(args: argparse.Namespace) -> int:
    from core.explain import infos

    methods = infos()
    if args.json:
        print_json([info.to_dict() for info in methods])
        return EXIT_OK
    for info in methods:
        maps = "similarity + dissimilarity" if info.has_dissimilarity else "similarity"
        role = "; a control, not evidence" if info.control else ""
        print(f"{info.method_id:<22}{info.display_name} [{info.kind}; {maps}{role}]")
        print(f"{'':<22}{info.citation}")
        for param in info.params:
            print(f"{'':<24}{param.name}={param.default!s}: {param.description}")
    return EXIT_OK


# ---- the pair of faces -----------------------------------------------------------
def add_pair_arguments(command: argparse.ArgumentParser, default_model: str) -> None:
    """Probe, gallery, model and face-selection options (verify and explain)."""
    command.add_argument("probe", help="probe image (e.g. the questioned image)")
    command.add_argument("gallery", help="gallery image (e.g. the known image)")
    command.add_argument("--model", default=default_model, help="model id or file")
    add_card_option(command)
    add_trust_model_code(command)
    add_device_option(command)
    command.add_argument(
        "--face-index",
        type=int,
        help="which face to use when several are found (0 = largest) in both images",
    )
    command.add_argument(
        "--detector",
        default="hog",
        choices=["hog", "cnn"],
        help="dlib HOG (fast, default) or MMOD CNN (slower on CPU, finds more faces)",
    )
    command.add_argument("--probe-face-index", type=int, help="face index in the probe")
    command.add_argument(
        "--gallery-face-index", type=int, help="face index in the gallery"
    )
    landmark_help = (
        "the examiner's 5 landmarks instead of detection, as x1,y1,...,x5,y5 in "
        "pixels, dlib's order: outer and inner corner of the eye on the image's "
        "right, outer and inner corner of the other eye, base of the nose"
    )
    command.add_argument("--probe-landmarks", help=landmark_help)
    command.add_argument("--gallery-landmarks", help=landmark_help)


def _first(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)


def prepare_pair(args: argparse.Namespace, model: Any) -> tuple[Any, Any]:
    """The two aligned faces the pair options describe."""
    from core.verify import prepare_face

    for path in (args.probe, args.gallery):
        if not Path(path).exists():
            raise BadInputError("file not found", path)
    probe, gallery = (
        prepare_face(
            path,
            model,
            face_index=_first(index, args.face_index),
            landmarks5=parse_landmarks(landmarks, option),
            detector_method=args.detector,
            with_68=True,  # the components method locates FISWG components by them
        )
        for path, index, landmarks, option in (
            (
                args.probe,
                args.probe_face_index,
                args.probe_landmarks,
                "--probe-landmarks",
            ),
            (
                args.gallery,
                args.gallery_face_index,
                args.gallery_landmarks,
                "--gallery-landmarks",
            ),
        )
    )
    return probe, gallery


# ---- the parser ------------------------------------------------------------------
def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``models``, ``layers``, ``verify`` and ``methods``."""
    models = commands.add_parser("models", help="list the available face models")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=cmd_models)

    layers = commands.add_parser("layers", help="list a model's layer taps")
    layers.add_argument("--model", default=DEFAULT_MODEL_ID, help="model id or file")
    add_card_option(layers)
    add_trust_model_code(layers)
    layers.add_argument("--json", action="store_true")
    layers.set_defaults(run=cmd_layers)

    verify = commands.add_parser("verify", help="compare the faces in two images")
    add_pair_arguments(verify, DEFAULT_MODEL_ID)
    verify.add_argument(
        "--threshold", type=float, help="decision threshold (default: the model's)"
    )
    verify.add_argument(
        "--metric", choices=["euclidean", "cosine"], help="metric of --threshold"
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(run=cmd_verify)

    methods = commands.add_parser("methods", help="list the explanation methods")
    methods.add_argument("--json", action="store_true")
    methods.set_defaults(run=cmd_methods)
