"""Quantitative faithfulness metrics for saliency maps (no Qt)."""
