"""Two face models compared the way Alonso-Fernandez et al. 2023 compares its CNNs.

Alonso-Fernandez et al. 2023 (LIME for face verification) compares a light and a
large network (MobileNetV2, ResNet50) on the same images by

* verification accuracy of each network (§IV-C, Table I, EER);
* weighted score fusion of the two (§IV-C, Fig. 6, Table I "combined (best)");
* the EER of every intermediate layer used as descriptor (§IV-D, Fig. 8);
* the PSNR between the two networks' heatmaps of the same image (§IV-B, Fig. 4-5).

``runner.compare_models`` computes all four for our models on one set of image pairs
(a folder of identities or an LFW ``pairs.txt``, read by
``core.evaluation.pairs_for``).
Every model aligns faces its own way (dlib: 150 px dlib chips; MobileFaceNet: 112 px
ArcFace chips), so each model gets its own chips of the *same* image pairs, and a
pair is used only when every model found and aligned both faces; pairs left out
are counted per model.  The metric functions are those of
``core.metrics.faithfulness`` (``heatmap_psnr``, ``fuse_scores``, ``layer_scores``,
``eer_per_layer``), via ``science``; ``outputs.write_outputs`` writes the tables,
CSVs and plots, and ``core.cli.evaluate`` registers the ``xfr eval models``
command.

Our choices (not in the paper) are labelled "our choice" where they are made.
"""

from __future__ import annotations

# The command's options, here without numpy or torch so that building the parser
# imports neither.
DEFAULT_METHOD = "gradient"
NORMALIZATIONS = ("zscore", "minmax", "none")  # see faithfulness.fuse_scores
