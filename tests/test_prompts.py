"""Prompt templates and the chat messages of step and plan mode."""

import dataclasses

import pytest
from minigrid.core.world_object import Door, Goal, Key, Wall

from sb3_llmae import generate_demonstrations
from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.llm.client import ChatClient
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.observation_text import (
    ACTION_NAMES,
    describe_actions,
    describe_full_map,
    describe_history,
    describe_view,
)
from sb3_llmae.experts.llm.parsing import parse_action, parse_action_list
from sb3_llmae.experts.llm.prompts import (
    CORRECTION_MESSAGE,
    PLAN_CORRECTION_MESSAGE,
    PLAN_FEW_SHOT,
    PLAN_TEMPLATE,
    PLAN_TEMPLATES,
    STEP_FEW_SHOT,
    STEP_TEMPLATE,
    STEP_TEMPLATES,
    PromptTemplate,
    plan_messages,
    step_messages,
)
from sb3_llmae.testing.oracle import OracleResponder
from tests.minigrid_helpers import (
    DROP,
    FACING_RIGHT,
    FORWARD,
    LEFT,
    PICKUP,
    RIGHT,
    TOGGLE,
    minigrid,
    place_agent,
)


def test_step_few_shot_observations_are_real_descriptions():
    env = minigrid("MiniGrid-DoorKey-8x8-v0", seed=0)
    place_agent(env, (3, 5), FACING_RIGHT)
    assert f"{describe_view(env)}\n{describe_history([FORWARD, LEFT])}" == STEP_FEW_SHOT[0][0]

    env.grid.set(4, 5, None)
    env.carrying = Key("yellow")
    place_agent(env, (4, 2), FACING_RIGHT)
    assert f"{describe_view(env)}\n{describe_history([PICKUP, RIGHT, FORWARD])}" == STEP_FEW_SHOT[1][0]

    env = minigrid("MiniGrid-Empty-8x8-v0")
    place_agent(env, (6, 4), FACING_RIGHT)
    assert f"{describe_view(env)}\n{describe_history([FORWARD, FORWARD])}" == STEP_FEW_SHOT[2][0]

    assert [parse_action(answer) for _, answer in STEP_FEW_SHOT] == [PICKUP, TOGGLE, RIGHT]


def test_plan_few_shot_is_a_real_map_and_its_plan_succeeds():
    wrapped = make_env("MiniGrid-DoorKey-5x5-v0", seed=0)
    env = unwrap_minigrid(wrapped)
    for x in range(1, 4):
        for y in range(1, 4):
            env.grid.set(x, y, None)
    env.grid.set(2, 1, Wall())
    env.grid.set(2, 3, Wall())
    env.grid.set(2, 2, Door("yellow", is_locked=True))
    env.grid.set(1, 1, Key("yellow"))
    env.grid.set(3, 3, Goal())
    place_agent(env, (1, 3), FACING_RIGHT)
    question, answer = PLAN_FEW_SHOT[0]
    assert describe_full_map(env) == question

    plan = parse_action_list(answer)
    assert plan is not None
    for action in plan:
        _, reward, terminated, truncated, _ = wrapped.step(action)
        assert not truncated
    assert terminated and reward > 0


def test_correction_messages_ask_for_the_parsed_formats():
    assert "Action:" in CORRECTION_MESSAGE
    assert "Actions: [" in PLAN_CORRECTION_MESSAGE
    for name in ACTION_NAMES.values():
        assert name in CORRECTION_MESSAGE
        assert name in PLAN_CORRECTION_MESSAGE
    assert STEP_TEMPLATE.correction == CORRECTION_MESSAGE
    assert PLAN_TEMPLATE.correction == PLAN_CORRECTION_MESSAGE


