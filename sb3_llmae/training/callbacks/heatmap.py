"""How often the agent stands on each cell of the grid during training: counts, PNG, TensorBoard image."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image, ImageDraw
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image as LoggedImage

from sb3_llmae.envs import make_env, minigrid_id, unwrap_minigrid, vec_env_id
from sb3_llmae.run_layout import HEATMAPS_DIR, heatmap_stem
from sb3_llmae.training.callbacks.run_dir import resolve_log_dir

logger = logging.getLogger(__name__)

BACKGROUNDS = ("auto", "render", "grid")
# Pixels per cell of the drawing (and of the rendered background).
TILE_SIZE = 32
COLOUR_MAP = matplotlib.colormaps["inferno"]
# Weight of the visit colour over the rendered grid, grey of the cell lines, pixels under the grid.
OVERLAY_ALPHA = 0.65
GRID_LINE_GREY = 200.0
LEGEND_HEIGHT = 36
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
    Draw visit counts on a log colour scale (``inferno``: dark for one visit, bright for the most),
    over a rendering of the grid or over plain cell lines, with a colour legend underneath.

    Drawn with numpy and Pillow, a few milliseconds per image, so that saving often costs training
    nothing measurable (a matplotlib figure takes about a second).

    :param counts: visits per cell, shape ``(height, width)`` (row ``y``, column ``x``)
    :param background: RGB rendering of the grid (:func:`render_grid`, ``TILE_SIZE`` pixels per cell) to
        draw under the counts; ``None``: white cells with grey lines
    :param title: text written under the legend (e.g. the env and step)
    :return: the image, RGB ``(H, W, 3)``, ``uint8``
    """
    height, width = counts.shape
    most = max(int(counts.max()), 1)
    # log scale from 1 visit (0) to the most visits (1)
    shade = np.log(np.maximum(counts, 1)) / np.log(max(most, 2))
    colours = COLOUR_MAP(shade)[..., :3] * 255
    cells = np.kron(colours, np.ones((TILE_SIZE, TILE_SIZE, 1)))
    visited = np.kron(counts > 0, np.ones((TILE_SIZE, TILE_SIZE), dtype=bool))[..., None]
    if background is None:
        canvas = np.full((height * TILE_SIZE, width * TILE_SIZE, 3), 255.0)
        canvas = np.where(visited, cells, canvas)
        canvas[::TILE_SIZE] = canvas[:, ::TILE_SIZE] = GRID_LINE_GREY
    else:
        canvas = np.where(visited, (1 - OVERLAY_ALPHA) * background + OVERLAY_ALPHA * cells, background)
    legend = np.full((LEGEND_HEIGHT, canvas.shape[1], 3), 255.0)
    legend[2:12] = COLOUR_MAP(np.linspace(0, 1, canvas.shape[1]))[None, :, :3] * 255
    image = Image.fromarray(np.concatenate([canvas, legend]).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    top = canvas.shape[0] + 13
    draw.text((1, top), "1", fill=(0, 0, 0))
    draw.text((canvas.shape[1] - 6 * len(str(most)) - 1, top), str(most), fill=(0, 0, 0))
    label = "visits (log)"
    draw.text(((canvas.shape[1] - 6 * len(label)) // 2, top), label, fill=(0, 0, 0))
    draw.text((1, top + 11), title[: canvas.shape[1] // 6], fill=(0, 0, 0))
    return np.asarray(image)


def save_png(rgb: np.ndarray, path: str | os.PathLike[str]) -> None:
    """
    :param rgb: an RGB image ``(H, W, 3)``
    :param path: the PNG to write
    """
    Image.fromarray(rgb).save(Path(path))


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
        self.heatmap_dir = resolve_log_dir(self, self.log_dir_setting) / HEATMAPS_DIR
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
        stem = self.heatmap_dir / heatmap_stem(step)
        np.save(stem.with_suffix(".npy"), self.counts)
        rgb = draw_heatmap(self.counts, self.background, title=f"{self.env_id} step {step}")
        save_png(rgb, stem.with_suffix(".png"))
        self.logger.record(
            "heatmap/visits", LoggedImage(rgb, "HWC"), exclude=("stdout", "log", "json", "csv")
        )
        self.logger.record("heatmap/cells_visited", int(np.count_nonzero(self.counts)))
        self.logger.dump(step)
        self.last_saved_step = step
        return stem.with_suffix(".png")
