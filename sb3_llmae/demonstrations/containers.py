"""Demonstrations in imitation's format, with the typed, versioned metadata that says where they come from."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata as importlib_metadata
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from imitation.data.rollout import flatten_trajectories
from imitation.data.types import TrajectoryWithRew, Transitions
from minigrid.core.actions import Actions

from sb3_llmae.envs import OBS_MODES, ObsMode

logger = logging.getLogger(__name__)

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
# The layout of the metadata this version writes. Files without the field were written before it
# existed, in the layout of version 1.
METADATA_SCHEMA_VERSION = 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_int(item) for item in value)


def _is_space(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("repr"), str)
        and _is_int_list(value.get("shape"))
        and isinstance(value.get("dtype"), str)
    )


# field -> (check, what the check wants), for the fields read from JSON
_FIELD_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "schema_version": (_is_int, "an integer"),
    "env_id": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "obs_mode": (lambda v: v in OBS_MODES, f"one of {', '.join(OBS_MODES)}"),
    "observation_space": (_is_space, "an object with 'repr' (string), 'shape' (integers), 'dtype' (string)"),
    "kept_seeds": (_is_int_list, "a list of integers"),
    "seeds": (_is_int_list, "a list of integers"),
    "max_episode_steps": (lambda v: v is None or (_is_int(v) and v > 0), "a positive integer or null"),
    "env_kwargs": (lambda v: isinstance(v, dict), "an object"),
    "expert": (lambda v: isinstance(v, dict), "an object"),
    "only_successful": (lambda v: isinstance(v, bool), "true or false"),
    "stats": (lambda v: isinstance(v, dict), "an object"),
    "episodes": (lambda v: isinstance(v, list) and all(isinstance(e, dict) for e in v), "a list of objects"),
    "generation_seconds": (lambda v: v is None or _is_number(v), "a number or null"),
    "versions": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()), "an object"),
    "created": (lambda v: v is None or isinstance(v, str), "a string or null"),
}


@dataclass(frozen=True)
class DemonstrationMetadata(Mapping[str, Any]):
    """
    Where demonstrations come from and what they hold: the typed, versioned content of ``metadata.json``.

    Read access by key (``metadata["kept_seeds"]``, ``metadata.get("env_kwargs")``) gives the same values as
    the attributes, as in the JSON file.

    :param env_id: the env the episodes were played in
    :param obs_mode: the observation layout of the recorded observations (``"image"`` or ``"flat"``)
    :param observation_space: ``repr``, ``shape`` and ``dtype`` of the observation space (``describe_space``)
    :param kept_seeds: the seeds of the kept episodes, in the order of the trajectories
    :param seeds: the seeds of every episode played
    :param max_episode_steps: the step limit, ``None`` for the env's own
    :param env_kwargs: the env constructor's keyword arguments
    :param expert: the expert's description (never a secret)
    :param only_successful: whether only successful episodes were kept
    :param stats: episodes, successes, success rate, transitions, lengths, action counts, fallback rate
    :param episodes: one record per episode played (seed, success, length, return, the expert's summary)
    :param generation_seconds: wall time of the generation run
    :param versions: versions of the packages that shaped the episodes
    :param created: when the demonstrations were made (ISO 8601)
    :param extra: fields this version does not know (written by a newer one or another tool), kept as they are
    :param schema_version: the metadata's layout version
    """

    env_id: str
    obs_mode: ObsMode
    observation_space: dict[str, Any]
    kept_seeds: list[int]
    seeds: list[int] = field(default_factory=list)
    max_episode_steps: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    expert: dict[str, Any] = field(default_factory=dict)
    only_successful: bool = True
    stats: dict[str, Any] = field(default_factory=dict)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    generation_seconds: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = METADATA_SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Any, source: str = "metadata") -> DemonstrationMetadata:
        """
        Read metadata from its JSON form, checking every field.

        :param data: the parsed JSON
        :param source: what it was read from (a file path), named in errors
        :return: the metadata
        :raises ValueError: naming ``source`` and the first field that is missing or of the wrong type, or a
            schema version newer than this package reads
        """
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}.")
        version = data.get("schema_version", 1)
        if not _is_int(version) or version < 1:
            raise ValueError(f"{source}: field 'schema_version' must be a positive integer, got {version!r}.")
        if version > METADATA_SCHEMA_VERSION:
            raise ValueError(
                f"{source} has metadata schema version {version}, newer than this sb3-llmae reads "
                f"({METADATA_SCHEMA_VERSION}): upgrade sb3-llmae to load it."
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        required = {
            f.name for f in dataclasses.fields(cls) if f.default is f.default_factory is dataclasses.MISSING
        }
        for name in sorted(required - set(data)):
            raise ValueError(
                f"{source}: required field {name!r} is missing. Generate the demonstrations again."
            )
        for name, value in data.items():
            if name not in _FIELD_TYPES:
                continue
            check, wanted = _FIELD_TYPES[name]
            if not check(value):
                shown = repr(value)
                shown = shown if len(shown) <= 80 else shown[:80] + "..."
                raise ValueError(
                    f"{source}: field {name!r} must be {wanted}, got {type(value).__name__} {shown}. "
                    "The file was edited or damaged: fix that field or generate the demonstrations again."
                )
        known = {name: value for name, value in data.items() if name in names}
        extra = {name: value for name, value in data.items() if name not in names}
        return cls(**{**known, "schema_version": METADATA_SCHEMA_VERSION}, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """:return: the JSON form, as written to ``metadata.json``"""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **data}

    def __getitem__(self, key: str) -> Any:
        if key != "extra" and key in self.__dataclass_fields__:
            return getattr(self, key)
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


@dataclass(frozen=True)
class EpisodeRecord:
    """
    One expert episode.

    :param seed: the env's reset seed
    :param trajectory: observations (policy layout), actions, rewards
    :param success: whether the episode reached the task's goal (terminated with positive reward)
    :param expert_summary: what the expert reported about the episode (usage, transcript, ...)
    :param action_probs: the expert's distribution over the actions at each step (``(length, n_actions)``;
        a row of NaN where it had none), ``None`` when it gave none at all
    """

    seed: int
    trajectory: TrajectoryWithRew
    success: bool
    expert_summary: dict[str, Any] = field(default_factory=dict)
    action_probs: np.ndarray | None = None

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
    :param metadata: env id, obs mode, observation space, expert, seeds, statistics, versions (a plain dict
        in the JSON layout is checked and converted)
    :param action_probs: per trajectory, the expert's distribution over the actions at each step
        (``(length, n_actions)``, NaN rows where it had none); ``None`` when the expert gave none
    """

    trajectories: list[TrajectoryWithRew]
    metadata: DemonstrationMetadata
    action_probs: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, DemonstrationMetadata):
            self.metadata = DemonstrationMetadata.from_dict(self.metadata)
        if self.action_probs is not None:
            if len(self.action_probs) != len(self.trajectories):
                raise ValueError(
                    f"action_probs has {len(self.action_probs)} arrays for {len(self.trajectories)} "
                    "trajectories."
                )
            for index, (probs, trajectory) in enumerate(
                zip(self.action_probs, self.trajectories, strict=True)
            ):
                if probs.ndim != 2 or len(probs) != len(trajectory.acts):
                    raise ValueError(
                        f"action_probs[{index}] has shape {probs.shape}, expected ({len(trajectory.acts)}, "
                        "n_actions): one distribution per step."
                    )

    def soft_targets(self) -> np.ndarray | None:
        """
        The teacher's distribution over the actions for every transition, in the order of
        :attr:`transitions`: what soft-target BC fits. A step without one (a fallback action) has the
        one-hot of the action taken.

        :return: ``(n_transitions, n_actions)`` probabilities, ``None`` when the expert gave none
        """
        if self.action_probs is None:
            return None
        targets = np.concatenate(self.action_probs).astype(np.float32)
        acts = self.transitions.acts.astype(np.int64)
        missing = ~np.isfinite(targets).all(axis=1)
        targets[missing] = np.eye(targets.shape[1], dtype=np.float32)[acts[missing]]
        return targets

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
        return self.metadata.stats

    @property
    def env_id(self) -> str:
        """:return: the env the demonstrations come from"""
        return self.metadata.env_id

    @property
    def obs_mode(self) -> ObsMode:
        """:return: ``"image"`` or ``"flat"``"""
        return self.metadata.obs_mode

    def __len__(self) -> int:
        return len(self.trajectories)

    def check_observation_space(self, observation_space: gym.Space) -> None:
        """
        Check that a policy with ``observation_space`` can be trained on these demonstrations.

        :param observation_space: the policy's observation space
        :raises ValueError: naming both spaces and the fix
        """
        expected = self.metadata.observation_space
        shape = list(getattr(observation_space, "shape", None) or ())
        dtype = str(getattr(observation_space, "dtype", None))
        if shape != expected["shape"] or dtype != expected["dtype"]:
            raise ValueError(
                f"The demonstrations ({self.env_id}, obs_mode={self.obs_mode!r}) hold observations of "
                f"{expected['repr']}, but the policy expects {observation_space}. Train a policy on "
                f"make_env({self.env_id!r}, obs_mode={self.obs_mode!r}), or generate demonstrations "
                "in the policy's observation mode."
            )

    def check_env_id(self, env_id: str | None, allow_env_mismatch: bool = False) -> None:
        """
        Check that these demonstrations come from the env a policy is trained on.

        :param env_id: the policy's env id (``None``: unknown, nothing to check)
        :param allow_env_mismatch: only warn when they differ (e.g. to transfer between MiniGrid tasks)
        :raises ValueError: naming both ids and the fix, when they differ and that is not allowed
        """
        if env_id is None or env_id == self.env_id:
            return
        if allow_env_mismatch:
            logger.warning("Training on demonstrations of %s for %s, as allowed.", self.env_id, env_id)
            return
        raise ValueError(
            f"The demonstrations come from {self.env_id}, but the policy is trained on {env_id}. Generate "
            f"demonstrations on {env_id}, or pass allow_env_mismatch=True (CLI: --allow-env-mismatch) to "
            "train on them anyway."
        )

    def check_env(self, env_id: str | None, allow_env_mismatch: bool = False) -> None:
        """Deprecated name of :meth:`check_env_id` (it compares env ids; it does not check an env)."""
        warnings.warn(
            "Demonstrations.check_env is deprecated: use Demonstrations.check_env_id.", DeprecationWarning, 2
        )
        self.check_env_id(env_id, allow_env_mismatch)

    def check_values(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """
        Check every transition against the spaces of the policy to train: finite observations inside the
        observation space's bounds, actions in the action space.

        :param observation_space: the policy's observation space
        :param action_space: the policy's action space
        :raises ValueError: naming the first bad transition (trajectory, seed, step) and what is wrong
        """
        seeds = self.metadata.kept_seeds
        for index, trajectory in enumerate(self.trajectories):
            seed = seeds[index] if index < len(seeds) else "?"
            where = f"trajectory {index} (seed {seed})"
            problem = _first_bad_observation(np.asarray(trajectory.obs), observation_space)
            if problem is None:
                problem = _first_bad_action(np.asarray(trajectory.acts), action_space)
            if problem is not None:
                raise ValueError(
                    f"The demonstrations ({self.env_id}) are invalid at {where}, {problem}. Generate them "
                    "again, or drop that trajectory."
                )


def _first_bad_observation(obs: np.ndarray, space: gym.Space) -> str | None:
    """:return: what is wrong with the first bad observation, ``None`` if all are good"""
    per_step = obs.reshape(len(obs), -1)
    if np.issubdtype(per_step.dtype, np.floating):
        not_finite = ~np.isfinite(per_step).all(axis=1)
        if not_finite.any():
            return f"step {int(np.argmax(not_finite))}: the observation holds NaN or infinity"
    if isinstance(space, spaces.Box) and per_step.shape[1:] == (int(np.prod(space.shape)),):
        low, high = space.low.reshape(-1), space.high.reshape(-1)
        outside = ((per_step < low) | (per_step > high)).any(axis=1)
        if outside.any():
            step = int(np.argmax(outside))
            column = int(np.argmax((per_step[step] < low) | (per_step[step] > high)))
            return (
                f"step {step}: observation value {per_step[step, column]} lies outside the space's bounds "
                f"[{low[column]}, {high[column]}]"
            )
    return None


def _first_bad_action(acts: np.ndarray, space: gym.Space) -> str | None:
    """:return: what is wrong with the first bad action, ``None`` if all are good"""
    if isinstance(space, spaces.Discrete):
        flat = acts.reshape(len(acts), -1)[:, 0] if acts.ndim > 1 else acts
        bad = (flat < space.start) | (flat >= space.start + space.n) | (flat != np.round(flat))
        if bad.any():
            step = int(np.argmax(bad))
            return f"step {step}: action {flat[step]} is not in {space}"
    return None


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
    steps = sum(record.length for record in records)
    fallbacks = sum(int(record.expert_summary.get("fallbacks", 0)) for record in records)
    return {
        "episodes": len(records),
        "successes": successes,
        "success_rate": successes / len(records) if records else 0.0,
        "transitions": sum(len(trajectory.acts) for trajectory in kept),
        "mean_length": float(np.mean([len(t.acts) for t in kept])) if kept else 0.0,
        "mean_length_all": float(np.mean([r.length for r in records])) if records else 0.0,
        "action_counts": {Actions(a).name: actions.get(a, 0) for a in range(N_ACTIONS)},
        # the share of all steps whose action the expert did not choose (LLM replies without an action)
        "fallback_rate": fallbacks / steps if steps else 0.0,
        "mostly_fallback_episodes": sum(
            bool(record.expert_summary.get("mostly_fallback", False)) for record in records
        ),
    }
