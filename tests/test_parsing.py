"""Actions read out of free-text replies."""

import pytest

from sb3_llmae.experts.llm.parsing import parse_action, parse_action_list

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
# Directions of MiniGridEnv.agent_dir.
FACING_RIGHT, FACING_DOWN, FACING_LEFT, FACING_UP = range(4)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Action: 2", FORWARD),
        ("action: forward", FORWARD),
        ("Action: 2.", FORWARD),
        ("Action: 2 (forward)", FORWARD),
        ("**Action:** `pickup`", PICKUP),
        ("Action: move_forward", FORWARD),
        ("Action: TURN-LEFT", LEFT),
        ("Action: pick up the key", PICKUP),
        ("Action: I will turn right, then go forward", RIGHT),
        ("Action: open the door", TOGGLE),
        ("Action:\n  toggle", TOGGLE),
        ("Final answer: drop", DROP),
        ("Action: done", DONE),
        ("Reasoning: I should not turn left, the key is ahead.\nAction: forward", FORWARD),
        ("Reasoning: turning would waste a step; I won't turn left or right.\nAction: go forward", FORWARD),
        ("Reasoning: The next action: turn left? No, the wall is left.\nAction: right", RIGHT),
        ('{"action": "forward"}', FORWARD),
        ('{"action": 5}', TOGGLE),
        ('{"action": "3"}', PICKUP),
        ('```json\n{"reasoning": "the {key} is ahead", "action": "turn left"}\n```', LEFT),
        ("2", FORWARD),
        ("turn right", RIGHT),
        ("Pickup.", PICKUP),
        ("I will move forward.", FORWARD),
        ("I cannot go forward, so I turn left.", LEFT),
        ("The wall blocks me; rather than go forward I turn right.", RIGHT),
        ("Let me pick up the key.", PICKUP),
    ],
)
def test_parse_action(reply: str, expected: int):
    assert parse_action(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I am not sure what to do.",
        "I should not turn left.",
        "The door is open and the key is 2 steps forward.",
        "Action: 7",
        "Action: -1",
        "Action: 2.5",
        "Action: jump",
        '{"action": 9}',
        '{"action": true}',
        # The last explicit answer decides, even when it is invalid.
        "Action: forward\nOn second thought:\nAction: fly",
    ],
)
def test_parse_action_without_valid_action(reply: str):
    assert parse_action(reply) is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Actions: [forward, forward, left]", [FORWARD, FORWARD, LEFT]),
        ('Reasoning: go round.\nActions: ["forward", "turn left", 2]', [FORWARD, LEFT, FORWARD]),
        ("Actions: [\n  3,\n  5\n]", [PICKUP, TOGGLE]),
        ('{"reasoning": "short", "actions": ["pickup", "toggle"]}', [PICKUP, TOGGLE]),
        ("Actions: forward, forward, left.", [FORWARD, FORWARD, LEFT]),
        ("Plan: forward -> turn right -> toggle", [FORWARD, RIGHT, TOGGLE]),
        (
            "Actions:\n1. forward\n2) turn left\n3. pick up the key\nThat reaches the key.",
            [FORWARD, LEFT, PICKUP],
        ),
        ("I go to (2, 3) first.\n- move forward\n- drop", [FORWARD, DROP]),
        ("My plan is [left, forward, pickup]", [LEFT, FORWARD, PICKUP]),
        ("forward, forward, right", [FORWARD, FORWARD, RIGHT]),
    ],
)
def test_parse_action_list(reply: str, expected: list[int]):
    assert parse_action_list(reply) == expected


@pytest.mark.parametrize(
    "reply", ["", "I do not know.", "Actions: []", "Actions: [forward, jump, left]", "Actions: [2, 8]"]
)
def test_parse_action_list_without_valid_list(reply: str):
    assert parse_action_list(reply) is None
