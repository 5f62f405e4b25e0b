"""Files and folders: atomic writes and the user's data, cache and config folders.

The lowest layer of ``core``: imports neither numpy nor torch, nor any other part
of ``core``.
"""
