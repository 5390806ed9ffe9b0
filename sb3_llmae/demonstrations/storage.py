"""Demonstrations on disk: one atomic file per finished episode (resume), and the saved set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import gymnasium as gym
import numpy as np
from imitation.data import serialize
from imitation.data.types import TrajectoryWithRew

from sb3_llmae.demonstrations.containers import Demonstrations, EpisodeRecord

METADATA_FILE = "metadata.json"
TRAJECTORIES_DIR = "trajectories"
EPISODES_DIR = "episodes"
TRANSCRIPTS_DIR = "transcripts"
GENERATION_FILE = "generation.json"


class EpisodeStore:
    """
    Finished episodes of one generation run, one file each, written atomically as they complete,
    so that an interrupted run loses nothing finished and a re-run resumes.

    :param directory: the generation's output directory
    :param generation: what identifies the run (env, obs mode, expert, step limit); a directory
        holding episodes of another generation is refused
    """

    def __init__(self, directory: str | os.PathLike[str], generation: dict[str, Any]) -> None:
        self.directory = Path(directory)
        (self.directory / EPISODES_DIR).mkdir(parents=True, exist_ok=True)
        generation_path = self.directory / GENERATION_FILE
        if generation_path.exists():
            existing = json.loads(generation_path.read_text())
            if existing != generation:
                changed = sorted(k for k in {*existing, *generation} if existing.get(k) != generation.get(k))
                raise ValueError(
                    f"{self.directory} holds episodes of another generation run (differs in: "
                    f"{', '.join(changed)}). Use another output directory, or delete it to start over."
                )
        else:
            _write_atomic(generation_path, json.dumps(generation, indent=2, sort_keys=True))

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
        with _atomic_file(self._episode_path(record.seed)) as file:
            np.savez_compressed(
                file,
                obs=np.asarray(trajectory.obs),
                acts=trajectory.acts,
                rews=trajectory.rews,
                terminal=trajectory.terminal,
                success=record.success,
                summary=json.dumps(summary),
            )

    def load(self, seed: int) -> EpisodeRecord:
        """
        :param seed: an episode's seed, which must be in the store
        :return: the episode
        """
        with np.load(self._episode_path(seed)) as data:
            trajectory = TrajectoryWithRew(
                obs=data["obs"],
                acts=data["acts"],
                infos=None,
                terminal=bool(data["terminal"]),
                rews=data["rews"],
            )
            return EpisodeRecord(seed, trajectory, bool(data["success"]), json.loads(str(data["summary"])))


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
    _write_atomic(directory / METADATA_FILE, json.dumps(demos.metadata, indent=2))
    return directory


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
    :raises ValueError: if they are corrupt or do not match ``observation_space``
    """
    directory = Path(path)
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file() or not (directory / TRAJECTORIES_DIR).is_dir():
        raise FileNotFoundError(
            f"No demonstrations at {directory}: expected a directory with {METADATA_FILE} and "
            f"{TRAJECTORIES_DIR}/, as written by save_demonstrations() or `sb3-llmae generate --out DIR`."
        )
    try:
        metadata = json.loads(metadata_path.read_text())
        dtype = np.dtype(metadata["observation_space"]["dtype"])
        trajectories = [
            TrajectoryWithRew(
                obs=np.asarray(t.obs, dtype=dtype),
                acts=np.asarray(t.acts, dtype=np.int64),
                infos=None,
                terminal=bool(t.terminal),
                rews=np.asarray(t.rews, dtype=np.float32),
            )
            for t in (
                serialize.load_with_rewards(directory / TRAJECTORIES_DIR) if metadata["kept_seeds"] else []
            )
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"The demonstrations at {directory} could not be read ({type(error).__name__}: {error}). "
            "The files are corrupt or from an incompatible version: generate them again."
        ) from error
    demos = Demonstrations(trajectories=trajectories, metadata=metadata)
    if len(trajectories) != len(metadata["kept_seeds"]):
        raise ValueError(
            f"The demonstrations at {directory} are inconsistent: {METADATA_FILE} lists "
            f"{len(metadata['kept_seeds'])} kept episodes, {TRAJECTORIES_DIR}/ holds {len(trajectories)}. "
            "Generate them again."
        )
    if observation_space is not None:
        demos.check_observation_space(observation_space)
    return demos
