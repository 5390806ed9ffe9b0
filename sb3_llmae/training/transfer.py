"""A PPO model that starts from the policy of a model trained on another env (e.g. Unlock -> DoorKey)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecEnv

from sb3_llmae.training.ppo import REFERENCE_N_ENVS, make_ppo


def transfer_ppo(
    env: str | VecEnv,
    source: str | os.PathLike[str],
    *,
    algo: type[OnPolicyAlgorithm] = PPO,
    n_envs: int = REFERENCE_N_ENVS,
    max_episode_steps: int | None = None,
    seed: int | None = None,
    **ppo_kwargs: Any,
) -> OnPolicyAlgorithm:
    """
    Build a PPO model for ``env`` (:func:`~sb3_llmae.training.ppo.make_ppo`) whose whole policy, actor
    and critic, is that of a saved model trained on another env with the same observations and
    actions (the reference's transfer agent: PPO trained on Unlock, then on DoorKey). The optimiser
    and the step count start afresh.

    :param env: the target env id, or a VecEnv
    :param source: the source model's zip (``model.save()``)
    :param algo: the algorithm of the new model (``PPO`` or ``MaskablePPO``)
    :param n_envs: number of envs when ``env`` is an id
    :param max_episode_steps: step limit of the envs when ``env`` is an id
    :param seed: seed of the model and its envs
    :param ppo_kwargs: passed to ``make_ppo``; the policy layout must be the source's
    :return: the model
    :raises FileNotFoundError: if there is no source model
    :raises ValueError: if the source's observations, actions or policy layout differ from the new model's
    """
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"No source model at {source}: pass the .zip written by model.save().")
    data, params, _ = load_from_zip_file(source, device="cpu")
    model = make_ppo(
        env, algo=algo, n_envs=n_envs, max_episode_steps=max_episode_steps, seed=seed, **ppo_kwargs
    )
    for space in ("observation_space", "action_space"):
        if data is None or data.get(space) != getattr(model, space):
            raise ValueError(
                f"The source model {source} has {space} {None if data is None else data.get(space)}, "
                f"the new model {getattr(model, space)}: transfer needs envs with the same observations "
                "and actions (and the same obs_mode)."
            )
    try:
        model.policy.load_state_dict(params["policy"])  # type: ignore[arg-type]
    except (KeyError, RuntimeError) as error:
        raise ValueError(
            f"The policy in {source} does not fit the new model's ({error}): build both with the same "
            "policy_kwargs."
        ) from error
    return model
