"""
An expert that solves MiniGrid tasks by search on the full grid state, without an LLM.

The planner reads the mission, turns it into stages (reach the goal, pick up / go to an object,
open a door), and searches for the shortest action sequence that completes the current stage.
The search runs over the combined state (agent position, direction, what it carries, where the
objects lie, which locked doors it has unlocked), so that it picks the side from which to
approach a key or a door for the whole plan, not greedily for the next subgoal: on DoorKey its
episodes are exactly as short as possible (see :func:`shortest_solution_length`).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from minigrid.core.actions import Actions
from minigrid.core.constants import COLOR_NAMES, DIR_TO_VEC
from minigrid.core.world_object import Door, WorldObj
from minigrid.envs import DynamicObstaclesEnv
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.base import Expert, ExpertEpisode, UnsupportedEnvError

logger = logging.getLogger(__name__)

StageKind = Literal["reach_goal", "pick_up", "go_to", "open"]

# Envs whose grid changes by itself between steps: a plan made on one state goes stale.
UNPLANNABLE_ENV_CLASSES: tuple[type[MiniGridEnv], ...] = (DynamicObstaclesEnv,)

_LEFT = int(Actions.left)
_RIGHT = int(Actions.right)
_FORWARD = int(Actions.forward)
_PICKUP = int(Actions.pickup)
_DROP = int(Actions.drop)
_TOGGLE = int(Actions.toggle)
_DONE = int(Actions.done)

# Where an object is, besides a cell index of the search map.
_CARRIED = -1
_IN_BOX = -2
_GONE = -3  # a box that was opened, hence replaced by its contents

# What a cell of the search map holds, in one world (object layout and door states).
_FREE = 0  # empty: walkable, and an object can be dropped on it
_PASSABLE = 1  # open door, floor: walkable, but nothing can be dropped on it
_BLOCKED = 2  # wall, lava, a goal the stage must not step on, a door the stage must not toggle
_GOAL = 3
_CLOSED_DOOR = 4
_LOCKED_DOOR = 5
_TARGET_DOOR = 6
_OBJECT = 7

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


class PlanningError(RuntimeError):
    """The planner found no action sequence that completes the mission from the current state."""


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


def _plan_task(env: MiniGridEnv) -> Task:
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
    if hasattr(env, "instrs"):
        raise UnsupportedEnvError(f"PlannerExpert does not play BabyAI levels such as {name} (mission {env.mission!r}).")
    task = parse_mission(env.mission)
    if task is None:
        raise UnsupportedEnvError(f"PlannerExpert does not know the mission {env.mission!r} of {name}.")
    return task


class _PlanStep(NamedTuple):
    """One action of a plan, with the state the agent must be in to take it."""

    action: int
    position: tuple[int, int]
    direction: int
    carrying: WorldObj | None
    # A toggle that opens a closed door on the way: skipped if the door is open by then (an
    # earlier pass opened it), since toggling would close it.
    opens_door: bool = False


class _WorldView(NamedTuple):
    """The search map of one world: an object layout and a set of unlocked doors."""

    cells: list[int]
    object_at: dict[int, int]
    carried: int
    pickable: frozenset[int]
    openable_boxes: frozenset[int]


class _SearchProblem:
    """
    Shortest action sequence completing one stage, by Dijkstra search over the combined state.

    A state is (cell, direction, world); a world is the position of every movable object and the
    set of locked doors already unlocked. Closed (unlocked) doors are not part of the state: going
    through one costs two steps (toggle, forward), which keeps the state space small with many
    doors, at the price of counting a toggle again on a second pass.

    :param env: the unwrapped env, in its current state
    :param task: the mission's task
    :param stage_index: the stage to complete
    :param move_obstacles: whether objects that are neither the target nor a useful key may be
        picked up and dropped elsewhere (to clear a blocked door)
    """

    def __init__(self, env: MiniGridEnv, task: Task, stage_index: int, move_obstacles: bool) -> None:
        self.stage = task.stages[stage_index]
        later_stages = task.stages[stage_index + 1 :]
        grid = env.grid
        # A border of blocked cells lets moves skip bounds checks.
        self.row = grid.width + 2
        self.n_cells = self.row * (grid.height + 2)
        self.steps = tuple(int(dx) + int(dy) * self.row for dx, dy in DIR_TO_VEC)
        self.base_cells = [_BLOCKED] * self.n_cells
        self.objects: list[WorldObj] = []
        self.box_contents: dict[int, int] = {}
        self.door_colors: dict[int, str] = {}
        self.target_door_locked: dict[int, bool] = {}
        self.locked_doors: list[int] = []
        initial_positions: list[int] = []

        def add_object(obj: WorldObj, position: int) -> None:
            index = len(self.objects)
            self.objects.append(obj)
            initial_positions.append(position)
            contents = getattr(obj, "contains", None)
            if obj.type == "box" and contents is not None:
                self.box_contents[index] = len(self.objects)
                add_object(contents, _IN_BOX)

        for y in range(grid.height):
            for x in range(grid.width):
                cell = grid.get(x, y)
                index = self.cell_index(x, y)
                if cell is None:
                    self.base_cells[index] = _FREE
                elif cell.type == "floor":
                    self.base_cells[index] = _PASSABLE
                elif cell.type == "goal":
                    # Stepping on a goal ends the episode: only the goal stage may do it.
                    self.base_cells[index] = _GOAL if self.stage.kind == "reach_goal" else _BLOCKED
                elif isinstance(cell, Door):
                    self.base_cells[index] = self._door_code(cell, index, task, later_stages)
                elif cell.can_pickup():
                    self.base_cells[index] = _FREE
                    add_object(cell, index)
                # anything else (wall, lava, unknown objects) stays blocked
        if env.carrying is not None:
            add_object(env.carrying, _CARRIED)

        self.is_target = [self.stage.kind in ("pick_up", "go_to") and self.stage.is_target(o) for o in self.objects]
        self.task = task
        self.move_obstacles = move_obstacles
        self.worlds: list[tuple[tuple[int, ...], int]] = []
        self.world_ids: dict[tuple[tuple[int, ...], int], int] = {}
        self.views: list[_WorldView | None] = []
        self.initial_world = self._intern(tuple(initial_positions), 0)

    def _door_code(self, door: Door, index: int, task: Task, later_stages: tuple[Stage, ...]) -> int:
        self.door_colors[index] = door.color
        if self.stage.kind in ("open", "go_to") and self.stage.is_target(door) and not door.is_open:
            self.target_door_locked[index] = door.is_locked
            if door.is_locked:
                self.locked_doors.append(index)
            return _TARGET_DOOR
        if any(stage.kind == "open" and stage.is_target(door) for stage in later_stages):
            # Opening a later stage's door now would do the stages out of order.
            return _BLOCKED
        if door.is_open:
            return _PASSABLE
        if not task.may_toggle:
            return _BLOCKED
        if door.is_locked:
            self.locked_doors.append(index)
            return _LOCKED_DOOR
        return _CLOSED_DOOR

    def cell_index(self, x: int, y: int) -> int:
        """
        :param x: grid column
        :param y: grid row
        :return: the index of cell (x, y) in the search map
        """
        return (y + 1) * self.row + x + 1

    def cell_position(self, index: int) -> tuple[int, int]:
        """
        :param index: a cell index of the search map
        :return: its grid (x, y)
        """
        return index % self.row - 1, index // self.row - 1

    def _intern(self, positions: tuple[int, ...], unlocked: int) -> int:
        key = (positions, unlocked)
        world = self.world_ids.get(key)
        if world is None:
            world = len(self.worlds)
            self.world_ids[key] = world
            self.worlds.append(key)
            self.views.append(None)
        return world

    def _moved(self, world: int, obj: int, position: int, other: int | None = None, other_position: int = 0) -> int:
        positions, unlocked = self.worlds[world]
        new_positions = list(positions)
        new_positions[obj] = position
        if other is not None:
            new_positions[other] = other_position
        return self._intern(tuple(new_positions), unlocked)

    def _unlocked(self, world: int, door: int) -> int:
        positions, unlocked = self.worlds[world]
        return self._intern(positions, unlocked | 1 << self.locked_doors.index(door))

    def view(self, world: int) -> _WorldView:
        """
        :param world: a world id
        :return: the search map of that world (computed once)
        """
        cached = self.views[world]
        if cached is not None:
            return cached
        positions, unlocked = self.worlds[world]
        cells = self.base_cells.copy()
        object_at: dict[int, int] = {}
        carried = -1
        for obj, position in enumerate(positions):
            if position >= 0:
                cells[position] = _OBJECT
                object_at[position] = obj
            elif position == _CARRIED:
                carried = obj
        still_locked_colors = set()
        for bit, door in enumerate(self.locked_doors):
            if unlocked >> bit & 1:
                cells[door] = _PASSABLE
            else:
                still_locked_colors.add(self.door_colors[door])

        def is_useful_key(obj: WorldObj) -> bool:
            return obj.type == "key" and obj.color in still_locked_colors

        pickable = set()
        for obj in object_at.values():
            if self.is_target[obj] and self.stage.kind == "pick_up":
                pickable.add(obj)
            elif self.task.may_move_objects and (self.move_obstacles or is_useful_key(self.objects[obj])):
                pickable.add(obj)
        openable_boxes = frozenset(
            box
            for box, contents in self.box_contents.items()
            if self.task.may_toggle and positions[box] >= 0 and is_useful_key(self.objects[contents])
        )
        view = _WorldView(cells, object_at, carried, frozenset(pickable), openable_boxes)
        self.views[world] = view
        return view

    def solve(self, position: tuple[int, int], direction: int, max_states: int) -> tuple[list[_PlanStep], int]:
        """
        Find a shortest action sequence that completes the stage.

        :param position: the agent's (x, y)
        :param direction: the agent's direction
        :param max_states: most states to expand before giving up
        :return: the plan, and the number of states expanded
        :raises PlanningError: if no plan exists, or none was found within ``max_states``
        """
        n_cells, steps, kind = self.n_cells, self.steps, self.stage.kind
        start = (self.initial_world * n_cells + self.cell_index(*position)) * 4 + direction
        distance = {start: 0}
        parent: dict[int, tuple[int, tuple[int, ...]]] = {}
        buckets: list[list[int]] = [[start]]
        best_cost = float("inf")
        best_end: tuple[int, tuple[int, ...]] | None = None
        expanded = 0
        cost = 0
        while cost < len(buckets) and cost < best_cost:
            for state in buckets[cost]:
                if distance[state] != cost:
                    continue  # reached again more cheaply after it was queued
                expanded += 1
                if expanded > max_states:
                    raise PlanningError(f"the search expanded more than {max_states} states without a plan")
                direction = state & 3
                rest = state >> 2
                cell = rest % n_cells
                world = rest // n_cells
                view = self.view(world)
                front = cell + steps[direction]
                code = view.cells[front]
                successors: list[tuple[int, int, tuple[int, ...]]] = [
                    ((rest << 2) | ((direction - 1) & 3), 1, (_LEFT,)),
                    ((rest << 2) | ((direction + 1) & 3), 1, (_RIGHT,)),
                ]
                finish: tuple[int, ...] | None = None
                if code == _FREE or code == _PASSABLE:
                    successors.append(((world * n_cells + front) * 4 + direction, 1, (_FORWARD,)))
                    if code == _FREE and view.carried >= 0 and self._may_drop(view, cell, front):
                        dropped = self._moved(world, view.carried, front)
                        successors.append(((dropped * n_cells + cell) * 4 + direction, 1, (_DROP,)))
                elif code == _GOAL:
                    finish = (_FORWARD,)
                elif code == _CLOSED_DOOR:
                    successors.append(((world * n_cells + front) * 4 + direction, 2, (_TOGGLE, _FORWARD)))
                elif code == _LOCKED_DOOR:
                    if self._holds_key_for(view, front):
                        successors.append(((self._unlocked(world, front) * n_cells + cell) * 4 + direction, 1, (_TOGGLE,)))
                elif code == _TARGET_DOOR:
                    if kind == "go_to":
                        finish = (_DONE,)
                    elif not self.target_door_locked[front] or self._holds_key_for(view, front):
                        finish = (_TOGGLE,)
                elif code == _OBJECT:
                    obj = view.object_at[front]
                    if self.is_target[obj] and kind == "go_to":
                        finish = (_DONE,)
                    elif obj in view.pickable and view.carried < 0:
                        if self.is_target[obj]:
                            finish = (_PICKUP,)
                        else:
                            picked = self._moved(world, obj, _CARRIED)
                            successors.append(((picked * n_cells + cell) * 4 + direction, 1, (_PICKUP,)))
                    elif obj in view.openable_boxes:
                        opened = self._moved(world, obj, _GONE, self.box_contents[obj], front)
                        successors.append(((opened * n_cells + cell) * 4 + direction, 1, (_TOGGLE,)))
                if finish is not None and cost + len(finish) < best_cost:
                    best_cost = cost + len(finish)
                    best_end = (state, finish)
                for successor, step_cost, actions in successors:
                    new_cost = cost + step_cost
                    if new_cost < distance.get(successor, new_cost + 1):
                        distance[successor] = new_cost
                        parent[successor] = (state, actions)
                        while len(buckets) <= new_cost:
                            buckets.append([])
                        buckets[new_cost].append(successor)
            cost += 1
        if best_end is None:
            raise PlanningError(f"no action sequence completes the stage {self.stage} ({expanded} states searched)")
        return self._unroll(best_end, parent), expanded

    def _holds_key_for(self, view: _WorldView, door: int) -> bool:
        if view.carried < 0:
            return False
        carried = self.objects[view.carried]
        return carried.type == "key" and carried.color == self.door_colors[door]

    def _may_drop(self, view: _WorldView, cell: int, front: int) -> bool:
        # Dropping only matters to free the hands for another pickup; allowing it only next to an
        # object worth picking up keeps the number of object layouts small.
        for step in self.steps:
            neighbour = cell + step
            if neighbour != front and view.cells[neighbour] == _OBJECT and view.object_at[neighbour] in view.pickable:
                return True
        return False

    def _unroll(self, end: tuple[int, tuple[int, ...]], parent: dict[int, tuple[int, tuple[int, ...]]]) -> list[_PlanStep]:
        edges = [end]
        state = end[0]
        while state in parent:
            edges.append(parent[state])
            state = parent[state][0]
        plan = []
        for state, actions in reversed(edges):
            rest = state >> 2
            view = self.view(rest // self.n_cells)
            position = self.cell_position(rest % self.n_cells)
            carrying = self.objects[view.carried] if view.carried >= 0 else None
            opens_door = actions == (_TOGGLE, _FORWARD)
            for action in actions:
                plan.append(_PlanStep(action, position, state & 3, carrying, opens_door and action == _TOGGLE))
        return plan
