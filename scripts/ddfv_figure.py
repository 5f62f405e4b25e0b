"""Figure for docs/evaluation.md: DDFV's reconstructions and maps on real pairs.

    .venv/bin/python scripts/ddfv_figure.py ../shared/data/lfw/pairs.txt \
        docs/evaluation/ddfv-examples.jpg --pairs 4

Rows: genuine pairs first, then impostor pairs (LFW's protocol order, people the
reconstructor never saw).  Columns: the probe's aligned chip, its reconstruction from
the model's feature map, DDFV's similarity and dissimilarity maps, and the same for
the gallery image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="LFW pairs.txt or a folder of identities")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--pairs", type=int, default=4, help="pairs of each kind")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from core.errors import BadInputError
    from core.evaluation import pairs_for
    from core.explain import FacePair, get
    from core.explain.methods.ddfv import reconstructor_for
    from core.models import DEFAULT_MODEL_ID, registry
    from core.verify import prepare_face

    model = registry().load(DEFAULT_MODEL_ID, "cpu")
    reconstructor = reconstructor_for(model)
    pairs, _ = pairs_for(args.data)
    chosen = [p for p in pairs if p.genuine][: args.pairs]
    chosen += [p for p in pairs if not p.genuine][: args.pairs]
    rows = []
    for pair in chosen:
        try:
            faces = [prepare_face(path, model) for path in (pair.first, pair.second)]
        except BadInputError:
            continue
        result = get("ddfv").explain(FacePair.from_prepared(*faces), model)
        row = []
        for face, maps in zip(faces, result.images, strict=True):
            chip = face.aligned.chip
            with torch.inference_mode(), model.capture([reconstructor.card.tap]) as c:
                model.embed(model.prepare(chip[None]))
                rebuilt = reconstructor.network(c[reconstructor.card.tap])[0]
            row += [
                chip,
                (rebuilt.permute(1, 2, 0).numpy() * 255).astype(np.uint8),
                maps.chip.similarity,
                maps.chip.dissimilarity,
            ]
        verdict = "same" if pair.genuine else "different"
        rows.append((row, f"{verdict} people, cos {result.cosine_similarity:.3f}, "
                          f"{result.decision}"))  # fmt: skip
    titles = ["probe", "rebuilt", "S+ (similar)", "S- (dissimilar)"] * 2
    figure, axes = plt.subplots(
        len(rows), 8, figsize=(16, 2.2 * len(rows)), squeeze=False
    )
    for r, (row, label) in enumerate(rows):
        scale = max(float(np.max(row[2:4] + row[6:8])), 1e-12)
        for c, panel in enumerate(row):
            axis = axes[r, c]
            if panel.ndim == 3:
                axis.imshow(panel)
            else:
                axis.imshow(row[4 * (c // 4)], alpha=0.55)
                cmap = "Greens" if c % 4 == 2 else "Reds"
                axis.imshow(panel, cmap=cmap, alpha=0.65, vmin=0, vmax=scale)
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(titles[c].replace("probe", "gallery") if c >= 4
                               else titles[c], fontsize=9)  # fmt: skip
        axes[r, 0].set_ylabel(label, fontsize=8)
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=90)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
