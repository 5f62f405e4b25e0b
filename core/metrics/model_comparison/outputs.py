"""Writing a model comparison: JSON, Markdown, CSV tables and PNG plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from core.metrics.model_comparison.science import ModelComparison, float_list


def write_outputs(comparison: ModelComparison, out_dir: str | Path) -> dict[str, str]:
    """``table.json``, ``table.md``, ``fusion.csv/.png``, ``layers.csv/.png`` and
    (with a method) ``psnr.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"json": folder / "table.json", "markdown": folder / "table.md"}
    files["json"].write_text(json.dumps(comparison.to_dict(), indent=2, default=float))
    files["markdown"].write_text(comparison.markdown() + "\n")

    first, second = comparison.models[0]["id"], comparison.models[1]["id"]
    curve = comparison.fusion
    files["fusion_csv"] = folder / "fusion.csv"
    with open(files["fusion_csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"weight_{first}", "eer"])
        writer.writerows(
            zip(float_list(curve.weights), float_list(curve.eers), strict=True)
        )
    figure, axis = plt.subplots(figsize=(6.5, 4))
    axis.plot(curve.weights, 100 * curve.eers, "o-", ms=3, label="fused")
    axis.axhline(100 * curve.eer_first, color="C1", ls="--", lw=1,
                 label=f"{first} alone (a = 1)")  # fmt: skip
    axis.axhline(100 * curve.eer_second, color="C2", ls=":", lw=1,
                 label=f"{second} alone (a = 0)")  # fmt: skip
    axis.plot([curve.best_weight], [100 * curve.best_eer], "r*", ms=10,
              label=f"best a = {curve.best_weight:.2f}")  # fmt: skip
    axis.set_xlabel(f"weight a of {first} (1 - a on {second})")
    axis.set_ylabel("EER (%)")
    axis.set_title(
        f"score fusion ({curve.normalization}), {comparison.pairs_used} pairs, "
        f"{Path(comparison.data).name}",
        fontsize=9,
    )
    axis.legend(fontsize=7)
    figure.tight_layout()
    files["fusion_png"] = folder / "fusion.png"
    figure.savefig(files["fusion_png"], dpi=110)
    plt.close(figure)

    files["layers_csv"] = folder / "layers.csv"
    with open(files["layers_csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "index", "layer", "eer"])
        for layers in comparison.layers:
            for index, (name, eer) in enumerate(
                zip(layers.layers, float_list(layers.eers), strict=True)
            ):
                writer.writerow([layers.model_id, index, name, eer])
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for number, layers in enumerate(comparison.layers):
        colour = f"C{number % 10}"
        x = np.arange(len(layers.layers))
        axis.plot(x, 100 * layers.eers, "o-", ms=3, color=colour,
                  label=layers.model_id)  # fmt: skip
        for xi, (name, eer) in enumerate(zip(layers.layers, layers.eers, strict=True)):
            axis.annotate(name, (xi, 100 * eer), textcoords="offset points",
                          xytext=(2, 4), fontsize=5.5, rotation=40,
                          color=colour)  # fmt: skip
    axis.set_xlabel("layer tap index (shallow -> deep; names at the points)")
    axis.set_ylabel("EER (%)")
    axis.set_title(
        f"EER per layer (GAP features, cosine), {comparison.pairs_used} pairs",
        fontsize=9,
    )
    axis.legend(fontsize=7)
    figure.tight_layout()
    files["layers_png"] = folder / "layers.png"
    figure.savefig(files["layers_png"], dpi=110)
    plt.close(figure)

    if comparison.method is not None:
        files["psnr_csv"] = folder / "psnr.csv"
        with open(files["psnr_csv"], "w", newline="") as handle:
            columns = list(comparison.psnr[0]) if comparison.psnr else ["pair"]
            rows = csv.DictWriter(handle, columns)
            rows.writeheader()
            rows.writerows(comparison.psnr)
    return {name: str(path) for name, path in files.items()}
