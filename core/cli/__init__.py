"""``xfr`` - the command-line interface.

Exit codes:

* 0 success;
* 1 a verification failed (``xfr case verify``, ``xfr report verify``, an import
  whose case does not verify), or an internal error (a fault in XFR: one line
  asking to report it; ``XFR_DEBUG=1`` adds the traceback);
* 2 bad input or environment: a missing or unreadable file, an output folder that
  does not exist, a full disk, a read-only case, a file name that is not valid
  UTF-8, no terminal to ask a password on; also argparse's usage errors;
* 130 interrupted (Ctrl-C).

Every failure is one line on stderr naming the file and the problem, never a
traceback (`core.errors.plain_message` words the system's errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from core import APP_NAME, __version__
from core.errors import BadInputError, XfrError, plain_message, printable

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_FAILED = 1  # a verification failed
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


TRUST_MODEL_CODE_HELP = (
    "allow a TorchScript model file: it contains program code, which then runs on "
    "this computer with your rights; use it only for a file whose origin you trust "
    "(ONNX files need no trust)"
)


def add_trust_model_code(parser: argparse.ArgumentParser) -> None:
    """``--trust-model-code`` for a command that takes a model file."""
    parser.add_argument(
        "--trust-model-code", action="store_true", help=TRUST_MODEL_CODE_HELP
    )


def note_trusted_code(model, source: str) -> None:
    """One line on stderr when a model file's program code was trusted to run."""
    if getattr(model, "code_trusted", False):
        print(
            f"xfr: note: {source}: the program code in this TorchScript model file "
            "is trusted and runs (--trust-model-code)",
            file=sys.stderr,
        )


def _load_model(
    model: str, device: str, card: str | None = None, trust_code: bool = False
):
    """A registry id, or a path to an ONNX / TorchScript file with a model card.

    A TorchScript file is refused unless ``trust_code`` (``--trust-model-code``).
    """
    from core.models.base import registry, resolve_device
    from core.models.onnx_model import MODEL_SUFFIXES, load_model_file

    if Path(model).suffix.lower() in MODEL_SUFFIXES:
        loaded = load_model_file(model, card, trust_code=trust_code)
        note_trusted_code(loaded, model)
        return loaded.to(resolve_device(device))
    if card is not None:  # a registry model has its card built in; never ignore it
        raise BadInputError(
            "--card is for a model file (.onnx, .pt); a registry model has its own",
            card,
        )
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
    model = _load_model(args.model, "cpu", args.card, args.trust_model_code)
    taps = model.layer_taps()
    if args.json:
        _print_json(
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

    model = _load_model(args.model, args.device, args.card, args.trust_model_code)
    threshold = make_threshold(model, args.metric, args.threshold)
    probe, gallery = _prepare_pair(args, model)
    result = verify_faces(probe, gallery, model, threshold)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.summary())
    return EXIT_OK


