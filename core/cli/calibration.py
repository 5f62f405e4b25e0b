"""``xfr calibrate``: fit a score-to-LR calibration on a reference set.

The reference set is read exactly as ``xfr eval verification`` reads it
(:func:`core.evaluation.pairs_for`): a folder of identities (``DIR/<person>/<image>``:
every genuine pair plus a seeded sample of as many impostor pairs, at least 1000) or
an LFW ``pairs.txt``; ``--max-pairs`` keeps a seeded subset with the same
genuine/impostor balance.  Each image is embedded once (faces found and aligned by
:func:`core.verify.prepare_face`, as for a case); a pair whose image has no
detectable face is left out and counted.  The score is the cosine similarity of the
two embeddings.  The calibration (:mod:`core.calibration`) records the data, the
pair counts, the seed and the command line it was made with.
"""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.cli.common import (
    EXIT_OK,
    add_card_option,
    add_device_option,
    add_trust_model_code,
    load_model_from_args,
    print_json,
)
from core.cli.evaluate import (
    add_engine_options,
    add_quality_band_options,
    engine_from_args,
    report_engine,
)
from core.errors import BadInputError
from core.models.ids import DEFAULT_MODEL_ID


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this calibration (recorded in the file)."""
    words = ["xfr", "calibrate", "--data", str(args.data), "--out", str(args.out)]
    words += ["--model", args.model, "--device", args.device, "--seed", str(args.seed)]
    if args.card:
        words += ["--card", args.card]
    if args.trust_model_code:
        words.append("--trust-model-code")
    if args.max_pairs is not None:
        words += ["--max-pairs", str(args.max_pairs)]
    if args.reference:
        words += ["--reference", args.reference]
    if args.method != "logistic":
        words += ["--method", args.method]
    if args.by_quality is not None:
        words += ["--by-quality", args.by_quality]
        if args.bands is not None:
            words += ["--bands", args.bands]
    return shlex.join(words)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from core.calibration import (
        band_measure,
        fit_banded_calibration,
        fit_calibration,
        parse_bands,
        plot_calibration,
        quality_distribution,
        save_calibration,
    )
    from core.evaluation import measure_name_unit, pairs_for, scored_pairs

    started = time.perf_counter()
    edges: tuple[float, ...] = ()
    if args.by_quality is not None:  # these before loading the model
        if args.evaluate:
            raise BadInputError("--by-quality fits bands: give --out, not --evaluate")
        edges = parse_bands(args.bands, band_measure(args.by_quality))
    elif args.bands is not None:
        raise BadInputError("--bands needs --by-quality MEASURE")
    pairs, protocol = pairs_for(args.data, seed=args.seed, max_pairs=args.max_pairs)
    engine = engine_from_args(args, "embedding images")  # a bad address: first
    try:
        model = load_model_from_args(args)
        # the faces' quality is measured when fitting: the calibration records it
        scored = scored_pairs(pairs, model, quality=not args.evaluate, engine=engine)
    finally:
        engine.close()
    report_engine(engine)
    genuine, impostor, failed = scored.genuine, scored.impostor, scored.failed
    if args.evaluate:
        return _evaluate_existing(args, model, genuine, impostor, failed, protocol)
    if genuine.size < 2 or impostor.size < 2:
        raise BadInputError(
            f"too few scored pairs to calibrate ({genuine.size} genuine, "
            f"{impostor.size} impostor)",
            args.data,
        )
    command = _command_line(args)
    name = args.reference or Path(args.data).name
    reference = (
        f"{name}: {Path(args.data)} ({protocol}); {genuine.size} genuine + "
        f"{impostor.size} impostor pairs scored "
        f"({len(pairs)} selected, {len(failed)} images without a usable face), "
        f"seed {args.seed}, max pairs {args.max_pairs}; {engine.facts()}; "
        f"command: {command}"
    )
    quality = quality_distribution(
        scored.used_qualities(),
        source=f"core.quality measures of the faces found by {_detector_words()}",
    )
    if args.by_quality is not None:
        genuine_values, impostor_values = scored.values(args.by_quality)
        calibration = fit_banded_calibration(
            genuine,
            genuine_values,
            impostor,
            impostor_values,
            measure=args.by_quality,
            unit=measure_name_unit(args.by_quality)[1],
            edges=edges,
            model_id=model.model_id,
            model_sha256=model.weights_sha256,
            reference=reference,
            method=args.method,
            quality=quality,
            source=args.data,
        )
    else:
        calibration = replace(
            fit_calibration(
                genuine,
                impostor,
                model_id=model.model_id,
                model_sha256=model.weights_sha256,
                reference=reference,
                method=args.method,
            ),
            quality=quality,
        )
    out = save_calibration(calibration, args.out)
    if args.plot:
        plot_calibration(
            calibration,
            genuine,
            impostor,
            args.plot,
            f"{calibration.model_id}: calibration fitted on {name} (in-sample)",
        )
    seconds = time.perf_counter() - started
    if args.json:
        print_json(
            {
                "out": str(out),
                "seconds": seconds,
                "failed_images": failed,
                "calibration": calibration.to_dict(),
            }
        )
        return EXIT_OK
    low, high = calibration.llr_bounds
    print(f"model: {calibration.model_id} (weights {calibration.model_sha256[:12]}…)")
    print(f"reference: {reference}")
    print(f"pairs: {calibration.n_genuine} genuine + {calibration.n_impostor} impostor")
    print(f"Cllr {calibration.cllr:.4f}, Cllr_min {calibration.cllr_min:.4f}")
    print(
        f"method {calibration.method}; LRs bounded to 10^{low:.2f} .. 10^{high:.2f} "
        f"(ELUB), scores clipped to {calibration.score_range[0]:.4f} .. "
        f"{calibration.score_range[1]:.4f}"
    )
    print(
        f"image conditions: {quality.faces} reference faces measured "
        f"({len(quality.measures)} quality measures recorded)"
    )
    if calibration.bands is not None:
        for band in calibration.bands.bands:
            fitted = band.calibration
            print(
                f"band {calibration.bands.measure} {band.label}: "
                f"{fitted.n_genuine} genuine + {fitted.n_impostor} impostor pairs, "
                f"Cllr {fitted.cllr:.4f}"
            )
    print(f"written: {out} ({seconds:.1f} s)")
    return EXIT_OK


def _detector_words() -> str:
    return "the dlib HOG detector (core.verify.prepare_face)"


def _evaluate_existing(
    args: argparse.Namespace,
    model: Any,
    genuine: Any,
    impostor: Any,
    failed: list[str],
    protocol: str,
) -> int:
    """``--evaluate CAL``: measure an existing calibration on these pairs."""
    from core.calibration import check_calibration, load_calibration, plot_calibration

    calibration = load_calibration(args.evaluate)
    calibration.check_model(model.model_id, model.weights_sha256)
    if genuine.size < 1 or impostor.size < 1:
        raise BadInputError(
            "need genuine and impostor pairs to check against", args.data
        )
    check = check_calibration(
        calibration, genuine, impostor, f"{args.data} ({protocol})"
    )
    if args.plot:
        plot_calibration(
            calibration,
            genuine,
            impostor,
            args.plot,
            f"{calibration.model_id}: calibration from {Path(args.evaluate).name} "
            f"checked on {Path(args.data).name}",
        )
    if args.json:
        print_json({"check": check.to_dict(), "failed_images": failed})
        return EXIT_OK
    print(f"calibration: {args.evaluate} (reference: {calibration.reference[:80]}…)")
    print(f"checked on: {check.data}: {check.n_genuine} genuine + "
          f"{check.n_impostor} impostor pairs")  # fmt: skip
    print(f"Cllr {check.cllr:.4f}, Cllr_min {check.cllr_min:.4f} "
          f"(fit: Cllr {calibration.cllr:.4f})")  # fmt: skip
    print(
        f"misleading evidence: {100 * check.genuine_lr_below_1:.1f} % of same-person "
        f"pairs got LR < 1, {100 * check.impostor_lr_above_1:.1f} % of "
        "different-people pairs got LR > 1"
    )
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``calibrate``."""
    calibrate = commands.add_parser(
        "calibrate",
        help="fit a score-to-likelihood-ratio calibration on a reference set",
    )
    calibrate.add_argument(
        "--data",
        required=True,
        help="folder of identities (DIR/<person>/<image>) or LFW pairs.txt",
    )
    target = calibrate.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="calibration JSON to write")
    target.add_argument(
        "--evaluate",
        metavar="CALIBRATION",
        help="do not fit: measure this calibration (Cllr, misleading evidence) on "
        "the pairs of --data, ideally pairs it was not fitted on",
    )
    calibrate.add_argument(
        "--plot", help="PNG: calibration curve and Tippett plot on these pairs"
    )
    calibrate.add_argument("--model", default=DEFAULT_MODEL_ID)
    add_card_option(calibrate)
    add_trust_model_code(calibrate)
    add_device_option(calibrate)
    calibrate.add_argument(
        "--max-pairs",
        type=int,
        help="seeded subset of the pairs, keeping the genuine/impostor balance",
    )
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.add_argument(
        "--reference", help="name of the reference set (default: the folder name)"
    )
    calibrate.add_argument("--method", default="logistic", choices=["logistic", "kde"])
    add_quality_band_options(
        calibrate, "fit one calibration per band (and one over all pairs) of"
    )
    add_engine_options(calibrate, "default: none")
    calibrate.add_argument("--json", action="store_true")
    calibrate.set_defaults(run=cmd_calibrate)
