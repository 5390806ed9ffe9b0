"""
Text for an LLM that plays MiniGrid: observations as words, chat prompts, and reply parsing.

Two prompting modes share this module: ``step`` mode (one action per call, from the egocentric
view the policy also sees, see :func:`describe_view`) and ``plan`` mode (the whole action list
in one call, from the fully observed map, see :func:`describe_full_map`).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from minigrid.core.actions import Actions
from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT, STATE_TO_IDX
from minigrid.core.world_object import Door, WorldObj
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.envs import unwrap_minigrid

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

# Every way of naming an action that a reply may use, after normalisation (lower case,
# "_" and "-" between words read as spaces).
ACTION_SYNONYMS: dict[str, int] = {
    **{name: action for action, name in ACTION_NAMES.items()},
    **dict.fromkeys(("turn left", "rotate left"), int(Actions.left)),
    **dict.fromkeys(("turn right", "rotate right"), int(Actions.right)),
    **dict.fromkeys(
        (
            "forwards",
            "move forward",
            "go forward",
            "step forward",
            "walk forward",
            "move ahead",
            "go straight",
        ),
        int(Actions.forward),
    ),
    **dict.fromkeys(("pick up", "grab", "take"), int(Actions.pickup)),
    "put down": int(Actions.drop),
    **dict.fromkeys(("open", "close", "unlock"), int(Actions.toggle)),
    "finish": int(Actions.done),
}
# The names that reasoning text uses for other things ("the key is 2 steps forward", "the door
# is open", "once done") count as an action only where the reply names an answer explicitly.
FREE_TEXT_ACTION_PHRASES: tuple[str, ...] = (
    "turn left",
    "rotate left",
    "turn right",
    "rotate right",
    "move forward",
    "go forward",
    "step forward",
    "walk forward",
    "move ahead",
    "go straight",
    "pick up",
    "pickup",
    "drop",
    "toggle",
    "unlock",
)
DEFAULT_MAX_HISTORY = 8
# The names a ``PromptTemplate`` may use in its system and state templates.
TEMPLATE_FIELDS = frozenset({"actions", "mission", "observation", "history"})

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

_NEGATION = re.compile(
    r"\b(?:not|no|never|don'?t|do not|cannot|can'?t|won'?t|avoid|instead of|rather than)\b"
)
# Only the last few words since the last clause boundary can negate a mention: in "I cannot
# go forward, so I turn left" the "cannot" is not about "turn left".
_NEGATION_REACH = 3
_CLAUSE_BOUNDARY = re.compile(r"[.,;:!?\n]|\b(?:so|then|but|and|therefore|thus)\b")
_ANSWER_MARKER = re.compile(r"\b(?:action|answer)\b\W{0,3}?[:=]\s*(.*)", re.IGNORECASE)
_PLAN_MARKER = re.compile(r"\b(?:actions|plan)\b\W{0,3}?[:=]", re.IGNORECASE)
_LIST_ITEM_PREFIX = re.compile(r"^\s*(?:\d+\s*[.)]|[-*\u2022])\s+")
_LIST_SEPARATORS = re.compile(r",|;|->|\u2192|\n")
_LEADING_NUMBER = re.compile(r"(\d+)(?!\.?\d)")
_TRIM_CHARACTERS = " \t\r\n*`'\"[]()<>{}.!:"


@dataclass(frozen=True)
class PromptTemplate:
    """
    The chat messages of one prompting mode, written as ``str.format`` templates.

    The fields are ``{actions}`` (the numbered action list with what each action does),
    ``{mission}``, ``{observation}`` (the state as text) and ``{history}`` (the recent actions,
    step mode only); literal braces are written ``{{`` and ``}}``. To change one part, use
    ``dataclasses.replace(STEP_TEMPLATE, system=...)``.

    :param system: the system message (rules, actions, answer format)
    :param few_shot: example exchanges ``(user, assistant)`` placed between the system message
        and the state, used as written (not formatted)
    :param state: the user message that shows the current state and asks for an answer
    :param correction: the user message that re-asks, once, after a reply without a valid answer
        (not formatted)
    """

    system: str
    few_shot: tuple[tuple[str, str], ...]
    state: str
    correction: str

    def __post_init__(self) -> None:
        for part, text in (("system", self.system), ("state", self.state)):
            try:
                field_names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            except ValueError as error:
                raise ValueError(
                    f"Malformed {part} template: {error}. Write literal braces as {{{{ }}}}."
                ) from error
            unknown = field_names - TEMPLATE_FIELDS
            if unknown:
                raise ValueError(
                    f"Unknown field(s) {sorted(unknown)} in the {part} template: "
                    f"use only {sorted(TEMPLATE_FIELDS)}, and write literal braces as {{{{ }}}}."
                )

    def messages(self, fields: Mapping[str, str]) -> list[dict[str, str]]:
        """
        Fill in the templates.

        :param fields: a value for every name of ``TEMPLATE_FIELDS``
        :return: OpenAI chat messages: system, the few-shot exchanges, then the state
        """
        messages = [{"role": "system", "content": self.system.format_map(fields)}]
        for user_text, assistant_text in self.few_shot:
            messages.append({"role": "user", "content": user_text})
            messages.append({"role": "assistant", "content": assistant_text})
        messages.append({"role": "user", "content": self.state.format_map(fields).rstrip()})
        return messages


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

    Reads the same partial view as the policy (``env.gen_obs()``): the mission, every visible
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

    lines = [f"Mission: {minigrid_env.mission}"]
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


def _normalize(text: str) -> str:
    text = text.lower().replace("_", " ")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    return re.sub(r"\s+", " ", text).strip(_TRIM_CHARACTERS)


def _phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    # Longest first, so that "turn left" is one mention, not "left" preceded by "turn".
    alternatives = "|".join(re.escape(phrase) for phrase in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b")


_ANY_ACTION_PHRASE = _phrase_pattern(tuple(ACTION_SYNONYMS))
_FREE_TEXT_ACTION_PHRASE = _phrase_pattern(FREE_TEXT_ACTION_PHRASES)


def _is_negated(text: str, start: int) -> bool:
    """
    :return: whether one of the few words before ``start``, in the same clause, is a negation
    """
    clause_start = 0
    for boundary in _CLAUSE_BOUNDARY.finditer(text, 0, start):
        clause_start = boundary.end()
    # "I won't turn left" is negated, "rather than go forward I turn right" is not (for right).
    preceding_words = text[clause_start:start].split()[-_NEGATION_REACH:]
    return _NEGATION.search(" ".join(preceding_words)) is not None


def _mentioned_actions(text: str, pattern: re.Pattern[str]) -> list[int]:
    """
    :return: the actions that ``text`` names with ``pattern``, in order, leaving out negated ones
    """
    return [
        ACTION_SYNONYMS[match.group()]
        for match in pattern.finditer(text)
        if not _is_negated(text, match.start())
    ]


def _leading_action(value: str) -> int | None:
    """
    :return: the action a list item or answer starts with (a number or a name), ``None`` if
        it starts with neither or with an out-of-range number
    """
    text = _normalize(value)
    number = _LEADING_NUMBER.match(text)
    if number:
        action = int(number.group(1))
        return action if action in ACTION_NAMES else None
    match = _ANY_ACTION_PHRASE.match(text)
    return ACTION_SYNONYMS[match.group()] if match else None


def _answer_value_action(value: object) -> int | None:
    """
    :return: the action of an explicit answer (after ``Action:`` or as a JSON value)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in ACTION_NAMES else None
    if not isinstance(value, str):
        return None
    text = _normalize(value)
    if _LEADING_NUMBER.match(text):
        # An out-of-range number is a wrong answer, not a cue to look for a name further on.
        return _leading_action(text)
    # "Action: I will turn left, then go forward": any name counts, the first is the action now.
    mentioned = _mentioned_actions(text, _ANY_ACTION_PHRASE)
    return mentioned[0] if mentioned else None


