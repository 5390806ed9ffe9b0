"""
The planner's search: the shortest action sequence that completes one stage of a mission, by A* over the
combined state (agent position, direction, what it carries, where the objects lie, which locked doors it
has unlocked).
"""

from __future__ import annotations

from collections import deque
from typing import Literal, NamedTuple

from minigrid.core.actions import Actions
from minigrid.core.constants import DIR_TO_VEC
from minigrid.core.world_object import Door, WorldObj
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.experts.base import NoWayForwardError
from sb3_llmae.experts.planner.missions import Stage, Task

ObstacleMode = Literal["none", "doors", "anywhere"]

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


class PlanningError(NoWayForwardError):
    """The planner found no action sequence that completes the mission from the current state."""


class NoPlanExists(PlanningError):
    """The search tried every reachable state: no plan exists under the search's rules."""


class PlanStep(NamedTuple):
    """One action of a plan, with the state the agent must be in to take it."""

    action: int
    position: tuple[int, int]
    direction: int
    carrying: WorldObj | None
    # A toggle that opens a closed door on the way: skipped if the door is open by then (an
    # earlier pass opened it), since toggling would close it.
    opens_door: bool = False


class WorldView(NamedTuple):
    """The search map of one world: an object layout and a set of unlocked doors."""

    cells: list[int]
    object_at: dict[int, int]
    carried: int
    pickable: frozenset[int]
    openable_boxes: frozenset[int]
    # Dropping only matters to free the hands for another pickup: allowing it only next to an
    # object worth picking up keeps the number of object layouts small.
    drop_sites: frozenset[int]


class SearchProblem:
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
        self.views: list[WorldView | None] = []
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

    def view(self, world: int) -> WorldView:
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
        view = WorldView(cells, object_at, carried, frozenset(pickable), openable_boxes, drop_sites)
        self.views[world] = view
        return view

    def solve(self, position: tuple[int, int], direction: int, max_states: int) -> list[PlanStep]:
        """
        Find a shortest action sequence that completes the stage, by A* search.

        :param position: the agent's (x, y)
        :param direction: the agent's direction
        :param max_states: most states to expand before giving up
        :return: the plan; ``self.expanded`` counts the states the search expanded
        :raises PlanningError: if no plan was found within ``max_states`` (as :class:`NoPlanExists`
            if none exists)
        """
        n_cells, steps, kind = self.n_cells, self.steps, self.stage.kind
        remaining = self._distances_to_target()
        start_cell = self.cell_index(*position)
        start = (self.initial_world * n_cells + start_cell) * 4 + direction
        cost_to = {start: 0}
        parent: dict[int, tuple[int, tuple[int, ...]]] = {}
        if remaining[start_cell] < 0:
            raise NoPlanExists(f"no action sequence completes {self.stage}: no path leads to its target")
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
            raise NoPlanExists(f"no action sequence completes {self.stage} ({self.expanded} states searched)")
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

    def _holds_key_for(self, view: WorldView, door: int) -> bool:
        if view.carried < 0:
            return False
        carried = self.objects[view.carried]
        return carried.type == "key" and carried.color == self.door_colors[door]

    def _unroll(
        self, end: tuple[int, tuple[int, ...]], parent: dict[int, tuple[int, tuple[int, ...]]]
    ) -> list[PlanStep]:
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
                plan.append(PlanStep(action, position, state & 3, carrying, opens_door and action == _TOGGLE))
        return plan
