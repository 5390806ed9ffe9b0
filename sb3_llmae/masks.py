"""Action masks for MiniGrid, computed from the env's state, for sb3-contrib's ``MaskablePPO``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from minigrid.core.actions import Actions
from minigrid.core.world_object import Box, Door, Key
from minigrid.minigrid_env import MiniGridEnv
from sb3_contrib.common.wrappers import ActionMasker


def valid_actions(env: MiniGridEnv) -> np.ndarray:
    """
    Which MiniGrid actions can change something in the current state.

    Turning and moving forward are always allowed (a step into a wall is still a step of the
    episode); ``done`` never is (no MiniGrid task the plugin trains on ends with it); ``pickup``
    only with nothing carried and something that can be picked up in front; ``drop`` only while
    carrying something and with an empty cell in front; ``toggle`` only in front of a box, an
    unlocked door, or a locked door while carrying the key of its colour.

    :param env: the MiniGrid env (unwrapped)
    :return: one bool per action, in the order of ``minigrid.core.actions.Actions``
    """
    front = env.grid.get(*env.front_pos)
    carrying = env.carrying
    mask = np.ones(len(Actions), dtype=bool)
    mask[Actions.done] = False
    mask[Actions.pickup] = carrying is None and front is not None and front.can_pickup()
    mask[Actions.drop] = carrying is not None and front is None
    mask[Actions.toggle] = isinstance(front, Box) or (
        isinstance(front, Door)
        and (not front.is_locked or (isinstance(carrying, Key) and carrying.color == front.color))
    )
    return mask


def minigrid_action_mask(env: gym.Env) -> np.ndarray:
    """
    The mask function for ``sb3_contrib.common.wrappers.ActionMasker``: :func:`valid_actions` of
    the MiniGrid env under any wrappers.

    :param env: a (wrapped) MiniGrid env
    :return: one bool per action
    """
    base = env.unwrapped
    if not isinstance(base, MiniGridEnv):
        raise TypeError(f"minigrid_action_mask needs a MiniGrid env, got {type(base).__name__}.")
    return valid_actions(base)


class MinigridActionMasker(ActionMasker, gym.utils.RecordConstructorArgs):
    """
    ``ActionMasker`` with :func:`minigrid_action_mask`, buildable without arguments, so that
    rl-zoo3's ``env_wrapper`` key can add it: ``env_wrapper: [..., sb3_llmae.masks.MinigridActionMasker]``.

    :param env: a (wrapped) MiniGrid env
    """

    def __init__(self, env: gym.Env) -> None:
        # recorded (no arguments), so that gymnasium can re-create the wrapper stack (check_env)
        gym.utils.RecordConstructorArgs.__init__(self)
        ActionMasker.__init__(self, env, minigrid_action_mask)