def _json_objects(text: str) -> list[tuple[int, dict[str, object]]]:
    """
    :return: every JSON object embedded in ``text``, with its start offset
    """
    decoder = json.JSONDecoder()
    objects, position = [], text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            objects.append((position, value))
        position = text.find("{", end)
    return objects


def parse_action(reply: str) -> int | None:
    """
    Read the action an LLM reply chooses.

    The last explicit answer decides: an ``Action: <number or name>`` (or ``Answer:``) line,
    or a JSON object with an ``"action"`` key. Without one, a reply that is only an action
    (``"2"``, ``"turn left"``) counts, and then the last action phrase of the text that is not
    negated ("I can't go forward, so I turn left" gives left).

    :param reply: the reply text
    :return: the action, or ``None`` if the reply names no valid one (including an explicit
        answer out of range, or not an action)
    """
    answers: list[tuple[int, object]] = [
        (match.start(), match.group(1)) for match in _ANSWER_MARKER.finditer(reply)
    ]
    for position, json_object in _json_objects(reply):
        for key, value in json_object.items():
            if isinstance(key, str) and key.lower() == "action":
                answers.append((position, value))
    if answers:
        return _answer_value_action(max(answers, key=lambda answer: answer[0])[1])

    text = _normalize(reply)
    if _LEADING_NUMBER.fullmatch(text) or text in ACTION_SYNONYMS:
        return _answer_value_action(text)
    mentioned = _mentioned_actions(text, _FREE_TEXT_ACTION_PHRASE)
    return mentioned[-1] if mentioned else None


