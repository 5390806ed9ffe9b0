"""
The mission as policy input: MiniGrid / BabyAI mission strings as word tokens next to the grid.

A BabyAI level draws a new mission every episode ("go to the red ball", "open the grey door"), so a
policy that sees only the grid cannot tell what to do. ``obs_mode="mission"`` gives it the mission
too, as one ``uint8`` vector: the egocentric grid, flattened, then the mission's word indices.
One Box, not a ``Dict`` space, so that demonstrations, BC and every tool that stacks observations
work unchanged; :class:`~sb3_llmae.features.MissionGridFeaturesExtractor` splits it again.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# Every word of the missions of minigrid 3.x (all MiniGrid and BabyAI ids; the BabyAI grammar).
MISSION_WORDS: tuple[str, ...] = (
    "a", "after", "and", "at", "avoid", "ball", "behind", "blue", "box", "door", "end", "fetch", "find",
    "from", "front", "get", "go", "goal", "green", "grey", "hallway", "in", "key", "lava", "left",
    "matching", "must", "near", "next", "object", "of", "on", "open", "opening", "pick", "purple", "put",
    "reach", "red", "right", "room", "rooms", "square", "the", "then", "to", "traverse", "unlock", "up",
    "use", "yellow", "you", "your",
)  # fmt: skip
PAD_TOKEN = 0
UNKNOWN_TOKEN = 1
WORD_TOKENS: dict[str, int] = {word: index + 2 for index, word in enumerate(MISSION_WORDS)}
VOCABULARY_SIZE = len(WORD_TOKENS) + 2
# Longest mission seen: 37 words (BabyAI-MiniBossLevel-v0); longer ones keep their last words.
MAX_MISSION_WORDS = 48
_WORD = re.compile(r"[a-z]+")


def encode_mission(mission: str, length: int = MAX_MISSION_WORDS) -> tuple[np.ndarray, bool]:
    """
    :param mission: a mission string
    :param length: the number of tokens
    :return: the word tokens, right-aligned (padding first, so that a word's position counts from the
        mission's end, where templates such as "go to the <color> <type>" agree), and whether the mission
        had to be cut to fit
    """
    words = _WORD.findall(mission.lower())
    tokens = np.full(length, PAD_TOKEN, dtype=np.uint8)
    kept = words[-length:]
    if kept:
        tokens[length - len(kept) :] = [WORD_TOKENS.get(word, UNKNOWN_TOKEN) for word in kept]
    return tokens, len(words) > length


def mission_space(grid_space: spaces.Box, max_cell_index: int) -> spaces.Box:
    """
    :param grid_space: the egocentric grid's space, ``(H, W, 3)``
    :param max_cell_index: the largest index a grid cell holds
    :return: the space of ``obs_mode="mission"``: ``H * W * 3`` grid values then ``MAX_MISSION_WORDS``
        tokens, each bounded by what it can hold (which is how :func:`is_mission_space` tells it apart)
    """
    n_grid = int(np.prod(grid_space.shape))
    high = np.concatenate(
        [np.full(n_grid, max_cell_index), np.full(MAX_MISSION_WORDS, VOCABULARY_SIZE - 1)]
    ).astype(np.uint8)
    return spaces.Box(low=0, high=high, dtype=np.uint8)


def mission_grid_shape(observation_space: gym.Space, max_cell_index: int) -> tuple[int, int, int] | None:
    """
    :param observation_space: an observation space
    :param max_cell_index: the largest index a grid cell holds
    :return: the grid shape ``(H, W, 3)`` if the space is one of :func:`mission_space`, ``None`` otherwise
    """
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        return None
    n_grid = observation_space.shape[0] - MAX_MISSION_WORDS
    side = math.isqrt(max(n_grid // 3, 0))
    if n_grid <= 0 or side * side * 3 != n_grid:
        return None
    if observation_space != mission_space(spaces.Box(0, 1, (side, side, 3)), max_cell_index):
        return None
    return side, side, 3


class MinigridMissionWrapper(gym.ObservationWrapper):
    """
    The egocentric grid and the mission's word tokens, in one ``uint8`` vector (see the module doc).

    :param env: a MiniGrid env with a dict observation holding ``"image"`` and ``"mission"``
    :param max_cell_index: the largest index a grid cell holds
    """

    def __init__(self, env: gym.Env, max_cell_index: int) -> None:
        super().__init__(env)
        assert isinstance(env.observation_space, spaces.Dict), "MinigridMissionWrapper wraps MiniGrid's dict"
        grid_space = env.observation_space["image"]
        assert isinstance(grid_space, spaces.Box)
        self.observation_space = mission_space(grid_space, max_cell_index)
        self.warned_cut = False

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        tokens, cut = encode_mission(str(observation["mission"]))
        if cut and not self.warned_cut:
            self.warned_cut = True
            warnings.warn(
                f"A mission longer than {MAX_MISSION_WORDS} words keeps only its last {MAX_MISSION_WORDS}: "
                f"{observation['mission']!r}",
                stacklevel=2,
            )
        return np.concatenate([np.asarray(observation["image"], dtype=np.uint8).reshape(-1), tokens])
