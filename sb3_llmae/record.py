"""Episodes of a trained model rendered to an animated GIF (Pillow; no ffmpeg needed)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sb3_contrib import MaskablePPO, RecurrentPPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file

from sb3_llmae.envs import make_env, minigrid_id, obs_mode_of
from sb3_llmae.masks import minigrid_action_mask
from sb3_llmae.training.evaluation import PolicyMemory, policy_of

logger = logging.getLogger(__name__)

# Frames per second of the GIF, and how much longer the last frame of each episode stays on screen.
DEFAULT_FPS = 8
EPISODE_END_PAUSE_MS = 500
# Every frame of a GIF is held in memory until it is written: a bound far above any GIF one watches.
MAX_GIF_EPISODES = 1000


@dataclass(frozen=True)
class RecordedEpisode:
    """
    One episode in the GIF.

    :param seed: its reset seed
    :param length: its steps
    :param episode_return: its return
    :param success: whether it reached the goal
    """

    seed: int
    length: int
    episode_return: float
    success: bool


def gif_frame_ms(fps: int) -> int:
    """
    :param fps: frames per second
    :return: the duration of one frame in milliseconds, in the hundredths of a second a GIF stores
    """
    return 10 * max(1, round(100 / fps))


def algorithm_of(path: str | os.PathLike[str]) -> type[BaseAlgorithm]:
    """
    The algorithm class that loads a saved model, read from the policy class stored in its zip.

    :param path: a model zip written by SB3's ``save()``
    :return: ``MaskablePPO`` for a maskable policy, ``RecurrentPPO`` for a recurrent one, else ``PPO``
        (which also loads the plugin's PPO variants: their extra settings are plain attributes)
    :raises FileNotFoundError: if there is no such file
    :raises ValueError: if it holds a model of another algorithm (DQN, SAC, ...)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}: pass the .zip written by model.save().")
    data, _, _ = load_from_zip_file(path, device="cpu", load_data=True)
    policy_class = (data or {}).get("policy_class")
    if isinstance(policy_class, type) and issubclass(policy_class, MaskableActorCriticPolicy):
        return MaskablePPO
    if isinstance(policy_class, type) and issubclass(policy_class, RecurrentActorCriticPolicy):
        return RecurrentPPO
    if isinstance(policy_class, type) and not issubclass(policy_class, ActorCriticPolicy):
        raise ValueError(
            f"{path} holds a model with the policy {policy_class.__module__}.{policy_class.__qualname__}, "
            "not an actor-critic: this plays PPO, MaskablePPO and RecurrentPPO models (and PPO subclasses). "
            "Load other algorithms with their own class and play them with SB3's tools."
        )
    return PPO


def check_gif_path(out: str | os.PathLike[str]) -> Path:
    """
    Check, before any episode is played, that a GIF can be written at ``out``.

    :param out: the GIF to write
    :return: it, as a path
    :raises ValueError: if it is a directory, or its folder cannot be created or written
    """
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"The output {out} is a directory: pass a GIF file such as {out / 'episodes.gif'}.")
    existing = out.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write {out}: {existing} is not a writable directory. Pass another path.")
    return out


def load_model(path: str | os.PathLike[str], algo: type[BaseAlgorithm] | None = None) -> BaseAlgorithm:
    """
    :param path: a model zip
    :param algo: the class to load it with; ``None``: :func:`algorithm_of`
    :return: the model, on CPU, without envs
    """
    algo = algo or algorithm_of(path)
    return algo.load(Path(path), device="cpu")


def record_gif(
    model: BaseAlgorithm | str | os.PathLike[str],
    env_id: str,
    out: str | os.PathLike[str],
    *,
    episodes: int = 3,
    seed: int = 0,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    fps: int = DEFAULT_FPS,
    tile_size: int = 32,
) -> list[RecordedEpisode]:
    """
    Play episodes of a model one after the other and write them as one animated GIF.

    Works for every model the plugin trains: PPO, ``MaskablePPO`` (given the MiniGrid action masks),
    ``RecurrentPPO`` (LSTM states carried), and PPO subclasses.

    :param model: a model, or the zip it was saved to
    :param env_id: the env id (also ``sb3_llmae/<id>``); the observation layout is the model's
    :param out: the GIF to write (folders are created)
    :param episodes: number of episodes, on reset seeds ``seed, seed + 1, ...``
    :param seed: first reset seed
    :param deterministic: greedy actions (``True``) or sampled ones
    :param max_episode_steps: step limit; ``None`` keeps the env's own
    :param fps: frames per second
    :param tile_size: pixels per grid cell
    :return: what each episode did
    :raises ValueError: if ``episodes`` or ``fps`` is not positive, there are more episodes than a GIF
        holds (``MAX_GIF_EPISODES``), or ``out`` cannot be written
    """
    if episodes <= 0 or fps <= 0:
        raise ValueError(f"episodes and fps must be positive, got {episodes} and {fps}.")
    if episodes > MAX_GIF_EPISODES:
        raise ValueError(
            f"{episodes} episodes are too many for one GIF (its frames are kept in memory until it is "
            f"written): record at most {MAX_GIF_EPISODES}, or evaluate with sb3_llmae.evaluate_success."
        )
    out = check_gif_path(out)
    if not isinstance(model, BaseAlgorithm):
        model = load_model(model)
    bare_id = minigrid_id(env_id)
    env = make_env(
        bare_id,
        obs_mode=obs_mode_of(bare_id, model.observation_space),
        max_episode_steps=max_episode_steps,
        render_mode="rgb_array",
        tile_size=tile_size,
    )
    masked = isinstance(policy_of(model), MaskableActorCriticPolicy)
    frames: list[np.ndarray] = []
    durations: list[int] = []
    frame_ms = gif_frame_ms(fps)
    recorded = []
    try:
        for episode_seed in range(seed, seed + episodes):
            observation, _ = env.reset(seed=episode_seed)
            memory = PolicyMemory(model, 1)
            frames.append(np.asarray(env.render()))
            episode_return, length, done, success = 0.0, 0, False, False
            while not done:
                predict_kwargs = memory.predict_kwargs([0])
                if masked:
                    predict_kwargs["action_masks"] = minigrid_action_mask(env)[None]
                action, states = model.predict(
                    observation[None], deterministic=deterministic, **predict_kwargs
                )
                memory.update([0], states)
                observation, reward, terminated, truncated, _ = env.step(int(action[0]))
                episode_return += float(reward)
                length += 1
                done = terminated or truncated
                success = bool(terminated and float(reward) > 0)
                frames.append(np.asarray(env.render()))
            durations.extend([frame_ms] * (length + 1))
            durations[-1] += EPISODE_END_PAUSE_MS
            recorded.append(RecordedEpisode(episode_seed, length, episode_return, success))
    finally:
        env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    # Pillow merges identical consecutive frames (a turn into a wall, a pause), adding their durations.
    # written beside, then renamed: a kill or a full disk never leaves a half-written GIF at `out`
    partial = out.with_name(f".{out.name}.partial")
    try:
        images[0].save(
            partial, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("Wrote %d episodes (%d frames) to %s.", episodes, len(frames), out)
    return recorded
