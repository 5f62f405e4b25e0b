"""Evidence files entering a case: copied while hashed, checked, named by hash.

Each file is read once: copied into ``evidence/`` under a ``.partial`` name while
it is hashed, then described (format, size, EXIF) from that copy, so the record
always describes the stored bytes; a file that changes while it is copied is
refused (the check-then-copy race).  ``Case.add_exhibits`` records the exhibits.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.case.layout import DERIVED, EVIDENCE, PARTIAL_SUFFIX
from core.errors import BadInputError, printable
from core.imageio import load_image, multi_frame_warning
from core.io.atomic import fsync_dir
from core.resources import sha256_file
from core.video.decode import probe_video
from core.video.provenance import VideoInfo


def stage_evidence(
    folder: Path, source: Path, max_pixels: int
) -> tuple[Path, dict[str, Any]]:
    """Copy the image ``source`` into the evidence folder under a ``.partial``
    name, hashing while copying, and describe the copy (never the source again)."""
    partial, digest, size = _stage_copy(folder, source)
    try:
        image = load_image(partial, max_pixels=max_pixels)
        exif = exif_summary(partial)
    except BadInputError as error:
        remove_partial(partial)
        raise BadInputError(error.reason, source) from None
    if image.sha256 != digest:  # our own copy changed: never expected
        remove_partial(partial)
        raise BadInputError("the stored copy does not match what was read", source)
    record = {
        "sha256": image.sha256,
        "original_name": printable(source.name),
        "size": size,
        "format": image.format,
        "width": image.size[0],
        "height": image.size[1],
        "exif_orientation": image.exif_orientation,
        "exif": exif,
        # a GIF / multi-page TIFF / APNG / WebP is analysed on its first frame
        "warning": multi_frame_warning(printable(source.name), image.frame_count),
    }
    del image
    return partial, record


def stage_video(
    folder: Path,
    source: Path,
    max_pixels: int,
    cancel: Callable[[], bool] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Copy the video ``source`` like an image, then decode every frame of the
    copy once, so a video that cannot be read in full is refused at intake."""
    partial, digest, size = _stage_copy(folder, source)
    try:
        info = probe_video(partial, verify=True, max_pixels=max_pixels, cancel=cancel)
    except BadInputError as error:
        remove_partial(partial)
        raise BadInputError(error.reason, source) from None
    except BaseException:
        remove_partial(partial)
        raise
    if info.sha256 != digest:  # our own copy changed: never expected
        remove_partial(partial)
        raise BadInputError("the stored copy does not match what was read", source)
    undecodable = [
        s for s in info.streams if s.decoded_frames is not None and not s.decoded_frames
    ]
    if len(undecodable) == len(info.streams):
        remove_partial(partial)
        raise BadInputError("no frame of the video can be decoded", source)
    described = video_info_dict(info)
    warning = _video_warning(printable(source.name), info)
    return partial, {
        "kind": "video",
        "sha256": digest,
        "original_name": printable(source.name),
        "size": size,
        "container": info.container_format,
        "info": described,
        "warning": warning,
    }


def _video_warning(name: str, info: VideoInfo) -> str | None:
    """A caution when some frames the file holds cannot be decoded (a clip cut
    after a key frame: the frames before the next one have no reference), or when
    its display matrix mirrors them (not applied)."""
    short = [
        f"stream {s.index}: {s.frame_count - s.decoded_frames} of {s.frame_count} "
        "frames"
        for s in info.streams
        if s.frame_count is not None
        and s.decoded_frames is not None
        and s.decoded_frames < s.frame_count
    ]
    cautions = []
    if short:
        cautions.append(
            f"{'; '.join(short)} cannot be decoded (the clip was cut without the "
            "key frame they are predicted from?); they cannot be viewed or taken "
            "as exhibits"
        )
    if any(s.display_mirrored for s in info.streams):
        cautions.append(
            "the file asks for its frames to be shown mirrored (a front camera?); "
            "XFR shows them as decoded, neither mirrored nor turned"
        )
    return f"{name}: {'; '.join(cautions)}" if cautions else None


def video_info_dict(info: VideoInfo) -> dict[str, Any]:
    """What the case records of a video (the copy's path is not part of it)."""
    return {
        "container": info.container_format,
        "duration_seconds": info.duration_seconds,
        "creation_time": info.creation_time,
        "decoder": info.decoder,
        "streams": [
            {
                "index": s.index,
                "codec": s.codec,
                "width": s.width,
                "height": s.height,
                "frame_count": s.frame_count,
                "decoded_frames": s.decoded_frames,
                "average_rate": None if s.average_rate is None else str(s.average_rate),
                "time_base": str(s.time_base),
                "start_pts": s.start_pts,
                "display_rotation": s.display_rotation,
                "display_mirrored": s.display_mirrored,
            }
            for s in info.streams
        ],
    }


