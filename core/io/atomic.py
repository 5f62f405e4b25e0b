"""Writing a file so that a crash, a full disk or Ctrl-C leaves the old file or
the new one, never half of either.

The data goes to a temporary name in the same folder (a rename is only atomic
within one file system), is synced, renamed over the target, and the folder is
synced so that the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".partial"  # the name of a file being written (as in a case folder)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX).

    Windows cannot open a folder, and some file systems (network shares) refuse
    to sync one: both are tolerated, since the rename itself has happened and
    only its durability across a power cut is not guaranteed there.
    """
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def remove_quietly(path: Path) -> None:
    """Remove a temporary file if it is there (cleanup never hides the error)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_writer(
    target: Path, *, temp_suffix: str = TEMP_SUFFIX, sync_folder: bool = True
) -> Iterator[BinaryIO]:
    """A binary file that replaces ``target`` only when the block ends normally.

    Any exception removes the temporary file and leaves ``target`` as it was.
    ``sync_folder=False`` skips syncing the folder after the rename, for records
    rewritten after every change whose loss in a power cut is harmless.
    """
    temp = target.with_name(target.name + temp_suffix)
    try:
        with open(temp, "wb") as writer:
            yield writer
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temp, target)
    except BaseException:
        remove_quietly(temp)
        raise
    if sync_folder:
        fsync_dir(target.parent)


def write_atomic(
    target: Path,
    data: bytes,
    *,
    temp_suffix: str = TEMP_SUFFIX,
    sync_folder: bool = True,
) -> None:
    """Write ``data`` to ``target`` atomically (see ``atomic_writer``)."""
    with atomic_writer(
        target, temp_suffix=temp_suffix, sync_folder=sync_folder
    ) as writer:
        writer.write(data)
