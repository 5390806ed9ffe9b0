"""Chat prompts of the LLM expert: templates for step and plan mode, and the messages built from them."""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gymnasium as gym
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.envs import unwrap_minigrid
from sb3_llmae.experts.llm.observation_text import (
    ACTION_NAMES,
    DEFAULT_MAX_HISTORY,
    describe_actions,
    describe_full_map,
    describe_history,
    describe_view,
)

# The names a ``PromptTemplate`` may use in its system and state templates.
TEMPLATE_FIELDS = frozenset({"actions", "mission", "observation", "history"})


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

# For small contexts (a local server's 512- or 1024-token slot) and small models, which copy
# few-shot examples word for word: the actions and the answer format only, no examples. About a
# fifth of the full step prompt.
COMPACT_STEP_SYSTEM_PROMPT = "\n".join(
    (
        "You control an agent in a grid world. Mission and view are below; positions are relative to you.",
        "Actions: left, right (turn 90 degrees), forward (one cell), pickup, drop, toggle (open the door "
        "in front of you), done.",
        "Answer with one line: Action: <action name>",
    )
)

COMPACT_STEP_TEMPLATE = PromptTemplate(
    system=COMPACT_STEP_SYSTEM_PROMPT,
    few_shot=(),
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


# The templates by name, as ``generate --template`` chooses them. "zero-shot" is the full prompt
# without its examples, which small models otherwise replay verbatim (the example DoorKey plan).
STEP_TEMPLATES: dict[str, PromptTemplate] = {
    "full": STEP_TEMPLATE,
    "zero-shot": dataclasses.replace(STEP_TEMPLATE, few_shot=()),
    "compact": COMPACT_STEP_TEMPLATE,
}
PLAN_TEMPLATES: dict[str, PromptTemplate] = {
    "full": PLAN_TEMPLATE,
    "zero-shot": dataclasses.replace(PLAN_TEMPLATE, few_shot=()),
    "compact": dataclasses.replace(PLAN_TEMPLATE, few_shot=()),
}


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
