"""Rolling an expert out into demonstrations: one episode, and many on worker threads with resume."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import Any

import gymnasium as gym
import numpy as np
from imitation.data.types import TrajectoryWithRew
from tqdm.auto import tqdm

from sb3_llmae.demonstrations.containers import (
    N_ACTIONS,
    DemonstrationMetadata,
    Demonstrations,
    EpisodeRecord,
    compute_stats,
    describe_space,
    package_versions,
)
from sb3_llmae.demonstrations.storage import EpisodeStore, save_demonstrations
from sb3_llmae.envs import (
    DEFAULT_OBS_MODE,
    ObsMode,
    check_env_id,
    check_max_episode_steps,
    check_obs_mode,
    is_success,
    make_env,
    unwrap_minigrid,
)
from sb3_llmae.experts.base import Expert
from sb3_llmae.experts.llm.settings import HIGH_FALLBACK_RATE

logger = logging.getLogger(__name__)


class GenerationInterrupted(RuntimeError):
    """A generation run was stopped before all episodes finished; the finished ones are on disk."""


def rollout_episode(
    env_id: str,
    expert: Expert,
    seed: int,
    obs_mode: ObsMode = DEFAULT_OBS_MODE,
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
        distributions: list[np.ndarray | None] = []
        terminated = truncated = False
        while not (terminated or truncated):
            if stop is not None and stop.is_set():
                raise GenerationInterrupted(f"episode with seed {seed} abandoned")
            action = int(episode.act())
            distributions.append(episode.action_distribution())
            if not env.action_space.contains(action):
                raise ValueError(f"{type(expert).__name__} chose action {action}, not in {env.action_space}.")
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
    success = is_success(terminated, rewards[-1])
    return EpisodeRecord(
        seed=seed,
        trajectory=trajectory,
        success=success,
        expert_summary=episode.summary(),
        action_probs=_stacked_distributions(distributions, N_ACTIONS),
    )


def _stacked_distributions(distributions: Sequence[np.ndarray | None], n_actions: int) -> np.ndarray | None:
    """:return: one row per step (NaN where the expert gave none), ``None`` when it gave none at all"""
    if all(distribution is None for distribution in distributions):
        return None
    rows = np.full((len(distributions), n_actions), np.nan, dtype=np.float32)
    for step, distribution in enumerate(distributions):
        if distribution is not None:
            rows[step] = distribution
    return rows


def _action_probs_of(records: Sequence[EpisodeRecord]) -> list[np.ndarray] | None:
    """:return: the kept episodes' distributions (NaN rows for episodes without), ``None`` if none has any"""
    if all(record.action_probs is None for record in records):
        return None
    n_actions = next(r.action_probs.shape[1] for r in records if r.action_probs is not None)
    return [
        record.action_probs
        if record.action_probs is not None
        else np.full((record.length, n_actions), np.nan, dtype=np.float32)
        for record in records
    ]


# How often an interrupted run repeats its cancellation while the workers wind down: a worker may have
# started a request just after the previous one.
CANCEL_INTERVAL_S = 0.1


def _play_episodes(
    seeds: Iterable[int],
    play: Callable[[int], EpisodeRecord],
    n_workers: int,
    stop: threading.Event,
    expert: Expert,
) -> Iterator[EpisodeRecord]:
    """
    Yield episodes in completion order, ``n_workers`` at a time. When the run ends early (Ctrl-C, an
    episode that failed), the episodes still in play are abandoned: between steps by ``stop``, and within
    a step by ``expert.cancel()`` (a request in flight, a wait between retries), so that the run ends
    within moments in every state. Episodes that finished are already saved by ``play``.
    """
    if n_workers == 1:
        for seed in seeds:
            yield play(seed)
        return
    executor = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="sb3-llmae-episode")
    # Submitted as workers free up, so that a run of any length holds n_workers episodes at most.
    todo = iter(seeds)
    pending: set[Future[EpisodeRecord]] = {executor.submit(play, seed) for seed in islice(todo, n_workers)}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending.update(executor.submit(play, seed) for seed in islice(todo, 1))
                yield future.result()
    finally:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        # Futures cancelled before they started count as done for done(), but never for wait().
        while running := [future for future in pending if not future.done()]:
            expert.cancel()
            wait(running, timeout=CANCEL_INTERVAL_S)


