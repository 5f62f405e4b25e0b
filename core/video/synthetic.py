"""A short CCTV-like clip with known truth, for the tests and the demo case.

Two public-domain portraits that ship with installed packages (scikit-image's
astronaut, Eileen Collins, NASA; matplotlib's Grace Hopper, US Navy) are cut to
their heads and moved on known paths over a noisy, slightly dark grey background:

* person 1 (the astronaut) walks toward the camera: her face grows every frame
  until ``largest_frame``, where she stops moving, so that frame is also her
  sharpest (no motion blur); then she steps out of view to the left;
* person 2 (Grace Hopper) crosses the frame from right to left at one size, with a
  horizontal motion blur that is zero at her ``sharpest_frame`` and longer the
  further a frame is from it (she slows down, then speeds up again).

Each frame gets sensor noise and the codec's compression.  The returned truth is
what was drawn: per person and frame, the face box and the five landmarks (those
dlib finds on the source photo, scaled and moved with the head), the motion blur,
and which frames show the whole face.  Everything follows from ``seed``: the same
seed gives the same pixels (the encoder runs on one thread, so its output does not
depend on scheduling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.errors import BadInputError

Codec = Literal["h264", "mpeg4", "mjpeg"]
Box = tuple[float, float, float, float]  # left, top, right, bottom

Points = tuple[tuple[float, float], ...]  # dlib's five landmarks, (x, y)

# Where the head is cut from each photo (a square), and the face box and five
# landmarks dlib's HOG detector and 5-point predictor find on the photo (checked
# once with core.faces.detect.FaceDetector, default settings).
_ASTRONAUT_CROP = (135, 36, 306, 207)  # left, top, right, bottom in the photo
_ASTRONAUT_FACE = (175.0, 76.0, 266.0, 167.0)
_ASTRONAUT_POINTS = ((255, 104), (238, 105), (195, 101), (212, 103), (224, 135))
_HOPPER_CROP = (140, 99, 407, 366)
_HOPPER_FACE = (180.0, 139.0, 367.0, 326.0)
_HOPPER_POINTS = ((322, 187), (291, 190), (206, 197), (238, 194), (272, 252))

BACKGROUND_GREY = 70  # slightly dark: CCTV of a dim corridor
FIXED_PATTERN_SIGMA = 6.0  # the background's texture, the same in every frame
SENSOR_NOISE_SIGMA = 2.5  # new in every frame
DARKENING = 0.8  # the people are lit like the background: a little under-exposed


@dataclass(frozen=True)
class SyntheticPerson:
    """One person in the clip, as drawn."""

    number: int  # 1, 2 in the order listed
    source: str  # where the photo comes from
    boxes: dict[int, Box] = field(repr=False)  # frame number -> face box drawn
    landmarks5: dict[int, Points] = field(repr=False)  # frame -> the five points
    blur_px: dict[int, int] = field(repr=False)  # frame -> motion-blur length
    largest_frame: int  # the frame whose face box is largest
    sharpest_frame: int  # the frame with the least motion blur (first if tied)

    @property
    def visible_frames(self) -> tuple[int, ...]:
        """Frames on which the whole face box lies inside the picture."""
        return tuple(sorted(self.boxes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "visible_frames": list(self.visible_frames),
            "boxes": {
                str(n): [round(v, 2) for v in box] for n, box in self.boxes.items()
            },
            "landmarks5": {
                str(n): [[round(x, 2), round(y, 2)] for x, y in points]
                for n, points in self.landmarks5.items()
            },
            "blur_px": {str(n): px for n, px in self.blur_px.items()},
            "largest_frame": self.largest_frame,
            "sharpest_frame": self.sharpest_frame,
        }


@dataclass(frozen=True)
class SyntheticClip:
    """The written clip and its known truth."""

    path: str
    codec: str  # the codec actually used (h264 falls back to mpeg4)
    fps: int
    size: tuple[int, int]  # width, height
    frame_count: int
    seed: int
    people: tuple[SyntheticPerson, ...]

    def person(self, number: int) -> SyntheticPerson:
        for person in self.people:
            if person.number == number:
                return person
        raise KeyError(number)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "codec": self.codec,
            "fps": self.fps,
            "size": list(self.size),
            "frame_count": self.frame_count,
            "seed": self.seed,
            "people": [person.to_dict() for person in self.people],
        }


def source_photos() -> tuple[np.ndarray, np.ndarray]:
    """(astronaut, Grace Hopper) as RGB uint8, from the installed packages."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    astronaut = np.asarray(skimage.data.astronaut(), np.uint8)
    hopper_path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(str(hopper_path)) as photo:
        hopper = np.asarray(photo.convert("RGB"), np.uint8)
    return astronaut, hopper


