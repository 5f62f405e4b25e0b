"""The frames of multi-frame still images: GIF, multi-page TIFF, APNG, WebP.

``core.imageio.load_image`` analyses a file's first frame only (and says how many it
holds); here every frame is listed with its own SHA-256, so a frame other than the
first can be chosen and checked later.  Frames are converted exactly as
``load_image`` converts the first one (EXIF orientation applied, alpha on white),
so frame 0's hash is the hash of the pixels ``load_image`` returns.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, ImageSequence

from core.errors import BadInputError
from core.imageio import MAX_PIXELS, load_image, to_rgb8
from core.video.provenance import StillFrame, rgb_sha256

if TYPE_CHECKING:
    import numpy as np


def still_frames(
    path: str | Path, *, max_pixels: int = MAX_PIXELS
) -> tuple[StillFrame, ...]:
    """Every frame of an image file, in order, with its size and pixel hash."""
    return tuple(frame for frame, _rgb in _frames(Path(path), max_pixels, None))


def still_frame(
    path: str | Path, index: int, *, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, StillFrame]:
    """The pixels of frame ``index`` (from 0) and its description."""
    path = Path(path)
    for frame, rgb in _frames(path, max_pixels, index):
        if frame.index == index:
            assert rgb is not None
            return rgb, frame
    count = len(still_frames(path, max_pixels=max_pixels))
    raise BadInputError(
        f"no frame {index}: the file has {count} frames, numbered 0 to {count - 1}",
        path,
    )


def _frames(
    path: Path, max_pixels: int, keep: int | None
) -> list[tuple[StillFrame, np.ndarray | None]]:
    """(frame, pixels if its index is ``keep``) for each frame, up to ``keep``."""
    first = load_image(path, max_pixels=max_pixels)  # the file's checks, frame 0
    frames: list[tuple[StillFrame, np.ndarray | None]] = []
    number = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bombs are checked below; corrupt EXIF
            with Image.open(first.path) as image:
                for number, page in enumerate(ImageSequence.Iterator(image)):
                    width, height = page.size
                    if width * height > max_pixels:
                        raise BadInputError(
                            f"frame {number} is {width}×{height} = "
                            f"{width * height / 1e6:.0f} megapixels, above the "
                            f"limit of {max_pixels / 1e6:.0f} megapixels",
                            path,
                        )
                    page.load()
                    rgb = to_rgb8(ImageOps.exif_transpose(page) or page)
                    duration = page.info.get("duration")
                    frame = StillFrame(
                        index=number,
                        width=int(rgb.shape[1]),
                        height=int(rgb.shape[0]),
                        duration_ms=None if duration is None else int(duration),
                        frame_sha256=rgb_sha256(rgb.tobytes()),
                        shape=(int(rgb.shape[0]), int(rgb.shape[1]), 3),
                    )
                    frames.append((frame, rgb if number == keep else None))
                    if number == keep:
                        break
    except BadInputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, TypeError) as error:
        reason = str(error) or type(error).__name__
        raise BadInputError(
            f"damaged or truncated image data at frame {number} ({reason})", path
        ) from None
    return frames