def _parse_items(items: Sequence[str]) -> list[int] | None:
    """
    :return: the action of every non-empty item, ``None`` if any item is not an action or
        there is none
    """
    actions = []
    for item in items:
        item = _LIST_ITEM_PREFIX.sub("", item)
        if not _normalize(item):
            continue
        action = _leading_action(item)
        if action is None:
            return None
        actions.append(action)
    return actions or None


def _parse_list_block(lines: Sequence[str]) -> list[int] | None:
    """
    :return: the actions of the first run of bulleted or numbered lines, ``None`` if none
    """
    items: list[str] = []
    for line in lines:
        if _LIST_ITEM_PREFIX.match(line):
            items.append(line)
        elif items and line.strip():
            break
    return _parse_items(items) if items else None


def _parse_list_body(text: str) -> list[int] | None:
    """
    :return: the actions of the list that ``text`` starts with: bracketed, on the first line
        separated by commas or arrows, or as bulleted / numbered lines
    """
    body = text.lstrip(" \t*`")
    if body.startswith("["):
        end = body.find("]")
        return _parse_items(_LIST_SEPARATORS.split(body[1 : end if end != -1 else None]))
    first_line, _, rest = body.partition("\n")
    if first_line.strip():
        return _parse_items(_LIST_SEPARATORS.split(first_line))
    return _parse_list_block(rest.splitlines())


def parse_action_list(reply: str) -> list[int] | None:
    """
    Read the action list of a plan-mode reply.

    Reads the list after the last ``Actions:`` (or ``Plan:``, or a JSON ``"actions"`` key),
    which may be a JSON or bracketed list (``[forward, "left", 2]``), comma- or arrow-separated
    names on that line, or bulleted / numbered lines below it. Without such a marker, reads the
    last bracketed list, else the first bulleted / numbered list, else a reply that is only a
    comma-separated list.

    :param reply: the reply text
    :return: the actions in order, or ``None`` if there is no list or one of its items is not a
        valid action
    """
    markers = list(_PLAN_MARKER.finditer(reply))
    if markers:
        return _parse_list_body(reply[markers[-1].end() :])
    bracketed = re.findall(r"\[([^\[\]]*)\]", reply)
    if bracketed:
        return _parse_items(_LIST_SEPARATORS.split(bracketed[-1]))
    block = _parse_list_block(reply.splitlines())
    if block is not None:
        return block
    return _parse_items(_LIST_SEPARATORS.split(reply))


