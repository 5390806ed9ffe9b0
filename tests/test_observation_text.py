"""MiniGrid states as text: the egocentric view and the full map."""

import gymnasium as gym
import pytest
from minigrid.core.world_object import Ball, Box, Door, Goal, Key, Lava

from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.llm.observation_text import (
    describe_full_map,
    describe_view,
)
from tests.minigrid_helpers import (
    FACING_DOWN,
    FACING_LEFT,
    FACING_RIGHT,
    FACING_UP,
    minigrid,
    place_agent,
    seen_objects,
)


def test_doorkey_start_state():
    env = minigrid("MiniGrid-DoorKey-8x8-v0", seed=0)
    # Seed 0: agent at (3, 4) facing down (+y), key at (4, 5), locked door at (5, 2) behind it.
    assert (tuple(env.agent_pos), env.agent_dir) == ((3, 4), FACING_DOWN)
    text = describe_view(env)
    assert text.splitlines()[0] == "Mission: use the key to open the door and then get to the goal"
    # Facing down, the agent's left is +x.
    assert seen_objects(text) == ["- a yellow key 1 step forward and 1 step left"]
    assert "Nearest walls: 3 steps forward, 2 steps left, 3 steps right." in text
    assert "Right in front of you: nothing (a free cell)." in text
    assert text.endswith("You are carrying nothing.")


def test_key_in_front_and_locked_door_ahead_left():
    env = minigrid("MiniGrid-Empty-8x8-v0")
    place_agent(env, (3, 5), FACING_UP)
    env.grid.set(3, 4, Key("yellow"))
    env.grid.set(2, 3, Door("yellow", is_locked=True))
    text = describe_view(env)
    assert seen_objects(text) == [
        "- a yellow key right in front of you",
        "- a locked yellow door 2 steps forward and 1 step left",
    ]
    assert "Right in front of you: a yellow key." in text
    # The key hides nothing: the top wall at y=0 is 5 cells up; the side wall 3 cells left.
    assert "Nearest walls: 5 steps forward, 3 steps left." in text


@pytest.mark.parametrize(
    ("direction", "ball_cell"),
    # From (3, 3), the cell 2 steps forward and 1 step left, worked out on paper per facing.
    [(FACING_RIGHT, (5, 2)), (FACING_DOWN, (4, 5)), (FACING_LEFT, (1, 4)), (FACING_UP, (2, 1))],
)
def test_relative_positions_follow_facing(direction: int, ball_cell: tuple[int, int]):
    env = minigrid("MiniGrid-Empty-8x8-v0")
    env.grid.set(6, 6, None)  # the goal, seen from some of the facings
    place_agent(env, (3, 3), direction)
    env.grid.set(*ball_cell, Ball("blue"))
    assert seen_objects(describe_view(env)) == ["- a blue ball 2 steps forward and 1 step left"]


def test_empty_start_state():
    env = minigrid("MiniGrid-Empty-5x5-v0")
    text = describe_view(env)
    assert text.splitlines() == [
        "Mission: get to the green goal square",
        "You see:",
        "- a green goal square 2 steps forward and 2 steps right",
        "Nearest walls: 3 steps forward, 1 step left, 3 steps right.",
        "Right in front of you: nothing (a free cell).",
        "You are carrying nothing.",
    ]


def test_carried_object_is_not_seen_on_the_floor():
    env = minigrid("MiniGrid-Empty-5x5-v0")
    env.carrying = Key("yellow")
    text = describe_view(env)
    assert "You are carrying a yellow key." in text
    assert seen_objects(text) == ["- a green goal square 2 steps forward and 2 steps right"]


def test_lava_gap():
    env = minigrid("MiniGrid-LavaGapS5-v0")
    env.grid.set(2, 1, Lava())
    env.grid.set(2, 2, Lava())
    env.grid.set(2, 3, None)
    env.grid.set(3, 3, Goal())
    place_agent(env, (1, 1), FACING_RIGHT)
    text = describe_view(env)
    assert "avoid the lava" in text
    assert seen_objects(text) == [
        "- a green goal square 2 steps forward and 2 steps right",
        "- lava (deadly) right in front of you; 1 step forward and 1 step right",
    ]
    assert "Right in front of you: lava." in text
    # Lava is no wall: the nearest wall ahead is the border behind it.
    assert "Nearest walls: 3 steps forward, 1 step left, 3 steps right." in text


