"""``xfr train KIND ...`` - the training commands, one sub-command per kind.

Each kind has its own module in this package (``reconstruct``, ``channels``) and
registers itself here.
"""

from __future__ import annotations

import argparse

from core.cli.channels import add_ecloss_training
from core.cli.reconstruct import add_reconstructor_training


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``train`` and its kinds."""
    train = commands.add_parser(
        "train", help="train a reconstructor or fine-tune a face model"
    )
    kinds = train.add_subparsers(dest="train_kind", required=True, metavar="KIND")
    add_reconstructor_training(kinds)
    add_ecloss_training(kinds)
