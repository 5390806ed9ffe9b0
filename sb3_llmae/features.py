"""Features extractors for MiniGrid's egocentric grid of object / color / state indices, alone or with
the mission's words."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch as th
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_llmae.envs import MAX_CELL_INDEX
from sb3_llmae.missions import PAD_TOKEN, VOCABULARY_SIZE, mission_grid_shape

# Number of distinct values of each cell channel: object type, color, door state.
CHANNEL_SIZES: tuple[int, int, int] = (len(OBJECT_TO_IDX), len(COLOR_TO_IDX), len(STATE_TO_IDX))


class MinigridFeaturesExtractor(BaseFeaturesExtractor):
    """
    Small CNN over MiniGrid's egocentric view.

    Cells hold categorical indices (object, color, state), so each channel is one-hot encoded
    (20 planes) before two 2x2 convolutions, instead of being scaled like pixels: index 5
    (key) is not "more" than index 4 (door).

    Accepts the grid channels-last (``(7, 7, 3)``, what :class:`sb3_llmae.MinigridImageWrapper`
    gives) or channels-first (``(3, 7, 7)``, what SB3's ``VecTransposeImage`` makes of
    ``minigrid.wrappers.ImgObsWrapper``). In the latter case SB3 also divides by 255 unless
    the policy has ``normalize_images=False``; such inputs are detected (indices are integers)
    and scaled back.

    :param observation_space: a 3-d Box with one axis of size 3 (the cell channels)
    :param features_dim: number of features extracted (output of the final linear layer)
    :param hidden_channels: channels of the two convolutions
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 128,
        hidden_channels: tuple[int, int] = (16, 32),
    ) -> None:
        super().__init__(observation_space, features_dim)
        shape = observation_space.shape
        if (
            not isinstance(observation_space, gym.spaces.Box)
            or len(shape) != 3
            or 3 not in (shape[0], shape[-1])
        ):
            raise ValueError(
                "MinigridFeaturesExtractor needs MiniGrid's grid observation, a Box of shape (H, W, 3) "
                f"or (3, H, W); got {observation_space}. Make the env with "
                "sb3_llmae.envs.make_env(env_id, obs_mode='image'), or use MlpPolicy for obs_mode='flat'."
            )
        # MiniGrid views are square, so only a (3, 3, 3) view is ambiguous: read it channels-last,
        # as our wrapper gives it.
        self.channels_last = shape[-1] == 3
        height, width = (shape[0], shape[1]) if self.channels_last else (shape[1], shape[2])
        self.register_buffer("offsets", th.tensor([0, CHANNEL_SIZES[0], CHANNEL_SIZES[0] + CHANNEL_SIZES[1]]))
        self.register_buffer("maxima", th.tensor([size - 1 for size in CHANNEL_SIZES]))
        n_planes = sum(CHANNEL_SIZES)
        self.cnn = nn.Sequential(
            nn.Conv2d(n_planes, hidden_channels[0], kernel_size=2),
            nn.ReLU(),
            nn.Conv2d(hidden_channels[0], hidden_channels[1], kernel_size=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        n_flatten = hidden_channels[1] * (height - 2) * (width - 2)
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def one_hot(self, observations: th.Tensor) -> th.Tensor:
        """
        :param observations: batch of grids (either layout), integer-valued or divided by 255
        :return: one-hot planes, shape ``(batch, 20, H, W)``
        """
        if observations.is_floating_point() and bool((observations != observations.round()).any()):
            observations = observations * 255.0
        indices = observations.round().long()
        if not self.channels_last:
            indices = indices.permute(0, 2, 3, 1)
        indices = th.minimum(indices.clamp(min=0), self.maxima) + self.offsets  # type: ignore[operator, arg-type]
        planes = th.zeros(*indices.shape[:3], sum(CHANNEL_SIZES), device=indices.device)
        planes.scatter_(-1, indices, 1.0)
        return planes.permute(0, 3, 1, 2)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(self.cnn(self.one_hot(observations)))


class MissionGridFeaturesExtractor(BaseFeaturesExtractor):
    """
    The grid and the mission of ``obs_mode="mission"`` (:mod:`sb3_llmae.missions`): the grid through
    :class:`MinigridFeaturesExtractor`; the mission's words embedded, the embeddings of all positions
    concatenated and put through a linear layer, the two joined by a linear layer.

    Word order matters ("put the ball next to the key" is not "put the key next to the ball"): the
    linear layer sees each word at its position, counted from the mission's end (the tokens are
    right-aligned). A GRU would read the order too, at about eight times the CPU cost of the
    whole grid extractor, for missions of a dozen words.

    :param observation_space: the space of ``obs_mode="mission"``
    :param features_dim: number of features extracted (output of the final linear layer)
    :param hidden_channels: channels of the grid's two convolutions
    :param word_dim: size of a word's embedding
    :param mission_dim: number of the mission's features
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 128,
        hidden_channels: tuple[int, int] = (16, 32),
        word_dim: int = 16,
        mission_dim: int = 64,
    ) -> None:
        grid_shape = mission_grid_shape(observation_space, MAX_CELL_INDEX)
        if grid_shape is None:
            raise ValueError(
                "MissionGridFeaturesExtractor needs the grid-and-mission observation of "
                f"sb3_llmae.make_env(env_id, obs_mode='mission'); got {observation_space}. For "
                "obs_mode='image' use MinigridFeaturesExtractor."
            )
        super().__init__(observation_space, features_dim)
        self.grid_shape = grid_shape
        self.n_grid = math.prod(grid_shape)
        n_tokens = observation_space.shape[0] - self.n_grid
        grid_space = gym.spaces.Box(low=0, high=MAX_CELL_INDEX, shape=grid_shape, dtype=np.uint8)
        self.grid = MinigridFeaturesExtractor(grid_space, features_dim, hidden_channels)
        self.embedding = nn.Embedding(VOCABULARY_SIZE, word_dim, padding_idx=PAD_TOKEN)
        self.mission = nn.Sequential(nn.Flatten(), nn.Linear(n_tokens * word_dim, mission_dim), nn.ReLU())
        self.linear = nn.Sequential(nn.Linear(features_dim + mission_dim, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        grid = observations[:, : self.n_grid].reshape(-1, *self.grid_shape)
        tokens = observations[:, self.n_grid :].round().long().clamp(0, VOCABULARY_SIZE - 1)
        mission = self.mission(self.embedding(tokens))
        return self.linear(th.cat([self.grid(grid), mission], dim=1))