def test_step_messages():
    env = minigrid("MiniGrid-DoorKey-8x8-v0", seed=0)
    messages = step_messages(env, history=[FORWARD, FORWARD, LEFT])
    assert [message["role"] for message in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert "2 forward: move one cell forward" in messages[0]["content"]
    assert "{" not in messages[0]["content"]
    assert messages[-1]["content"] == (
        f"{describe_view(env)}\nYour last 3 actions (oldest first): forward, forward, left."
    )
    # The whole step prompt stays small: it is sent once per env step.
    assert sum(len(message["content"]) for message in messages) < 4000


def test_step_history_is_bounded():
    env = minigrid("MiniGrid-Empty-5x5-v0")
    history = [LEFT] * 10 + [PICKUP, DROP]
    state = step_messages(env, history=history, max_history=3)[-1]["content"]
    assert state.endswith("Your last 3 actions (oldest first): left, pickup, drop.")
    assert step_messages(env)[-1]["content"].endswith("Your last actions: none yet.")
    assert step_messages(env, history=history, max_history=0)[-1]["content"] == describe_view(env)


def test_plan_messages():
    env = minigrid("MiniGrid-DoorKey-8x8-v0", seed=0)
    messages = plan_messages(env)
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == describe_full_map(env)
    assert "Actions: [<name>, <name>, ...]" in messages[0]["content"]


def test_templates_can_be_overridden():
    env = minigrid("MiniGrid-Empty-5x5-v0")
    template = dataclasses.replace(
        STEP_TEMPLATE,
        system='Custom rules.\n{actions}\nReply as JSON: {{"action": <name>}}',
        few_shot=(),
        state="Task: {mission}\n{observation}",
    )
    messages = step_messages(env, template=template)
    assert len(messages) == 2
    assert messages[0]["content"].startswith("Custom rules.\n0 left: turn left")
    assert messages[0]["content"].endswith('Reply as JSON: {"action": <name>}')
    assert messages[1]["content"] == f"Task: get to the green goal square\n{describe_view(env)}"
    assert step_messages(env)[0]["content"] != messages[0]["content"]


@pytest.mark.parametrize(
    ("system", "state"),
    [("Rules {rules}", "{observation}"), ("Rules", "{observation} {0}"), ('Answer {"action": 2}', "")],
)
def test_template_fields_are_checked(system: str, state: str):
    with pytest.raises(ValueError, match="template"):
        PromptTemplate(system=system, few_shot=(), state=state, correction="Again.")


def test_compact_step_template_is_small_and_names_every_action():
    env = minigrid("MiniGrid-DoorKey-5x5-v0", seed=0)
    full = step_messages(env, history=[FORWARD, LEFT])
    compact = step_messages(env, template=STEP_TEMPLATES["compact"], history=[FORWARD, LEFT])
    assert [message["role"] for message in compact] == ["system", "user"]
    assert compact[-1] == full[-1]
    size = sum(len(message["content"]) for message in compact)
    assert size < sum(len(message["content"]) for message in full) / 3
    for name in ACTION_NAMES.values():
        assert name in compact[0]["content"]
    assert "Action: <action name>" in compact[0]["content"]


@pytest.mark.parametrize("name", ["zero-shot", "compact"])
def test_templates_without_examples(name):
    env = minigrid("MiniGrid-DoorKey-5x5-v0", seed=0)
    assert len(step_messages(env, template=STEP_TEMPLATES[name])) == 2
    assert len(plan_messages(env, template=PLAN_TEMPLATES[name])) == 2
    assert STEP_TEMPLATES["full"] is STEP_TEMPLATE and PLAN_TEMPLATES["full"] is PLAN_TEMPLATE


@pytest.mark.parametrize(
    ("mode", "name"), [("step", "compact"), ("step", "zero-shot"), ("plan", "zero-shot")]
)
def test_oracle_answers_the_short_templates(fake_openai_server, tmp_path, mode, name):
    templates = {"step_template": STEP_TEMPLATES[name], "plan_template": PLAN_TEMPLATES[name]}
    client = ChatClient("fake-model", base_url=fake_openai_server.base_url, api_key="sk-test")
    expert = LLMExpert(mode=mode, client=client, **templates)
    env_id = "MiniGrid-DoorKey-5x5-v0"
    fake_openai_server.responder = OracleResponder(env_id, range(2), expert)
    demos = generate_demonstrations(env_id, expert, n_episodes=2, out_dir=tmp_path, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0
    system = fake_openai_server.requests[0].body["messages"][0]["content"]
    assert system == (STEP_TEMPLATES if mode == "step" else PLAN_TEMPLATES)[name].system.format(
        actions=describe_actions()
    )