def write_cctv_clip(
    path: str | Path,
    *,
    seconds: float = 4.0,
    fps: int = 10,
    size: tuple[int, int] = (640, 360),
    codec: Codec = "h264",
    seed: int = 0,
) -> SyntheticClip:
    """Write the clip to ``path`` (MP4 for h264/mpeg4, AVI for mjpeg by its suffix:
    the container follows the file name) and return what was drawn."""
    import av

    frame_count = round(seconds * fps)
    width, height = size
    if frame_count < 8:
        raise BadInputError(
            f"a synthetic clip needs at least 8 frames, not {frame_count}"
        )
    if width < 160 or height < 120 or width % 2 or height % 2:
        raise BadInputError(
            "a synthetic clip needs an even size of at least 160x120, "
            f"not {width}x{height}"
        )
    used = _available_codec(codec)
    rng = np.random.default_rng(seed)
    background = _background(rng, width, height)
    astronaut, hopper = source_photos()
    walker = _head(astronaut, _ASTRONAUT_CROP, _ASTRONAUT_FACE, _ASTRONAUT_POINTS)
    passer = _head(hopper, _HOPPER_CROP, _HOPPER_FACE, _HOPPER_POINTS)
    paths = (
        _walker_path(frame_count, width, height),
        _passer_path(frame_count, width, height),
    )
    heads = (walker, passer)
    boxes: tuple[dict[int, Box], dict[int, Box]] = ({}, {})
    points: tuple[dict[int, Points], dict[int, Points]] = ({}, {})
    blurs: tuple[dict[int, int], dict[int, int]] = ({}, {})
    out = Path(path)
    with av.open(str(out), "w") as container:
        stream: Any = container.add_stream(used, rate=fps)  # a VideoStream
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if used == "mjpeg" else "yuv420p"
        stream.gop_size = 2 * fps
        stream.thread_count = 1  # one thread: the same bytes on every run
        if used == "libx264":
            stream.options = {"crf": "28", "preset": "medium"}
        elif used == "mpeg4":
            stream.bit_rate = 600_000
        else:
            stream.options = {"qscale": "6"}
        for number in range(frame_count):
            frame = background.copy()
            for index, (head, route) in enumerate(zip(heads, paths, strict=True)):
                placement = route.get(number)
                if placement is None:
                    continue
                centre_x, centre_y, face_side, blur = placement
                box, drawn = head.paste(frame, centre_x, centre_y, face_side, blur)
                blurs[index][number] = blur
                if box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height:
                    boxes[index][number] = box
                    points[index][number] = drawn
            frame = frame * DARKENING + rng.normal(0.0, SENSOR_NOISE_SIGMA, frame.shape)
            rgb = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    people = tuple(
        SyntheticPerson(
            number=index + 1,
            source=source,
            boxes=boxes[index],
            landmarks5=points[index],
            blur_px=blurs[index],
            largest_frame=_largest(boxes[index]),
            sharpest_frame=_sharpest(boxes[index], blurs[index]),
        )
        for index, source in enumerate(
            (
                "skimage.data.astronaut() (Eileen Collins, NASA, public domain)",
                "matplotlib sample data grace_hopper.jpg (US Navy, public domain)",
            )
        )
    )
    return SyntheticClip(
        path=str(out),
        codec="h264" if used == "libx264" else used,
        fps=fps,
        size=(width, height),
        frame_count=frame_count,
        seed=seed,
        people=people,
    )


# ---- how it is drawn -------------------------------------------------------------
@dataclass(frozen=True)
class _Head:
    """A head cut from a photo (square), with its face box and landmarks."""

    rgb: np.ndarray = field(repr=False)  # the crop, float
    face: Box  # the face box inside the crop
    points: Points  # the five landmarks inside the crop

    def paste(
        self,
        frame: np.ndarray,
        centre_x: float,
        centre_y: float,
        face_side: float,
        blur: int,
    ) -> tuple[Box, Points]:
        """Draw the head so that its face box is ``face_side`` wide, centred on
        (centre_x, centre_y), blurred over ``blur`` px, inside an oval that fades
        out; return the face box and landmarks drawn (may reach outside the frame).
        """
        import cv2

        side = max(
            2, round(self.rgb.shape[1] * face_side / (self.face[2] - self.face[0]))
        )
        scale = side / self.rgb.shape[1]  # what the resize really does
        head = cv2.resize(self.rgb, (side, side), interpolation=cv2.INTER_AREA)
        mask = _oval(side)
        if blur > 1:  # horizontal motion blur: a box filter over ``blur`` pixels
            kernel = np.full((1, blur), 1.0 / blur, np.float32)
            head = cv2.filter2D(head, -1, kernel, borderType=cv2.BORDER_REPLICATE)
            mask = cv2.filter2D(mask, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        face_centre_x = (self.face[0] + self.face[2]) / 2 * scale
        face_centre_y = (self.face[1] + self.face[3]) / 2 * scale
        left = round(centre_x - face_centre_x)
        top = round(centre_y - face_centre_y)
        height, width = frame.shape[:2]
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + side, width), min(top + side, height)
        if x1 > x0 and y1 > y0:
            part = head[y0 - top : y1 - top, x0 - left : x1 - left]
            alpha = mask[y0 - top : y1 - top, x0 - left : x1 - left, None]
            frame[y0:y1, x0:x1] = alpha * part + (1 - alpha) * frame[y0:y1, x0:x1]
        box = (
            left + self.face[0] * scale,
            top + self.face[1] * scale,
            left + self.face[2] * scale,
            top + self.face[3] * scale,
        )
        drawn = tuple((left + x * scale, top + y * scale) for x, y in self.points)
        return box, drawn


