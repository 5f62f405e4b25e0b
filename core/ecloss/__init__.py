"""ECLoss: the Explainable Channel Loss of Lin et al. 2023 and its channel metrics.

Lin, Liu, Li, Shen, "Activation Template Matching Loss for Explainable Face
Recognition" (Lin et al. 2023):

* :mod:`core.ecloss.templates` - activation templates (§3.1, eqs. 2-4) and the
  400-template subsample of §4.2;
* :mod:`core.ecloss.loss` - ``ECLoss = -MI(T; X)`` (§3.2, eqs. 5-7) as a torch module;
* :mod:`core.ecloss.train` - fine-tuning a face model with identity loss + β·ECLoss;
* :mod:`core.ecloss.parts` - face-part masks from the 68 landmarks (Fig. 7);
* :mod:`core.ecloss.channels` - the channel analysis as one import: top-10 %
  activation maps (eqs. 8-9), part explainability (eq. 10), location consistency
  (§5.2.3) and activation robustness (§5.2.4) in ``channel_metrics``, faces and
  feature maps in ``channel_data``, the report in ``channel_analysis``, pictures
  and files in ``channel_figures``;
* ``xfr train ecloss`` and ``xfr channels``: :mod:`core.cli.channels`.
"""
