"""``xfr eval KIND``: a model or the explanation methods measured on a data set
(``verification``, ``faithfulness``, ``sanity``), or two models compared
(``models``, Alonso-Fernandez et al. 2023).

The handlers import the science they run (``core.evaluation``, ``core.metrics``,
``core.metrics.model_comparison``), so building the parser imports no numpy or
torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.cli.common import (
    EXIT_OK,
    add_card_option,
    add_device_option,
    add_trust_model_code,
    load_model,
    load_model_from_args,
    parse_params,
    print_json,
    progress_printer,
)
from core.cli.faithfulness import add_faithfulness_grid_options
from core.engine.base import ENGINE_IDS
from core.errors import BadInputError
from core.metrics.data_set import metric_ids
from core.metrics.model_comparison import DEFAULT_METHOD, NORMALIZATIONS
from core.metrics.pair_defaults import MIN_OTHER_MAPS
from core.models.ids import DEFAULT_MODEL_ID


def probe_chains_from(args: argparse.Namespace) -> Any:
    """``--degrade`` and ``--process`` (each repeatable, in order) -> the chains
    applied to every pair's probe; None when neither is given (the plain run)."""
    from core.evaluation import ProbeChains

    degrade = steps_from("--degrade", args.degrade)
    process = steps_from("--process", args.process)
    if not degrade and not process:
        return None
    return ProbeChains(tuple(degrade), tuple(process))


def steps_from(flag: str, texts: Sequence[str] | None) -> list[Any]:
    """Each ``OP[:name=value,...]`` checked into a step (one line naming the flag
    and what it was given when one is wrong)."""
    from core.processing import ProcessingError, parse_step

    steps = []
    for text in texts or ():
        try:
            step = parse_step(text)
        except BadInputError as error:  # a ProcessingError, or a parameter's value
            reason = error.reason
            prefix = f"--op {text.strip()!r}: "
            if reason.startswith(prefix):
                reason = reason[len(prefix) :]
            raise ProcessingError(f"{flag} {text!r}: {reason}") from None
        if step.info.needs_frames:
            raise ProcessingError(
                f"{flag} {text!r}: {step.op_id} reads the frames of a video; an "
                "evaluation image is a still"
            )
        steps.append(step)
    return steps


def add_engine_options(
    parser: argparse.ArgumentParser, checkpoint_default: str
) -> None:
    """``--engine {local,ray} [--ray-address ADDR] [--checkpoint DIR]`` (the
    evaluation commands, ``xfr calibrate`` and ``xfr gallery build``)."""
    parser.add_argument(
        "--engine",
        choices=ENGINE_IDS,
        default="local",
        help="where the shards run: local (this process, the default) or ray (a "
        "local Ray, or the lab's cluster with --ray-address); the results are "
        "the same (docs/distributed.md)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="the head of the lab's Ray cluster ('ray start --head'), e.g. "
        "10.0.0.5:6379; without it --engine ray starts a local Ray",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="folder where each finished shard is kept, so a rerun after a stop "
        f"resumes; a changed input is computed again ({checkpoint_default})",
    )


def engine_from_args(
    args: argparse.Namespace, label: str, default_checkpoint: str | None = None
) -> Any:
    """The engine ``--engine``, ``--ray-address`` and ``--checkpoint`` name."""
    from core.engine import make_engine

    checkpoint = args.checkpoint if args.checkpoint is not None else default_checkpoint
    engine = make_engine(
        args.engine,
        address=args.ray_address,
        checkpoint=checkpoint,
        progress=progress_printer(label, args.json, "count"),
    )
    return engine


def report_engine(engine: Any) -> None:
    """One line on stderr: where the shards ran and how many were reused (none
    for the plain in-process run without a checkpoint: nothing to say)."""
    import sys

    if engine.name == "local" and engine.checkpoint is None:
        return
    stats = engine.stats
    where = "" if engine.checkpoint is None else f"; checkpoint {engine.checkpoint}"
    print(
        f"engine {engine.name}: {stats.shards} shard(s), {stats.computed} computed, "
        f"{stats.reused} from the checkpoint{where}",
        file=sys.stderr,
    )


ENGINE_RECORD = "engine.json"


