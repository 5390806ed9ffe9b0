"""Rolling experts out into imitation trajectories: generation, statistics, save and load."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, BinaryIO

import gymnasium as gym
import numpy as np
from imitation.data import serialize
from imitation.data.rollout import flatten_trajectories
from imitation.data.types import TrajectoryWithRew, Transitions
from minigrid.core.actions import Actions
from tqdm.auto import tqdm

from sb3_llmae.envs import ObsMode, check_env_id, check_obs_mode, make_env, unwrap_minigrid
from sb3_llmae.experts.base import Expert

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
TRAJECTORIES_DIR = "trajectories"
EPISODES_DIR = "episodes"
TRANSCRIPTS_DIR = "transcripts"
GENERATION_FILE = "generation.json"
VERSIONED_PACKAGES = (
    "sb3-llmae",
    "stable-baselines3",
    "imitation",
    "minigrid",
    "gymnasium",
    "torch",
    "numpy",
)
N_ACTIONS = len(Actions)


class GenerationInterrupted(RuntimeError):
    """A generation run was stopped before all episodes finished; the finished ones are on disk."""


@dataclass(frozen=True)
class EpisodeRecord:
    """
    One expert episode.

    :param seed: the env's reset seed
    :param trajectory: observations (policy layout), actions, rewards
    :param success: whether the episode reached the task's goal (terminated with positive reward)
    :param expert_summary: what the expert reported about the episode (usage, transcript, ...)
    """

    seed: int
    trajectory: TrajectoryWithRew
    success: bool
    expert_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        """:return: number of actions taken"""
        return len(self.trajectory.acts)

    @property
    def episode_return(self) -> float:
        """:return: sum of rewards"""
        return float(np.sum(self.trajectory.rews))


@dataclass
class Demonstrations:
    """
    Expert demonstrations in imitation's format, with the facts needed to trust and reuse them.

    :param trajectories: the kept episodes; observations are exactly what the policy sees
    :param metadata: env id, obs mode, observation space, expert, seeds, statistics, versions
    """

    trajectories: list[TrajectoryWithRew]
    metadata: dict[str, Any]

    @cached_property
    def transitions(self) -> Transitions:
        """:return: the trajectories flattened into imitation ``Transitions``"""
        if not self.trajectories:
            raise ValueError(
                "These demonstrations hold no trajectory (no successful episode?): "
                f"stats={self.stats}. Generate more episodes or use another expert."
            )
        return flatten_trajectories(self.trajectories)

    @property
    def stats(self) -> dict[str, Any]:
        """:return: episodes, successes, success_rate, transitions, mean_length, action_counts"""
        return self.metadata["stats"]

    @property
    def env_id(self) -> str:
        """:return: the env the demonstrations come from"""
        return self.metadata["env_id"]

    @property
    def obs_mode(self) -> ObsMode:
        """:return: ``"image"`` or ``"flat"``"""
        return self.metadata["obs_mode"]

    def __len__(self) -> int:
        return len(self.trajectories)

    def check_observation_space(self, observation_space: gym.Space) -> None:
        """
        Check that a policy with ``observation_space`` can be trained on these demonstrations.

        :param observation_space: the policy's observation space
        :raises ValueError: naming both spaces and the fix
        """
        expected = self.metadata["observation_space"]
        shape = list(getattr(observation_space, "shape", None) or ())
        dtype = str(getattr(observation_space, "dtype", None))
        if shape != expected["shape"] or dtype != expected["dtype"]:
            raise ValueError(
                f"The demonstrations ({self.env_id}, obs_mode={self.obs_mode!r}) hold observations of "
                f"{expected['repr']}, but the policy expects {observation_space}. Train a policy on "
                f"make_env({self.env_id!r}, obs_mode={self.obs_mode!r}), or generate demonstrations "
                "in the policy's observation mode."
            )


def describe_space(space: gym.Space) -> dict[str, Any]:
    """
    :param space: an observation space
    :return: a JSON-serialisable description (repr, shape, dtype) used to check compatibility
    """
    return {"repr": str(space), "shape": list(space.shape or ()), "dtype": str(space.dtype)}


def package_versions() -> dict[str, str]:
    """:return: the versions of the packages that shape the demonstrations"""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def compute_stats(records: Sequence[EpisodeRecord], kept: Sequence[TrajectoryWithRew]) -> dict[str, Any]:
    """
    :param records: every episode played
    :param kept: the trajectories kept as demonstrations
    :return: episodes, successes, success_rate, transitions, mean_length, action_counts
    """
    successes = sum(record.success for record in records)
    actions = Counter(int(a) for trajectory in kept for a in trajectory.acts)
    return {
        "episodes": len(records),
        "successes": successes,
        "success_rate": successes / len(records) if records else 0.0,
        "transitions": sum(len(trajectory.acts) for trajectory in kept),
        "mean_length": float(np.mean([len(t.acts) for t in kept])) if kept else 0.0,
        "mean_length_all": float(np.mean([r.length for r in records])) if records else 0.0,
        "action_counts": {Actions(a).name: actions.get(a, 0) for a in range(N_ACTIONS)},
    }


def rollout_episode(
    env_id: str,
    expert: Expert,
    seed: int,
    obs_mode: ObsMode = "image",
    max_episode_steps: int | None = None,
    stop: threading.Event | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> EpisodeRecord:
    """
    Play one episode with an expert.

    :param env_id: a MiniGrid / BabyAI id
    :param expert: the expert
    :param seed: the env's reset seed
    :param obs_mode: layout of the recorded observations (that of the policy to train)
    :param max_episode_steps: step limit; ``None`` keeps the env's own
    :param stop: when set, the episode is abandoned between steps (raises :class:`GenerationInterrupted`)
    :param env_kwargs: passed to the env constructor
    :return: the episode
    """
    env = make_env(env_id, obs_mode=obs_mode, max_episode_steps=max_episode_steps, **(env_kwargs or {}))
    try:
        observation, _ = env.reset(seed=seed)
        episode = expert.start_episode(unwrap_minigrid(env), seed)
        observations, actions, rewards = [observation], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            if stop is not None and stop.is_set():
                raise GenerationInterrupted(f"episode with seed {seed} abandoned")
            action = int(episode.act())
            if not 0 <= action < env.action_space.n:
                raise ValueError(
                    f"{type(expert).__name__} chose action {action}, not in 0..{env.action_space.n - 1}."
                )
            observation, reward, terminated, truncated, _ = env.step(action)
            episode.observe(action, float(reward), terminated, truncated)
            observations.append(observation)
            actions.append(action)
            rewards.append(float(reward))
    finally:
        env.close()
    trajectory = TrajectoryWithRew(
        obs=np.stack(observations),
        acts=np.asarray(actions, dtype=np.int64),
        infos=None,
        terminal=bool(terminated),
        rews=np.asarray(rewards, dtype=np.float32),
    )
    success = bool(terminated and rewards[-1] > 0)
    return EpisodeRecord(seed=seed, trajectory=trajectory, success=success, expert_summary=episode.summary())


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
                obs=trajectory.obs,
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


def _play_episodes(
    seeds: Sequence[int],
    play: Callable[[int], EpisodeRecord],
    n_workers: int,
    stop: threading.Event,
) -> Iterator[EpisodeRecord]:
    """Yield episodes in completion order, ``n_workers`` at a time; on interruption stop the others."""
    if n_workers == 1:
        for seed in seeds:
            yield play(seed)
        return
    executor = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="sb3-llmae-episode")
    pending: set[Future[EpisodeRecord]] = {executor.submit(play, seed) for seed in seeds}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)


def generate_demonstrations(
    env_id: str,
    expert: Expert,
    n_episodes: int,
    seed: int = 0,
    obs_mode: ObsMode = "image",
    only_successful: bool = True,
    max_episode_steps: int | None = None,
    n_workers: int = 1,
    out_dir: str | os.PathLike[str] | None = None,
    progress_bar: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> Demonstrations:
    """
    Roll an expert out on ``n_episodes`` seeds (``seed``, ``seed + 1``, ...) and keep its episodes
    as demonstrations.

    With ``out_dir``, every finished episode is saved as it completes and a re-run into the same
    directory skips the seeds already played (resume); the demonstrations are saved there at the
    end (:func:`save_demonstrations`), with one JSONL transcript per episode when the expert keeps one.

    :param env_id: a MiniGrid / BabyAI id
    :param expert: the expert (e.g. ``PlannerExpert()`` or ``LLMExpert(model=...)``)
    :param n_episodes: number of episodes to play
    :param seed: seed of the first episode
    :param obs_mode: observation layout of the policy to train: ``"image"`` or ``"flat"``
    :param only_successful: keep only the episodes that reached the goal
    :param max_episode_steps: step limit; ``None`` keeps the env's own
    :param n_workers: episodes played at once (threads: worth it when the expert waits on an LLM)
    :param out_dir: where to save episodes as they finish, and the demonstrations at the end
    :param progress_bar: show a progress bar with the live success rate
    :param env_kwargs: passed to the env constructor
    :return: the demonstrations, in seed order whatever the completion order
    """
    check_env_id(env_id)
    check_obs_mode(obs_mode)
    if n_episodes <= 0:
        raise ValueError(f"n_episodes must be positive, got {n_episodes}.")
    if n_workers <= 0:
        raise ValueError(f"n_workers must be positive, got {n_workers}.")
    seeds = list(range(seed, seed + n_episodes))
    generation = {
        "env_id": env_id,
        "obs_mode": obs_mode,
        "max_episode_steps": max_episode_steps,
        "env_kwargs": env_kwargs or {},
        "expert": expert.identity(),
    }
    store = EpisodeStore(out_dir, generation) if out_dir is not None else None
    records: dict[int, EpisodeRecord] = {}
    if store is not None:
        records = {s: store.load(s) for s in seeds if s in store}
        if records:
            logger.info(
                "Resuming in %s: %d of %d episodes already played.", out_dir, len(records), n_episodes
            )
    stop = threading.Event()

    def play(episode_seed: int) -> EpisodeRecord:
        record = rollout_episode(env_id, expert, episode_seed, obs_mode, max_episode_steps, stop, env_kwargs)
        if store is not None:
            store.save(record)
        return record

    start = time.perf_counter()
    todo = [s for s in seeds if s not in records]
    successes = sum(r.success for r in records.values())
    with tqdm(total=n_episodes, initial=len(records), disable=not progress_bar, desc=env_id) as bar:
        try:
            for record in _play_episodes(todo, play, n_workers, stop):
                records[record.seed] = record
                successes += record.success
                bar.set_postfix(success=f"{successes / len(records):.0%}", **expert.progress_info())
                bar.update()
        except BaseException as error:  # Ctrl-C, an LLM endpoint that gave up, a bug in an expert
            where = (
                f"saved in {out_dir}; re-run with the same output directory to resume"
                if store is not None
                else "not saved (pass out_dir to keep finished episodes)"
            )
            logger.warning(
                "Generation stopped by %s: %d of %d episodes finished, %s.",
                type(error).__name__,
                len(records),
                n_episodes,
                where,
            )
            raise
    ordered = [records[s] for s in seeds]
    kept_records = [r for r in ordered if r.success or not only_successful]
    kept = [r.trajectory for r in kept_records]
    space_env = make_env(env_id, obs_mode=obs_mode, **(env_kwargs or {}))
    observation_space = space_env.observation_space
    space_env.close()
    demos = Demonstrations(
        trajectories=kept,
        metadata={
            **generation,
            "expert": expert.describe(),
            "observation_space": describe_space(observation_space),
            "seeds": seeds,
            "kept_seeds": [r.seed for r in kept_records],
            "only_successful": only_successful,
            "stats": compute_stats(ordered, kept),
            "episodes": [
                {
                    "seed": r.seed,
                    "success": r.success,
                    "length": r.length,
                    "return": r.episode_return,
                    **{k: v for k, v in r.expert_summary.items() if k != "transcript"},
                }
                for r in ordered
            ],
            "generation_seconds": time.perf_counter() - start,
            "versions": package_versions(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    if store is not None:
        save_demonstrations(demos, store.directory)
    logger.info(
        "%s: %d/%d successful episodes, %d transitions.",
        env_id,
        demos.stats["successes"],
        n_episodes,
        demos.stats["transitions"],
    )
    return demos


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