def _head(
    photo: np.ndarray,
    crop: tuple[int, int, int, int],
    face: Box,
    points: tuple[tuple[int, int], ...],
) -> _Head:
    left, top, right, bottom = crop
    return _Head(
        rgb=photo[top:bottom, left:right].astype(np.float32),
        face=(face[0] - left, face[1] - top, face[2] - left, face[3] - top),
        points=tuple((float(x - left), float(y - top)) for x, y in points),
    )


def _oval(side: int) -> np.ndarray:
    """1 inside an ellipse filling the square, fading to 0 at its edge."""
    grid = (np.arange(side, dtype=np.float32) + 0.5) / side * 2 - 1
    radius = np.hypot(grid[None, :], grid[:, None] * 0.9)
    return np.clip((1.0 - radius) / 0.15, 0.0, 1.0).astype(np.float32)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Grey with a faint vertical gradient and a fixed noise pattern."""
    gradient = np.linspace(-12, 12, height, dtype=np.float32)[:, None, None]
    pattern = rng.normal(0.0, FIXED_PATTERN_SIGMA, (height, width, 1)).astype(
        np.float32
    )
    return np.broadcast_to(
        BACKGROUND_GREY + gradient + pattern, (height, width, 3)
    ).copy()


Route = dict[int, tuple[float, float, float, int]]  # frame -> x, y, face side, blur


def _walker_path(frames: int, width: int, height: int) -> Route:
    """Toward the camera: the face grows from a sixth to nearly half the height
    until ``stop`` (70 % of the clip), stands still there, then steps left out of
    view.  Blur: the walking sways the head, less as she slows near ``stop``."""
    stop = int(frames * 0.7)
    route: Route = {}
    for number in range(frames):
        if number <= stop:
            t = number / stop
            side = height * (0.17 + 0.28 * t)
            x = width * (0.28 + 0.12 * t)
            blur = 0 if number == stop else max(2, round(8 * (stop - number) / stop))
        else:
            side = height * 0.45
            x = width * 0.40 - (number - stop) * width * 0.08
            blur = 3 + 2 * (number - stop)
        route[number] = (x, height * 0.42, side, blur)
    return route


def _passer_path(frames: int, width: int, height: int) -> Route:
    """Across from right to left at one size, in the lower right half; blur zero
    at ``slowest`` (40 % of the clip) and longer further from it."""
    slowest = int(frames * 0.4)
    route: Route = {}
    for number in range(frames):
        x = width * (0.92 - 0.32 * number / (frames - 1))
        blur = min(2 * abs(number - slowest), 15)
        route[number] = (x, height * 0.58, height * 0.28, blur)
    return route


def _largest(boxes: dict[int, Box]) -> int:
    """The frame with the largest face box (the first of equals)."""
    areas = {n: (box[2] - box[0]) * (box[3] - box[1]) for n, box in boxes.items()}
    return min(areas, key=lambda n: (-round(areas[n], 6), n))


def _sharpest(boxes: dict[int, Box], blurs: dict[int, int]) -> int:
    """The visible frame with the shortest motion blur (the first of equals)."""
    return min(boxes, key=lambda n: (blurs[n], n))


def _available_codec(codec: str) -> str:
    """The FFmpeg encoder for ``codec``: H.264 needs libx264 in the PyAV wheel, and
    falls back to MPEG-4 part 2 where the wheel lacks it."""
    import av

    wanted = {"h264": ("libx264", "mpeg4"), "mpeg4": ("mpeg4",), "mjpeg": ("mjpeg",)}
    if codec not in wanted:
        raise BadInputError(f"unknown codec {codec!r} (h264, mpeg4 or mjpeg)")
    for name in wanted[codec]:
        try:
            av.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        return name
    raise BadInputError(f"this PyAV build cannot encode {codec}")
