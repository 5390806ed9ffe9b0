"""An "LLM" for tests that knows the answers: the planner's actions, keyed by the prompts they answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sb3_llmae import language
from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.llm import LLMExpert
from sb3_llmae.experts.planner import PlannerExpert


class OracleResponder:
    """
    Answers the prompts an ``LLMExpert`` sends on ``env_id`` for ``seeds`` with the planner's
    actions (``Action: <name>`` in step mode, ``Actions: [...]`` in plan mode), and says something
    with no action for any prompt it does not know.

    :param env_id: the env
    :param seeds: the episode seeds the expert will play
    :param expert: the expert whose prompts to answer (its templates and history length matter)
    """

    def __init__(self, env_id: str, seeds: Iterable[int], expert: LLMExpert) -> None:
        self.answers: dict[str, str] = {}
        for seed in seeds:
            self._record_episode(env_id, seed, expert)

    def _record_episode(self, env_id: str, seed: int, expert: LLMExpert) -> None:
        env = make_env(env_id)
        env.reset(seed=seed)
        minigrid_env = unwrap_minigrid(env)
        planner_episode = PlannerExpert().start_episode(minigrid_env, seed)
        plan_prompt = expert.plan_messages(minigrid_env)[-1]["content"]
        history: list[int] = []
        terminated = truncated = False
        while not (terminated or truncated):
            step_prompt = expert.step_messages(minigrid_env, history)[-1]["content"]
            action = planner_episode.act()
            self.answers[step_prompt] = (
                f"Reasoning: I follow the plan.\nAction: {language.ACTION_NAMES[action]}"
            )
            _, _, terminated, truncated, _ = env.step(action)
            history.append(action)
        names = ", ".join(language.ACTION_NAMES[a] for a in history)
        self.answers[plan_prompt] = f"Reasoning: the shortest route.\nActions: [{names}]"

    def __call__(self, request: dict[str, Any]) -> str:
        prompt = request["messages"][-1]["content"]
        return self.answers.get(prompt, "Hmm, I am not sure what to do here.")
