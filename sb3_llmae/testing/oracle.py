"""Oracles for tests and benchmarks: an "LLM" that answers with the planner's (or the BabyAI bot's)
actions, and the exact shortest solution length of an episode (to measure the planner against)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

from minigrid.core.constants import DIR_TO_VEC
from minigrid.core.world_object import Door, WorldObj
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.base import UnsupportedEnvError
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.observation_text import ACTION_NAMES
from sb3_llmae.experts.planner import UNPLANNABLE_ENV_CLASSES, parse_mission
from sb3_llmae.experts.selection import planning_expert_for


class OracleResponder:
    """
    Answers the prompts an ``LLMExpert`` sends on ``env_id`` for ``seeds`` with the actions of the
    expert :func:`~sb3_llmae.experts.selection.planning_expert_for` picks (the planner, or the BabyAI
    bot on BabyAI levels) (``Action: <name>`` in step mode, ``Actions: [...]`` in plan mode), and says
    something with no action for any prompt it does not know.

    :param env_id: the env
    :param seeds: the episode seeds the expert will play
    :param expert: the expert whose prompts to answer (its templates and history length matter)
    """

    def __init__(self, env_id: str, seeds: Iterable[int], expert: LLMExpert) -> None:
        self.answers: dict[str, str] = {}
        for seed in seeds:
            self._record_episode(env_id, seed, expert)

    def _record_episode(self, env_id: str, seed: int, expert: LLMExpert) -> None:
        env = make_env(env_id)
        env.reset(seed=seed)
        minigrid_env = unwrap_minigrid(env)
        planner_episode = planning_expert_for(env_id).start_episode(minigrid_env, seed)
        plan_prompt = expert.plan_messages(minigrid_env)[-1]["content"]
        history: list[int] = []
        terminated = truncated = False
        while not (terminated or truncated):
            step_prompt = expert.step_messages(minigrid_env, history)[-1]["content"]
            action = planner_episode.act()
            self.answers[step_prompt] = f"Reasoning: I follow the plan.\nAction: {ACTION_NAMES[action]}"
            _, reward, terminated, truncated, _ = env.step(action)
            planner_episode.observe(action, float(reward), terminated, truncated)
            history.append(action)
        names = ", ".join(ACTION_NAMES[a] for a in history)
        self.answers[plan_prompt] = f"Reasoning: the shortest route.\nActions: [{names}]"

    def __call__(self, request: dict[str, Any]) -> str:
        prompt = request["messages"][-1]["content"]
        return self.answers.get(prompt, "Hmm, I am not sure what to do here.")


# Door states of the exact search in shortest_solution_length.
_OPEN, _CLOSED, _LOCKED = 0, 1, 2


def shortest_solution_length(env_id: str, seed: int) -> int:
    """
    The fewest steps that complete an episode, by exhaustive breadth-first search over the full
    abstract state: the agent's cell and direction, where the key lies (or that it is carried) and
    the state (open, closed, locked) of every door, with every action (dropping the key anywhere and
    closing doors included). It shares no code with the planner's search, so that it measures the
    planner's optimality. The env's step limit is ignored.

    It handles missions that reach the goal or open a door, in grids with at most one key, no other
    movable object and at most two doors: Empty, DoorKey, Unlock, FourRooms, and the Crossing,
    LavaGap and DistShift envs.

    :param env_id: a MiniGrid env id, e.g. ``"MiniGrid-DoorKey-8x8-v0"``
    :param seed: the reset seed
    :return: the length of a shortest successful episode
    :raises UnsupportedEnvError: for other envs
    :raises ValueError: if no action sequence completes the mission
    """
    env = unwrap_minigrid(make_env(env_id, seed=seed))
    task = parse_mission(env.mission)
    unsupported = UnsupportedEnvError(
        f"shortest_solution_length handles goal and door missions with at most one key and two doors, "
        f"not {env_id} (mission {env.mission!r})."
    )
    if task is None or len(task.stages) != 1 or task.stages[0].kind not in ("reach_goal", "open"):
        raise unsupported
    if isinstance(env, UNPLANNABLE_ENV_CLASSES):
        raise unsupported
    stage = task.stages[0]
    walkable, empty, goals, doors, door_at, keys = _read_grid(env, unsupported)
    if len(keys) > 1 or len(doors) > 2 or any(key.type != "key" for key, _ in keys):
        raise unsupported

    carried = (-1, -1)
    key_color = keys[0][0].color if keys else None
    key_start = keys[0][1] if keys else (-2, -2)  # off the grid when there is no key
    door_states = tuple(_LOCKED if door.is_locked else _OPEN if door.is_open else _CLOSED for door in doors)
    start = (int(env.agent_pos[0]), int(env.agent_pos[1]), int(env.agent_dir), key_start, door_states)
    seen = {start}
    queue = deque([(start, 0)])
    while queue:
        (x, y, direction, key_at, door_states), length = queue.popleft()
        dx, dy = DIR_TO_VEC[direction]
        front = (x + int(dx), y + int(dy))
        door = door_at.get(front)
        successors = [
            (x, y, (direction - 1) % 4, key_at, door_states),
            (x, y, (direction + 1) % 4, key_at, door_states),
        ]
        if door is not None:
            if door_states[door] == _OPEN:
                successors.append((*front, direction, key_at, door_states))
            new_state = door_states[door]
            if door_states[door] == _LOCKED:
                if key_at == carried and key_color == doors[door].color:
                    new_state = _OPEN
            else:
                new_state = _CLOSED if door_states[door] == _OPEN else _OPEN
            if new_state == _OPEN and stage.kind == "open" and stage.is_target(doors[door]):
                return length + 1
            if new_state != door_states[door]:
                toggled = tuple(new_state if i == door else s for i, s in enumerate(door_states))
                successors.append((x, y, direction, key_at, toggled))
        elif front == key_at:
            successors.append((x, y, direction, carried, door_states))
        elif front in goals:
            if stage.kind == "reach_goal":
                return length + 1
        elif front in walkable:
            successors.append((*front, direction, key_at, door_states))
            if key_at == carried and front in empty:
                successors.append((x, y, direction, front, door_states))
        for successor in successors:
            if successor not in seen:
                seen.add(successor)
                queue.append((successor, length + 1))
    raise ValueError(f"No action sequence completes {env_id} (mission {env.mission!r}) with seed {seed}.")


class _Grid(NamedTuple):
    """What the oracle's search needs to know of a grid."""

    walkable: set[tuple[int, int]]  # cells the agent may enter, doors aside
    empty: set[tuple[int, int]]  # cells the key may be dropped on
    goals: set[tuple[int, int]]
    doors: list[Door]
    door_at: dict[tuple[int, int], int]
    keys: list[tuple[WorldObj, tuple[int, int]]]  # the carried one at (-1, -1)


