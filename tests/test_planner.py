import json

import pytest
from minigrid.core.actions import Actions
from minigrid.core.world_object import Door, Wall

from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.base import Expert, UnsupportedEnvError
from sb3_llmae.experts.planner import PlannerExpert, PlanningError, parse_mission
from sb3_llmae.testing.oracle import shortest_solution_length

# Far above any planned episode here, so that a planner stuck in a loop fails instead of hanging.
STEP_CAP = 500


def play_episode(expert: Expert, env_id: str, seed: int) -> tuple[bool, int]:
    """
    Play one episode of ``env_id`` with ``expert``.

    :return: whether the episode ended with a positive reward, and its length
    """
    env = make_env(env_id, seed=seed)
    episode = expert.start_episode(unwrap_minigrid(env), seed)
    for length in range(1, STEP_CAP + 1):
        action = episode.act()
        _, reward, terminated, truncated, _ = env.step(action)
        episode.observe(action, float(reward), terminated, truncated)
        if terminated or truncated:
            return float(reward) > 0, length
    raise AssertionError(f"{env_id} seed {seed}: the episode did not end within {STEP_CAP} steps")


@pytest.fixture(scope="module")
def planner() -> PlannerExpert:
    return PlannerExpert()


SOLVED_EPISODES = [
    (env_id, seed)
    for env_id, seeds in [
        ("MiniGrid-Empty-5x5-v0", (0, 1)),
        ("MiniGrid-DoorKey-5x5-v0", range(5)),
        ("MiniGrid-DoorKey-8x8-v0", range(5)),
        ("MiniGrid-DoorKey-16x16-v0", (0,)),
        ("MiniGrid-Unlock-v0", range(3)),
        ("MiniGrid-UnlockPickup-v0", range(3)),
        ("MiniGrid-KeyCorridorS3R1-v0", range(3)),
        ("MiniGrid-KeyCorridorS6R3-v0", (0,)),
        ("MiniGrid-FourRooms-v0", range(3)),
        # beyond the required envs
        ("MiniGrid-BlockedUnlockPickup-v0", (0, 1)),
        ("MiniGrid-LockedRoom-v0", (0,)),
        ("MiniGrid-MultiRoom-N4-S5-v0", (0, 1)),
        ("MiniGrid-GoToDoor-8x8-v0", range(3)),
        ("MiniGrid-GoToObject-8x8-N2-v0", range(3)),
        ("MiniGrid-Fetch-8x8-N3-v0", range(3)),
        ("MiniGrid-RedBlueDoors-6x6-v0", (0, 1)),
        ("MiniGrid-LavaCrossingS9N2-v0", (0, 1)),
        ("MiniGrid-LavaGapS7-v0", (0, 1)),
        ("MiniGrid-SimpleCrossingS9N2-v0", (0,)),
        ("MiniGrid-ObstructedMaze-1Dlhb-v0", (0,)),
    ]
    for seed in seeds
]


@pytest.mark.parametrize(("env_id", "seed"), SOLVED_EPISODES)
def test_solves(planner, env_id, seed):
    success, length = play_episode(planner, env_id, seed)
    assert success, f"failed after {length} steps"


@pytest.mark.parametrize(
    ("env_id", "seeds"),
    [
        ("MiniGrid-DoorKey-5x5-v0", range(10)),
        ("MiniGrid-DoorKey-8x8-v0", range(10)),
        ("MiniGrid-Unlock-v0", range(5)),
        ("MiniGrid-FourRooms-v0", range(3)),
    ],
)
def test_episodes_are_as_short_as_possible(planner, env_id, seeds):
    for seed in seeds:
        _, length = play_episode(planner, env_id, seed)
        assert length == shortest_solution_length(env_id, seed), f"{env_id} seed {seed}"


