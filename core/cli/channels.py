"""``xfr train ecloss`` and ``xfr channels`` (ECLoss, Lin et al. 2023).

``xfr train ecloss --model ID|FILE --data DIR --layer NAME --out DIR [...]``
fine-tunes a copy of the model with identity loss + β·ECLoss on a folder of
identities (``DIR/<person>/<image>``) and writes ``model.pt`` with its card;
``--beta 0`` gives the control run (same data, seed, steps and optimiser).
``--resume`` continues from the checkpoint in ``--out``.

``xfr channels --model ID|FILE --layer NAME --data DIR|pairs.txt [...]`` measures
part explainability, location consistency and activation robustness of a layer's
channels and, with ``--out``, writes the table, the part masks and the per-channel
top-10 % pictures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.common import (
    EXIT_OK,
    add_device_option,
    add_trust_model_code,
    line_printer,
    load_model,
    print_json,
)
from core.models.ids import DEFAULT_MODEL_ID


def _user_cache(kind: str) -> Path:
    from core.io.userdirs import user_cache_dir

    return user_cache_dir() / kind


def _set_threads(threads: int | None) -> None:
    """``--threads``: fewer torch threads run faster on a busy shared machine."""
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))


# ---- xfr train ecloss ----------------------------------------------------------------
def cmd_train_ecloss(args: argparse.Namespace) -> int:
    from core.ecloss.train import ECLossConfig, train_ecloss
    from core.errors import BadInputError
    from core.train_data import default_cache_dir, load_identity_chips

    _set_threads(args.threads)
    model = load_model(
        args.model, args.device, args.card, args.trust_model_code, analysis=True
    )
    config = ECLossConfig(
        layer=args.layer,
        steps=args.steps,
        batch_size=args.batch_size,
        per_identity=args.per_identity,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        beta_schedule=args.beta_schedule,
        beta0=args.beta,
        beta_lr=args.beta_lr,
        beta_max=args.beta_max,
        tau=args.tau,
        radius=args.radius,
        templates=args.templates,
        p_x=args.p_x,
        train_from=args.train_from,
        flip=not args.no_flip,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    config.check()
    from core.ecloss.train import check_layer

    check_layer(model, args.layer)  # fail fast, before reading the images
    chip_set = load_identity_chips(
        args.data,
        model.preprocessing,
        cache_dir=default_cache_dir(),
        max_images=args.max_images,
        progress=line_printer("reading faces", 200, args.json),
    )
    if len(chip_set) < 4:
        raise BadInputError("too few faces to train on", args.data)
    result = train_ecloss(
        model,
        chip_set,
        config,
        args.out,
        resume=args.resume,
        model_id=args.id,
        data_description=str(Path(args.data).resolve()),
        command=["xfr", "train", "ecloss", *sys.argv[3:]]
        if sys.argv[1:3] == ["train", "ecloss"]
        else None,
        progress=line_printer("training", args.log_every, args.json),
    )
    if args.json:
        print_json(result.to_dict())
    else:
        print(
            f"model:  {result.model_path}\ncard:   {result.card_path}\n"
            f"steps:  {result.steps} in {result.seconds:.0f} s\n"
            f"final:  identity loss {result.final['identity_loss']:.4f}, "
            f"MI {result.final['mi']:.4f} "
            f"(per map {result.final['mean_information']:.4f} nats), "
            f"β {result.final['beta']:.3g}"
        )
    return EXIT_OK


def add_ecloss_training(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``xfr train ecloss``."""
    parser = kinds.add_parser(
        "ecloss",
        help="fine-tune a face model with identity loss + β·ECLoss (Lin et al. 2023)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default=DEFAULT_MODEL_ID, help="id or model file")
    parser.add_argument("--card", help="model card of a model file")
    add_trust_model_code(parser)
    parser.add_argument(
        "--data", required=True, help="folder of identities DIR/<person>/<image>"
    )
    parser.add_argument(
        "--layer", required=True, help="layer for ECLoss (xfr layers --model ...)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--id", help="id of the new model (default: <base>-ecloss)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--per-identity", type=int, default=4, help="images per person in a batch"
    )
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument(
        "--beta",
        type=float,
        default=1e-5,
        help="initial β (paper: 1e-5); 0 = control run without ECLoss",
    )
    parser.add_argument(
        "--beta-schedule",
        choices=["paper", "constant"],
        default="paper",
        help="paper: β rises by beta-lr × MI per step (gradient descent on the "
        "total loss, §4.2), capped at beta-max; constant: β fixed",
    )
    parser.add_argument("--beta-lr", type=float, default=1e-3)
    parser.add_argument("--beta-max", type=float, default=0.02)
    parser.add_argument("--tau", type=float, default=0.001, help="τ (paper: 0.001)")
    parser.add_argument(
        "--radius", type=float, help="r (default: the paper's 4 scaled to the map)"
    )
    parser.add_argument("--templates", type=int, default=400, help="|T| (paper: 400)")
    parser.add_argument(
        "--p-x",
        choices=["paper", "mean"],
        default="paper",
        help="P(x) in eq. 5: paper = §4.2's approximation, mean = 1/|X|",
    )
    parser.add_argument(
        "--train-from",
        help="first layer to train; earlier ones are frozen (default: the first "
        "layer with the ECLoss layer's resolution)",
    )
    parser.add_argument("--no-flip", action="store_true", help="no random flips")
    parser.add_argument("--max-images", type=int, help="use the first N images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true", help="continue a run")
    parser.add_argument("--log-every", type=int, default=25)
    add_device_option(parser)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=cmd_train_ecloss)


