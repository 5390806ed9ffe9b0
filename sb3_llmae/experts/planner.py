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
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.experts.base import Expert, ExpertEpisode, NoWayForwardError, UnsupportedEnvError

logger = logging.getLogger(__name__)

StageKind = Literal["reach_goal", "pick_up", "go_to", "open"]
ObstacleMode = Literal["none", "doors", "anywhere"]

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


class PlanningError(NoWayForwardError):
    """The planner found no action sequence that completes the mission from the current state."""


class _NoPlanExists(PlanningError):
    """The search tried every reachable state: no plan exists under the search's rules."""


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


def _task_of(env: MiniGridEnv) -> Task:
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
    # Dropping only matters to free the hands for another pickup: allowing it only next to an
    # object worth picking up keeps the number of object layouts small.
    drop_sites: frozenset[int]


class _SearchProblem:
    """
    Shortest action sequence completing one stage, by A* search over the combined state
    (the estimate: the distance to the target as if doors were open and objects absent).

    A state is (cell, direction, world); a world is the position of every movable object and the
    set of locked doors already unlocked. Closed (unlocked) doors are not part of the state: going
    through one costs two steps (toggle, forward), which keeps the state space small with many
    doors, at the price of counting a toggle again on a second pass.

    :param env: the unwrapped env, in its current state
    :param task: the mission's task
    :param stage_index: the stage to complete
    :param move_obstacles: which objects that are neither the target nor a useful key may be picked
        up and dropped elsewhere: ``"none"``, those in front of a door (``"doors"``), or any
        (``"anywhere"``: an object dropped in a corridor, e.g. by a random action)
    """

    def __init__(self, env: MiniGridEnv, task: Task, stage_index: int, move_obstacles: ObstacleMode) -> None:
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
        # Obstacles worth moving are first those that block a door (as in BlockedUnlockPickup and
        # ObstructedMaze): moving any object anywhere multiplies the layouts to search.
        door_approaches = {door + step for door in self.door_colors for step in self.steps}
        self.obstacle_sites: frozenset[int] | None = {
            "none": frozenset(),
            "doors": frozenset(door_approaches),
            "anywhere": None,
        }[move_obstacles]

        self.is_target = [
            self.stage.kind in ("pick_up", "go_to") and self.stage.is_target(o) for o in self.objects
        ]
        self.task = task
        self.worlds: list[tuple[tuple[int, ...], int]] = []
        self.world_ids: dict[tuple[tuple[int, ...], int], int] = {}
        self.views: list[_WorldView | None] = []
        self.initial_world = self._intern(tuple(initial_positions), 0)
        self.expanded = 0

    def _door_code(self, door: Door, index: int, task: Task, later_stages: tuple[Stage, ...]) -> int:
        self.door_colors[index] = door.color
        # A door to go to is a target open or not; an open door to open is no longer one.
        is_go_to_target = self.stage.kind == "go_to" and self.stage.is_target(door)
        if is_go_to_target or (self.stage.kind == "open" and self.stage.is_target(door) and not door.is_open):
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

    def _moved(
        self, world: int, obj: int, position: int, other: int | None = None, other_position: int = 0
    ) -> int:
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
        for position, obj in object_at.items():
            is_pick_up_target = self.is_target[obj] and self.stage.kind == "pick_up"
            is_obstacle = self.obstacle_sites is None or position in self.obstacle_sites
            may_move = self.task.may_move_objects and (is_obstacle or is_useful_key(self.objects[obj]))
            if is_pick_up_target or may_move:
                pickable.add(obj)
        openable_boxes = frozenset(
            box
            for box, contents in self.box_contents.items()
            if self.task.may_toggle and positions[box] >= 0 and is_useful_key(self.objects[contents])
        )
        drop_sites = frozenset(
            position + step for position, obj in object_at.items() if obj in pickable for step in self.steps
        )
        view = _WorldView(cells, object_at, carried, frozenset(pickable), openable_boxes, drop_sites)
        self.views[world] = view
        return view

    def solve(self, position: tuple[int, int], direction: int, max_states: int) -> list[_PlanStep]:
        """
        Find a shortest action sequence that completes the stage, by A* search.

        :param position: the agent's (x, y)
        :param direction: the agent's direction
        :param max_states: most states to expand before giving up
        :return: the plan; ``self.expanded`` counts the states the search expanded
        :raises PlanningError: if no plan was found within ``max_states`` (as :class:`_NoPlanExists`
            if none exists)
        """
        n_cells, steps, kind = self.n_cells, self.steps, self.stage.kind
        remaining = self._distances_to_target()
        start_cell = self.cell_index(*position)
        start = (self.initial_world * n_cells + start_cell) * 4 + direction
        cost_to = {start: 0}
        parent: dict[int, tuple[int, tuple[int, ...]]] = {}
        if remaining[start_cell] < 0:
            raise _NoPlanExists(f"no action sequence completes {self.stage}: no path leads to its target")
        # Buckets of states by estimated total cost: costs are small integers.
        buckets: list[list[int]] = [[] for _ in range(remaining[start_cell] + 1)]
        buckets[-1].append(start)
        best_cost = float("inf")
        best_end: tuple[int, tuple[int, ...]] | None = None
        estimate = 0
        while estimate < len(buckets) and estimate < best_cost:
            for state in buckets[estimate]:
                rest = state >> 2
                cell = rest % n_cells
                cost = cost_to[state]
                if cost + remaining[cell] != estimate:
                    continue  # reached again more cheaply after it was queued
                self.expanded += 1
                if self.expanded > max_states:
                    raise PlanningError(f"the search expanded more than {max_states} states without a plan")
                direction = state & 3
                world = rest // n_cells
                view = self.view(world)
                front = cell + steps[direction]
                code = view.cells[front]
                successors: list[tuple[int, int, int, tuple[int, ...]]] = [
                    ((rest << 2) | ((direction - 1) & 3), cell, 1, (_LEFT,)),
                    ((rest << 2) | ((direction + 1) & 3), cell, 1, (_RIGHT,)),
                ]
                finish: tuple[int, ...] | None = None
                if code in (_FREE, _PASSABLE):
                    successors.append(((world * n_cells + front) * 4 + direction, front, 1, (_FORWARD,)))
                    if code == _FREE and view.carried >= 0 and cell in view.drop_sites:
                        dropped = self._moved(world, view.carried, front)
                        successors.append(((dropped * n_cells + cell) * 4 + direction, cell, 1, (_DROP,)))
                elif code == _GOAL:
                    finish = (_FORWARD,)
                elif code == _CLOSED_DOOR:
                    successors.append(
                        ((world * n_cells + front) * 4 + direction, front, 2, (_TOGGLE, _FORWARD))
                    )
                elif code == _LOCKED_DOOR:
                    if self._holds_key_for(view, front):
                        unlocked = self._unlocked(world, front)
                        successors.append(((unlocked * n_cells + cell) * 4 + direction, cell, 1, (_TOGGLE,)))
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
                            successors.append(
                                ((picked * n_cells + cell) * 4 + direction, cell, 1, (_PICKUP,))
                            )
                    elif obj in view.openable_boxes:
                        opened = self._moved(world, obj, _GONE, self.box_contents[obj], front)
                        successors.append(((opened * n_cells + cell) * 4 + direction, cell, 1, (_TOGGLE,)))
                if finish is not None and cost + len(finish) < best_cost:
                    best_cost = cost + len(finish)
                    best_end = (state, finish)
                for successor, successor_cell, step_cost, actions in successors:
                    new_cost = cost + step_cost
                    if remaining[successor_cell] < 0 or new_cost >= cost_to.get(successor, new_cost + 1):
                        continue
                    cost_to[successor] = new_cost
                    parent[successor] = (state, actions)
                    new_estimate = new_cost + remaining[successor_cell]
                    while len(buckets) <= new_estimate:
                        buckets.append([])
                    buckets[new_estimate].append(successor)
            estimate += 1
        if best_end is None:
            raise _NoPlanExists(
                f"no action sequence completes {self.stage} ({self.expanded} states searched)"
            )
        return self._unroll(best_end, parent)

    def _distances_to_target(self) -> list[int]:
        """
        The A* heuristic: the fewest moves from each cell to the stage's target (its final action
        included), through any cell that is not blocked for good, as if doors were open and objects
        absent. It never overestimates, and changes by at most one per step, so A* stays exact.

        :return: the distance of each cell, -1 where the target cannot be reached from
        """
        if self.stage.kind == "reach_goal":
            targets = [cell for cell, code in enumerate(self.base_cells) if code == _GOAL]
        elif self.stage.kind == "open" or self.stage.obj_type == "door":
            targets = [cell for cell, code in enumerate(self.base_cells) if code == _TARGET_DOOR]
        else:
            container = {contents: box for box, contents in self.box_contents.items()}
            positions = self.worlds[self.initial_world][0]
            targets = []
            for obj, position in enumerate(positions):
                if self.is_target[obj]:
                    # a target in a box is reached where the box is
                    targets.append(positions[container[obj]] if position == _IN_BOX else position)
            if any(target < 0 for target in targets):
                return [0] * self.n_cells  # a carried target: no estimate
        distances = [-1] * self.n_cells
        for target in targets:
            distances[target] = 0
        queue = deque(targets)
        while queue:
            cell = queue.popleft()
            for step in self.steps:
                neighbour = cell + step
                if distances[neighbour] < 0 and self.base_cells[neighbour] != _BLOCKED:
                    distances[neighbour] = distances[cell] + 1
                    queue.append(neighbour)
        return distances

    def _holds_key_for(self, view: _WorldView, door: int) -> bool:
        if view.carried < 0:
            return False
        carried = self.objects[view.carried]
        return carried.type == "key" and carried.color == self.door_colors[door]

    def _unroll(
        self, end: tuple[int, tuple[int, ...]], parent: dict[int, tuple[int, tuple[int, ...]]]
    ) -> list[_PlanStep]:
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
                plan.append(
                    _PlanStep(action, position, state & 3, carrying, opens_door and action == _TOGGLE)
                )
        return plan