def test_shortest_solution_length():
    # In Empty-5x5 the agent starts at (1, 1) facing east, the goal is at (3, 3): 4 moves and a turn.
    assert shortest_solution_length("MiniGrid-Empty-5x5-v0", 0) == 5
    with pytest.raises(UnsupportedEnvError, match="MiniGrid-KeyCorridorS3R1-v0"):
        shortest_solution_length("MiniGrid-KeyCorridorS3R1-v0", 0)


@pytest.mark.parametrize(
    "env_id",
    [
        "MiniGrid-Dynamic-Obstacles-5x5-v0",  # obstacles move by themselves: no plan holds
        "MiniGrid-MemoryS7-v0",  # an unknown mission
        "MiniGrid-PutNear-6x6-N2-v0",
        "BabyAI-GoToRedBall-v0",
    ],
)
def test_unsupported_env_is_named(planner, env_id):
    env = unwrap_minigrid(make_env(env_id, seed=0))
    with pytest.raises(UnsupportedEnvError, match=env_id):
        planner.start_episode(env, seed=0)


def test_unreachable_goal_is_reported_at_start(planner):
    env = unwrap_minigrid(make_env("MiniGrid-Empty-5x5-v0", seed=0))
    # wall the goal in (3, 3) off
    env.grid.set(2, 3, Wall())
    env.grid.set(3, 2, Wall())
    with pytest.raises(UnsupportedEnvError, match=r"MiniGrid-Empty-5x5-v0.*no action sequence"):
        planner.start_episode(env, seed=0)


def test_search_is_bounded():
    env = unwrap_minigrid(make_env("MiniGrid-DoorKey-8x8-v0", seed=0))
    with pytest.raises(UnsupportedEnvError, match="more than 10 states"):
        PlannerExpert(max_search_states=10).start_episode(env, seed=0)


def test_replans_when_the_env_leaves_the_plan(planner):
    env = make_env("MiniGrid-DoorKey-5x5-v0", seed=0)
    episode = planner.start_episode(unwrap_minigrid(env), seed=0)
    env.step(Actions.left)  # an action the plan did not choose
    for _ in range(STEP_CAP):
        _, reward, terminated, truncated, _ = env.step(episode.act())
        if terminated or truncated:
            break
    assert reward > 0
    assert episode.summary()["planner"]["plans"] == 2


def test_raises_during_play_when_no_plan_exists(planner):
    env = make_env("MiniGrid-DoorKey-5x5-v0", seed=0)
    base = unwrap_minigrid(env)
    episode = planner.start_episode(base, seed=0)
    # replace the door by a wall: the goal becomes unreachable
    door_index = next(index for index, cell in enumerate(base.grid.grid) if isinstance(cell, Door))
    door_position = (door_index % base.width, door_index // base.width)
    base.grid.set(*door_position, Wall())
    with pytest.raises(PlanningError, match="MiniGrid-DoorKey-5x5-v0"):
        for _ in range(STEP_CAP):
            env.step(episode.act())


@pytest.mark.parametrize(
    ("mission", "kinds"),
    [
        ("use the key to open the door and then get to the goal", ["reach_goal"]),
        ("reach the goal", ["reach_goal"]),
        ("pick up the purple box", ["pick_up"]),
        ("you must fetch a grey ball", ["pick_up"]),
        ("go to the red door", ["go_to"]),
        ("open the door", ["open"]),
        ("open the red door then the blue door", ["open", "open"]),
        ("put the blue key near the purple box", None),
    ],
)
def test_parse_mission(mission, kinds):
    task = parse_mission(mission)
    assert (task and [stage.kind for stage in task.stages]) == kinds


def test_describe_and_summary_are_json(planner):
    description = planner.describe()
    assert json.loads(json.dumps(description)) == description
    assert description["kind"] == "planner"
    env = unwrap_minigrid(make_env("MiniGrid-DoorKey-5x5-v0", seed=0))
    json.dumps(planner.start_episode(env, seed=0).summary())


def test_invalid_settings():
    with pytest.raises(ValueError, match="max_search_states"):
        PlannerExpert(max_search_states=0)
