"""Episodes of a trained model rendered to an animated GIF (Pillow; no ffmpeg needed)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from sb3_llmae.atomic_files import unwritable_folder

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

logger = logging.getLogger(__name__)

# Frames per second of the GIF, and how much longer the last frame of each episode stays on screen.
DEFAULT_FPS = 8
EPISODE_END_PAUSE_MS = 500
# Every frame of a GIF is held in memory until it is written: a bound far above any GIF one watches.
MAX_GIF_EPISODES = 1000


@dataclass(frozen=True)
class RecordConfig:
    """
    What :func:`record_gif` records by default.

    :param episodes: number of episodes, on reset seeds ``seed, seed + 1, ...``
    :param seed: reset seed of the first episode
    :param fps: frames per second of the GIF
    :param tile_size: pixels per grid cell
    """

    episodes: int = 3
    seed: int = 0
    fps: int = DEFAULT_FPS
    tile_size: int = 32


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
    existing = unwritable_folder(out)
    if existing is not None:
        raise ValueError(f"Cannot write {out}: {existing} is not a writable directory. Pass another path.")
    return out


def record_gif(
    model: BaseAlgorithm | str | os.PathLike[str],
    env_id: str,
    out: str | os.PathLike[str],
    *,
    episodes: int = RecordConfig.episodes,
    seed: int = RecordConfig.seed,
    deterministic: bool = True,
    max_episode_steps: int | None = None,
    fps: int = RecordConfig.fps,
    tile_size: int = RecordConfig.tile_size,
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
    # torch and SB3 load here, not with the module: the CLI builds its parser from RecordConfig
    from stable_baselines3.common.base_class import BaseAlgorithm

    from sb3_llmae.training.evaluation import play_episodes
    from sb3_llmae.training.ppo import load_ppo

    if not isinstance(model, BaseAlgorithm):
        model = load_ppo(model, device="cpu")
    seeds = range(seed, seed + episodes)
    frames: list[list[np.ndarray]] = [[] for _ in seeds]
    played = sorted(
        play_episodes(
            model,
            env_id,
            seeds,
            max_episode_steps=max_episode_steps,
            deterministic=deterministic,
            env_kwargs={"render_mode": "rgb_array", "tile_size": tile_size},
            on_frame=lambda index, env: frames[index].append(np.asarray(env.render())),
        ),
        key=lambda episode: episode.index,
    )
    frame_ms = gif_frame_ms(fps)
    durations: list[int] = []
    for episode_frames in frames:
        durations.extend([frame_ms] * len(episode_frames))
        durations[-1] += EPISODE_END_PAUSE_MS
    out.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for episode_frames in frames for frame in episode_frames]
    # Pillow merges identical consecutive frames (a turn into a wall, a pause), adding their durations.
    # Written beside, then renamed: a kill or a full disk never leaves a half-written GIF at `out`.
    partial = out.with_name(f".{out.name}.partial")
    try:
        images[0].save(
            partial, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("Wrote %d episodes (%d frames) to %s.", episodes, len(images), out)
    return [
        RecordedEpisode(episode.seed, episode.length, episode.episode_return, episode.success)
        for episode in played
    ]