class PlannerEpisode(ExpertEpisode):
    """
    One episode of :class:`PlannerExpert`: plans the current stage once, then plays the plan as
    long as the env is in the state the plan expects, and plans again otherwise.

    :param env: the unwrapped MiniGrid env, already reset
    :param seed: the seed the env was reset with
    :param task: the task of the env's mission
    :param max_search_states: most states one search may expand
    :param max_plans: most plans the episode may make after its own actions left the planned path;
        bounds the work on an env that does not behave as the planner models it (plans made after an
        action the planner did not propose, see :meth:`observe`, do not count)
    :raises PlanningError: if no plan completes the first stage
    """

    def __init__(
        self, env: MiniGridEnv, seed: int, task: Task, max_search_states: int = 200_000, max_plans: int = 20
    ) -> None:
        super().__init__(env, seed)
        self.task = task
        self.max_search_states = max_search_states
        self.max_plans = max_plans
        self._stage_index = 0
        self._plan: list[_PlanStep] = []
        self._plan_index = 0
        self._n_plans = 0
        self._n_counted_plans = 0
        self._n_expanded_states = 0
        self._proposed: int | None = None
        self._n_external_actions = 0
        self._moved_by_others = False
        self._advance_finished_stages()
        self._replan()

    def act(self) -> int:
        """
        :return: the next action of the plan, planning again if the env left the planned path
        :raises PlanningError: if no plan completes the current stage
        """
        if self._advance_finished_stages():
            self._replan()
        action = self._next_planned_action()
        if action is None:
            self._replan()
            action = self._next_planned_action()
            if action is None:
                raise PlanningError(f"{self._where()}: a fresh plan does not start from the agent's state")
        self._proposed = action
        return action

    def observe(self, action: int, reward: float, terminated: bool, truncated: bool) -> None:
        """
        Note an action the planner did not propose (a noisy wrapper's random one, a human's): the
        state it leads to was not planned for, so the plan made there does not count against
        ``max_plans``.

        :param action: the action taken
        :param reward: the reward received
        :param terminated: whether the episode ended in a terminal state
        :param truncated: whether the episode hit its step limit
        """
        if action != self._proposed:
            self._n_external_actions += 1
            self._moved_by_others = True
        self._proposed = None

    def summary(self) -> dict[str, Any]:
        """
        :return: how much planning the episode took
        """
        return {
            "planner": {
                "plans": self._n_plans,
                "expanded_states": self._n_expanded_states,
                "external_actions": self._n_external_actions,
                "stages_completed": self._stage_index,
            }
        }

    def _where(self) -> str:
        return f"{env_name(self.env)} (mission {self.env.mission!r}, seed {self.seed})"

    def _advance_finished_stages(self) -> bool:
        # Only "open" stages can finish without ending the episode.
        advanced = False
        while self._stage_index + 1 < len(self.task.stages) and self._stage_is_done():
            self._stage_index += 1
            advanced = True
        return advanced

    def _stage_is_done(self) -> bool:
        stage = self.task.stages[self._stage_index]
        return stage.kind == "open" and any(
            isinstance(cell, Door) and cell.is_open and stage.is_target(cell) for cell in self.env.grid.grid
        )

    def _replan(self) -> None:
        # Only plans that the planner's own actions made stale count: another's action (a noisy
        # wrapper's) may lead anywhere, and the planner must go on from there.
        if not self._moved_by_others:
            if self._n_counted_plans >= self.max_plans:
                raise PlanningError(
                    f"{self._where()}: gave up after {self._n_counted_plans} plans, "
                    "the env does not follow the planned path"
                )
            self._n_counted_plans += 1
        self._moved_by_others = False
        self._n_plans += 1
        x, y = self.env.agent_pos
        position, direction = (int(x), int(y)), int(self.env.agent_dir)
        # Moving obstacles multiplies the object layouts to search: only when nothing else works.
        obstacle_modes: tuple[ObstacleMode, ...] = (
            ("none", "doors", "anywhere") if self.task.may_move_objects else ("none",)
        )
        no_plan: _NoPlanExists | None = None
        for move_obstacles in obstacle_modes:
            problem = _SearchProblem(self.env, self.task, self._stage_index, move_obstacles)
            try:
                self._plan = problem.solve(position, direction, self.max_search_states)
                break
            except _NoPlanExists as error:
                no_plan = error
            except PlanningError as error:
                raise PlanningError(f"{self._where()}: {error}") from error
            finally:
                self._n_expanded_states += problem.expanded
        else:
            raise PlanningError(f"{self._where()}: {no_plan}") from no_plan
        self._plan_index = 0
        logger.debug(
            "%s: planned %d actions to %s (%d states searched in the episode)",
            self._where(),
            len(self._plan),
            self.task.stages[self._stage_index],
            self._n_expanded_states,
        )

    def _next_planned_action(self) -> int | None:
        env = self.env
        x, y = env.agent_pos
        while self._plan_index < len(self._plan):
            step = self._plan[self._plan_index]
            if (
                (int(x), int(y)) != step.position
                or int(env.agent_dir) != step.direction
                or env.carrying is not step.carrying
            ):
                return None
            self._plan_index += 1
            if step.opens_door:
                front = env.grid.get(*env.front_pos)
                if isinstance(front, Door) and front.is_open:
                    continue
            return step.action
        return None


