"""Demonstrations on disk: one atomic file per finished episode (resume), and the saved set."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import filelock
import gymnasium as gym
import numpy as np
from imitation.data import serialize
from imitation.data.types import TrajectoryWithRew

from sb3_llmae.atomic_files import can_write_in
from sb3_llmae.demonstrations.containers import DemonstrationMetadata, Demonstrations, EpisodeRecord

# Plan mode's Batch API rounds keep their state in the output directory before any episode is played.
from sb3_llmae.experts.llm.batch_state import BATCH_STATE_FILE

METADATA_FILE = "metadata.json"
TRAJECTORIES_DIR = "trajectories"
# The expert's distribution over the actions at each step of each kept trajectory, when it gave one.
ACTION_PROBS_FILE = "action_probs.npz"
EPISODES_DIR = "episodes"
TRANSCRIPTS_DIR = "transcripts"
GENERATION_FILE = "generation.json"
LOCK_FILE = "generate.lock"
# What a generation run writes into its output directory; anything else there is someone else's.
GENERATION_ENTRIES = frozenset({GENERATION_FILE, LOCK_FILE, EPISODES_DIR, TRANSCRIPTS_DIR})
SAVED_ENTRIES = frozenset({METADATA_FILE, TRAJECTORIES_DIR})

logger = logging.getLogger(__name__)


def check_output_directory(path: str | os.PathLike[str]) -> Path:
    """
    Check, before any work, that a directory can be created or written at ``path``.

    :param path: the output directory
    :return: it, as a ``Path``
    :raises ValueError: if it is a file, or it (or its nearest existing parent) is not writable
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"The output directory {directory} is a file: pass a directory path (new or existing)."
        )
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not can_write_in(existing):
        raise ValueError(
            f"Cannot write to {directory}: {existing} is not a writable directory. Pass another path, "
            "or fix its permissions."
        )
    return directory


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """
    Where two JSON-like values differ, one line per differing leaf.

    :param old: the recorded value
    :param new: the value now
    :param prefix: the dotted path of the values
    :return: lines ``path: old -> new``, in key order
    """
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted({*old, *new}, key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                lines.append(f"{path}: (absent) -> {new[key]!r}")
            elif key not in new:
                lines.append(f"{path}: {old[key]!r} -> (absent)")
            else:
                lines += differences(old[key], new[key], path)
        return lines
    return [] if old == new else [f"{prefix or 'value'}: {old!r} -> {new!r}"]


class EpisodeStore:
    """
    Finished episodes of one generation run, one file each, written atomically as they complete,
    so that an interrupted run loses nothing finished and a re-run resumes.

    :param directory: the generation's output directory
    :param generation: what identifies the run (env, obs mode, expert, step limit); a directory
        holding episodes of another generation is refused
    :raises ValueError: if the directory holds anything but a resumable run of the same generation, or
        another run is writing into it (a lock held while the store is open; released when the process
        ends, however it ends, so a killed run's lock blocks nothing)
    """

    def __init__(self, directory: str | os.PathLike[str], generation: dict[str, Any]) -> None:
        self.directory = check_output_directory(directory)
        self.created_directory = not self.directory.exists()
        self.saved = 0
        self._check_contents()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = filelock.FileLock(self.directory / LOCK_FILE, timeout=0)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise ValueError(
                f"Another `generate` run is writing into {self.directory} (it holds {LOCK_FILE}). Wait for it"
                " to finish, or pass another output directory."
            ) from None
        try:
            self._open(generation)
        except BaseException:
            self._lock.release()
            raise

    def _check_contents(self) -> None:
        """Refuse a directory that holds anything but a generation run (e.g. saved demonstrations)."""
        if not self.directory.is_dir():
            return
        entries = {entry.name for entry in self.directory.iterdir()}
        if GENERATION_FILE in entries:
            return
        # Without a record of its settings, only a run that wrote nothing yet can be taken over.
        unverifiable = sorted(
            name
            for name in entries
            if name not in (LOCK_FILE, BATCH_STATE_FILE)
            and not (name in GENERATION_ENTRIES and _is_empty_directory(self.directory / name))
        )
        if unverifiable:
            what = "saved demonstrations" if entries >= SAVED_ENTRIES else "files of something else"
            shown = ", ".join(unverifiable[:5]) + (", ..." if len(unverifiable) > 5 else "")
            raise ValueError(
                f"{self.directory} holds {what} ({shown}), not a generation run that can be resumed (it has "
                f"no {GENERATION_FILE}). Nothing was written: pass a new or empty output directory, or "
                "delete this one to replace it."
            )

    def _open(self, generation: dict[str, Any]) -> None:
        (self.directory / EPISODES_DIR).mkdir(exist_ok=True)
        generation_path = self.directory / GENERATION_FILE
        n_saved = sum(1 for _ in (self.directory / EPISODES_DIR).glob("seed_*.npz"))
        if generation_path.exists() and n_saved:
            try:
                existing = json.loads(generation_path.read_text())
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"{generation_path} cannot be read ({type(error).__name__}: {error}), so the {n_saved} "
                    f"episodes in {self.directory / EPISODES_DIR} cannot be resumed safely. Pass another "
                    "output directory, or delete this one to start over."
                ) from None
            if existing != generation:
                changes = differences(existing, generation)
                raise ValueError(
                    f"{self.directory} holds {n_saved} episodes of another generation run; these settings "
                    f"differ (recorded -> now): {'; '.join(changes)}. Re-run with the recorded settings to "
                    "resume, or pass another output directory."
                )
        else:
            # No episode finished yet: nothing to lose, the settings of this run are recorded.
            _write_atomic(generation_path, json.dumps(generation, indent=2, sort_keys=True))

    def close(self, discard_if_empty: bool = False) -> None:
        """
        Release the directory's lock.

        :param discard_if_empty: remove what the store wrote when it saved no episode into a directory it
            created, so that a run that failed at once leaves no stub behind
        """
        if discard_if_empty and self.created_directory and self.saved == 0:
            (self.directory / GENERATION_FILE).unlink(missing_ok=True)
            for name in (EPISODES_DIR, TRANSCRIPTS_DIR):
                path = self.directory / name
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            self._lock.release()
            (self.directory / LOCK_FILE).unlink(missing_ok=True)
            if not any(self.directory.iterdir()):
                self.directory.rmdir()
            return
        self._lock.release()

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(discard_if_empty=exc is not None)

    def _episode_path(self, seed: int) -> Path:
        return self.directory / EPISODES_DIR / f"seed_{seed}.npz"

    def transcript_path(self, seed: int) -> Path:
        """
        :param seed: an episode's seed
        :return: where that episode's JSONL transcript lives
        """
        return self.directory / TRANSCRIPTS_DIR / f"seed_{seed}.jsonl"

    def __contains__(self, seed: int) -> bool:
        return self._episode_path(seed).exists()

    def saved_seeds(self) -> list[int]:
        """:return: the seeds of the episodes saved in the directory, in increasing order"""
        seeds = []
        for path in (self.directory / EPISODES_DIR).glob("seed_*.npz"):
            number = path.stem.removeprefix("seed_")
            if number.isdigit():
                seeds.append(int(number))
        return sorted(seeds)

    def save(self, record: EpisodeRecord) -> None:
        """
        Write one finished episode (and its transcript, if the expert kept one).

        :param record: the episode
        """
        summary = dict(record.expert_summary)
        transcript = summary.pop("transcript", None)
        if transcript is not None:
            path = self.transcript_path(record.seed)
            path.parent.mkdir(exist_ok=True)
            _write_atomic(path, "".join(json.dumps(entry) + "\n" for entry in transcript))
            summary["transcript"] = str(path.relative_to(self.directory))
        trajectory = record.trajectory
        arrays: dict[str, Any] = {
            "obs": np.asarray(trajectory.obs),
            "acts": trajectory.acts,
            "rews": trajectory.rews,
            "terminal": trajectory.terminal,
            "success": record.success,
            "summary": json.dumps(summary),
        }
        if record.action_probs is not None:
            arrays["action_probs"] = record.action_probs
        with _atomic_file(self._episode_path(record.seed)) as file:
            np.savez_compressed(file, **arrays)
        self.saved += 1

    def load(self, seed: int) -> EpisodeRecord:
        """
        :param seed: an episode's seed, which must be in the store
        :return: the episode
        :raises ValueError: naming the file and how to drop it, when it is truncated or damaged
        """
        path = self._episode_path(seed)
        try:
            with np.load(path) as data:
                trajectory = TrajectoryWithRew(
                    obs=data["obs"],
                    acts=data["acts"],
                    infos=None,
                    terminal=bool(data["terminal"]),
                    rews=data["rews"],
                )
                action_probs = data["action_probs"] if "action_probs" in data.files else None
                return EpisodeRecord(
                    seed, trajectory, bool(data["success"]), json.loads(str(data["summary"])), action_probs
                )
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"The finished episode {path} is damaged ({type(error).__name__}: {error}). Delete that file "
                f"to play the episode with seed {seed} again, then re-run to resume."
            ) from None


