"""Shared fixtures.

Tests never touch ../shared: real photos come from installed packages
(scikit-image's astronaut, matplotlib's grace_hopper.jpg) or are synthesised.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Never read or write the user's real settings/data while testing."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture(scope="session")
def grace_hopper_path() -> Path:
    """A real colour JPEG portrait shipped inside matplotlib."""
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), 512x512 RGB uint8."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def astronaut_path(tmp_path_factory, astronaut_rgb) -> Path:
    """The astronaut written to a PNG file, for code paths that take a file."""
    from PIL import Image

    path = tmp_path_factory.mktemp("images") / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(path)
    return path
