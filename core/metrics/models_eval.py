"""``xfr eval models``: the command that compares two face models (paper 003).

Only the sub-parser and its handler; the comparison is
``core.metrics.model_comparison`` (science, runner, outputs), imported when the
command runs so that building the parser imports neither numpy nor torch.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import BadInputError
from core.metrics.model_comparison import DEFAULT_METHOD, NORMALIZATIONS


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",")]


def cmd_eval_models(args: argparse.Namespace) -> int:
    from core.cli import EXIT_OK, _load_model, _params, _print_json, _progress_printer
    from core.metrics.model_comparison.outputs import write_outputs
    from core.metrics.model_comparison.runner import compare_models

    names = [name for name in _split(args.models) if name]
    cards: list[str | None] = [
        None if card.lower() in ("", "-", "none") else card
        for card in _split(args.cards)
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
        _load_model(name, args.device, card, args.trust_model_code)
        for name, card in given
    ]
    method = None if args.method.lower() == "none" else args.method
    comparison = compare_models(
        args.data,
        models,
        method=method,
        method_params=_params(args.param),
        max_pairs=args.max_pairs,
        seed=args.seed,
        normalization=args.normalization,
        seed_reference=args.seed_reference,
        progress=_progress_printer("models", args.json),
    )
    files = write_outputs(comparison, args.out) if args.out else {}
    if args.json:
        _print_json({**comparison.to_dict(), "files": files})
    else:
        print(comparison.markdown())
        if files:
            print(f"\nwritten to {args.out}")
    return EXIT_OK


def add_models_eval(eval_kinds: Any) -> None:
    """Register ``xfr eval models`` in the ``eval`` sub-parsers."""
    from core.cli import add_trust_model_code

    command = eval_kinds.add_parser(
        "models",
        help="compare two models: EER, score fusion, EER per layer, heatmap PSNR "
        "(paper 003)",
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
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    command.add_argument("--out", help="folder for table.json/.md, CSVs and PNGs")
    command.add_argument("--json", action="store_true")
    command.set_defaults(run=cmd_eval_models)