def _read_grid(env: MiniGridEnv, unsupported: UnsupportedEnvError) -> _Grid:
    """
    :param env: the unwrapped env, reset
    :param unsupported: raised when the grid holds a movable object other than a key
    :return: the grid's cells by kind, its doors and its keys
    """
    grid = env.grid
    walkable: set[tuple[int, int]] = set()
    empty: set[tuple[int, int]] = set()
    goals: set[tuple[int, int]] = set()
    doors: list[Door] = []
    door_at: dict[tuple[int, int], int] = {}
    keys: list[tuple[WorldObj, tuple[int, int]]] = []
    for y in range(grid.height):
        for x in range(grid.width):
            cell = grid.get(x, y)
            if cell is None or cell.type == "key":
                walkable.add((x, y))
                empty.add((x, y))
                if cell is not None:
                    keys.append((cell, (x, y)))
            elif cell.type == "floor":
                walkable.add((x, y))
            elif cell.type == "goal":
                goals.add((x, y))
            elif isinstance(cell, Door):
                door_at[x, y] = len(doors)
                doors.append(cell)
            elif cell.can_pickup():
                raise unsupported
    if env.carrying is not None:
        keys.append((env.carrying, (-1, -1)))
    return _Grid(walkable, empty, goals, doors, door_at, keys)
