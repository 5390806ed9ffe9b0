"""The one place a PPO model is built or loaded: reference hyperparameters, the policy layout for
MiniGrid observations, and the env made in the observation mode a policy expects."""

from __future__ import annotations

import inspect
import os
import zipfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gymnasium import spaces
from sb3_contrib import MaskablePPO, RecurrentPPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import json_to_data
from stable_baselines3.common.vec_env import VecEnv

from sb3_llmae.envs import DEFAULT_OBS_MODE, MAX_CELL_INDEX, ObsMode, make_vec_env, obs_mode_of
from sb3_llmae.features import MinigridFeaturesExtractor, MissionGridFeaturesExtractor
from sb3_llmae.missions import mission_grid_shape
from sb3_llmae.training.config import INIT_MODES, REFERENCE_N_ENVS, REFERENCE_PPO_KWARGS, InitMode
from sb3_llmae.training.kl_ppo import KL_PPO_OPTIONS, KLPPO

# The policy each algorithm gets when none is named (RecurrentPPO has no "MlpPolicy").
DEFAULT_POLICIES: MappingProxyType[type[OnPolicyAlgorithm], str] = MappingProxyType(
    {RecurrentPPO: "MlpLstmPolicy"}
)


# On-policy actor-critic algorithms whose policy BC trains and whose critic the warm-up fits (and their
# subclasses, KLPPO among them). TRPO (sb3-contrib) is on-policy too, but its natural-gradient actor
# step is untested with BC and the frozen-actor warm-up; off-policy algorithms (DQN, QR-DQN, SAC) have
# no actor-critic policy to clone into.
SUPPORTED_ALGOS: tuple[type[OnPolicyAlgorithm], ...] = (PPO, A2C, MaskablePPO, RecurrentPPO)


def check_algo(algo: Any) -> type[OnPolicyAlgorithm]:
    """
    :param algo: an SB3 / sb3-contrib algorithm class
    :return: it, if it is one of ``SUPPORTED_ALGOS`` or a subclass of one
    :raises ValueError: naming the supported algorithms otherwise
    """
    if not (isinstance(algo, type) and issubclass(algo, SUPPORTED_ALGOS)):
        name = getattr(algo, "__name__", repr(algo))
        raise ValueError(
            f"algo={name} is not supported: the plugin builds on-policy actor-critic models, "
            f"{', '.join(supported.__name__ for supported in SUPPORTED_ALGOS)} or a subclass of one "
            "(e.g. sb3_llmae.training.KLPPO)."
        )
    return algo


def algo_kwargs(algo: type[OnPolicyAlgorithm]) -> dict[str, Any]:
    """
    :param algo: a supported algorithm class
    :return: the reference hyperparameters it takes (A2C has no ``batch_size``, ``n_epochs``, ``clip_range``)
    """
    accepted: set[str] = set()
    # a subclass that passes **kwargs on (KLPPO) takes its parent's parameters too
    for cls in algo.__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(vars(cls)["__init__"]).parameters
        accepted |= set(parameters)
        if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values()):
            break
    return {name: value for name, value in REFERENCE_PPO_KWARGS.items() if name in accepted}


def needs_action_masks(algo: type[OnPolicyAlgorithm]) -> bool:
    """
    :param algo: an on-policy algorithm class
    :return: whether its envs must give action masks (sb3-contrib's ``MaskablePPO``)
    """
    return issubclass(algo, MaskablePPO)


def is_grid_space(observation_space: spaces.Space) -> bool:
    """
    :param observation_space: an observation space
    :return: whether it is MiniGrid's grid observation (``obs_mode="image"``), channels last or first
    """
    shape = observation_space.shape or ()
    return isinstance(observation_space, spaces.Box) and len(shape) == 3 and 3 in (shape[0], shape[-1])


def default_policy_kwargs(
    observation_space: spaces.Space | None = None, init: InitMode = "scratch"
) -> dict[str, Any]:
    """
    The policy layout every model of the plugin uses, so that models from scratch and LLM-initialised
    ones differ only in their initial weights.

    :param observation_space: the env's observation space; ``None`` assumes MiniGrid's grid
        (``obs_mode="image"``), as rl-zoo3's ``hyperparams/`` do
    :param init: ``"scratch"`` and ``"actor"`` give actor and critic a features extractor each (BC's
        features then stay the actor's); ``"full"`` shares one, so the critic starts from BC's features
    :return: ``policy_kwargs`` for ``"MlpPolicy"``: :class:`MinigridFeaturesExtractor` for grid
        observations, :class:`~sb3_llmae.features.MissionGridFeaturesExtractor` for grid-and-mission ones
        (``obs_mode="mission"``), SB3's default extractor otherwise
    """
    check_init(init)
    policy_kwargs: dict[str, Any] = {"share_features_extractor": init == "full"}
    if observation_space is None or is_grid_space(observation_space):
        policy_kwargs["features_extractor_class"] = MinigridFeaturesExtractor
    elif mission_grid_shape(observation_space, MAX_CELL_INDEX) is not None:
        policy_kwargs["features_extractor_class"] = MissionGridFeaturesExtractor
    return policy_kwargs


