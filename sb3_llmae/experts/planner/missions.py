"""What a MiniGrid mission asks the planner to do: its stages, and which envs it can play at all."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from minigrid.core.constants import COLOR_NAMES
from minigrid.core.world_object import WorldObj
from minigrid.envs import DynamicObstaclesEnv
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.experts.base import UnsupportedEnvError

StageKind = Literal["reach_goal", "pick_up", "go_to", "open"]

# Envs whose grid changes by itself between steps: a plan made on one state goes stale.
UNPLANNABLE_ENV_CLASSES: tuple[type[MiniGridEnv], ...] = (DynamicObstaclesEnv,)

_COLOR_PATTERN = "|".join(COLOR_NAMES)
_GOAL_MISSION = re.compile(r"(?:^reach|\b(?:get|go) to) the (?:green )?goal(?: square)?$")
_PICK_UP_MISSION = re.compile(rf"^pick up (?:the|a) (?P<color>{_COLOR_PATTERN}) (?P<type>key|ball|box)$")
_FETCH_MISSION = re.compile(
    rf"^(?:get|go get|fetch|go fetch|you must fetch) a (?P<color>{_COLOR_PATTERN}) (?P<type>key|ball|box)$"
)
_GO_TO_MISSION = re.compile(rf"^go to the (?P<color>{_COLOR_PATTERN}) (?P<type>key|ball|box|door)$")
_OPEN_MISSION = re.compile(
    rf"^open the (?:(?P<color>{_COLOR_PATTERN}) )?door(?: then the (?P<then>{_COLOR_PATTERN}) door)?$"
)


@dataclass(frozen=True)
class Stage:
    """
    One step of a mission.

    :param kind: ``"reach_goal"`` (step onto a goal square), ``"pick_up"`` an object, ``"go_to"``
        an object or a door (face it, then ``done``), or ``"open"`` a door
    :param color: the target's color (``None``: any color)
    :param obj_type: the target's type (``"key"``, ``"ball"``, ``"box"``, ``"door"``); ``None`` for a goal
    """

    kind: StageKind
    color: str | None = None
    obj_type: str | None = None

    def is_target(self, obj: WorldObj) -> bool:
        """
        :param obj: an object of the grid
        :return: whether ``obj`` is what this stage must pick up, go to or open
        """
        return obj.type == self.obj_type and (self.color is None or obj.color == self.color)

    def __str__(self) -> str:
        target = " ".join(word for word in (self.color, self.obj_type) if word is not None)
        return f"{self.kind} {target or 'goal'}"


@dataclass(frozen=True)
class Task:
    """
    What a mission asks, and which side effects the env punishes.

    :param stages: the stages, in order
    :param may_toggle: whether the agent may open doors and boxes (``False`` where toggling ends
        the episode, as in GoToDoor and GoToObject)
    :param may_move_objects: whether the agent may pick up objects other than the target
        (``False`` where any pickup ends the episode, as in Fetch)
    """

    stages: tuple[Stage, ...]
    may_toggle: bool = True
    may_move_objects: bool = True


def parse_mission(mission: str) -> Task | None:
    """
    Read a MiniGrid mission string.

    :param mission: e.g. ``"use the key to open the door and then get to the goal"``,
        ``"pick up the green box"``, ``"go to the red door"``, ``"open the red door then the blue door"``
    :return: the task, or ``None`` if the planner does not know the mission
    """
    mission = mission.strip().lower()
    if _GOAL_MISSION.search(mission):
        return Task(stages=(Stage("reach_goal"),))
    if match := _PICK_UP_MISSION.match(mission):
        return Task(stages=(Stage("pick_up", match["color"], match["type"]),))
    if match := _FETCH_MISSION.match(mission):
        # Fetch ends the episode, unsuccessfully, when anything but the target is picked up.
        return Task(stages=(Stage("pick_up", match["color"], match["type"]),), may_move_objects=False)
    if match := _GO_TO_MISSION.match(mission):
        # GoToDoor and GoToObject end the episode on any toggle.
        return Task(
            stages=(Stage("go_to", match["color"], match["type"]),), may_toggle=False, may_move_objects=False
        )
    if match := _OPEN_MISSION.match(mission):
        stages = [Stage("open", match["color"], "door")]
        if match["then"] is not None:
            stages.append(Stage("open", match["then"], "door"))
        return Task(stages=tuple(stages))
    return None


def env_name(env: MiniGridEnv) -> str:
    """
    :param env: an unwrapped MiniGrid env
    :return: its registered id, or its class name when it was not made by ``gym.make``
    """
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env).__name__


def task_of(env: MiniGridEnv) -> Task:
    """
    :param env: an unwrapped MiniGrid env, reset
    :return: the task of its mission
    :raises UnsupportedEnvError: if the planner cannot play this env or mission
    """
    name = env_name(env)
    if isinstance(env, UNPLANNABLE_ENV_CLASSES):
        raise UnsupportedEnvError(
            f"PlannerExpert cannot play {name} (mission {env.mission!r}): its grid changes by itself "
            "between steps, so a plan made on one state does not hold."
        )
    # BabyAI levels verify their own instruction language, which the planner does not read.
    if isinstance(env, RoomGridLevel):
        raise UnsupportedEnvError(
            f"PlannerExpert does not play BabyAI levels such as {name} (mission {env.mission!r})."
        )
    task = parse_mission(env.mission)
    if task is None:
        raise UnsupportedEnvError(f"PlannerExpert does not know the mission {env.mission!r} of {name}.")
    return task
