"""Data files shipped with XFR Desktop (model cards, icons).

Read them with importlib.resources.
"""