def cmd_methods(args: argparse.Namespace) -> int:
    from core.explain import infos

    methods = infos()
    if args.json:
        _print_json([info.to_dict() for info in methods])
        return EXIT_OK
    for info in methods:
        maps = "similarity + dissimilarity" if info.has_dissimilarity else "similarity"
        role = "; a control, not evidence" if info.control else ""
        print(f"{info.method_id:<22}{info.display_name} [{info.kind}; {maps}{role}]")
        print(f"{'':<22}{info.citation}")
        for param in info.params:
            print(f"{'':<24}{param.name}={param.default!s}: {param.description}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from core.explain import get, infos
    from core.explain.base import FacePair
    from core.explain.export import write_result

    # "all" means every explanation; a control (prior) runs only when named
    every = [info.method_id for info in infos() if not info.control]
    methods = every if args.method == "all" else [args.method]
    overrides = _params(args.param)
    model = _load_model(args.model, args.device, args.card, args.trust_model_code)
    probe, gallery = _prepare_pair(args, model)
    pair = FacePair.from_prepared(probe, gallery)
    evidence = (probe.image.rgb, gallery.image.rgb)
    out = Path(args.out)
    reports = []
    check = _faithfulness_setup(args, model)
    for method_id in methods:
        explainer = get(method_id)
        params = {
            name: value
            for name, value in overrides.items()
            if any(p.name == name for p in explainer.info.params)
        }
        if args.method != "all":
            params = overrides  # unknown names are an error for a single method
        if args.layer is not None and explainer.info.uses_layer:
            params = {**params, "layer": args.layer}
        result = explainer.explain(
            pair,
            model,
            params,
            seed=args.seed,
            progress=_progress_printer(method_id, args.json),
            batch_size=args.batch_size,
        )
        manifest = write_result(result, evidence, out)
        reports.append(manifest)
        if not args.json:
            print(
                f"{method_id:<22}{result.seconds:7.2f} s  {result.decision}  "
                f"-> {out / method_id}"
            )
        if check is not None:
            manifest.update(check(result, pair, out / method_id))
    if args.layerwise:
        from core.explain.layerwise import explain_layers, write_layers

        layers = explain_layers(
            pair,
            model,
            seed=args.seed,
            progress=_progress_printer("layerwise", args.json),
            batch_size=args.batch_size,
        )
        reports.append(write_layers(layers, out))
        if not args.json:
            print(f"{'layerwise':<22}{layers.seconds:7.2f} s  -> {out / 'layerwise'}")
    if args.json:
        _print_json(
            {
                "probe": probe.to_dict(),
                "gallery": gallery.to_dict(),
                "results": reports,
            }
        )
    return EXIT_OK


def _faithfulness_setup(args: argparse.Namespace, model):
    """With --faithfulness: a function checking one result on its pair (its JSON
    object, also written to ``faithfulness.json``; sentences in text mode)."""
    if not args.faithfulness:
        return None
    from core.cli import faithfulness as faithfulness_cli
    from core.metrics.pair_faithfulness import check_pair

    settings = faithfulness_cli.settings_from(args)
    references = faithfulness_cli.reference_views(args.references, model, args.detector)

    def check(result, pair, folder: Path) -> dict:
        checked = check_pair(
            result,
            pair,
            model,
            references,
            settings=settings,
            batch_size=args.batch_size or 64,
            progress=_progress_printer(f"{result.method_id} check", args.json),
        )
        payload = faithfulness_cli.faithfulness_json(checked)
        (folder / "faithfulness.json").write_text(json.dumps(checked.to_dict()))
        if not args.json:
            for line in faithfulness_cli.verdict_lines(checked):
                print(f"{'':<22}{line}")
        return payload

    return check


def _params(items: Sequence[str] | None) -> dict[str, str]:
    params = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BadInputError(f"--param needs NAME=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    return params


def _progress_printer(label: str, quiet: bool):
    def progress(done: int, total: int, _message: str = "") -> None:
        if not quiet and sys.stderr.isatty():
            end = "\n" if done >= total else ""
            print(
                f"\r{label}: {100 * done // max(total, 1)} %", end=end, file=sys.stderr
            )

    return progress


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
    from core.evaluation import check_max_pairs, evaluate_verification

    check_max_pairs(args.max_pairs)  # before loading the model
    model = _load_model(args.model, args.device, args.card, args.trust_model_code)

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


def cmd_eval_faithfulness(args: argparse.Namespace) -> int:
    from core.evaluation import check_max_pairs
    from core.cli import faithfulness as faithfulness_cli
    from core.metrics.evaluate import evaluate_faithfulness, write_outputs

    methods = _method_list(args.methods)
    check_max_pairs(args.max_pairs)  # before loading the model
    params = _params_by_method(args.param, methods)
    model = _load_model(args.model, args.device, args.card, args.trust_model_code)
    table = evaluate_faithfulness(
        args.data,
        model,
        methods,
        args.metric,
        max_pairs=args.max_pairs,
        seed=args.seed,
        params=params,
        references=args.references,
        pair_settings=faithfulness_cli.settings_from(args),
        progress=_progress_printer("faithfulness", args.json),
    )
    files = write_outputs(table, args.out) if args.out else {}
    if args.json:
        _print_json({**table.to_dict(), "files": files})
    else:
        print(f"{table.metric} on {table.data} ({table.protocol}); "
              f"{table.pairs_used} pairs, {table.pairs_skipped} skipped")  # fmt: skip
        print(table.markdown())
    return EXIT_OK


def _method_list(text: str) -> list[str]:
    """``--methods ID,ID,...`` -> the ids, each once, in the order given."""
    methods = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not methods:
        raise BadInputError(
            f"--methods {text!r} names no method (give ID,ID,...; 'xfr methods' "
            "lists them)"
        )
    return methods


def _params_by_method(
    pairs: Sequence[str] | None, methods: Sequence[str]
) -> dict[str, dict[str, str]]:
    """``--param NAME=VALUE`` for a data-set run of several methods: each goes to
    every method with a parameter so named; unknown methods, a name none of them
    has and bad values fail before any work."""
    from core.explain import get

    overrides = _params(pairs)
    params = {}
    for method_id in methods:
        info = get(method_id).info
        params[method_id] = {
            k: v for k, v in overrides.items() if any(p.name == k for p in info.params)
        }
    for name in overrides:
        if not any(name in params[m] for m in methods):
            raise BadInputError(f"--param {name}: none of the methods has it")
    for method_id in methods:
        get(method_id).info.resolve(params[method_id])
    return params


def cmd_eval_sanity(args: argparse.Namespace) -> int:
    from core.evaluation import check_max_pairs
    from core.explain import method_ids
    from core.metrics.evaluate import aligned_pairs
    from core.metrics.sanity import choose_depths, model_blocks, sanity_check
    from core.metrics.sanity import write_outputs as write_sanity

    if args.methods.strip() == "all":  # controls too: a pair-independent map must fail
        methods = method_ids()
    else:
        methods = _method_list(args.methods)
    check_max_pairs(args.max_pairs)  # these before loading the model
    choose_depths(1, args.blocks)  # refuses --blocks below 1
    params = _params_by_method(args.param, methods)
    model = _load_model(args.model, args.device, args.card, args.trust_model_code)
    depths = choose_depths(len(model_blocks(model)), args.blocks)
    _, pairs, skipped, protocol = aligned_pairs(
        args.data, model, args.seed, args.max_pairs
    )
    if not pairs:
        raise BadInputError("no usable pair (no face found in any)", args.data)
    table = sanity_check(
        model, pairs, methods, depths=depths, seed=args.seed, params=params,
        progress=_progress_printer("sanity", args.json), data=str(args.data),
        protocol=protocol, pairs_skipped=skipped,
    )  # fmt: skip
    files = write_sanity(table, args.out) if args.out else {}
    if args.json:
        _print_json({**table.to_dict(), "files": files})
    else:
        print(f"model-parameter randomisation on {table.data} ({table.protocol}); "
              f"{table.pairs_used} pairs, {table.pairs_skipped} skipped")  # fmt: skip
        print(table.markdown())
    return EXIT_OK


def _add_pair_arguments(command: argparse.ArgumentParser, default_model: str) -> None:
    """Probe, gallery, model and face-selection options (verify and explain)."""
    command.add_argument("probe", help="probe image (e.g. the questioned image)")
    command.add_argument("gallery", help="gallery image (e.g. the known image)")
    command.add_argument("--model", default=default_model, help="model id or file")
    command.add_argument(
        "--card", help="model card of a model file (default: the .card.toml beside it)"
    )
    add_trust_model_code(command)
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
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


def _prepare_pair(args: argparse.Namespace, model):
    """The two aligned faces the pair options describe."""
    from core.verify import prepare_face

    for path in (args.probe, args.gallery):
        if not Path(path).exists():
            raise BadInputError("file not found", path)
    return tuple(
        prepare_face(
            path,
            model,
            face_index=_first(index, args.face_index),
            landmarks5=_landmarks(landmarks, option),
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


def build_parser() -> argparse.ArgumentParser:
    from core.models.base import DEFAULT_MODEL_ID

    parser = argparse.ArgumentParser(
        prog="xfr", description=f"{APP_NAME} {__version__} - command-line tools"
    )
    parser.add_argument(
        "--version", action="version", version=f"{APP_NAME} {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the available face models")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=cmd_models)

    layers = commands.add_parser("layers", help="list a model's layer taps")
    layers.add_argument("--model", default=DEFAULT_MODEL_ID, help="model id or file")
    layers.add_argument(
        "--card", help="model card of a model file (default: the .card.toml beside it)"
    )
    add_trust_model_code(layers)
    layers.add_argument("--json", action="store_true")
    layers.set_defaults(run=cmd_layers)

    verify = commands.add_parser("verify", help="compare the faces in two images")
    _add_pair_arguments(verify, DEFAULT_MODEL_ID)
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

    explain = commands.add_parser(
        "explain", help="saliency maps explaining a comparison of two faces"
    )
    _add_pair_arguments(explain, DEFAULT_MODEL_ID)
    explain.add_argument(
        "--method", required=True, help="method id (see 'xfr methods') or 'all'"
    )
    explain.add_argument("--layer", help="layer tap for layer-based methods (Grad-CAM)")
    explain.add_argument("--seed", type=int, default=0, help="seed of random methods")
    explain.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="method parameter (repeatable), e.g. --param samples=500",
    )
    explain.add_argument("--batch-size", type=int, help="forward-pass batch size")
    explain.add_argument(
        "--layerwise",
        action="store_true",
        help="also write the layer-by-layer stack (LIME on each layer's pooled "
        "features and Grad-CAM at each layer)",
    )
    explain.add_argument("--out", default="xfr-explanations", help="output folder")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    from core.cli.faithfulness import add_faithfulness_options

    add_faithfulness_options(explain, references=True)
    explain.set_defaults(run=cmd_explain)

    from core.cli.calibration import add_calibration_commands
    from core.cli.case import add_case_commands
    from core.cli.channels import add_channels_commands
    from core.cli.report import add_report_commands
    from core.cli.selftest import add_selftest_commands
    from core.cli.train import add_train_commands

    add_case_commands(commands)
    add_report_commands(commands)
    add_calibration_commands(commands)
    add_channels_commands(commands)
    add_selftest_commands(commands)
    add_train_commands(commands)

    evaluate = commands.add_parser("eval", help="evaluate a model on a data set")
    eval_kinds = evaluate.add_subparsers(
        dest="eval_kind", required=True, metavar="KIND"
    )
    faithful = eval_kinds.add_parser(
        "faithfulness", help="Deletion/Insertion, hiding game, pixel elimination"
    )
    faithful.add_argument(
        "--data", required=True, help="identities folder or pairs.txt"
    )
    faithful.add_argument("--methods", required=True, help="ID,ID,... (xfr methods)")
    faithful.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a method parameter, given to every method that has one so named",
    )
    faithful.add_argument(
        "--metric",
        required=True,
        choices=[
            "deletion-insertion",
            "hiding-game",
            "pixel-elimination",
            "pair-specificity",
        ],
    )
    from core.metrics.pair_faithfulness import MIN_OTHER_MAPS

    faithful.add_argument(
        "--references",
        type=int,
        default=MIN_OTHER_MAPS,
        metavar="K",
        help="pair-specificity: other pairs of the data set whose faces test each "
        f"map (default {MIN_OTHER_MAPS}, the fewest for a pair-specific verdict)",
    )
    from core.cli.faithfulness import add_faithfulness_grid_options

    add_faithfulness_grid_options(faithful)
    faithful.add_argument("--model", default=DEFAULT_MODEL_ID)
    faithful.add_argument("--card", help="model card of a model file")
    add_trust_model_code(faithful)
    faithful.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    faithful.add_argument("--max-pairs", type=int)
    faithful.add_argument("--seed", type=int, default=0)
    faithful.add_argument("--out", help="folder for CSV curves, PNG plot, tables")
    faithful.add_argument("--json", action="store_true")
    faithful.set_defaults(run=cmd_eval_faithfulness)
    sanity = eval_kinds.add_parser(
        "sanity", help="model-parameter randomisation test (Adebayo et al. 2018)"
    )
    sanity.add_argument("--data", required=True, help="identities folder or pairs.txt")
    sanity.add_argument("--methods", default="all", help="ID,ID,... or all")
    sanity.add_argument(
        "--blocks", type=int, help="depths to test, spread evenly, the last one the "
        "whole network (default: every block, one at a time)",
    )  # fmt: skip
    sanity.add_argument(
        "--param", action="append", metavar="NAME=VALUE",
        help="method parameter for every method that has it (repeatable)",
    )  # fmt: skip
    sanity.add_argument("--model", default=DEFAULT_MODEL_ID)
    sanity.add_argument("--card", help="model card of a model file")
    add_trust_model_code(sanity)
    sanity.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sanity.add_argument("--max-pairs", type=int)
    sanity.add_argument(
        "--seed", type=int, default=0, help="methods' and weights' seed"
    )
    sanity.add_argument("--out", help="folder for the CSV, Markdown, JSON and plot")
    sanity.add_argument("--json", action="store_true")
    sanity.set_defaults(run=cmd_eval_sanity)
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
    add_trust_model_code(verification)
    verification.add_argument("--json", action="store_true")
    verification.set_defaults(run=cmd_eval_verification)
    from core.metrics.models_eval import add_models_eval

    add_models_eval(eval_kinds)
    return parser


def _safe_streams() -> None:
    """Printing never fails: an odd file name is escaped instead of raising.

    A path with bytes that are not valid UTF-8 carries surrogate escapes, which a
    strict UTF-8 (or a narrower) terminal encoding cannot write.
    """
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(
            stream, "reconfigure"
        ):
            stream.reconfigure(errors="backslashreplace")


def _quiet_library_logs() -> None:
    """Libraries' log records never reach the examiner's terminal as tracebacks.

    pyHanko logs every validation problem with its traceback (a certificate that
    is not trusted, a change after signing); the verdict says the same in plain
    words.  With no handler, Python would print them to stderr.  ``XFR_DEBUG=1``
    shows them.
    """
    import logging

    root = logging.getLogger()
    if root.handlers:  # the caller (a test, an embedding program) configured it
        return
    if os.environ.get("XFR_DEBUG") == "1":
        logging.basicConfig(level=logging.WARNING)
    else:
        root.addHandler(logging.NullHandler())


def _output_paths(args: argparse.Namespace) -> list[str]:
    """What the command writes (--out, --plot, --keep, an export's archive)."""
    names = ["out", "plot", "keep"]
    if getattr(args, "case_command", None) == "export":
        names.append("archive")
    return [value for name in names if (value := getattr(args, name, None))]


def _output_path(args: argparse.Namespace) -> str | None:
    """The output to name when an error does not say which file it is about."""
    return next(iter(_output_paths(args)), None)


def check_output_folder(path: str | os.PathLike | None) -> None:
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


def _error(message: str) -> None:
    print(f"xfr: error: {printable(message)}", file=sys.stderr)


def _interrupted() -> None:
    # On a terminal the ^C is still on the prompt's line.
    start = "\n" if sys.stderr.isatty() else ""
    print(f"{start}xfr: interrupted", file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command; every failure becomes one line and an exit code."""
    case = getattr(args, "case", None)
    try:
        for path in _output_paths(args):
            check_output_folder(path)
        return int(args.run(args))
    except KeyboardInterrupt:
        _interrupted()
        return EXIT_INTERRUPTED
    except BadInputError as error:
        _error(str(error))
        return EXIT_BAD_INPUT
    except XfrError as error:
        _error(str(error))
        return EXIT_INTERNAL
    except (OSError, sqlite3.Error, UnicodeError, EOFError, MemoryError) as error:
        # The run may have filled in what it worked on (report's own arguments).
        case = getattr(args, "case", None) or case
        where = case if isinstance(error, sqlite3.Error) else _output_path(args)
        _error(plain_message(error, where or case) or str(error))
        return EXIT_BAD_INPUT
    except Exception as error:  # a fault in XFR: still one line
        if os.environ.get("XFR_DEBUG") == "1":
            traceback.print_exc()
        _error(
            f"internal error: {type(error).__name__}: {error} (please report this; "
            "XFR_DEBUG=1 shows the details)"
        )
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    _safe_streams()
    _quiet_library_logs()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"] and argv[1:2] in (["-h"], ["--help"]):
        # `report` hands its arguments on untouched (it has two parsers of its
        # own), so argparse would take a leading -h for an unknown option
        argv = ["report", "--", *argv[1:]]
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        _interrupted()
        return EXIT_INTERRUPTED
    return run_command(args)

