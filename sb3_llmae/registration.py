"""The ``sb3_llmae/<id>`` env ids, registered by ``import sb3_llmae`` (rl-zoo3's ``--gym-packages
sb3_llmae``). It needs gymnasium and minigrid only: the wrappers (and SB3, torch) load when an env is made."""

from __future__ import annotations

from typing import Literal

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid and BabyAI ids)

ObsMode = Literal["image", "flat", "mission"]
OBS_MODES: tuple[str, ...] = ("image", "flat", "mission")
# What a policy sees unless told otherwise: the egocentric grid (MinigridFeaturesExtractor).
DEFAULT_OBS_MODE: ObsMode = "image"
# The suffix of each mode's sb3_llmae/<id> registration (register_envs).
OBS_MODE_SUFFIXES: dict[str, str] = {"image": "", "flat": "-flat", "mission": "-mission"}
REGISTERED_PREFIX = "sb3_llmae/"
# The maker of the registered ids, named by string so that registering imports none of it.
REGISTERED_ENTRY_POINT = "sb3_llmae.envs:make_registered_env"


def minigrid_env_ids() -> list[str]:
    """
    :return: every registered MiniGrid and BabyAI env id, sorted
    """
    return sorted(env_id for env_id in gym.registry if env_id.startswith(("MiniGrid-", "BabyAI-")))


def register_envs() -> None:
    """
    Register ``sb3_llmae/<MiniGrid id>`` (image observations), ``sb3_llmae/<MiniGrid id>-flat`` and
    ``sb3_llmae/<MiniGrid id>-mission`` for every MiniGrid / BabyAI id, so that
    ``python -m rl_zoo3.train --gym-packages sb3_llmae --env sb3_llmae/MiniGrid-DoorKey-8x8-v0``
    needs no ``env_wrapper``. Idempotent.
    """
    for env_id in minigrid_env_ids():
        for obs_mode, suffix in OBS_MODE_SUFFIXES.items():
            name, version = env_id.rsplit("-v", 1)
            registered_id = f"{REGISTERED_PREFIX}{name}{suffix}-v{version}"
            if registered_id in gym.registry:
                continue
            spec = gym.spec(env_id)
            gym.register(
                id=registered_id,
                entry_point=REGISTERED_ENTRY_POINT,
                kwargs={"env_id": env_id, "obs_mode": obs_mode},
                max_episode_steps=spec.max_episode_steps,
            )
