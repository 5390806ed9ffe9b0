"""Small helpers for tests that put a MiniGrid env into a given state and read its text."""

from __future__ import annotations

from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.envs import make_env, unwrap_minigrid

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
# Directions of MiniGridEnv.agent_dir.
FACING_RIGHT, FACING_DOWN, FACING_LEFT, FACING_UP = range(4)


def minigrid(env_id: str, seed: int = 0) -> MiniGridEnv:
    """:return: the bare MiniGrid env of ``env_id``, reset with ``seed``"""
    return unwrap_minigrid(make_env(env_id, seed=seed))


def place_agent(env: MiniGridEnv, position: tuple[int, int], direction: int) -> None:
    """Put the agent at ``position`` facing ``direction``."""
    env.agent_pos = position
    env.agent_dir = direction


def seen_objects(text: str) -> list[str]:
    """:return: the object lines of a view description"""
    return [line for line in text.splitlines() if line.startswith("- ")]