def generate_demonstrations(
    env_id: str,
    expert: Expert,
    n_episodes: int,
    seed: int = 0,
    obs_mode: ObsMode = DEFAULT_OBS_MODE,
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
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (env seeds are non-negative integers), got {seed}.")
    check_max_episode_steps(max_episode_steps)
    # a range, not a list: a run of a billion episodes must not hold a billion seeds before it starts
    seeds = range(seed, seed + n_episodes)
    # Everything that can be checked is checked before anything is written.
    observation_space = _check_expert_can_play(env_id, expert, seed, obs_mode, max_episode_steps, env_kwargs)
    generation = {
        "env_id": env_id,
        "obs_mode": obs_mode,
        "max_episode_steps": max_episode_steps,
        "env_kwargs": env_kwargs or {},
        "expert": expert.identity(),
    }
    store = EpisodeStore(out_dir, generation) if out_dir is not None else None
    start = time.perf_counter()
    # On failure the store keeps what finished, or removes its stub when nothing did.
    with store if store is not None else contextlib.nullcontext():
        records = _play_all(
            seeds,
            functools.partial(
                rollout_episode,
                env_id,
                expert,
                obs_mode=obs_mode,
                max_episode_steps=max_episode_steps,
                env_kwargs=env_kwargs,
            ),
            expert,
            store,
            n_workers,
            progress_bar,
            env_id,
        )
        ordered = [records[s] for s in seeds]
        kept_records = [r for r in ordered if r.success or not only_successful]
        kept = [r.trajectory for r in kept_records]
        demos = Demonstrations(
            trajectories=kept,
            action_probs=_action_probs_of(kept_records),
            metadata=DemonstrationMetadata.from_dict(
                {
                    **generation,
                    "expert": expert.describe(),
                    "observation_space": describe_space(observation_space),
                    "seeds": list(seeds),
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
                    # The expert's own totals (an LLM's calls, cache hits, tokens, cost) at the run's end.
                    "usage": expert.usage(),
                    "versions": package_versions(),
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                }
            ),
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
    if demos.stats["fallback_rate"] >= HIGH_FALLBACK_RATE:
        logger.warning(
            "%.0f%% of the steps took the fallback action, not one the expert chose (%d episodes mostly): "
            "the replies held no valid action. Check a transcript, the model name and the prompt.",
            100 * demos.stats["fallback_rate"],
            demos.stats["mostly_fallback_episodes"],
        )
    return demos


def _check_expert_can_play(
    env_id: str,
    expert: Expert,
    seed: int,
    obs_mode: ObsMode,
    max_episode_steps: int | None,
    env_kwargs: dict[str, Any] | None,
) -> gym.Space:
    """
    Make the env, reset it with the first seed and start the expert's episode on it, so that an env the
    expert cannot play (or env arguments the env refuses) fail before any output is written.

    :return: the env's observation space
    """
    env = make_env(env_id, obs_mode=obs_mode, max_episode_steps=max_episode_steps, **(env_kwargs or {}))
    try:
        env.reset(seed=seed)
        expert.start_episode(unwrap_minigrid(env), seed)
        return env.observation_space
    finally:
        env.close()


def _play_all(
    seeds: Sequence[int],
    rollout: Callable[..., EpisodeRecord],
    expert: Expert,
    store: EpisodeStore | None,
    n_workers: int,
    progress_bar: bool,
    description: str,
) -> dict[int, EpisodeRecord]:
    """
    Every episode of ``seeds``: those ``store`` holds already, and the others played now and saved there
    as each finishes.

    :param seeds: the seeds of the run
    :param rollout: plays one episode, given its seed and ``stop=`` (see :func:`rollout_episode`)
    :param expert: the expert, cancelled when the run stops early
    :param store: where finished episodes are kept, if anywhere
    :param n_workers: episodes played at once
    :param progress_bar: show a progress bar with the live success rate
    :param description: the progress bar's label
    :return: the episodes by seed
    """
    n_episodes = len(seeds)
    records: dict[int, EpisodeRecord] = {}
    if store is not None:
        records = {s: store.load(s) for s in store.saved_seeds() if s in seeds}
        if records:
            logger.info(
                "Resuming in %s: %d of %d episodes already played.", store.directory, len(records), n_episodes
            )
    stop = threading.Event()

    def play(episode_seed: int) -> EpisodeRecord:
        record = rollout(episode_seed, stop=stop)
        if store is not None:
            store.save(record)
        # The transcript is on disk (or not wanted): dropping it keeps long runs' memory flat.
        summary = {k: v for k, v in record.expert_summary.items() if k != "transcript"}
        return dataclasses.replace(record, expert_summary=summary)

    todo = (s for s in seeds if s not in records)
    successes = sum(r.success for r in records.values())
    with tqdm(total=n_episodes, initial=len(records), disable=not progress_bar, desc=description) as bar:
        try:
            for record in _play_episodes(todo, play, n_workers, stop, expert):
                records[record.seed] = record
                successes += record.success
                bar.set_postfix(success=f"{successes / len(records):.0%}", **expert.progress_info())
                bar.update()
        except BaseException as error:  # Ctrl-C, an LLM endpoint that gave up, a bug in an expert
            if store is None:
                where = "not saved (pass out_dir to keep finished episodes)"
            elif records:
                where = f"saved in {store.directory}; re-run with the same output directory to resume"
            else:
                where = "so nothing was saved"
            logger.warning(
                "Generation stopped by %s: %d of %d episodes finished, %s.",
                type(error).__name__,
                len(records),
                n_episodes,
                where,
            )
            raise
    return records
