"""The per-pair faithfulness check on the command line (``xfr explain
--faithfulness``, ``xfr case explain --faithfulness``): options, reference faces
from a folder, the JSON object and the sentences printed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import BadInputError, NoFaceError, XfrError, printable
from core.metrics.pair_defaults import (
    DEFAULT_GRID,
    DEFAULT_RANDOM_ORDERS,
    DEFAULT_STEP_CELLS,
    MIN_OTHER_MAPS,
)

if TYPE_CHECKING:  # the check itself needs torch; the parser must not
    from core.explain.base import FaceView
    from core.metrics.pair_faithfulness import FaithfulnessSettings, PairFaithfulness
    from core.models.base import FaceModel


def add_faithfulness_options(
    parser: argparse.ArgumentParser, *, references: bool
) -> None:
    """``--faithfulness`` and its settings; ``--references DIR`` outside a case."""
    parser.add_argument(
        "--faithfulness",
        action="store_true",
        help="also check each map on this pair: remove the face region by region in "
        "the map's order and compare with random orders, a fixed face-centre map "
        "and the method's maps for other people's faces",
    )
    if references:
        parser.add_argument(
            "--references",
            metavar="DIR",
            help="folder of photos of other people (one face each) whose maps test "
            f"pair specificity; at least {MIN_OTHER_MAPS} are needed, without them "
            "pair specificity is not measured",
        )
    add_faithfulness_grid_options(parser)


def add_faithfulness_grid_options(parser: argparse.ArgumentParser) -> None:
    """The check's random orders and grid (cheap settings for a quick look)."""
    parser.add_argument(
        "--faithfulness-orders",
        type=int,
        default=DEFAULT_RANDOM_ORDERS,
        metavar="N",
        help=f"random region orders to compare with (default {DEFAULT_RANDOM_ORDERS})",
    )
    parser.add_argument(
        "--faithfulness-grid",
        type=int,
        default=DEFAULT_GRID,
        metavar="N",
        help=f"N x N regions on the aligned face (default {DEFAULT_GRID})",
    )
    parser.add_argument(
        "--faithfulness-step",
        type=int,
        default=DEFAULT_STEP_CELLS,
        metavar="N",
        help=f"regions removed per step (default {DEFAULT_STEP_CELLS}; more is "
        "faster and coarser)",
    )


def settings_from(args: argparse.Namespace) -> FaithfulnessSettings:
    """The check's settings (checked before any long work starts)."""
    from core.metrics.pair_faithfulness import FaithfulnessSettings

    grid = args.faithfulness_grid
    return FaithfulnessSettings(
        grid=grid,
        step_cells=min(args.faithfulness_step, max(grid * grid, 1)),
        random_orders=args.faithfulness_orders,
        seed=getattr(args, "seed", 0),
    )


def reference_views(
    folder: str | None, model: FaceModel, detector_method: str = "hog"
) -> list[FaceView]:
    """Each readable photo in ``folder`` (sorted by name) with a face, detected and
    aligned as the pair is; the others are skipped with a one-line note."""
    from core.explain.base import FacePair
    from core.verify import prepare_face

    if folder is None:
        return []
    path = Path(folder)
    if not path.exists():
        raise BadInputError("folder not found", path)
    if not path.is_dir():
        raise BadInputError("--references needs a folder of photos", path)
    views = []
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        try:
            prepared = prepare_face(
                file, model, detector_method=detector_method, with_68=True
            )
        except (NoFaceError, BadInputError, XfrError) as error:
            print(
                f"xfr: note: reference skipped: {printable(str(error))}",
                file=sys.stderr,
            )
            continue
        views.append(FacePair.from_prepared(prepared, prepared).gallery)
    return views


def faithfulness_json(check: PairFaithfulness) -> dict[str, Any]:
    """``side -> kind -> figures`` (``MapFaithfulness.to_dict``) and the check's
    own record (method, decision, settings, references, version)."""
    record = check.to_dict()
    maps = record.pop("faithfulness")
    return {"faithfulness": maps, "faithfulness_check": record}


def verdict_lines(check: PairFaithfulness) -> list[str]:
    """The verdict sentences, and a note when pair specificity was not measured."""
    from core.metrics.pair_faithfulness import verdict_sentence

    lines = [
        verdict_sentence(figures)
        for kinds in check.maps.values()
        for figures in kinds.values()
    ]
    if len(check.references) < MIN_OTHER_MAPS:
        lines.append(
            f"Pair specificity was not measured: it needs at least {MIN_OTHER_MAPS} "
            f"other people's faces and {len(check.references)} were given."
        )
    return lines
