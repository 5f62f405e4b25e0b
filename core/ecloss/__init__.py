"""ECLoss: the Explainable Channel Loss of paper 004 and its channel metrics.

Lin, Liu, Li, Shen, "Activation Template Matching Loss for Explainable Face
Recognition" (paper 004 in ``../shared/papers``):

* :mod:`core.ecloss.templates` - activation templates (§3.1, eqs. 2-4) and the
  400-template subsample of §4.2;
* :mod:`core.ecloss.loss` - ``ECLoss = -MI(T; X)`` (§3.2, eqs. 5-7) as a torch module;
* :mod:`core.ecloss.train` - fine-tuning a face model with identity loss + β·ECLoss;
* :mod:`core.ecloss.parts` - face-part masks from the 68 landmarks (Fig. 7);
* :mod:`core.ecloss.channels` - top-10 % activation maps (eqs. 8-9), part
  explainability (eq. 10), location consistency (§5.2.3) and activation robustness
  (§5.2.4);
* ``xfr train ecloss`` and ``xfr channels``: :mod:`core.cli.channels`.
"""
