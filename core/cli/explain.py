"""``xfr explain``: saliency maps for a comparison of two faces, optionally each
checked for faithfulness on its pair (``--faithfulness``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.cli.common import (
    EXIT_OK,
    load_model_from_args,
    parse_params,
    print_json,
    progress_printer,
)
from core.cli.faithfulness import add_faithfulness_options
from core.cli.verify import add_pair_arguments, prepare_pair
from core.models.ids import DEFAULT_MODEL_ID


def cmd_explain(args: argparse.Namespace) -> int:
    from core.explain import get, infos
    from core.explain.base import FacePair
    from core.explain.export import write_result

    # "all" means every explanation; a control (prior) runs only when named
    every = [info.method_id for info in infos() if not info.control]
    methods = every if args.method == "all" else [args.method]
    overrides = parse_params(args.param)
    model = load_model_from_args(args)
    probe, gallery = prepare_pair(args, model)
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
            progress=progress_printer(method_id, args.json),
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
            progress=progress_printer("layerwise", args.json),
            batch_size=args.batch_size,
        )
        reports.append(write_layers(layers, out))
        if not args.json:
            print(f"{'layerwise':<22}{layers.seconds:7.2f} s  -> {out / 'layerwise'}")
    if args.json:
        print_json(
            {
                "probe": probe.to_dict(),
                "gallery": gallery.to_dict(),
                "results": reports,
            }
        )
    return EXIT_OK


def _faithfulness_setup(
    args: argparse.Namespace, model: Any
) -> Callable[[Any, Any, Path], dict[str, Any]] | None:
    """With --faithfulness: a function checking one result on its pair (its JSON
    object, also written to ``faithfulness.json``; sentences in text mode)."""
    if not args.faithfulness:
        return None
    from core.cli import faithfulness
    from core.metrics.pair_faithfulness import check_pair

    settings = faithfulness.settings_from(args)
    references = faithfulness.reference_views(args.references, model, args.detector)

    def check(result: Any, pair: Any, folder: Path) -> dict[str, Any]:
        checked = check_pair(
            result,
            pair,
            model,
            references,
            settings=settings,
            batch_size=args.batch_size or 64,
            progress=progress_printer(f"{result.method_id} check", args.json),
        )
        payload = faithfulness.faithfulness_json(checked)
        (folder / "faithfulness.json").write_text(json.dumps(checked.to_dict()))
        if not args.json:
            for line in faithfulness.verdict_lines(checked):
                print(f"{'':<22}{line}")
        return payload

    return check


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``explain``."""
    explain = commands.add_parser(
        "explain", help="saliency maps explaining a comparison of two faces"
    )
    add_pair_arguments(explain, DEFAULT_MODEL_ID)
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
    add_faithfulness_options(explain, references=True)
    explain.set_defaults(run=cmd_explain)
