"""The planner expert: plans each stage of the mission, plays the plan, and plans again when the env
leaves the planned path."""

from __future__ import annotations

import logging
from typing import Any

from minigrid.core.world_object import Door
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.experts.base import Expert, ExpertEpisode, UnsupportedEnvError
from sb3_llmae.experts.planner.missions import Task, env_name, task_of
from sb3_llmae.experts.planner.search import (
    NoPlanExists,
    ObstacleMode,
    PlanningError,
    PlanStep,
    SearchProblem,
)

logger = logging.getLogger(__name__)


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
        self._plan: list[PlanStep] = []
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
        no_plan: NoPlanExists | None = None
        for move_obstacles in obstacle_modes:
            problem = SearchProblem(self.env, self.task, self._stage_index, move_obstacles)
            try:
                self._plan = problem.solve(position, direction, self.max_search_states)
                break
            except NoPlanExists as error:
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
        task = task_of(env)
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
