"""The on-disk state of a Batch API run: which batches are pending or done, so that a re-run picks them up."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The file in a run's output directory (the demonstrations' store leaves it alone).
BATCH_STATE_FILE = "batch.json"


def load_batch_state(path: Path) -> dict[str, Any]:
    """
    :param path: the state file
    :return: its state, or an empty one when there is no file yet
    :raises ValueError: when the file is not a batch state file
    """
    if not path.exists():
        return {"pending": [], "done": [], "requests": 0, "answered": 0}
    try:
        state = json.loads(path.read_text())
        if not isinstance(state["pending"], list) or not isinstance(state["done"], list):
            raise TypeError("pending and done must be lists")
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path} is not a batch state file ({error}). Delete it to submit new batches (a batch it named "
            "would then be paid for again)."
        ) from error
    if state["pending"]:
        logger.info("Resuming: waiting for batch(es) %s submitted earlier.", ", ".join(state["pending"]))
    return state


def save_batch_state(path: Path, state: dict[str, Any]) -> None:
    """
    Write the state atomically (a crash leaves the old file or the new one, never half of one).

    :param path: the state file
    :param state: the state
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(state, indent=2))
    os.replace(partial, path)