def write_engine_record(engine: Any, out: str | None) -> dict[str, str]:
    """``OUT/engine.json``: the run's engine facts beside its tables (where the
    shards ran, the checkpoint folder, shards computed and reused)."""
    if not out:
        return {}
    import json

    from core.io.atomic import write_atomic

    path = Path(out) / ENGINE_RECORD
    record = {**engine.describe(), "sentence": engine.facts()}
    try:
        write_atomic(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    except OSError as error:
        raise BadInputError(f"cannot write ({error.strerror})", path) from None
    return {"engine": str(path)}


def cmd_eval_verification(args: argparse.Namespace) -> int:
    from core.evaluation import check_max_pairs, evaluate_verification

    check_max_pairs(args.max_pairs)  # these before loading the model
    probe_chains = probe_chains_from(args)
    bands: tuple[float, ...] = ()
    if args.by_quality is not None:
        from core.calibration import band_measure, parse_bands

        bands = parse_bands(args.bands, band_measure(args.by_quality))
    elif args.bands is not None:
        raise BadInputError("--bands needs --by-quality MEASURE")
    engine = engine_from_args(args, "embedding images")  # a bad address: first
    try:
        model = load_model_from_args(args)
        report = evaluate_verification(
            args.data,
            model,
            seed=args.seed,
            max_pairs=args.max_pairs,
            centre_fallback=args.centre_fallback,
            by_quality=args.by_quality,
            bands=bands,
            probe_chains=probe_chains,
            engine=engine,
        )
    finally:
        engine.close()
    if report.pairs_evaluated == 0:  # no EER, TAR or FAR is a measurement then
        first = report.failed_images[0] if report.failed_images else "none named"
        raise BadInputError(
            f"no pair could be scored ({report.pairs_skipped} left out; "
            f"{len(report.failed_images)} image(s) failed, the first: {first})",
            args.data,
        )
    report_engine(engine)
    if args.json:
        print_json({**report.to_dict(), "engine": engine.describe()})
    else:
        print(report.summary())
        print(engine.facts())
    return EXIT_OK


def cmd_eval_faithfulness(args: argparse.Namespace) -> int:
    from core.cli.faithfulness import settings_from
    from core.evaluation import check_max_pairs
    from core.metrics.evaluate import evaluate_faithfulness, write_outputs

    methods = method_list(args.methods)
    check_max_pairs(args.max_pairs)  # before loading the model
    params = params_by_method(args.param, methods)
    # no default checkpoint: a shard keeps every map (about 0.8 MB a pair and
    # method for a dense one), which --checkpoint asks for knowingly
    engine = engine_from_args(args, "faithfulness maps")
    try:
        model = load_model_from_args(args)
        table = evaluate_faithfulness(
            args.data,
            model,
            methods,
            args.metric,
            max_pairs=args.max_pairs,
            seed=args.seed,
            params=params,
            references=args.references,
            pair_settings=settings_from(args),
            engine=engine,
        )
    finally:
        engine.close()
    report_engine(engine)
    files = write_outputs(table, args.out) if args.out else {}
    files.update(write_engine_record(engine, args.out))
    if args.json:
        print_json({**table.to_dict(), "engine": engine.describe(), "files": files})
    else:
        print(f"{table.metric} on {table.data} ({table.protocol}); "
              f"{table.pairs_used} pairs, {table.pairs_skipped} skipped")  # fmt: skip
        print(table.markdown())
        print(engine.facts())
    return EXIT_OK


def method_list(text: str) -> list[str]:
    """``--methods ID,ID,...`` -> the ids, each once, in the order given."""
    methods = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not methods:
        raise BadInputError(
            f"--methods {text!r} names no method (give ID,ID,...; 'xfr methods' "
            "lists them)"
        )
    return methods


def params_by_method(
    pairs: Sequence[str] | None, methods: Sequence[str]
) -> dict[str, dict[str, str]]:
    """``--param NAME=VALUE`` for a data-set run of several methods: each goes to
    every method with a parameter so named; unknown methods, a name none of them
    has and bad values fail before any work."""
    from core.explain import get

    overrides = parse_params(pairs)
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
        methods = method_list(args.methods)
    check_max_pairs(args.max_pairs)  # these before loading the model
    choose_depths(1, args.blocks)  # refuses --blocks below 1
    params = params_by_method(args.param, methods)
    default_checkpoint = None if not args.out else str(Path(args.out) / "checkpoint")
    engine = engine_from_args(args, "sanity", default_checkpoint)
    try:
        model = load_model_from_args(args)
        depths = choose_depths(len(model_blocks(model)), args.blocks)
        _, pairs, skipped, protocol = aligned_pairs(
            args.data, model, args.seed, args.max_pairs
        )
        if not pairs:
            raise BadInputError("no usable pair (no face found in any)", args.data)
        table = sanity_check(
            model, pairs, methods, depths=depths, seed=args.seed, params=params,
            data=str(args.data), protocol=protocol, pairs_skipped=skipped,
            engine=engine,
        )  # fmt: skip
    finally:
        engine.close()
    report_engine(engine)
    files = write_sanity(table, args.out) if args.out else {}
    files.update(write_engine_record(engine, args.out))
    if args.json:
        print_json({**table.to_dict(), "engine": engine.describe(), "files": files})
    else:
        print(f"model-parameter randomisation on {table.data} ({table.protocol}); "
              f"{table.pairs_used} pairs, {table.pairs_skipped} skipped")  # fmt: skip
        print(table.markdown())
        print(engine.facts())
    return EXIT_OK


def _split_commas(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",")]


