"""
An expert that solves MiniGrid tasks by search on the full grid state, without an LLM.

The planner reads the mission, turns it into stages (reach the goal, pick up / go to an object,
open a door), and searches for the shortest action sequence that completes the current stage.
The search runs over the combined state (agent position, direction, what it carries, where the
objects lie, which locked doors it has unlocked), so that it picks the side from which to
approach a key or a door for the whole plan, not greedily for the next subgoal: on DoorKey its
episodes are exactly as short as possible (see :func:`shortest_solution_length`).
"""

from sb3_llmae.experts.planner.expert import PlannerEpisode, PlannerExpert
from sb3_llmae.experts.planner.missions import UNPLANNABLE_ENV_CLASSES, Stage, Task, env_name, parse_mission
from sb3_llmae.experts.planner.search import PlanningError

__all__ = [
    "UNPLANNABLE_ENV_CLASSES",
    "PlannerEpisode",
    "PlannerExpert",
    "PlanningError",
    "Stage",
    "Task",
    "env_name",
    "parse_mission",
]