CORRECTION_MESSAGE = (
    "Your reply had no valid action. Answer again with two lines, `Reasoning: <one sentence>` and "
    "`Action: <name or number>`, where the action is one of: "
    + ", ".join(f"{action} {name}" for action, name in ACTION_NAMES.items())
    + "."
)
PLAN_CORRECTION_MESSAGE = (
    "Your reply had no valid action list. Answer again with `Reasoning: <short>` and then "
    "`Actions: [<name>, <name>, ...]` on one line, each name one of: "
    + ", ".join(ACTION_NAMES.values())
    + "."
)

_RULES = "\n".join(
    (
        "You control an agent in a grid world (MiniGrid) and must complete the mission in as few actions "
        "as possible.",
        "Actions:",
        "{actions}",
        "Rules:",
        "- Walls, closed or locked doors, keys, balls and boxes block your way; you can walk through open "
        "doors. Walking into lava loses the game.",
        "- To pick up, open or toggle something, it must be right in front of you (the next cell in the "
        "direction you face).",
        "- You can carry one object at a time; drop it on a free cell to pick up another.",
        "- A locked door opens with toggle only while you carry a key of the same color.",
        "- To reach a goal square, walk onto it. To go to an object, stand right in front of it, facing it. "
        "To put an object next to another, drop it on a free cell beside that object.",
    )
)

STEP_SYSTEM_PROMPT = "\n".join(
    (
        _RULES,
        "Each turn you see only a 7x7 area in front of you (up to 6 cells forward and 3 to each side), "
        "not through walls or closed doors; turn and move to explore.",
        'Positions are relative to you: "forward" is the direction you face, "left" and "right" are to '
        "your sides. Turning changes what is forward: after turning left, what was 2 steps left is 2 steps "
        "forward.",
        "Answer with exactly two lines:",
        "Reasoning: <one short sentence>",
        "Action: <action name>",
    )
)

STEP_FEW_SHOT: tuple[tuple[str, str], ...] = (
    (
        "\n".join(
            (
                "Mission: use the key to open the door and then get to the goal",
                "You see:",
                "- a yellow key right in front of you",
                "- a locked yellow door 2 steps forward and 3 steps left",
                "Nearest walls: 2 steps forward, 2 steps right.",
                "Right in front of you: a yellow key.",
                "You are carrying nothing.",
                "Your last 2 actions (oldest first): forward, left.",
            )
        ),
        "Reasoning: The yellow key that opens the locked yellow door is right in front of me.\n"
        "Action: pickup",
    ),
    (
        "\n".join(
            (
                "Mission: use the key to open the door and then get to the goal",
                "You see:",
                "- a locked yellow door right in front of you",
                "Nearest walls: 2 steps left.",
                "Right in front of you: a locked yellow door.",
                "You are carrying a yellow key.",
                "Your last 3 actions (oldest first): pickup, right, forward.",
            )
        ),
        "Reasoning: I carry the yellow key and the locked yellow door is right in front of me.\n"
        "Action: toggle",
    ),
    (
        "\n".join(
            (
                "Mission: get to the green goal square",
                "You see:",
                "- a green goal square 2 steps right",
                "Nearest walls: 1 step forward, 3 steps right.",
                "Right in front of you: a wall.",
                "You are carrying nothing.",
                "Your last 2 actions (oldest first): forward, forward.",
            )
        ),
        "Reasoning: A wall blocks the way forward and the goal is to my right, so I turn right to face it.\n"
        "Action: right",
    ),
)

STEP_STATE = "{observation}\n{history}"

