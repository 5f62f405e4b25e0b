"""Reusable widgets: the evidence viewer and its parts, the chip view, plots."""
