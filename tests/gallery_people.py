"""The small set of people the gallery tests build a reference gallery from (the
case side's tests and the window's): two identities of two photos each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_people(root: Path, astronaut_rgb: np.ndarray, grace_hopper_path: str) -> Path:
    """collins: the astronaut and a brighter JPEG of it; hopper: Grace Hopper and
    a crop of her; one folder per identity under ``root``."""
    (root / "collins").mkdir()
    (root / "hopper").mkdir()
    Image.fromarray(astronaut_rgb).save(root / "collins" / "a.png")
    brighter = np.clip(astronaut_rgb.astype(int) + 25, 0, 255).astype(np.uint8)
    Image.fromarray(brighter).save(root / "collins" / "b.jpg", quality=80)
    hopper = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
    Image.fromarray(hopper).save(root / "hopper" / "a.jpg")
    Image.fromarray(hopper[10:-10, 8:-8]).save(root / "hopper" / "b.png")
    return root
