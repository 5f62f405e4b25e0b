"""Data files shipped with XFR Desktop (model cards, icons); read with importlib.resources."""
