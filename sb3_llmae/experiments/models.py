"""A run's model: built for its method (from scratch, LLM-initialised, transferred), or loaded from one
of its checkpoints; and the transfer source models, trained once and shared by the runs that need them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from filelock import FileLock
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_llmae.experiments.specs import RunSpec
from sb3_llmae.training.kl_ppo import KLPPO
from sb3_llmae.training.llm_init import llm_init_ppo
from sb3_llmae.training.ppo import load_ppo, make_ppo
from sb3_llmae.training.transfer import transfer_ppo

logger = logging.getLogger(__name__)

# MethodSpec.algo -> the class that trains it
ALGOS: MappingProxyType[str, type[OnPolicyAlgorithm]] = MappingProxyType(
    {"ppo": PPO, "maskable": MaskablePPO, "klppo": KLPPO}
)


def source_model_path(spec: RunSpec) -> Path:
    """
    :param spec: a run of a ``"transfer"`` method
    :return: where its source model is kept: one per source env, steps, seed and PPO settings, so that
        every run and re-run that needs the same source shares it
    """
    method = spec.method
    identity = json.dumps(
        {
            "ppo_kwargs": spec.ppo_kwargs,
            "algo": method.algo,
            "n_envs": spec.n_envs,
            "max_episode_steps": spec.settings.max_episode_steps,
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return spec.sources_dir / f"{method.source_env}_{method.source_steps}steps_seed{spec.seed}_{digest}.zip"


def train_source_model(spec: RunSpec) -> Path:
    """
    The source model of a ``"transfer"`` run, trained on the method's source env unless a run before
    has trained it (a file lock keeps two runs from training it at once).

    :param spec: a run of a ``"transfer"`` method
    :return: the source model's zip
    """
    path = source_model_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock"))):
        if not path.is_file():
            method = spec.method
            logger.info("%s: training the source model on %s", spec.key, method.source_env)
            source = make_ppo(
                method.source_env,
                algo=ALGOS[method.algo],
                n_envs=spec.n_envs,
                max_episode_steps=spec.settings.max_episode_steps,
                seed=spec.seed,
                **spec.ppo_kwargs,
            )
            source.learn(method.source_steps)
            partial = path.with_name(path.stem + ".partial.zip")
            source.save(partial)
            os.replace(partial, path)
    return path


def build_model(spec: RunSpec, tensorboard_log: str) -> OnPolicyAlgorithm:
    """
    :param spec: a run
    :param tensorboard_log: the run's TensorBoard folder
    :return: the method's model for the run, before training on the target env
    :raises ValueError: if the method clones demonstrations and the run has none
    """
    method, settings = spec.method, spec.settings
    common: dict[str, Any] = {
        "algo": ALGOS[method.algo],
        "n_envs": spec.n_envs,
        "max_episode_steps": settings.max_episode_steps,
        "seed": spec.seed,
        "tensorboard_log": tensorboard_log,
        **spec.ppo_kwargs,
    }
    if method.init == "scratch":
        return make_ppo(settings.env_id, **common)
    if method.init == "transfer":
        return transfer_ppo(settings.env_id, train_source_model(spec), **common)
    if spec.demos is None:
        raise ValueError(
            f"Method {method.name!r} clones demonstrations: pass --demos DIR (or give the method 'demos')."
        )
    warmup: dict[str, Any] = (
        {} if method.critic_warmup_steps is None else {"critic_warmup_steps": method.critic_warmup_steps}
    )
    # the run's seed orders the BC batches, so that seeds differ in BC as in PPO
    bc = replace(method.bc, seed=spec.seed)
    return llm_init_ppo(
        settings.env_id,
        spec.demos,
        init=method.init,
        bc_kwargs=asdict(bc),
        tb_log_name=method.name,
        **warmup,
        **common,
    )


def load_checkpoint(spec: RunSpec, path: Path, tensorboard_log: str) -> OnPolicyAlgorithm:
    """
    :param spec: a run
    :param path: one of its checkpoints
    :param tensorboard_log: the run's TensorBoard folder
    :return: the model saved there, on fresh envs, ready to continue
    """
    return load_ppo(
        path,
        spec.settings.env_id,
        n_envs=spec.n_envs,
        max_episode_steps=spec.settings.max_episode_steps,
        seed=spec.seed,
        algo=ALGOS[spec.method.algo],
        tensorboard_log=tensorboard_log,
    )
