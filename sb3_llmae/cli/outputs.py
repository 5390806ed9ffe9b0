"""Output paths of the CLI: checked before any work, and a model that cannot be saved where asked is saved
beside a fallback path rather than lost."""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_llmae.atomic_files import atomic_path, unwritable_folder

logger = logging.getLogger(__name__)


def model_zip_path(path: str | os.PathLike[str]) -> Path:
    """
    :param path: where a model is to be saved
    :return: the file SB3's ``save()`` writes for it (it adds ``.zip`` to a path without a suffix)
    """
    path = Path(path)
    return path if path.suffix else path.with_suffix(".zip")


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """
    Check, before any work, that a model can be written at ``path``.

    :param path: the model file to write
    :return: the file that will be written
    :raises ValueError: if it is a directory, or its folder cannot be created or written
    """
    file = model_zip_path(path)
    if file.is_dir():
        raise ValueError(f"The output {file} is a directory: pass a file path such as {file / 'model.zip'}.")
    existing = unwritable_folder(file)
    if existing is not None:
        raise ValueError(
            f"Cannot write {file}: {existing} is not a writable directory. Pass another path, or fix its "
            "permissions."
        )
    if file.exists() and not os.access(file, os.W_OK):
        raise ValueError(f"Cannot overwrite {file}: it is read-only. Pass another path.")
    return file


def save_model(model: BaseAlgorithm, path: str | os.PathLike[str]) -> Path:
    """
    Save a model at ``path``; if that fails, in the temporary directory, and say where.

    :param model: the trained model
    :param path: where it is asked for
    :return: where it was saved
    :raises OSError: only if the fallback fails too
    """
    file = model_zip_path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(file) as partial:  # a kill during the save keeps the previous model.zip whole
            model.save(partial)
        return file
    except OSError as error:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        fallback = Path(tempfile.gettempdir()) / f"sb3-llmae-{file.stem}-{stamp}-{os.getpid()}.zip"
        model.save(fallback)
        logger.error("Could not save the model to %s (%s); saved it to %s instead.", file, error, fallback)
        return fallback
