"""Making MiniGrid / BabyAI environments in the observation layout an SB3 policy sees."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX
from minigrid.minigrid_env import MiniGridEnv
from minigrid.wrappers import FlatObsWrapper
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_llmae.masks import MinigridActionMasker
from sb3_llmae.missions import MinigridMissionWrapper
from sb3_llmae.registration import (  # noqa: F401  (register_envs: also sb3_llmae.envs.register_envs)
    DEFAULT_OBS_MODE,
    OBS_MODES,
    REGISTERED_PREFIX,
    ObsMode,
    minigrid_env_ids,
    register_envs,
)

# Largest index a MiniGrid cell channel can hold (object type, color, door state).
MAX_CELL_INDEX = max(len(OBJECT_TO_IDX), len(COLOR_TO_IDX), len(STATE_TO_IDX)) - 1


class MinigridImageWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """
    Keep only the egocentric 7x7x3 grid of a MiniGrid observation.

    Unlike ``minigrid.wrappers.ImgObsWrapper`` the space is bounded by the largest cell
    index instead of 255: the cells hold object / color / state indices, not pixels, so SB3
    must neither treat them as an image to transpose nor divide them by 255. The policy then
    sees exactly what the env returns, and so do the demonstrations it is trained on.

    :param env: a MiniGrid env with a dict observation holding ``"image"``
    """

    def __init__(self, env: gym.Env) -> None:
        # recorded, so that gymnasium can re-create the wrapper stack (check_env, env.spec)
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        assert isinstance(env.observation_space, spaces.Dict), "MinigridImageWrapper wraps MiniGrid's dict"
        image_space = env.observation_space["image"]
        self.observation_space = spaces.Box(
            low=0, high=MAX_CELL_INDEX, shape=image_space.shape, dtype=np.uint8
        )

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        return observation["image"]


class MinigridFlatObsWrapper(FlatObsWrapper, gym.utils.RecordConstructorArgs):
    """
    minigrid's ``FlatObsWrapper`` (grid and mission in one vector), recording its constructor's
    arguments as gymnasium's own wrappers do, so that ``check_env`` and ``env.spec`` can re-create it.

    :param env: a MiniGrid env with dict observations
    :param maxStrLen: longest mission, in characters (minigrid's name and default)
    """

    def __init__(self, env: gym.Env, maxStrLen: int = 96) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, maxStrLen=maxStrLen)
        FlatObsWrapper.__init__(self, env, maxStrLen)


class MinigridInfoWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    Put what training tools read into ``info``, and give float rewards (MiniGrid's are the int 0 on
    most steps, which imitation's trajectories refuse): the agent's cell ``info["agent_pos"]`` (``(x, y)``)
    after every reset and step, and ``info["is_success"]`` (reached the goal: terminated with a
    positive reward) when an episode ends, the key SB3's ``EvalCallback``, ``Monitor(info_keywords=...)``
    and rl-zoo3's success plots read.

    Reading the position here, inside the env, keeps it cheap under ``SubprocVecEnv``: it travels
    with the step's ``info`` instead of one ``get_attr`` round trip per step.

    :param env: a MiniGrid env (wrapped or not)
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.minigrid = unwrap_minigrid(env)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        info["agent_pos"] = self._agent_pos()
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        info["agent_pos"] = self._agent_pos()
        if terminated or truncated:
            info["is_success"] = is_success(terminated, reward)
        # MiniGrid returns the int 0 on most steps: imitation's trajectories need float rewards
        return observation, float(reward), terminated, truncated, info

    def _agent_pos(self) -> tuple[int, int]:
        x, y = self.minigrid.agent_pos
        return int(x), int(y)


def is_success(terminated: bool, reward: SupportsFloat) -> bool:
    """
    The one success rule of MiniGrid / BabyAI episodes.

    :param terminated: whether the episode's last step terminated it (not a time-limit truncation)
    :param reward: the reward of that last step
    :return: whether the episode reached the goal: terminated with a positive reward
    """
    return bool(terminated and float(reward) > 0)


def check_env_id(env_id: str) -> str:
    """
    Check that ``env_id`` names a registered MiniGrid / BabyAI env.

    :param env_id: the env id, with or without the ``sb3_llmae/`` prefix
    :return: the bare MiniGrid id
    :raises ValueError: naming the closest valid ids
    """
    bare_id = env_id.removeprefix(REGISTERED_PREFIX)
    valid = minigrid_env_ids()
    if bare_id not in valid:
        close = difflib.get_close_matches(bare_id, valid, n=5, cutoff=0.5)
        hint = (
            f"Did you mean one of: {', '.join(close)}?"
            if close
            else f"Valid ids include: {', '.join(valid[:8])}, ..."
        )
        raise ValueError(
            f"Unknown MiniGrid env id {env_id!r}. {hint} (the full list: sb3_llmae.envs.minigrid_env_ids())"
        )
    return bare_id


def minigrid_id(env_id: str) -> str:
    """
    :param env_id: a MiniGrid / BabyAI id, or one of the ``sb3_llmae/<id>`` and ``sb3_llmae/<id>-flat``
        ids of :func:`register_envs`
    :return: the bare MiniGrid id, checked to be registered
    :raises ValueError: naming the closest valid ids
    """
    if env_id.startswith(REGISTERED_PREFIX):
        name, version = env_id.rsplit("-v", 1)
        env_id = f"{name.removesuffix('-flat').removesuffix('-mission')}-v{version}"
    return check_env_id(env_id)


def env_id_of(vec_env: VecEnv | None) -> str | None:
    """
    The one reader of a vec env's id.

    :param vec_env: a vec env (any wrappers, e.g. ``model.get_env()``), or ``None``
    :return: the id its first env was made with: the bare MiniGrid id for MiniGrid / BabyAI ids (also
        ``sb3_llmae/<id>`` ones), the id itself for other envs; ``None`` if unknown (no env, no spec)
    """
    if vec_env is None:
        return None
    try:
        spec = vec_env.get_attr("spec", indices=[0])[0]
    except AttributeError:
        return None
    if spec is None:
        return None
    try:
        return minigrid_id(spec.id)
    except ValueError:
        return str(spec.id).removeprefix(REGISTERED_PREFIX)


def vec_env_id(vec_env: VecEnv) -> str:
    """
    :param vec_env: a vec env of MiniGrid / BabyAI envs (any wrappers)
    :return: the bare MiniGrid id its first env was made with
    :raises ValueError: if it holds no env made from a registered MiniGrid id
    """
    env_id = env_id_of(vec_env)
    if env_id is None:
        raise ValueError(
            "The env was not made from a registered id (its spec is None): pass the env id explicitly."
        )
    return minigrid_id(env_id)


def check_obs_mode(obs_mode: str) -> ObsMode:
    """
    :param obs_mode: an observation mode
    :return: the mode, if valid
    :raises ValueError: listing the valid modes
    """
    if obs_mode not in OBS_MODES:
        raise ValueError(f"Unknown obs_mode {obs_mode!r}: choose one of {', '.join(OBS_MODES)}.")
    return obs_mode  # type: ignore[return-value]


def check_max_episode_steps(max_episode_steps: int | None) -> int | None:
    """
    :param max_episode_steps: an episode step limit, or ``None`` for the env's own
    :return: the limit, if valid
    :raises ValueError: if it is not positive
    """
    if max_episode_steps is not None and max_episode_steps <= 0:
        raise ValueError(
            f"max_episode_steps must be positive (or None for the env's own), got {max_episode_steps}."
        )
    return max_episode_steps


def wrap_observation(env: gym.Env, obs_mode: ObsMode) -> gym.Env:
    """
    Put :class:`MinigridInfoWrapper` and the observation wrapper of ``obs_mode`` on a MiniGrid env.

    :param env: a MiniGrid env with dict observations
    :param obs_mode: ``"image"`` (egocentric grid, :class:`MinigridImageWrapper`),
        ``"flat"`` (``minigrid.wrappers.FlatObsWrapper``: grid and mission characters, one vector) or
        ``"mission"`` (grid and mission words, :class:`~sb3_llmae.missions.MinigridMissionWrapper`, for
        BabyAI levels, whose mission changes every episode)
    :return: the wrapped env
    """
    check_obs_mode(obs_mode)
    env = MinigridInfoWrapper(env)
    if obs_mode == "image":
        return MinigridImageWrapper(env)
    if obs_mode == "mission":
        return MinigridMissionWrapper(env, MAX_CELL_INDEX)
    return MinigridFlatObsWrapper(env)


def make_env(
    env_id: str,
    obs_mode: ObsMode = DEFAULT_OBS_MODE,
    seed: int | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    action_masks: bool = False,
    **env_kwargs: Any,
) -> gym.Env:
    """
    Make one MiniGrid / BabyAI env in the observation layout of an SB3 policy.

    :param env_id: a registered MiniGrid or BabyAI id, e.g. ``"MiniGrid-DoorKey-8x8-v0"``
    :param obs_mode: ``"image"`` (default), ``"flat"`` or ``"mission"`` (see :func:`wrap_observation`)
    :param seed: seed of the first ``reset()`` (later resets continue the env's RNG)
    :param max_episode_steps: episode step limit; ``None`` keeps the env's own
    :param render_mode: passed to ``gym.make``
    :param action_masks: wrap the env in ``sb3_contrib``'s ``ActionMasker`` with
        :func:`~sb3_llmae.masks.minigrid_action_mask`, as ``MaskablePPO`` needs
    :param env_kwargs: passed to the env constructor
    :return: the env
    """
    bare_id = check_env_id(env_id)
    check_obs_mode(obs_mode)
    if check_max_episode_steps(max_episode_steps) is not None:
        # MiniGrid truncates on its own counter, not only through gym's TimeLimit.
        env_kwargs["max_steps"] = max_episode_steps
    env = gym.make(bare_id, render_mode=render_mode, max_episode_steps=max_episode_steps, **env_kwargs)
    env = wrap_observation(env, obs_mode)
    if action_masks:
        env = MinigridActionMasker(env)
    if seed is not None:
        env.reset(seed=seed)
    return env


def make_vec_env(
    env_id: str,
    n_envs: int = 4,
    obs_mode: ObsMode = DEFAULT_OBS_MODE,
    seed: int | None = None,
    max_episode_steps: int | None = None,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None,
    monitor_dir: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    action_masks: bool = False,
    wrapper_class: Callable[..., gym.Env] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    monitor_kwargs: dict[str, Any] | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
) -> VecEnv:
    """
    Make a vectorised MiniGrid env (SB3's ``make_vec_env`` with our wrappers and a Monitor).

    imitation's ``rollout.rollout`` needs each env in its ``RolloutInfoWrapper``:
    ``make_vec_env(env_id, wrapper_class=imitation.data.wrappers.RolloutInfoWrapper)``.

    :param env_id: a registered MiniGrid or BabyAI id
    :param n_envs: number of envs
    :param obs_mode: ``"image"`` (default), ``"flat"`` or ``"mission"`` (see :func:`wrap_observation`)
    :param seed: seed of env 0; env ``i`` gets ``seed + i``
    :param max_episode_steps: episode step limit; ``None`` keeps the env's own
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
    :param monitor_dir: where Monitor writes its CSV files (``None``: not written)
    :param env_kwargs: passed to the env constructor
    :param action_masks: give each env an ``ActionMasker`` (see :func:`make_env`), as ``MaskablePPO`` needs
    :param wrapper_class: SB3's: a wrapper put on each env, outside its Monitor (e.g. imitation's
        ``RolloutInfoWrapper``)
    :param wrapper_kwargs: SB3's: keyword arguments of ``wrapper_class``
    :param monitor_kwargs: SB3's: keyword arguments of each env's ``Monitor`` (e.g. ``info_keywords``)
    :param vec_env_kwargs: SB3's: keyword arguments of ``vec_env_cls`` (e.g. ``start_method``)
    :return: the vec env
    """
    # Checked here too so that a wrong id or mode fails before any env is built.
    check_env_id(env_id)
    check_obs_mode(obs_mode)
    check_max_episode_steps(max_episode_steps)

    def env_fn(**kwargs: Any) -> gym.Env:
        return make_env(
            env_id,
            obs_mode=obs_mode,
            max_episode_steps=max_episode_steps,
            action_masks=action_masks,
            **kwargs,
        )

    return sb3_make_vec_env(
        env_fn,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        vec_env_cls=vec_env_cls,
        monitor_dir=monitor_dir,
        wrapper_class=wrapper_class,
        wrapper_kwargs=wrapper_kwargs,
        monitor_kwargs=monitor_kwargs,
        vec_env_kwargs=vec_env_kwargs,
    )


def obs_mode_of(env_id: str, observation_space: gym.Space) -> ObsMode:
    """
    The observation mode in which ``env_id`` gives ``observation_space`` (e.g. a saved policy's).

    :param env_id: a MiniGrid / BabyAI id
    :param observation_space: the observation space a policy expects
    :return: ``"image"`` or ``"flat"``
    :raises ValueError: if no mode gives that space on this env
    """
    for mode in OBS_MODES:
        env = make_env(env_id, obs_mode=check_obs_mode(mode))
        matches = env.observation_space == observation_space
        env.close()
        if matches:
            return check_obs_mode(mode)
    raise ValueError(
        f"The policy expects observations of {observation_space}, which {env_id} gives in no "
        f"observation mode ({', '.join(OBS_MODES)}): was it trained on another env?"
    )


def unwrap_minigrid(env: gym.Env) -> MiniGridEnv:
    """
    :param env: a (wrapped) MiniGrid env
    :return: the underlying ``MiniGridEnv``, whose full grid experts plan on
    """
    base = env.unwrapped
    if not isinstance(base, MiniGridEnv):
        raise TypeError(f"Expected a MiniGrid env, got {type(base).__name__}.")
    return base


def make_registered_env(env_id: str, obs_mode: ObsMode, **kwargs: Any) -> gym.Env:
    """
    The maker of the ``sb3_llmae/<id>`` ids (:func:`~sb3_llmae.registration.register_envs`).

    :param env_id: the MiniGrid id
    :param obs_mode: the observation layout
    :param kwargs: passed to ``gym.make``
    :return: the env in that layout
    """
    return wrap_observation(gym.make(env_id, **kwargs), obs_mode)