# ---- xfr channels -------------------------------------------------------------------
def cmd_channels(args: argparse.Namespace) -> int:
    from core.ecloss.channels import (
        analyse_channels,
        load_face_chips,
        write_channel_outputs,
    )
    from core.ecloss.train import check_layer

    _set_threads(args.threads)
    model = load_model(
        args.model, args.device, args.card, args.trust_model_code, analysis=True
    )
    check_layer(model, args.layer)
    faces = load_face_chips(
        args.data,
        model.preprocessing,
        max_images=args.max_images,
        seed=args.seed,
        cache_dir=_user_cache("face-chips"),
        progress=line_printer("reading faces", 100, args.json),
    )
    report = analyse_channels(
        model,
        args.layer,
        faces,
        fraction=args.top,
        min_prominence=args.min_prominence,
        repeats=args.repeats,
        seed=args.seed,
        progress=line_printer("channels", 100, args.json),
    )
    report.data = str(args.data)
    written = write_channel_outputs(report, args.out) if args.out else []
    if args.json:
        payload = report.to_dict()
        payload["written"] = [str(p) for p in written]
        print_json(payload)
    else:
        print(report.summary())
        if written:
            print(f"written to {Path(args.out)}: " + ", ".join(p.name for p in written))
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``channels``."""
    parser = commands.add_parser(
        "channels",
        help="part explainability of a layer's channels (Lin et al. 2023, §5.2)",
        description="Top-10 % activation of each channel over the face (eqs. 8-9), "
        "part explainability (eq. 10), location consistency (§5.2.3) and "
        "activation robustness (§5.2.4), with part masks from the 68 landmarks.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL_ID, help="id or model file")
    parser.add_argument("--card", help="model card of a model file")
    add_trust_model_code(parser)
    parser.add_argument("--layer", required=True, help="a spatial layer")
    parser.add_argument(
        "--data",
        required=True,
        help="folder of images (any depth, e.g. DIR/<person>/) or an LFW pairs.txt",
    )
    parser.add_argument(
        "--max-images", type=int, default=100, help="seeded sample (paper: 100)"
    )
    parser.add_argument("--top", type=float, default=0.1, help="top fraction (0.1)")
    parser.add_argument(
        "--min-prominence",
        type=float,
        default=0.1,
        help="peak prominence, × the map maximum",
    )
    parser.add_argument("--repeats", type=int, default=5, help="splits for the ±")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for summary.json, channels.csv, PNGs")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=cmd_channels)
