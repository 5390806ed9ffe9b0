"""MiniGrid states as text: the egocentric view, the full map, the action list and the recent actions."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from minigrid.core.actions import Actions
from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT, STATE_TO_IDX
from minigrid.core.world_object import Door, WorldObj

from sb3_llmae.envs import unwrap_minigrid
from sb3_llmae.experts.llm.mission_notes import mission_notes

ACTION_NAMES: dict[int, str] = {int(action): action.name for action in Actions}
ACTION_DESCRIPTIONS: dict[int, str] = {
    int(Actions.left): "turn left by 90 degrees (you stay in the same cell)",
    int(Actions.right): "turn right by 90 degrees (you stay in the same cell)",
    int(Actions.forward): "move one cell forward; blocked by walls, closed doors and objects",
    int(Actions.pickup): "pick up the object right in front of you (you can carry one object)",
    int(Actions.drop): "drop the carried object onto the free cell right in front of you",
    int(Actions.toggle): "open or close the door right in front of you, or open the box there",
    int(Actions.done): "does nothing in most tasks; never needed to reach a goal",
}
DEFAULT_MAX_HISTORY = 8

# Where a direction index of ``MiniGridEnv.agent_dir`` points, in map coordinates.
DIRECTION_NAMES: dict[int, str] = {0: "right (+x)", 1: "down (+y)", 2: "left (-x)", 3: "up (-y)"}
AGENT_SYMBOLS: dict[int, str] = {0: ">", 1: "v", 2: "<", 3: "^"}
MAP_LEGEND: dict[str, str] = {
    "#": "wall",
    ".": "free cell",
    "K": "key",
    "B": "ball",
    "X": "box",
    "D": "closed door",
    "L": "locked door",
    "/": "open door",
    "G": "goal",
    "~": "lava",
}

_SYMBOL_OF_OBJECT: dict[str, str] = {
    "wall": "#",
    "empty": ".",
    "floor": ".",
    "key": "K",
    "ball": "B",
    "box": "X",
    "goal": "G",
    "lava": "~",
}
_SYMBOL_OF_DOOR_STATE: dict[int, str] = {
    STATE_TO_IDX["open"]: "/",
    STATE_TO_IDX["closed"]: "D",
    STATE_TO_IDX["locked"]: "L",
}
_STATE_NAMES: dict[int, str] = {index: name for name, index in STATE_TO_IDX.items()}
# Cell types the view description leaves out of its object list: nothing there to act on
# ("floor" is walkable), the carried object drawn in the agent's own cell, walls and lava
# (summarised separately, they can fill half the view).
_NOT_LISTED = frozenset({"unseen", "empty", "floor", "agent", "wall", "lava"})


def describe_actions() -> str:
    """
    :return: one line per action: number, name and what it does
    """
    return "\n".join(
        f"{action} {ACTION_NAMES[action]}: {ACTION_DESCRIPTIONS[action]}" for action in ACTION_NAMES
    )


def _steps(count: int, direction: str) -> str:
    return f"{count} step{'s' if count != 1 else ''} {direction}"


def relative_position(forward: int, right: int) -> str:
    """
    Describe a cell relative to the agent.

    :param forward: cells ahead of the agent
    :param right: cells to the agent's right (negative: to its left)
    :return: e.g. ``"2 steps forward and 1 step left"``, or ``"right in front of you"``
    """
    if (forward, right) == (1, 0):
        return "right in front of you"
    parts = []
    if forward:
        parts.append(_steps(forward, "forward"))
    if right:
        parts.append(_steps(abs(right), "right" if right > 0 else "left"))
    return " and ".join(parts) if parts else "where you stand"


def _with_article(phrase: str) -> str:
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def _cell_phrase(object_name: str, color: str, state: int) -> str:
    """
    :return: the object in words with its article, e.g. ``"a locked yellow door"``
    """
    if object_name == "door":
        return _with_article(f"{_STATE_NAMES[state]} {color} door")
    if object_name == "goal":
        return _with_article(f"{color} goal square")
    if object_name == "wall":
        return "a wall"
    if object_name == "lava":
        return "lava"
    if object_name in ("empty", "floor"):
        return "nothing (a free cell)"
    return _with_article(f"{color} {object_name}")


def _object_phrase(world_object: WorldObj) -> str:
    """
    :return: a (carried or mapped) object in words, with the contents of a box
    """
    state = world_object.encode()[2]
    phrase = _cell_phrase(world_object.type, world_object.color, state)
    contains = getattr(world_object, "contains", None)
    if contains is not None:
        phrase += f" (containing {_object_phrase(contains)})"
    return phrase


def _nearest_wall(image: np.ndarray, column: int, row: int, step: tuple[int, int]) -> int | None:
    """
    :return: how many cells from ``(column, row)`` along ``step`` the first visible wall is,
        ``None`` if the view ends, or becomes hidden, before one
    """
    width, height = image.shape[:2]
    distance = 1
    column, row = column + step[0], row + step[1]
    while 0 <= column < width and 0 <= row < height:
        object_name = IDX_TO_OBJECT[int(image[column, row, 0])]
        if object_name == "wall":
            return distance
        if object_name == "unseen":
            return None
        distance += 1
        column, row = column + step[0], row + step[1]
    return None


def describe_view(env: gym.Env) -> str:
    """
    Describe what the agent sees, in the egocentric terms it acts in.

    Reads the same partial view as the policy (``env.gen_obs()``): the mission (with what its words
    mean on BabyAI levels, :func:`~sb3_llmae.experts.llm.mission_notes.mission_notes`), every visible
    key, ball, box, door and goal with its position relative to the agent, the visible lava,
    the nearest wall straight ahead and to each side, the cell right in front and the carried
    object. Cells hidden behind walls or closed doors are not mentioned.

    :param env: a (wrapped) MiniGrid env
    :return: the description, a few short lines
    """
    minigrid_env = unwrap_minigrid(env)
    image = minigrid_env.gen_obs()["image"]
    width, height = image.shape[:2]
    agent_column, agent_row = width // 2, height - 1

    cells = [
        (forward, column - agent_column)
        for column in range(width)
        for forward in range(height)
        if (column, forward) != (agent_column, 0)
    ]
    # Nearest first, so that what matters now heads the list and the order is deterministic.
    cells.sort(key=lambda cell: (cell[0] + abs(cell[1]), cell[0], cell[1]))
    object_lines: list[str] = []
    lava_positions: list[str] = []
    for forward, right in cells:
        type_index, color_index, state = (
            int(value) for value in image[agent_column + right, agent_row - forward]
        )
        object_name = IDX_TO_OBJECT[type_index]
        if object_name == "lava":
            lava_positions.append(relative_position(forward, right))
        elif object_name not in _NOT_LISTED:
            phrase = _cell_phrase(object_name, IDX_TO_COLOR[color_index], state)
            object_lines.append(f"- {phrase} {relative_position(forward, right)}")
    if lava_positions:
        object_lines.append(f"- lava (deadly) {'; '.join(lava_positions)}")

    lines = [f"Mission: {minigrid_env.mission}", *(f"Note: {note}" for note in mission_notes(minigrid_env))]
    lines += ["You see:", *object_lines] if object_lines else ["You see no objects."]

    wall_distances = [
        (_nearest_wall(image, agent_column, agent_row, (0, -1)), "forward"),
        (_nearest_wall(image, agent_column, agent_row, (-1, 0)), "left"),
        (_nearest_wall(image, agent_column, agent_row, (1, 0)), "right"),
    ]
    walls = [_steps(distance, direction) for distance, direction in wall_distances if distance is not None]
    lines.append(
        f"Nearest walls: {', '.join(walls)}." if walls else "No wall in view ahead or to your sides."
    )

    front_type, front_color, front_state = (int(value) for value in image[agent_column, agent_row - 1])
    front_name = IDX_TO_OBJECT[front_type]
    front = (
        "something you cannot see"
        if front_name == "unseen"
        else _cell_phrase(front_name, IDX_TO_COLOR[front_color], front_state)
    )
    lines.append(f"Right in front of you: {front}.")
    carried = _object_phrase(minigrid_env.carrying) if minigrid_env.carrying is not None else "nothing"
    lines.append(f"You are carrying {carried}.")
    return "\n".join(lines)


def _map_symbol(world_object: WorldObj | None) -> str:
    if world_object is None:
        return "."
    if isinstance(world_object, Door):
        return _SYMBOL_OF_DOOR_STATE[world_object.encode()[2]]
    return _SYMBOL_OF_OBJECT.get(world_object.type, "?")


def describe_full_map(env: gym.Env) -> str:
    """
    Describe the whole grid, fully observed, for planning an episode in one go.

    An ASCII map with numbered rows and columns and a legend of the symbols it uses, the
    colored objects with their coordinates, the agent's cell and facing direction, the
    carried object, and the mission. Coordinates are ``(x, y)``: ``x`` the column, growing
    rightwards, ``y`` the row, growing downwards.

    :param env: a (wrapped) MiniGrid env
    :return: the description
    """
    minigrid_env = unwrap_minigrid(env)
    grid = minigrid_env.grid
    agent_x, agent_y = (int(value) for value in minigrid_env.agent_pos)
    cell_width = len(str(max(grid.width, grid.height) - 1))

    rows = [" " * cell_width + " " + " ".join(str(x).rjust(cell_width) for x in range(grid.width))]
    used_symbols: set[str] = set()
    object_lines: list[str] = []
    for y in range(grid.height):
        symbols = []
        for x in range(grid.width):
            world_object = grid.get(x, y)
            symbol = _map_symbol(world_object)
            if world_object is not None and world_object.type not in ("wall", "lava", "floor"):
                object_lines.append(f"- {_object_phrase(world_object)} at ({x}, {y})")
            if (x, y) == (agent_x, agent_y):
                symbol = AGENT_SYMBOLS[minigrid_env.agent_dir]
            else:
                used_symbols.add(symbol)
            symbols.append(symbol.rjust(cell_width))
        rows.append(f"{str(y).rjust(cell_width)} {' '.join(symbols)}")

    legend = [f"{symbol} {meaning}" for symbol, meaning in MAP_LEGEND.items() if symbol in used_symbols]
    legend.append("> v < ^ you, facing right, down, left, up")
    lines = [
        f"Mission: {minigrid_env.mission}",
        *(f"Note: {note}" for note in mission_notes(minigrid_env)),
        f"Map ({grid.width} columns x {grid.height} rows; x = column, y = row, y grows downwards):",
        *rows,
        f"Legend: {', '.join(legend)}",
    ]
    if object_lines:
        lines += ["Objects:", *object_lines]
    lines.append(f"You are at ({agent_x}, {agent_y}) facing {DIRECTION_NAMES[minigrid_env.agent_dir]}.")
    standing_on = grid.get(agent_x, agent_y)
    if standing_on is not None:
        lines.append(f"You stand on {_object_phrase(standing_on)}.")
    carried = _object_phrase(minigrid_env.carrying) if minigrid_env.carrying is not None else "nothing"
    lines.append(f"You are carrying {carried}.")
    return "\n".join(lines)


def describe_history(actions: Sequence[int], max_history: int = DEFAULT_MAX_HISTORY) -> str:
    """
    :param actions: the actions taken so far this episode, oldest first
    :param max_history: how many of the latest actions to name; 0 leaves the history out
    :return: e.g. ``"Your last 3 actions (oldest first): forward, forward, left."``
    """
    if max_history <= 0:
        return ""
    if not actions:
        return "Your last actions: none yet."
    recent = [ACTION_NAMES.get(int(action), str(action)) for action in actions[-max_history:]]
    return f"Your last {len(recent)} actions (oldest first): {', '.join(recent)}."