def _is_empty_directory(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


@contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """
    Write ``path`` all or nothing, durably: into a side file, synced, then renamed over ``path``.

    :param path: the file to write
    :return: the open side file, to write into
    """
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as file:
        yield file
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def _write_atomic(path: Path, text: str) -> None:
    with _atomic_file(path) as file:
        file.write(text.encode())


def save_demonstrations(demos: Demonstrations, path: str | os.PathLike[str]) -> Path:
    """
    Save demonstrations: imitation's serialize format (a HuggingFace dataset) in
    ``path/trajectories`` and the metadata in ``path/metadata.json``.

    :param demos: the demonstrations
    :param path: a directory (created if needed)
    :return: the directory
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    if demos.trajectories:
        serialize.save(directory / TRAJECTORIES_DIR, demos.trajectories)
    else:  # a HuggingFace dataset cannot be empty; the metadata still records what was played
        (directory / TRAJECTORIES_DIR).mkdir(exist_ok=True)
    if demos.action_probs is not None:
        with _atomic_file(directory / ACTION_PROBS_FILE) as file:
            np.savez_compressed(file, *demos.action_probs)
    _write_atomic(directory / METADATA_FILE, json.dumps(demos.metadata.to_dict(), indent=2))
    return directory


def _as_stored(trajectory: TrajectoryWithRew, dtype: np.dtype, index: int) -> TrajectoryWithRew:
    """
    A loaded trajectory with its observations in the recorded dtype, refusing values that the cast would
    change silently (NaN becomes 0 in an integer array, 300 becomes 44 in uint8).

    :raises ValueError: naming the trajectory and step
    """
    obs = np.asarray(trajectory.obs)
    if obs.dtype != dtype and np.issubdtype(dtype, np.integer):
        per_step = obs.reshape(len(obs), -1)
        limits = np.iinfo(dtype)
        bad = (~np.isfinite(per_step) | (per_step < limits.min) | (per_step > limits.max)).any(axis=1)
        if np.issubdtype(per_step.dtype, np.floating):
            bad |= (per_step != np.round(per_step)).any(axis=1)
        if bad.any():
            raise ValueError(
                f"trajectory {index}, step {int(np.argmax(bad))}: an observation value is not a {dtype} "
                "(NaN, infinite, fractional or out of range)"
            )
    return TrajectoryWithRew(
        obs=obs.astype(dtype, copy=False),
        acts=np.asarray(trajectory.acts, dtype=np.int64),
        infos=None,
        terminal=bool(trajectory.terminal),
        rews=np.asarray(trajectory.rews, dtype=np.float32),
    )


def load_demonstrations(
    path: str | os.PathLike[str], observation_space: gym.Space | None = None
) -> Demonstrations:
    """
    Load demonstrations written by :func:`save_demonstrations` (or ``sb3-llmae generate``).

    :param path: the directory
    :param observation_space: if given, check that a policy with this observation space can
        be trained on them
    :return: the demonstrations
    :raises FileNotFoundError: if ``path`` holds no demonstrations
    :raises ValueError: if they are corrupt (naming the file, and the field or transition) or do not match
        ``observation_space``
    """
    directory = Path(path)
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file() or not (directory / TRAJECTORIES_DIR).is_dir():
        raise FileNotFoundError(
            f"No demonstrations at {directory}: expected a directory with {METADATA_FILE} and "
            f"{TRAJECTORIES_DIR}/, as written by save_demonstrations() or `sb3-llmae generate --out DIR`."
        )
    try:
        raw_metadata = json.loads(metadata_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"{metadata_path} cannot be read ({type(error).__name__}: {error}). It is damaged: generate the "
            "demonstrations again."
        ) from None
    metadata = DemonstrationMetadata.from_dict(raw_metadata, source=str(metadata_path))
    try:
        dtype = np.dtype(metadata.observation_space["dtype"])
        loaded = serialize.load_with_rewards(directory / TRAJECTORIES_DIR) if metadata.kept_seeds else []
        trajectories = [_as_stored(trajectory, dtype, index) for index, trajectory in enumerate(loaded)]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"The demonstrations at {directory} could not be read ({type(error).__name__}: {error}). "
            "The files are corrupt or from an incompatible version: generate them again."
        ) from error
    action_probs = None
    if (directory / ACTION_PROBS_FILE).is_file():
        try:
            with np.load(directory / ACTION_PROBS_FILE) as data:
                action_probs = [data[f"arr_{index}"] for index in range(len(data.files))]
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"{directory / ACTION_PROBS_FILE} is damaged ({type(error).__name__}: {error}): generate the "
                "demonstrations again, or delete it to train on the actions alone."
            ) from None
    try:
        demos = Demonstrations(trajectories=trajectories, metadata=metadata, action_probs=action_probs)
    except ValueError as error:
        raise ValueError(f"The demonstrations at {directory} are inconsistent: {error}") from None
    if len(trajectories) != len(metadata.kept_seeds):
        raise ValueError(
            f"The demonstrations at {directory} are inconsistent: {METADATA_FILE} lists "
            f"{len(metadata.kept_seeds)} kept episodes, {TRAJECTORIES_DIR}/ holds {len(trajectories)}. "
            "Generate them again."
        )
    if observation_space is not None:
        demos.check_observation_space(observation_space)
    return demos
