"""Shared fixtures: small envs, fixed seeds, a scripted expert that needs no planner or LLM."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch as th
from minigrid.core.actions import Actions
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.experts.base import Expert, ExpertEpisode
from sb3_llmae.testing import FakeOpenAIServer

# In MiniGrid-Empty-5x5 the agent starts at (1, 1) facing east and the goal is at (3, 3).
EMPTY_5X5_SOLUTION = (Actions.forward, Actions.forward, Actions.right, Actions.forward, Actions.forward)


class ScriptedEpisode(ExpertEpisode):
    def __init__(self, env: MiniGridEnv, seed: int, actions: tuple[int, ...]) -> None:
        super().__init__(env, seed)
        self.actions = list(actions)

    def act(self) -> int:
        return int(self.actions.pop(0)) if self.actions else int(Actions.left)

    def summary(self) -> dict[str, Any]:
        return {"scripted": True, "transcript": [{"seed": self.seed}]}


class ScriptedExpert(Expert):
    """Plays a fixed action sequence, then turns left until the episode ends."""

    def __init__(self, actions: tuple[int, ...] = EMPTY_5X5_SOLUTION) -> None:
        self.actions = tuple(int(a) for a in actions)

    def start_episode(self, env: MiniGridEnv, seed: int) -> ExpertEpisode:
        return ScriptedEpisode(env, seed, self.actions)

    def describe(self) -> dict[str, Any]:
        return {"kind": "scripted", "actions": list(self.actions)}


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    # The networks are tiny: on a shared 2-core machine, torch's thread pool makes them ~20x slower.
    th.set_num_threads(1)


@pytest.fixture
def scripted_expert() -> ScriptedExpert:
    return ScriptedExpert()


@pytest.fixture
def fake_openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    """
    A running ``FakeOpenAIServer``, stopped after the test.

    Proxies are bypassed for 127.0.0.1 so that no request can leave the machine, and the OpenAI
    environment variables are cleared so that only what a test passes reaches the client.
    """
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    with FakeOpenAIServer() as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The hostile suite's counts of outcomes, when it ran (tests/test_hostile.py)."""
    hostile = sys.modules.get("tests.test_hostile")
    if hostile is not None and hostile.VERDICTS:
        terminalreporter.write_line(f"hostile suite: {hostile.counts_line(hostile.VERDICTS)}")