def check_init(init: str) -> InitMode:
    """
    :param init: an initialisation mode
    :return: it, if it is one of ``INIT_MODES``
    :raises ValueError: naming the valid modes otherwise
    """
    if init not in INIT_MODES:
        raise ValueError(f"Unknown init {init!r}: choose one of {', '.join(INIT_MODES)}.")
    return init  # type: ignore[return-value]


def make_ppo(
    env: str | VecEnv,
    *,
    algo: type[OnPolicyAlgorithm] = PPO,
    init: InitMode = "scratch",
    obs_mode: ObsMode = DEFAULT_OBS_MODE,
    n_envs: int = REFERENCE_N_ENVS,
    max_episode_steps: int | None = None,
    seed: int | None = None,
    **ppo_kwargs: Any,
) -> OnPolicyAlgorithm:
    """
    Build a PPO model for a MiniGrid env: the reference hyperparameters (``REFERENCE_PPO_KWARGS``)
    and :func:`default_policy_kwargs`, each overridden by ``ppo_kwargs``.

    :param env: an env id (made with :func:`~sb3_llmae.envs.make_vec_env`, with action masks for
        ``MaskablePPO``) or a VecEnv
    :param algo: ``PPO``, SB3's ``A2C`` (the reference hyperparameters it takes), or a PPO variant with the
        same hyperparameters:
        :class:`~sb3_llmae.training.kl_ppo.KLPPO` (KL to a prior, a critic learning rate of its own),
        sb3-contrib's ``MaskablePPO`` (its envs need an ``ActionMasker``, see
        :func:`~sb3_llmae.envs.make_vec_env`) or ``RecurrentPPO`` (default policy ``"MlpLstmPolicy"``),
        or a subclass of one
    :param init: the initialisation the model is built for (see :func:`default_policy_kwargs`);
        the weights are SB3's fresh ones, :func:`~sb3_llmae.training.llm_init.llm_init_ppo` does the rest
    :param obs_mode: observation layout when ``env`` is an id: ``"image"``, ``"flat"`` or ``"mission"``
    :param n_envs: number of envs when ``env`` is an id
    :param max_episode_steps: step limit of the envs made when ``env`` is an id; ``None`` keeps the env's own
    :param seed: seed of the model and its envs
    :param ppo_kwargs: passed to ``algo`` (e.g. ``learning_rate``, ``tensorboard_log``, ``policy``,
        and for ``KLPPO`` ``kl_coef``, ``kl_decay_steps``, ``critic_learning_rate``);
        ``policy_kwargs`` are merged over the defaults
    :return: the model
    :raises ValueError: for an unknown ``init``, an unsupported ``algo`` (DQN, QR-DQN, TRPO, ...), or
        ``KLPPO`` options given to another class
    """
    check_init(init)
    check_algo(algo)
    kl_options = sorted(set(KL_PPO_OPTIONS) & set(ppo_kwargs))
    if kl_options and not issubclass(algo, KLPPO):
        raise ValueError(
            f"{', '.join(kl_options)} {'is an option' if len(kl_options) == 1 else 'are options'} of "
            f"KLPPO, not of {algo.__name__}: pass algo=KLPPO (from sb3_llmae.training)."
        )
    if isinstance(env, str):
        env = make_vec_env(
            env,
            n_envs=n_envs,
            obs_mode=obs_mode,
            seed=seed,
            max_episode_steps=max_episode_steps,
            action_masks=needs_action_masks(algo),
        )
    policy_kwargs = {
        **default_policy_kwargs(env.observation_space, init),
        **(ppo_kwargs.pop("policy_kwargs", None) or {}),
    }
    default_policy = next(
        (name for base, name in DEFAULT_POLICIES.items() if issubclass(algo, base)), "MlpPolicy"
    )
    policy = ppo_kwargs.pop("policy", default_policy)
    return algo(policy, env, policy_kwargs=policy_kwargs, seed=seed, **{**algo_kwargs(algo), **ppo_kwargs})


