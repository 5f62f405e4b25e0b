"""core.io.atomic: a failed write leaves the old file and no temporary file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.io import atomic
from core.io.atomic import atomic_writer, fsync_dir, write_atomic


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "record.json"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path: Path):
    target = tmp_path / "record.json"
    target.write_bytes(b"old contents")
    with pytest.raises(OSError, match="disk full"), atomic_writer(target) as writer:
        writer.write(b"half of the new")
        raise OSError(28, "disk full")
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_failing_fsync_leaves_the_old_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "record.json"
    target.write_bytes(b"old contents")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"new contents")
    assert target.read_bytes() == b"old contents"
    assert not (tmp_path / "record.json.partial").exists()


def test_a_failing_rename_leaves_the_old_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "record.json"
    target.write_bytes(b"old contents")

    def refuse(source: object, destination: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_atomic(target, b"new contents")
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_new_file_that_fails_is_not_created(tmp_path: Path):
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt), atomic_writer(target) as writer:
        writer.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_the_folder_is_synced_after_the_rename(tmp_path: Path, monkeypatch):
    synced: list[Path] = []
    monkeypatch.setattr(atomic, "fsync_dir", synced.append)
    write_atomic(tmp_path / "a.bin", b"x")
    assert synced == [tmp_path]


def test_fsync_dir_tolerates_a_folder_that_cannot_be_synced(
    tmp_path: Path, monkeypatch
):
    """A network share or read-only medium refusing to sync a folder is no error:
    the rename has happened, only its durability is not guaranteed there."""

    def refuse(descriptor: int) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "fsync", refuse)
    fsync_dir(tmp_path)  # no exception
    fsync_dir(tmp_path / "missing")  # cannot even be opened: tolerated too


def test_fsync_dir_on_a_read_only_folder(tmp_path: Path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        fsync_dir(folder)  # no exception
    finally:
        folder.chmod(0o755)
