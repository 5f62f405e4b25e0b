"""``xfr train reconstructor``: train DDFV's face reconstructor for a model."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from core.cli.common import (
    EXIT_OK,
    add_device_option,
    add_trust_model_code,
    load_model_from_args,
    print_json,
    progress_printer,
)
from core.models.ids import DEFAULT_MODEL_ID


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this training (written on the card)."""
    words = ["xfr", "train", "reconstructor", "--model", args.model]
    words += ["--data", str(args.data), "--epochs", str(args.epochs)]
    words += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    if args.tap:
        words += ["--tap", args.tap]
    if args.max_images is not None:
        words += ["--max-images", str(args.max_images)]
    if args.no_flip:
        words.append("--no-flip")
    if args.trust_model_code:
        words.append("--trust-model-code")
    return shlex.join(words)


def cmd_train_reconstructor(args: argparse.Namespace) -> int:
    from core.reconstruct.network import default_reconstructor_path
    from core.reconstruct.train import TrainingSettings, train_reconstructor
    from core.train_data import default_cache_dir, load_identity_chips

    model = load_model_from_args(args)
    chip_set = load_identity_chips(
        args.data,
        model.preprocessing,
        cache_dir=None if args.no_cache else default_cache_dir(),
        max_images=args.max_images,
        progress=progress_printer("finding faces", args.json, "count"),
    )
    settings = TrainingSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        flip=not args.no_flip,
        tap=args.tap,
    )
    out = Path(args.out) if args.out else default_reconstructor_path(model)

    report = train_reconstructor(
        model,
        chip_set,
        out,
        settings,
        data_description={"folder": str(Path(args.data).resolve())},
        command=_command_line(args),
        resume=args.resume,
        progress=progress_printer("training", args.json, "bar"),
    )
    if args.json:
        print_json(
            {
                "out": str(report.out),
                "seconds": report.seconds,
                "resumed_from_epoch": report.resumed_from_epoch,
                "skipped_images": chip_set.skipped,
                "card": report.card,
            }
        )
        return EXIT_OK
    print(f"model: {model.model_id} (weights {model.weights_sha256[:12]}…)")
    print(
        f"data: {len(chip_set)} faces of {len(chip_set.identities)} people "
        f"({len(chip_set.skipped)} images without a face left out)"
    )
    training = report.card["training"]
    print(
        f"epochs {report.epochs_run} (resumed at {report.resumed_from_epoch}); kept "
        f"epoch {training['kept_epoch']}: held-out MSE "
        f"{training['kept_validation_loss']:.5f}, PSNR {report.validation_psnr_db:.2f} "
        f"dB (train MSE {report.train_losses[-1]:.5f} at the last epoch)"
    )
    print(f"written: {report.out} and its card {report.out.with_suffix('.card.json')}")
    print(f"time: {report.seconds:.0f} s")
    return EXIT_OK


def add_reconstructor_training(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``xfr train reconstructor``."""
    train = kinds.add_parser(
        "reconstructor",
        help="train DDFV's face reconstructor for a model (the model stays frozen)",
    )
    train.add_argument("--model", default=DEFAULT_MODEL_ID, help="model id or file")
    train.add_argument("--card", help="model card of a model file")
    add_trust_model_code(train)
    train.add_argument(
        "--data", required=True, help="folder of identities (DIR/<person>/<image>)"
    )
    train.add_argument(
        "--out",
        help="reconstructor file to write (default: the user data folder, where "
        "DDFV finds it)",
    )
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--tap", help="layer tap to decode (default: the model's)")
    train.add_argument("--max-images", type=int, help="use the first N images only")
    train.add_argument("--no-flip", action="store_true", help="no mirror augmentation")
    train.add_argument(
        "--no-cache", action="store_true", help="do not cache the aligned faces"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint"
    )
    add_device_option(train)
    train.add_argument("--json", action="store_true")
    train.set_defaults(run=cmd_train_reconstructor)
