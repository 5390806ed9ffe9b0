"""Where a callback writes when it is given no folder: the run's own folder."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

logger = logging.getLogger(__name__)


def monitor_folder(vec_env: VecEnv) -> Path | None:
    """
    :param vec_env: the training envs
    :return: the folder a ``Monitor`` of its first env writes its CSV to (rl-zoo3's run folder when
        trained through ``rl_zoo3.train``, ``monitor_dir`` of ``make_vec_env``), or ``None`` when
        there is none or it cannot be read in this process (``SubprocVecEnv``)
    """
    while isinstance(vec_env, VecEnvWrapper):
        vec_env = vec_env.venv
    if not isinstance(vec_env, DummyVecEnv):
        return None
    env = vec_env.envs[0]
    while True:
        if isinstance(env, Monitor):
            writer = env.results_writer
            return None if writer is None else Path(writer.file_handler.name).parent
        inner = getattr(env, "env", None)
        if inner is None:
            return None
        env = inner


def resolve_log_dir(callback: BaseCallback, log_dir: str | os.PathLike[str] | None) -> Path:
    """
    The folder a callback writes to.

    :param callback: the callback, initialised (its ``model`` and ``training_env`` are set)
    :param log_dir: the folder the user gave, used as it is; ``None``: the folder the training envs'
        ``Monitor`` writes to (rl-zoo3's run folder), else the model's logger folder (its TensorBoard
        run folder when ``tensorboard_log`` is set)
    :return: the folder
    """
    if log_dir is not None:
        return Path(log_dir)
    folder = monitor_folder(callback.training_env)
    if folder is not None:
        return folder
    logger_dir = callback.logger.get_dir()
    if logger_dir is None:
        raise ValueError(f"{type(callback).__name__} has nowhere to write: pass log_dir.")
    if Path(logger_dir).is_relative_to(tempfile.gettempdir()) and Path(logger_dir).name.startswith("SB3-"):
        logger.warning(
            "%s writes to SB3's temporary logger folder %s: pass log_dir (or tensorboard_log to the model) "
            "to keep its files.",
            type(callback).__name__,
            logger_dir,
        )
    return Path(logger_dir)
