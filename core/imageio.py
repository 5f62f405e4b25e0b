"""Reading evidence images for analysis, never modifying them.

``load_image`` returns the pixels the models look at - 8-bit RGB with the EXIF
orientation applied - together with the SHA-256 of the file's bytes.  Every problem
(missing file, not an image, truncated data, absurd size) becomes a
``BadInputError`` naming the file.

A GIF, multi-page TIFF, APNG or animated WebP holds several frames; the analysis uses
the first, so ``LoadedImage.frame_count`` says how many there are and
``multi_frame_warning`` says so to the examiner (``core.video.stills`` lists them all).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from core.errors import BadInputError, printable

# A 20000x20000 image is 1.2 GB as RGB: refuse before decoding anything that large.
MAX_PIXELS = 200_000_000

try:  # optional HEIC/HEIF support
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - depends on the installation
    pass


@dataclass(frozen=True)
class LoadedImage:
    """An image as analysed: RGB uint8 pixels plus where they came from."""

    path: Path
    sha256: str
    rgb: np.ndarray = field(repr=False)  # (H, W, 3) uint8, EXIF orientation applied
    format: str  # "JPEG", "PNG", …
    mode: str  # Pillow mode of the file ("RGB", "I;16", "RGBA", …)
    file_size: tuple[int, int]  # (width, height) as stored, before orientation
    exif_orientation: int  # 1 = none; 2-8 as in the EXIF standard
    frame_count: int = 1  # frames or pages in the file; the first is the one analysed

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the analysed pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8.

    High bit-depth greys are scaled by their actual range to 8 bits; alpha is composited
    on white (a transparent background should not read as a black face-sized blob).
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        high = 65535.0 if mode.startswith("I;16") else max(float(values.max()), 1.0)
        grey = np.clip(values / high * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read an image file for analysis; the file itself is only ever read."""
    return decode_image(read_image_bytes(path), path, max_pixels)


def read_image_bytes(path: str | Path) -> bytes:
    """An image file's bytes (one line naming the file when it cannot be read)."""
    path = Path(path)
    if not path.exists():
        raise BadInputError("file not found", path)
    if not path.is_file():
        raise BadInputError("not a file", path)
    try:
        return path.read_bytes()
    except OSError as error:
        raise BadInputError(f"cannot read file ({error.strerror})", path) from None


def decode_image(
    data: bytes, path: str | Path, max_pixels: int = MAX_PIXELS
) -> LoadedImage:
    """:func:`load_image` on bytes already read from ``path`` (a distributed
    worker gets the file's bytes, never the driver's file system)."""
    path = Path(path)
    if not data:
        raise BadInputError("file is empty (0 bytes)", path)
    digest = hashlib.sha256(data).hexdigest()

    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not pad
    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) before it errors: we check first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise BadInputError(
                        f"image is {width}×{height} = {width * height / 1e6:.0f} "
                        f"megapixels, above the limit of {max_pixels / 1e6:.0f} "
                        "megapixels (possible decompression bomb)",
                        path,
                    )
                image.load()  # full decode now: truncation is detected here
                orientation = int(image.getexif().get(0x0112, 1) or 1)
                oriented = ImageOps.exif_transpose(image) or image
                rgb = to_rgb8(oriented)
                file_format, mode = image.format or "unknown", image.mode
    except BadInputError:
        raise
    except UnidentifiedImageError:
        raise BadInputError(
            "not an image file (unknown or unsupported format)", path
        ) from None
    except Image.DecompressionBombError as error:
        raise BadInputError(
            f"image is larger than the limit of {max_pixels / 1e6:.0f} megapixels "
            f"(possible decompression bomb; {error})",
            path,
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = str(error) or type(error).__name__
        if "truncated" in reason.lower() or isinstance(error, OSError):
            reason = f"damaged or truncated image data ({reason})"
        raise BadInputError(reason, path) from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise BadInputError(f"unusable image of shape {rgb.shape}", path)
    frames = _readable_frames(io.BytesIO(data))
    return LoadedImage(
        path=path,
        sha256=digest,
        rgb=np.ascontiguousarray(rgb),
        format=file_format,
        mode=mode,
        file_size=(width, height),
        exif_orientation=orientation if 1 <= orientation <= 8 else 1,
        frame_count=frames,
    )


def frame_count(path: str | Path) -> int:
    """How many frames (animation frames, TIFF pages) an image file holds.

    1 for an ordinary still; a file that is not a readable image is a
    ``BadInputError`` naming it, as for ``load_image``.  A damaged frame and those
    after it are not counted.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(
            "file not found" if not path.exists() else "not a file", path
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                pass
    except UnidentifiedImageError:
        raise BadInputError(
            "not an image file (unknown or unsupported format)", path
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = str(error) or type(error).__name__
        raise BadInputError(
            f"damaged or truncated image data ({reason})", path
        ) from None
    with open(path, "rb") as handle:
        return _readable_frames(handle)


def _readable_frames(source: BinaryIO) -> int:
    """Frames that can be reached one after another from the first (at least 1).

    Counted on its own ``Image.open``: a damaged later page (Pillow raises
    EOFError, OSError, TypeError, … for those) must not spoil the first frame,
    which ``load_image`` has already decoded and checked; the damaged frame and
    those after it are not counted.
    """
    reached = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # corrupt-EXIF and bomb warnings
            with Image.open(source) as image:
                while True:
                    image.seek(reached)
                    reached += 1
    except Exception:  # EOFError after the last frame, or the damaged one
        return reached


def multi_frame_warning(name: str | Path, frames: int) -> str | None:
    """The examiner's warning for a file of several frames, None for one frame.

    ``name`` is what the examiner knows the file by (the source path at intake,
    not the case's internal copy).
    """
    if frames <= 1:
        return None
    return printable(
        f"{name}: the file holds {frames} frames (an animation or a multi-page "
        "image); only the first frame was analysed - if the face is on another "
        "frame, take that frame as an exhibit of its own (Take frame… on the "
        "exhibit in the window, or `xfr case frames CASE MARK --frame N`)"
    )
