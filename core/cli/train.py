"""``xfr train KIND ...`` - the training commands, one sub-command per kind.

Each kind lives with its own code and registers itself here.
"""

from __future__ import annotations

import argparse


def add_train_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a reconstructor or fine-tune a face model"
    )
    kinds = train.add_subparsers(dest="train_kind", required=True, metavar="KIND")
    from core.cli.channels import add_ecloss_training
    from core.cli.reconstruct import add_reconstructor_training

    add_reconstructor_training(kinds)
    add_ecloss_training(kinds)
