"""Files written all or nothing: into a hidden side file in the same folder, then renamed over the target,
so that a kill, a crash or a full disk during a save leaves the previous file (or none), never half a file.
Every file of a run folder is written this way."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """
    A side path to write instead of ``path``; renamed over it when the block ends, removed if it fails.

    The side path keeps ``path``'s suffix (SB3's ``save()`` and Pillow go by it) and starts with a dot, so
    that no glob of the folder's files (``model_*_steps.zip``, ``*.npz``) sees it.

    :param path: the file to write
    :return: the side path to write to
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """
    :param path: the file to write
    :param text: its whole content
    :return: the file
    """
    with atomic_path(path) as partial:
        partial.write_text(text)
    return Path(path)


def can_write_in(directory: str | os.PathLike[str]) -> bool:
    """
    :param directory: an existing directory
    :return: whether a file can be created in it, tried for real (``os.access`` says yes to root even
        where nothing can be written, as under ``/proc`` or on a read-only mount)
    """
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def unwritable_folder(file: str | os.PathLike[str]) -> Path | None:
    """
    :param file: a file to be written, whose folders may not exist yet
    :return: its nearest existing ancestor if that is not a directory a file can be created in (the
        folders to make would fail there), ``None`` when the file can be written
    """
    existing = Path(file).parent
    while not existing.exists():
        existing = existing.parent
    return None if existing.is_dir() and can_write_in(existing) else existing
