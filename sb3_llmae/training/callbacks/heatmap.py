"""How often the agent stands on each cell of the grid during training: counts, PNG, TensorBoard image."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image

from sb3_llmae.envs import make_env, minigrid_id, unwrap_minigrid, vec_env_id
from sb3_llmae.training.callbacks.run_dir import resolve_log_dir

matplotlib.use("Agg")  # files only, never a window
from matplotlib import pyplot as plt

logger = logging.getLogger(__name__)

HEATMAP_FOLDER = "heatmaps"
BACKGROUNDS = ("auto", "render", "grid")
# Pixels per cell of the rendered background.
TILE_SIZE = 16
# Seeds compared to tell whether an env's layout changes from reset to reset.
LAYOUT_PROBE_SEEDS = (0, 1, 2)


def layout_is_fixed(env_id: str, env_kwargs: dict[str, Any] | None = None) -> bool:
    """
    :param env_id: a MiniGrid / BabyAI id
    :param env_kwargs: passed to the env constructor
    :return: whether walls, objects and the agent's start are the same after every reset (e.g.
        Empty-8x8), so that one rendering of the grid is the background of all visits
    """
    env = make_env(env_id, **(env_kwargs or {}))
    layouts = []
    for seed in LAYOUT_PROBE_SEEDS:
        env.reset(seed=seed)
        minigrid = unwrap_minigrid(env)
        layouts.append((minigrid.grid.encode().tobytes(), tuple(minigrid.agent_pos), minigrid.agent_dir))
    env.close()
    return len(set(layouts)) == 1


def render_grid(env_id: str, env_kwargs: dict[str, Any] | None = None, seed: int = 0) -> np.ndarray:
    """
    :param env_id: a MiniGrid / BabyAI id
    :param env_kwargs: passed to the env constructor
    :param seed: reset seed of the layout drawn
    :return: the full grid after ``reset(seed)``, RGB, ``TILE_SIZE`` pixels per cell
    """
    env = make_env(env_id, **(env_kwargs or {}))
    env.reset(seed=seed)
    frame = unwrap_minigrid(env).get_full_render(highlight=False, tile_size=TILE_SIZE)
    env.close()
    return np.asarray(frame)


def draw_heatmap(counts: np.ndarray, background: np.ndarray | None = None, title: str = "") -> np.ndarray:
    """
    Draw visit counts on a log colour scale, over a rendering of the grid or over plain cell lines.

    :param counts: visits per cell, shape ``(height, width)`` (row ``y``, column ``x``)
    :param background: RGB rendering of the grid (:func:`render_grid`) to draw under the counts;
        ``None``: plain cell lines
    :param title: figure title
    :return: the figure as an RGB array ``(H, W, 3)``, ``uint8``
    """
    height, width = counts.shape
    extent = (0.0, float(width), float(height), 0.0)
    figure, axes = plt.subplots(figsize=(4.0 + 0.1 * width, 3.4 + 0.1 * height), dpi=100)
    try:
        visited = np.ma.masked_equal(counts, 0)
        if background is not None:
            axes.imshow(background, extent=extent, interpolation="nearest")
        norm = matplotlib.colors.LogNorm(vmin=1, vmax=max(int(counts.max()), 2))
        image = axes.imshow(
            visited,
            extent=extent,
            cmap="inferno",
            norm=norm,
            alpha=0.65 if background is not None else 1.0,
            interpolation="nearest",
        )
        if background is None:
            axes.set_xticks(np.arange(width + 1), minor=True)
            axes.set_yticks(np.arange(height + 1), minor=True)
            axes.grid(which="minor", color="0.8", linewidth=0.5)
            axes.set_facecolor("white")
        axes.set_xticks(np.arange(width) + 0.5, labels=[str(x) for x in range(width)], fontsize=6)
        axes.set_yticks(np.arange(height) + 0.5, labels=[str(y) for y in range(height)], fontsize=6)
        axes.tick_params(which="minor", length=0)
        figure.colorbar(image, ax=axes, label="visits (log scale)")
        axes.set_title(title, fontsize=9)
        figure.tight_layout()
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())  # type: ignore[attr-defined]
        return np.array(rgba[..., :3])
    finally:
        plt.close(figure)


def save_png(rgb: np.ndarray, path: str | os.PathLike[str]) -> None:
    """
    :param rgb: an RGB image ``(H, W, 3)``
    :param path: the PNG to write
    """
    plt.imsave(Path(path), rgb)


class VisitationHeatmapCallback(BaseCallback):
    """
    Count the cells the agent stands on after each step of the training envs, and every
    ``save_freq`` env steps (and at the end of training) save the counts since training started
    as ``heatmaps/visits_step{N}.npy`` (``int64``, ``(height, width)``), draw them to
    ``heatmaps/visits_step{N}.png`` (log scale, over the rendered grid when the layout is the same
    after every reset, over plain cell lines otherwise) and log that image to TensorBoard
    (``heatmap/visits``, with the number of cells visited, ``heatmap/cells_visited``).

    The position is read from ``info["agent_pos"]``, which the plugin's
    :class:`~sb3_llmae.envs.MinigridInfoWrapper` puts there (``make_env``, ``make_vec_env``, the
    ``sb3_llmae/<id>`` ids, rl-zoo3's ``env_wrapper``): no env round trip per step, so it costs the same
    under ``DummyVecEnv`` and ``SubprocVecEnv``.

    :param save_freq: env steps between saves (whatever the number of envs)
    :param log_dir: folder of ``heatmaps/``; ``None``: the training envs' ``Monitor`` folder (rl-zoo3's
        run folder), else the model's logger folder (its TensorBoard run folder)
    :param background: ``"auto"`` (rendered grid when the layout is fixed, plain grid otherwise),
        ``"render"`` (the layout of reset seed 0, even if it changes) or ``"grid"``
    :param env_id: the env the counts' grid is drawn from; ``None``: the training envs' id
    :param env_kwargs: passed to the env constructor when rendering
    :param verbose: verbosity
    """

    def __init__(
        self,
        save_freq: int = 10_000,
        log_dir: str | os.PathLike[str] | None = None,
        background: str = "auto",
        env_id: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose=verbose)
        if save_freq <= 0:
            raise ValueError(f"save_freq must be positive, got {save_freq}.")
        if background not in BACKGROUNDS:
            raise ValueError(f"Unknown background {background!r}: choose one of {', '.join(BACKGROUNDS)}.")
        self.save_freq = save_freq
        self.log_dir_setting = log_dir
        self.background_setting = background
        self.env_id = None if env_id is None else minigrid_id(env_id)
        self.env_kwargs = dict(env_kwargs or {})
        self.heatmap_dir = Path()
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.background: np.ndarray | None = None
        self.next_save = 0
        self.last_saved_step: int | None = None

    def _init_callback(self) -> None:
        if self.env_id is None:
            self.env_id = vec_env_id(self.training_env)
        width = self.training_env.get_attr("width", indices=[0])[0]
        height = self.training_env.get_attr("height", indices=[0])[0]
        self.counts = np.zeros((int(height), int(width)), dtype=np.int64)
        draw_layout = self.background_setting == "render" or (
            self.background_setting == "auto" and layout_is_fixed(self.env_id, self.env_kwargs)
        )
        self.background = render_grid(self.env_id, self.env_kwargs) if draw_layout else None
        self.heatmap_dir = resolve_log_dir(self, self.log_dir_setting) / HEATMAP_FOLDER
        self.heatmap_dir.mkdir(parents=True, exist_ok=True)

    def _on_training_start(self) -> None:
        self.next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            try:
                x, y = info["agent_pos"]
            except KeyError:
                raise KeyError(
                    "VisitationHeatmapCallback reads info['agent_pos'], which the training envs do not "
                    "give: make them with sb3_llmae.make_vec_env or an sb3_llmae/<id> id, or add "
                    "sb3_llmae.envs.MinigridInfoWrapper to rl-zoo3's env_wrapper."
                ) from None
            self.counts[y, x] += 1
        if self.num_timesteps >= self.next_save:
            self.next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq
            self.save()
        return True

    def _on_training_end(self) -> None:
        if self.last_saved_step != self.num_timesteps:
            self.save()

    def save(self) -> Path:
        """
        Save the counts so far (``.npy``), their drawing (``.png``), and log the drawing to TensorBoard.

        :return: the PNG written
        """
        step = self.num_timesteps
        stem = self.heatmap_dir / f"visits_step{step}"
        np.save(stem.with_suffix(".npy"), self.counts)
        rgb = draw_heatmap(self.counts, self.background, title=f"{self.env_id}: visits, {step} steps")
        save_png(rgb, stem.with_suffix(".png"))
        self.logger.record("heatmap/visits", Image(rgb, "HWC"), exclude=("stdout", "log", "json", "csv"))
        self.logger.record("heatmap/cells_visited", int(np.count_nonzero(self.counts)))
        self.logger.dump(step)
        self.last_saved_step = step
        return stem.with_suffix(".png")