def cmd_eval_models(args: argparse.Namespace) -> int:
    from core.metrics.model_comparison.outputs import write_outputs
    from core.metrics.model_comparison.runner import compare_models

    names = [name for name in _split_commas(args.models) if name]
    cards: list[str | None] = [
        None if card.lower() in ("", "-", "none") else card
        for card in _split_commas(args.cards)
    ]
    if args.cards is None:
        cards = [None] * len(names)
    if len(names) < 2:
        raise BadInputError("--models needs two models: ID_OR_FILE,ID_OR_FILE")
    if len(cards) != len(names):
        raise BadInputError(
            f"--cards lists {len(cards)} card(s) for {len(names)} model(s); "
            "use 'none' for a model without a card, e.g. --cards none,model.card.toml"
        )
    given = list(zip(names, cards, strict=True))
    for number, entry in enumerate(given):
        if entry in given[:number]:
            raise BadInputError(
                f"model {entry[0]} is given twice: a model compared with itself says "
                "nothing (fused scores equal its own at every weight, its heatmaps "
                "equal themselves); give two different models"
            )
    models = [
        load_model(name, args.device, card, args.trust_model_code)
        for name, card in given
    ]
    method = None if args.method.lower() == "none" else args.method
    comparison = compare_models(
        args.data,
        models,
        method=method,
        method_params=parse_params(args.param),
        max_pairs=args.max_pairs,
        seed=args.seed,
        normalization=args.normalization,
        seed_reference=args.seed_reference,
        progress=progress_printer("models", args.json),
    )
    files = write_outputs(comparison, args.out) if args.out else {}
    if args.json:
        print_json({**comparison.to_dict(), "files": files})
    else:
        print(comparison.markdown())
        if files:
            print(f"\nwritten to {args.out}")
    return EXIT_OK