def saved_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """
    The attributes a model zip stores (its ``data`` entry), without loading its weights.

    :param path: a model zip written by SB3's ``save()``
    :return: the attributes, e.g. ``observation_space`` and ``policy_class``
    :raises FileNotFoundError: if there is no such file
    :raises ValueError: if it is not a model zip
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}: pass the .zip written by model.save() or `train`.")
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("data").decode()
        data = json_to_data(text)
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path} cannot be read as a model ({error}): pass the .zip written by model.save() or `train`."
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no model attributes: is it a model saved by SB3?")
    return data


def saved_obs_mode(path: str | os.PathLike[str], env_id: str) -> ObsMode:
    """
    The observation mode of a saved model, read from the observation space stored in its zip.

    :param path: a model zip written by SB3's ``save()``
    :param env_id: the env the model is to run on
    :return: the mode whose observation space on ``env_id`` is the model's
    :raises FileNotFoundError: if there is no such file
    :raises ValueError: if the zip holds no observation space, or no mode of ``env_id`` gives it
    """
    data = saved_data(path)
    if "observation_space" not in data:
        raise ValueError(f"{path} holds no observation space: is it a model saved by SB3?")
    return obs_mode_of(env_id, data["observation_space"])


def saved_algo(path: str | os.PathLike[str]) -> type[OnPolicyAlgorithm]:
    """
    The one reader of the algorithm that saved a model zip.

    :param path: a model zip written by SB3's ``save()``
    :return: sb3-contrib's ``MaskablePPO`` for a maskable policy, ``RecurrentPPO`` for a recurrent one,
        SB3's ``A2C`` for a model without PPO's ``clip_range``,
        :class:`~sb3_llmae.training.kl_ppo.KLPPO` if the zip holds a prior policy's weights, else ``PPO``
        (which also loads the plugin's other PPO subclasses, and a KLPPO zip without its prior)
    :raises FileNotFoundError: if there is no such file
    :raises ValueError: if it is not a model zip, or one of another algorithm (DQN, SAC, ...)
    """
    data = saved_data(path)
    policy_class = data.get("policy_class")
    if isinstance(policy_class, type) and issubclass(policy_class, MaskableActorCriticPolicy):
        return MaskablePPO
    if isinstance(policy_class, type) and issubclass(policy_class, RecurrentActorCriticPolicy):
        return RecurrentPPO
    if isinstance(policy_class, type) and not issubclass(policy_class, ActorCriticPolicy):
        raise ValueError(
            f"{path} holds a model with the policy {policy_class.__module__}.{policy_class.__qualname__}, "
            "not an actor-critic: PPO, KLPPO, MaskablePPO and RecurrentPPO models load here (a DQN or SAC "
            "zip loads with its own class)."
        )
    # on-policy without PPO's clipping (off-policy models, which also save n_steps, are refused above)
    if "n_steps" in data and "clip_range" not in data:  # on-policy without PPO's clipping
        return A2C
    return KLPPO if "prior_weights" in data else PPO


def load_ppo(
    path: str | os.PathLike[str],
    env: str | VecEnv | None = None,
    *,
    n_envs: int = REFERENCE_N_ENVS,
    max_episode_steps: int | None = None,
    seed: int | None = None,
    algo: type[OnPolicyAlgorithm] | None = None,
    **load_kwargs: Any,
) -> OnPolicyAlgorithm:
    """
    The one loader of saved models: PPO, KLPPO (with its prior), MaskablePPO, RecurrentPPO.

    :param path: the model zip
    :param env: an env id, on which envs are made in the model's observation mode (with action masks
        for ``MaskablePPO``) to continue training; a VecEnv, used as it is; ``None``: no env (to predict,
        evaluate or record)
    :param n_envs: number of envs when ``env`` is an id
    :param max_episode_steps: step limit of the envs made when ``env`` is an id; ``None`` keeps the env's own
    :param seed: seed of the model and its envs
    :param algo: the class that saved the model; ``None``: read from the zip (:func:`saved_algo`)
    :param load_kwargs: passed to ``algo.load`` (e.g. ``tensorboard_log``, ``device``)
    :return: the model; its ``num_timesteps`` are those it already trained
    :raises FileNotFoundError: if there is no such file
    :raises ValueError: if it is not a model zip, or ``env`` gives no observation mode of the model
    """
    algo = saved_algo(path) if algo is None else algo
    if isinstance(env, str):
        env = make_vec_env(
            env,
            n_envs=n_envs,
            obs_mode=saved_obs_mode(path, env),
            seed=seed,
            max_episode_steps=max_episode_steps,
            action_masks=needs_action_masks(algo),
        )
    return algo.load(Path(path), env=env, seed=seed, **load_kwargs)