def _stage_copy(folder: Path, source: Path) -> tuple[Path, str, int]:
    """``source`` copied to ``evidence/<uuid>.partial`` while hashed: the copy,
    its SHA-256 and size; a file that changes meanwhile is refused."""
    try:
        before = os.stat(source)
    except OSError as error:
        reason = (
            "file not found"
            if error.errno == errno.ENOENT
            else (f"cannot read file ({error.strerror})")
        )
        raise BadInputError(reason, source) from None
    if stat.S_ISDIR(before.st_mode):
        raise BadInputError("not a file (a folder)", source)
    if not stat.S_ISREG(before.st_mode):
        raise BadInputError("not a regular file (a device, pipe or socket)", source)
    partial = folder / EVIDENCE / f"{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    digest, size = hashlib.sha256(), 0
    try:
        try:
            reader = open(source, "rb")
        except OSError as error:
            raise BadInputError(
                f"cannot read file ({error.strerror})", source
            ) from None
        with reader, open(partial, "xb") as writer:
            while chunk := _read_chunk(reader):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
            after = os.fstat(reader.fileno())
    except BadInputError:
        remove_partial(partial)
        raise
    except OSError as error:
        remove_partial(partial)
        raise BadInputError(
            f"cannot store a copy in the case ({error.strerror})", source
        ) from None
    changed = (after.st_size, after.st_mtime_ns) != (
        before.st_size,
        before.st_mtime_ns,
    )
    if changed or size != after.st_size:
        remove_partial(partial)
        raise BadInputError(
            "the file changed while it was being added (it is still being "
            "written or copied?); nothing was stored, add it again when it is "
            "complete",
            source,
        )
    return partial, digest.hexdigest(), size


def commit_evidence(folder: Path, partial: Path, sha256: str, source: Path) -> Path:
    """Give a staged copy its final name ``evidence/<sha256>``, read-only."""
    target = folder / EVIDENCE / sha256
    try:
        if target.exists() and sha256_file(target) == sha256:
            return target  # left by an intake that crashed before its commit
        os.chmod(partial, 0o444)
        # renames only: the copy was written (and hashed) while staging, and a
        # damaged leftover is moved aside, so core.io.atomic has nothing to write
        if target.exists():  # a damaged leftover: keep it aside, never delete
            os.replace(target, target.with_name(f"{sha256}.damaged-{uuid.uuid4()}"))
        os.replace(partial, target)
        fsync_dir(target.parent)
    except OSError as error:
        raise BadInputError(
            f"cannot store a copy in the case ({error.strerror})", source
        ) from None
    return target


@contextlib.contextmanager
def removing_on_failure(files: Sequence[Path]) -> Iterator[None]:
    """Evidence files whose exhibits were not committed are not left behind."""
    try:
        yield
    except BaseException:
        for path in files:
            remove_partial(path)
        raise


def remove_partial_files(case_folder: Path) -> None:
    """Remove files left half written by an interrupted change (never referenced)."""
    for folder in (EVIDENCE, DERIVED):
        for leftover in (case_folder / folder).glob("*" + PARTIAL_SUFFIX):
            with contextlib.suppress(OSError):
                os.chmod(leftover, 0o644)
                leftover.unlink()


_CHUNK_BYTES = 1 << 20


def _read_chunk(reader: BinaryIO) -> bytes:
    """One chunk of an evidence file being copied (a seam for the race test)."""
    return reader.read(_CHUNK_BYTES)


def remove_partial(path: Path) -> None:
    """Remove a staged copy (read-only or not); nothing to remove is fine."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o644)
    with contextlib.suppress(OSError):
        path.unlink()


def exif_summary(path: Path) -> dict[str, Any]:
    """The EXIF fields an examiner asks about first (camera, time, software, GPS)."""
    from PIL import Image

    tags = {
        271: "make",
        272: "model",
        305: "software",
        306: "date_time",
        274: "orientation",
    }
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            summary: dict[str, Any] = {
                name: _exif_value(exif.get(tag)) for tag, name in tags.items()
            }
            sub = exif.get_ifd(0x8769)
            summary["date_time_original"] = _exif_value(sub.get(36867))
            summary["gps_present"] = bool(exif.get_ifd(0x8825))
    except Exception:  # unreadable EXIF must not stop intake of a readable image
        return {"unreadable": True}
    return {k: v for k, v in summary.items() if v not in (None, "", False)}


def _exif_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00 ")
    if isinstance(value, (int, float)):
        return value
    return str(value).strip("\x00 ")


# ---- files XFR writes itself (frames, processed images) ----------------------------
def file_problem(path: Path, sha256: str, what: str) -> str:
    """Why ``path`` is not the file recorded with ``sha256`` ("" when it is)."""
    try:
        if sha256_file(path) == sha256:
            return ""
    except OSError as error:
        return f"{what} cannot be read ({error.strerror}): run `xfr case verify`"
    return altered_problem(what)


def altered_problem(what: str) -> str:
    """The one wording of a stored file whose SHA-256 is not the recorded one."""
    return (
        f"{what} was altered: its SHA-256 no longer matches the one recorded at "
        "intake (run `xfr case verify`)"
    )


def png_bytes(rgb: np.ndarray) -> bytes:
    """A lossless PNG of the pixels (8-bit RGB, no metadata)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stage_bytes(folder: Path, data: bytes, sha256: str, label: str) -> Path | None:
    """Write ``data`` into the evidence folder as ``<sha256>`` (read-only); the
    path when the file is new, None when an identical file was already there."""
    target = folder / EVIDENCE / sha256
    existed = target.exists()
    partial = folder / EVIDENCE / f"{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    try:
        try:
            with open(partial, "xb") as writer:
                writer.write(data)
        except OSError as error:
            raise BadInputError(
                f"cannot store {label} in the case ({error.strerror})", folder
            ) from None
        commit_evidence(folder, partial, sha256, Path(label))
    finally:
        remove_partial(partial)
    return None if existed else target