def add_quality_band_options(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--by-quality MEASURE --bands EDGE,...`` (shared with ``xfr calibrate``)."""
    parser.add_argument(
        "--by-quality",
        metavar="MEASURE",
        help=f"{purpose} this face quality measure (e.g. inter_eye_distance, yaw, "
        "sharpness; xfr case quality lists them); a pair is in the band of its "
        "worse face",
    )
    parser.add_argument(
        "--bands",
        metavar="EDGE,EDGE,...",
        help="band edges of --by-quality, increasing (default for "
        "inter_eye_distance 16,24,32,48 px; for yaw 10,20,30,45 deg)",
    )


def add_models_eval(
    eval_kinds: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``xfr eval models`` in the ``eval`` sub-parsers."""
    command = eval_kinds.add_parser(
        "models",
        help="compare two models: EER, score fusion, EER per layer, heatmap PSNR "
        "(Alonso-Fernandez et al. 2023)",
    )
    command.add_argument(
        "--data", required=True, help="identities folder or LFW pairs.txt"
    )
    command.add_argument(
        "--models",
        required=True,
        help="ID_OR_FILE,ID_OR_FILE: registry ids or ONNX/TorchScript files",
    )
    command.add_argument(
        "--cards",
        help="CARD,CARD: model card per model, 'none' for none (a registry id, or "
        "the .card.toml beside the file), e.g. none,mobilefacenet.card.toml",
    )
    add_trust_model_code(command)
    command.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        help="explanation method for the heatmap PSNR (xfr methods; lime is the "
        "paper's), or 'none' to skip it",
    )
    command.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="parameter of --method (repeatable), e.g. --param samples=500",
    )
    command.add_argument("--max-pairs", type=int)
    command.add_argument("--seed", type=int, default=0)
    command.add_argument(
        "--normalization",
        default="zscore",
        choices=list(NORMALIZATIONS),
        help="per-model score normalisation before fusion (default zscore)",
    )
    command.add_argument(
        "--seed-reference",
        action="store_true",
        help="stochastic methods: also the PSNR between the first model's maps for "
        "seeds S and S+1 (one more explanation per pair)",
    )
    add_device_option(command)
    command.add_argument("--out", help="folder for table.json/.md, CSVs and PNGs")
    command.add_argument("--json", action="store_true")
    command.set_defaults(run=cmd_eval_models)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eval`` and its kinds."""
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
        choices=metric_ids(),
    )
    faithful.add_argument(
        "--references",
        type=int,
        default=MIN_OTHER_MAPS,
        metavar="K",
        help="pair-specificity: other pairs of the data set whose faces test each "
        f"map (default {MIN_OTHER_MAPS}, the fewest for a pair-specific verdict)",
    )
    add_faithfulness_grid_options(faithful)
    faithful.add_argument("--model", default=DEFAULT_MODEL_ID)
    add_card_option(faithful, "model card of a model file")
    add_trust_model_code(faithful)
    add_device_option(faithful)
    faithful.add_argument("--max-pairs", type=int)
    faithful.add_argument("--seed", type=int, default=0)
    faithful.add_argument("--out", help="folder for CSV curves, PNG plot, tables")
    add_engine_options(
        faithful,
        "default: none; it keeps every map, about 0.8 MB "
        "a pair and method for a dense one",
    )
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
    add_card_option(sanity, "model card of a model file")
    add_trust_model_code(sanity)
    add_device_option(sanity)
    sanity.add_argument("--max-pairs", type=int)
    sanity.add_argument(
        "--seed", type=int, default=0, help="methods' and weights' seed"
    )
    sanity.add_argument("--out", help="folder for the CSV, Markdown, JSON and plot")
    add_engine_options(sanity, "default: OUT/checkpoint with --out, else none")
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
    add_device_option(verification)
    verification.add_argument("--max-pairs", type=int)
    verification.add_argument("--seed", type=int, default=0)
    verification.add_argument(
        "--centre-fallback",
        action="store_true",
        help="when no face is detected use the image centre (dlib's LFW convention) "
        "instead of leaving the pair out",
    )
    add_card_option(verification)
    add_trust_model_code(verification)
    add_quality_band_options(verification, "report EER and ROC AUC per band of")
    verification.add_argument(
        "--degrade",
        action="append",
        metavar="OP[:NAME=VALUE,...]",
        help="simulate a condition on the PROBE of every pair (the first image; the "
        "second, gallery image is left as it is) after loading and before "
        "detection, e.g. levels:output_white=60 (low light) or "
        "gaussian_blur:sigma=2 (blur); repeatable, applied in order, before "
        "--process (xfr processing ops lists the operations)",
    )
    verification.add_argument(
        "--process",
        action="append",
        metavar="OP[:NAME=VALUE,...]",
        help="enhance the PROBE of every pair (the first image) after --degrade and "
        "before detection, e.g. clahe:clip=2 or unsharp:radius=2,amount=1; "
        "repeatable, applied in order; the output records both chains",
    )
    add_engine_options(verification, "default: none")
    verification.add_argument("--json", action="store_true")
    verification.set_defaults(run=cmd_eval_verification)
    add_models_eval(eval_kinds)