class PlannerExpert(Expert):
    """
    An expert that plans on the full grid state, without an LLM: shortest paths with turns,
    picking up keys, unlocking and opening doors, opening boxes that hide keys, dropping what it
    carries to pick up something else, moving objects that block a door, avoiding lava.

    It plays the MiniGrid envs whose mission is to reach the goal (Empty, DoorKey, FourRooms,
    MultiRoom, LockedRoom, the Crossing, LavaGap and DistShift envs), to pick up an object (Unlock
    Pickup, BlockedUnlockPickup, KeyCorridor, Fetch, ObstructedMaze), to go to an object or a door
    (GoToObject, GoToDoor) or to open doors (Unlock, RedBlueDoors).

    :param max_search_states: most states one search may expand before the episode gives up
    :param max_plans_per_episode: most plans one episode may make (a plan is made per stage, and
        again whenever the env leaves the planned path); plans made after an action the planner did
        not propose (e.g. a random one of :class:`~sb3_llmae.experts.noisy.NoisyExpert`) do not count
    """

    def __init__(self, max_search_states: int = 200_000, max_plans_per_episode: int = 20) -> None:
        if max_search_states <= 0:
            raise ValueError(f"max_search_states must be positive, got {max_search_states}.")
        if max_plans_per_episode <= 0:
            raise ValueError(f"max_plans_per_episode must be positive, got {max_plans_per_episode}.")
        self.max_search_states = max_search_states
        self.max_plans_per_episode = max_plans_per_episode

    def start_episode(self, env: MiniGridEnv, seed: int) -> PlannerEpisode:
        """
        :param env: the unwrapped MiniGrid env, just reset with ``seed``
        :param seed: the reset seed
        :return: the episode's controller, holding a plan for the first stage
        :raises UnsupportedEnvError: if the env or its mission is one the planner cannot play, or
            no plan completes the mission from the reset state
        """
        task = _task_of(env)
        try:
            return PlannerEpisode(env, seed, task, self.max_search_states, self.max_plans_per_episode)
        except PlanningError as error:
            raise UnsupportedEnvError(f"PlannerExpert cannot play this episode: {error}") from error

    def describe(self) -> dict[str, Any]:
        """
        :return: the kind of expert and its settings
        """
        return {
            "kind": "planner",
            "max_search_states": self.max_search_states,
            "max_plans_per_episode": self.max_plans_per_episode,
        }