STEP_TEMPLATE = PromptTemplate(
    system=STEP_SYSTEM_PROMPT,
    few_shot=STEP_FEW_SHOT,
    state=STEP_STATE,
    correction=CORRECTION_MESSAGE,
)

PLAN_SYSTEM_PROMPT = "\n".join(
    (
        _RULES,
        "You see the whole map. Cells are (x, y): x is the column, growing to the right; y is the row, "
        "growing downwards.",
        "Moving forward from (x, y) goes to (x+1, y) facing right, (x, y+1) facing down, (x-1, y) facing "
        "left, (x, y-1) facing up.",
        "Turning left changes your facing right -> up -> left -> down -> right; turning right goes the "
        "other way.",
        "Plan every action from the start to the completed mission. Track your cell and facing after each "
        "action, and write every action separately (no repetition counts).",
        "Answer with exactly two lines:",
        "Reasoning: <your route, briefly>",
        "Actions: [<name>, <name>, ...]",
    )
)

PLAN_FEW_SHOT: tuple[tuple[str, str], ...] = (
    (
        "\n".join(
            (
                "Mission: use the key to open the door and then get to the goal",
                "Map (5 columns x 5 rows; x = column, y = row, y grows downwards):",
                "  0 1 2 3 4",
                "0 # # # # #",
                "1 # K # . #",
                "2 # . L . #",
                "3 # > # G #",
                "4 # # # # #",
                "Legend: # wall, . free cell, K key, L locked door, G goal, > v < ^ you, facing right, down, "
                "left, up",
                "Objects:",
                "- a yellow key at (1, 1)",
                "- a locked yellow door at (2, 2)",
                "- a green goal square at (3, 3)",
                "You are at (1, 3) facing right (+x).",
                "You are carrying nothing.",
            )
        ),
        "Reasoning: Turn left to face up, move to (1, 2) and pick up the key at (1, 1). Turn right to face "
        "the door at (2, 2), open it, walk through to (3, 2), turn right to face down and step onto the "
        "goal at (3, 3).\n"
        "Actions: [left, forward, pickup, right, toggle, forward, forward, right, forward]",
    ),
)

PLAN_STATE = "{observation}"

PLAN_TEMPLATE = PromptTemplate(
    system=PLAN_SYSTEM_PROMPT,
    few_shot=PLAN_FEW_SHOT,
    state=PLAN_STATE,
    correction=PLAN_CORRECTION_MESSAGE,
)


def step_messages(
    env: gym.Env,
    template: PromptTemplate = STEP_TEMPLATE,
    history: Sequence[int] = (),
    max_history: int = DEFAULT_MAX_HISTORY,
) -> list[dict[str, str]]:
    """
    The chat messages that ask for the next action in step mode.

    Each call stands alone (no earlier observations), so the cost per step stays flat; the
    recent actions are named instead, which helps the model notice when it goes in circles.

    :param env: a (wrapped) MiniGrid env in the state to act in
    :param template: the prompt templates
    :param history: the actions taken so far this episode, oldest first
    :param max_history: how many of the latest actions to name
    :return: OpenAI chat messages
    """
    minigrid_env = unwrap_minigrid(env)
    return _state_messages(
        minigrid_env, template, describe_view(minigrid_env), describe_history(history, max_history)
    )


def plan_messages(env: gym.Env, template: PromptTemplate = PLAN_TEMPLATE) -> list[dict[str, str]]:
    """
    The chat messages that ask for a whole episode's action list in plan mode.

    :param env: a (wrapped) MiniGrid env, usually just reset
    :param template: the prompt templates
    :return: OpenAI chat messages
    """
    minigrid_env = unwrap_minigrid(env)
    return _state_messages(minigrid_env, template, describe_full_map(minigrid_env), history="")


def _state_messages(
    env: MiniGridEnv, template: PromptTemplate, observation: str, history: str
) -> list[dict[str, str]]:
    return template.messages(
        {
            "actions": describe_actions(),
            "mission": env.mission,
            "observation": observation,
            "history": history,
        }
    )
