"""Actions read out of free-text replies."""

import pytest

from sb3_llmae import generate_demonstrations
from sb3_llmae.experts.llm.client import ChatClient
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.parsing import parse_action, parse_action_list

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
# Directions of MiniGridEnv.agent_dir.
FACING_RIGHT, FACING_DOWN, FACING_LEFT, FACING_UP = range(4)
EMPTY_5X5_NAMES = ("forward", "forward", "right", "forward", "forward")


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
        # The first answer decides, not a later change of mind or a repeated answer.
        ("Action: forward\nOn second thought:\nAction: left", FORWARD),
        ("Action: right\nAction: right\nAction: pickup", RIGHT),
        ('{"action": "left"} or maybe {"action": "right"}', LEFT),
        # A model served without its chat template writes the end of its turn as text and goes on
        # with turns it makes up (seen with Gemma 3 270M under llama-server's ChatML fallback).
        (
            "Reasoning: the goal is to my right.\nAction: right<|im_end|>\n<|im_start|>user\nYou see: "
            "a key.<|im_end|>\n<|im_start|>assistant\nReasoning: the key.\nAction: pick up",
            RIGHT,
        ),
        ("Action: left<end_of_turn>\n<start_of_turn>model\nAction: forward", LEFT),
        ("I turn left.\nUser: Mission: get to the goal.\nAssistant: I move forward.", LEFT),
        ("Action: toggle</s>Action: drop", TOGGLE),
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
        # The first explicit answer decides, even when it is invalid.
        "Action: fly\nOn second thought:\nAction: forward",
        # Turns the model invents after its own do not answer the question asked.
        "Reasoning: no idea.<|im_end|>\n<|im_start|>assistant\nAction: forward",
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
        ("Reasoning: my plan: go round.\nActions: [left, forward]", [LEFT, FORWARD]),
        ("Actions: [left, forward]\nActions: [right]", [LEFT, FORWARD]),
        (
            "Actions: [right, forward]<|im_end|>\n<|im_start|>assistant\nActions: [left, pickup]",
            [RIGHT, FORWARD],
        ),
        ("My plan is [left, forward] or [right]", [LEFT, FORWARD]),
    ],
)
def test_parse_action_list(reply: str, expected: list[int]):
    assert parse_action_list(reply) == expected


@pytest.mark.parametrize(
    "reply", ["", "I do not know.", "Actions: []", "Actions: [forward, jump, left]", "Actions: [2, 8]"]
)
def test_parse_action_list_without_valid_list(reply: str):
    assert parse_action_list(reply) is None


@pytest.mark.parametrize("mode", ["step", "plan"])
def test_expert_acts_on_the_first_turn_of_a_rambling_reply(fake_openai_server, tmp_path, mode):
    # What a base model behind a ChatML fallback answers: its answer, then invented turns whose
    # answers would walk into the wall of Empty-5x5 (start at (1, 1) facing east).
    invented = "<|im_end|>\n<|im_start|>user\nYou see: a wall.<|im_end|>\n<|im_start|>assistant\n"
    if mode == "step":
        replies = [f"Reasoning: go.\nAction: {name}{invented}Action: left" for name in EMPTY_5X5_NAMES]
    else:
        replies = [f"Reasoning: go.\nActions: [{', '.join(EMPTY_5X5_NAMES)}]{invented}Actions: [left, left]"]
    fake_openai_server.enqueue(*replies)
    client = ChatClient("fake-model", base_url=fake_openai_server.base_url, api_key="sk-test")
    demos = generate_demonstrations(
        "MiniGrid-Empty-5x5-v0",
        LLMExpert(mode=mode, client=client),
        n_episodes=1,
        out_dir=tmp_path,
        progress_bar=False,
    )
    assert demos.stats["success_rate"] == 1.0
    assert demos.metadata["episodes"][0]["invalid_replies"] == 0