def test_key_corridor_doors_and_occlusion():
    env = minigrid("MiniGrid-KeyCorridorS3R1-v0")
    assert (env.grid.width, env.grid.height) == (7, 3)
    for x in range(1, 6):
        env.grid.set(x, 1, None)
    env.grid.set(2, 1, Door("blue"))
    env.grid.set(4, 1, Door("yellow", is_locked=True))
    env.grid.set(5, 1, Ball("purple"))
    place_agent(env, (3, 1), FACING_DOWN)
    text = describe_view(env)
    assert f"Mission: {env.mission}" in text
    assert seen_objects(text) == ["- a locked yellow door 1 step left", "- a closed blue door 1 step right"]
    assert "Right in front of you: a wall." in text
    assert "Nearest walls: 1 step forward." in text

    place_agent(env, (3, 1), FACING_RIGHT)
    text = describe_view(env)
    assert "Right in front of you: a locked yellow door." in text
    assert seen_objects(text) == ["- a locked yellow door right in front of you"]  # the ball is behind it


def test_unlock_door_states():
    env = minigrid("MiniGrid-Unlock-v0", seed=1)
    door = env.door  # in the wall between the two rooms, entered from the left
    door_x, door_y = door.cur_pos
    place_agent(env, (door_x - 1, door_y), FACING_RIGHT)
    assert "Mission: open the door" in describe_view(env)
    assert f"Right in front of you: a locked {door.color} door." in describe_view(env)

    door.is_locked, door.is_open = False, False
    assert f"Right in front of you: a closed {door.color} door." in describe_view(env)
    door.is_open = True
    env.carrying = Key(door.color)
    text = describe_view(env)
    assert f"- an open {door.color} door right in front of you" in text
    assert f"You are carrying a {door.color} key." in text


def test_babyai_mission_and_object():
    env = minigrid("BabyAI-GoToRedBall-v0")
    place_agent(env, (3, 3), FACING_RIGHT)
    env.grid.set(4, 3, Ball("red"))
    text = describe_view(env)
    assert text.startswith("Mission: go to the red ball\n")
    assert "- a red ball right in front of you" in text
    assert "Right in front of you: a red ball." in text


def test_no_wall_in_view():
    env = minigrid("MiniGrid-Empty-16x16-v0")
    place_agent(env, (5, 5), FACING_RIGHT)
    text = describe_view(env)
    assert "You see no objects." in text
    assert "No wall in view ahead or to your sides." in text


@pytest.mark.parametrize(
    "env_id",
    [
        "MiniGrid-DoorKey-5x5-v0",
        "MiniGrid-DoorKey-8x8-v0",
        "MiniGrid-Unlock-v0",
        "MiniGrid-KeyCorridorS3R1-v0",
        "BabyAI-GoToRedBall-v0",
        "MiniGrid-Empty-5x5-v0",
        "MiniGrid-LavaGapS5-v0",
    ],
)
def test_descriptions_are_deterministic_and_name_the_mission(env_id: str):
    wrapped = make_env(env_id, seed=3)
    env = unwrap_minigrid(wrapped)
    for describe in (describe_view, describe_full_map):
        text = describe(wrapped)  # wrapped envs are accepted too
        assert f"Mission: {env.mission}" in text
        assert text == describe(env)
    assert len(describe_view(env)) < 700


def test_full_map_doorkey():
    text = describe_full_map(minigrid("MiniGrid-DoorKey-8x8-v0", seed=0))
    lines = text.splitlines()
    assert lines[0] == "Mission: use the key to open the door and then get to the goal"
    assert lines[2] == "  0 1 2 3 4 5 6 7"
    assert lines[3] == "0 # # # # # # # #"
    assert lines[5] == "2 # . . . . L . #"
    assert lines[7] == "4 # . . v . # . #"
    assert "- a yellow key at (4, 5)" in lines
    assert "- a locked yellow door at (5, 2)" in lines
    assert "- a green goal square at (6, 6)" in lines
    assert "You are at (3, 4) facing down (+y)." in lines
    assert lines[-1] == "You are carrying nothing."
    assert "L locked door" in text
    assert "lava" not in text  # the legend lists only the symbols on the map


def test_full_map_wide_grid_box_contents_and_open_door():
    env = minigrid("MiniGrid-Empty-16x16-v0")
    env.grid.set(12, 3, Box("red", contains=Key("blue")))
    env.grid.set(2, 11, Door("green", is_open=True))
    place_agent(env, (2, 11), FACING_LEFT)
    env.carrying = Ball("purple")
    text = describe_full_map(env)
    lines = text.splitlines()
    map_lines = lines[2:19]
    assert map_lines[0].split() == [str(x) for x in range(16)]
    assert len({len(line) for line in map_lines}) == 1  # two-digit numbers keep the columns aligned
    assert map_lines[1 + 11].split()[1 + 2] == "<"
    assert "- a red box (containing a blue key) at (12, 3)" in lines
    assert "- an open green door at (2, 11)" in lines
    assert "You are at (2, 11) facing left (-x)." in lines
    assert "You stand on an open green door." in lines
    assert "You are carrying a purple ball." in lines


def test_describe_accepts_only_minigrid():
    with pytest.raises(TypeError):
        describe_view(gym.make("CartPole-v1"))
