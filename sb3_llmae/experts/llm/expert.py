"""An expert that asks a language model, through any OpenAI-compatible endpoint, what to do."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from minigrid.core.actions import Actions
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.experts.base import Expert, ExpertEpisode
from sb3_llmae.experts.llm.cache import ResponseCache
from sb3_llmae.experts.llm.client import ChatClient
from sb3_llmae.experts.llm.logprobs import (
    LOGPROBS_ANSWER_PROMPT,
    TOP_LOGPROBS,
    LogprobsUnsupportedError,
    MalformedLogprobsError,
    action_distribution,
    first_token_top_logprobs,
    valid_action_mass,
)
from sb3_llmae.experts.llm.parsing import parse_action, parse_action_list
from sb3_llmae.experts.llm.prices import TokenPrices
from sb3_llmae.experts.llm.prompts import (
    PLAN_TEMPLATE,
    STEP_TEMPLATE,
    PromptTemplate,
    plan_messages,
    step_messages,
)
from sb3_llmae.experts.llm.settings import (  # noqa: F401  (re-exported: the CLI reads them from settings)
    DECISIONS,
    DEFAULT_HISTORY_LENGTH,
    DEFAULT_LLM_MODE,
    DEFAULT_MAX_PLANS,
    HIGH_CUT_RATE,
    LLM_MODES,
    ChatSettings,
    Decision,
    LLMMode,
)
from sb3_llmae.experts.llm.structured import JSON_ANSWER_PROMPT, action_response_format, parse_json_action
from sb3_llmae.experts.llm.usage import ChatResult

logger = logging.getLogger(__name__)

Fallback = Literal["random_turn", "forward", "raise"]
FALLBACKS: tuple[str, ...] = ("random_turn", "forward", "raise")
# Spreads the sample indices of one episode's requests apart from the next episode's.
SAMPLES_PER_EPISODE = 100_000
OPERATIONAL_SETTINGS = frozenset({"base_url", "timeout", "max_retries", "cache", "rpm", "tpm"})
# An episode is marked as played mostly by the fallback action above this share of its steps.
MOSTLY_FALLBACK_RATE = 0.5


def template_fingerprint(template: PromptTemplate) -> str:
    """
    :param template: a prompt template
    :return: a short hash of it, recorded in metadata so that runs with other prompts are told apart
    """
    text = json.dumps(dataclasses.asdict(template), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class NoActionError(RuntimeError):
    """The model's reply held no valid action, even after a correction, and ``fallback="raise"``."""


@dataclass(frozen=True)
class AgentState:
    """What an action can change, to tell whether the env is still making progress."""

    position: tuple[int, int]
    direction: int
    carrying: str | None
    front: str | None

    @classmethod
    def of(cls, env: MiniGridEnv) -> AgentState:
        front_cell = env.grid.get(*env.front_pos)
        return cls(
            position=(int(env.agent_pos[0]), int(env.agent_pos[1])),
            direction=int(env.agent_dir),
            carrying=None if env.carrying is None else str(env.carrying.encode()),
            front=None if front_cell is None else str(front_cell.encode()),
        )


class LLMEpisode(ExpertEpisode):
    """
    One episode played by a language model, in ``step`` mode (one request per env step) or
    ``plan`` mode (one request for a list of actions, re-planned when it runs out or the env
    stops making progress). Keeps a transcript of every request.

    :param env: the unwrapped env, just reset
    :param seed: its reset seed
    :param expert: the expert holding the client and the settings
    """

    def __init__(self, env: MiniGridEnv, seed: int, expert: LLMExpert) -> None:
        super().__init__(env, seed)
        self.expert = expert
        self.rng = random.Random(seed)
        self.transcript: list[dict[str, Any]] = []
        self.history: list[int] = []
        self.plan: deque[int] = deque()
        self.n_requests = 0
        self.n_plans = 0
        self.n_invalid_replies = 0
        self.n_fallbacks = 0
        self.n_steps = 0
        self.n_cut_replies = 0
        self.n_fallbacks_max_plans = 0
        self.state_before: AgentState | None = None
        self.last_distribution: np.ndarray | None = None

    def _ask(
        self,
        messages: list[dict[str, str]],
        parse: Any,
        kind: str,
        correction: str,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Ask once, and once more with a correction if the reply holds no valid answer."""
        for attempt in range(2):
            result = self.expert.client.complete(
                messages, sample_index=self.seed * SAMPLES_PER_EPISODE + self.n_requests, params=params
            )
            self.n_requests += 1
            self.n_cut_replies += result.finish_reason == "length"
            parsed = parse(result.text)
            self._record(kind, messages, result, parsed, attempt)
            if parsed is not None and parsed != []:
                return parsed
            self.n_invalid_replies += 1
            messages = [
                *messages,
                {"role": "assistant", "content": result.text},
                {"role": "user", "content": correction},
            ]
        return None

    def _record(
        self, kind: str, messages: list[dict[str, str]], result: ChatResult, parsed: Any, attempt: int
    ) -> dict[str, Any]:
        entry = {
            "step": self.n_steps,
            "kind": kind,
            "attempt": attempt,
            # The system prompt and few-shot examples are the same at every step: kept once.
            "messages": messages if not self.transcript else messages[-1:],
            "reply": result.text,
            "parsed": parsed,
            "latency_s": round(result.latency_s, 4),
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cached": result.cached,
            "finish_reason": result.finish_reason,
        }
        self.transcript.append(entry)
        return entry

    def _fallback(self) -> int:
        self.n_fallbacks += 1
        fallback = self.expert.fallback
        if fallback == "raise":
            raise NoActionError(
                f"The model's reply held no valid action at step {self.n_steps} of the episode with seed "
                f"{self.seed}, even after a correction (see the transcript). Use fallback='random_turn' to "
                "keep playing."
            )
        action = Actions.forward if fallback == "forward" else self.rng.choice((Actions.left, Actions.right))
        self.transcript.append({"step": self.n_steps, "kind": "fallback", "action": int(action)})
        return int(action)

    def _made_progress(self) -> bool:
        return self.state_before is None or AgentState.of(self.env) != self.state_before

    def _ask_logprobs(self, messages: list[dict[str, str]]) -> int | None:
        """
        One request for one action token; the most probable action, its distribution kept.

        :raise LogprobsUnsupportedError: when the endpoint sends no log-probabilities
        """
        result = self.expert.client.complete(
            messages,
            sample_index=self.seed * SAMPLES_PER_EPISODE + self.n_requests,
            params={"max_tokens": 1, "logprobs": True, "top_logprobs": TOP_LOGPROBS},
        )
        # Not counted as cut: one token is the whole answer here.
        self.n_requests += 1
        try:
            top = first_token_top_logprobs(result.logprobs)
        except LogprobsUnsupportedError:
            raise LogprobsUnsupportedError(
                f"{self.expert.client.base_url} (model {self.expert.client.model!r}) returned no "
                "log-probabilities, so decision='logprobs' cannot work there: drop --decision logprobs "
                "(the default, text, parses the reply instead) or use a server that returns them "
                "(OpenAI, llama.cpp, vLLM)."
            ) from None
        except MalformedLogprobsError as error:
            entry = self._record("logprobs", messages, result, None, 0)
            entry["logprobs_error"] = str(error)
            self.n_invalid_replies += 1
            return None
        distribution = action_distribution(top, len(Actions))
        action = int(np.argmax(distribution)) if distribution is not None else None
        entry = self._record("logprobs", messages, result, action, 0)
        entry["action_mass"] = round(valid_action_mass(top, len(Actions)), 6)
        if distribution is None:
            self.n_invalid_replies += 1
            return None
        entry["distribution"] = [round(float(p), 6) for p in distribution]
        self.last_distribution = distribution
        return action

    def _ask_step(self) -> int | None:
        messages = self.expert.step_messages(self.env, self.history)
        decision = self.expert.decision
        if decision == "logprobs":
            return self._ask_logprobs(_with_answer_prompt(messages, LOGPROBS_ANSWER_PROMPT))
        if decision == "json":
            action: int | None = self._ask(
                _with_answer_prompt(messages, JSON_ANSWER_PROMPT),
                _parse_json_reply,
                "json",
                self.expert.step_template.correction,
                params={"response_format": action_response_format()},
            )
            return action
        action = self._ask(messages, parse_action, "step", self.expert.step_template.correction)
        return action

    def action_distribution(self) -> np.ndarray | None:
        return self.last_distribution

    def act(self) -> int:
        self.last_distribution = None
        if self.expert.mode == "step":
            action = self._ask_step()
        else:
            if self.plan and not self._made_progress():
                logger.debug(
                    "Seed %d: the plan stopped making progress at step %d; re-planning.",
                    self.seed,
                    self.n_steps,
                )
                self.plan.clear()
            if not self.plan and self.n_plans >= self.expert.max_plans:
                self.n_fallbacks_max_plans += 1
            elif not self.plan:
                self.n_plans += 1
                actions = self._ask(
                    self.expert.plan_messages(self.env),
                    parse_action_list,
                    "plan",
                    self.expert.plan_template.correction,
                )
                self.plan.extend(actions or ())
            action = self.plan.popleft() if self.plan else None
        if action is None:
            action = self._fallback()
        self.state_before = AgentState.of(self.env)
        return int(action)

    def observe(self, action: int, reward: float, terminated: bool, truncated: bool) -> None:
        self.n_steps += 1
        self.history.append(action)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.n_requests,
            "plans": self.n_plans,
            "invalid_replies": self.n_invalid_replies,
            "fallbacks": self.n_fallbacks,
            # plan mode: the fallbacks after the plan budget ran out (the others had no valid reply)
            "fallbacks_max_plans": self.n_fallbacks_max_plans,
            "cut_replies": self.n_cut_replies,
            # an episode the fallback played more than the model is no demonstration of the model
            "mostly_fallback": self.n_fallbacks > MOSTLY_FALLBACK_RATE * max(self.n_steps, 1),
            "prompt_tokens": sum(e.get("prompt_tokens", 0) for e in self.transcript),
            "completion_tokens": sum(e.get("completion_tokens", 0) for e in self.transcript),
            "transcript": self.transcript,
        }


def _with_answer_prompt(messages: list[dict[str, str]], answer_prompt: str) -> list[dict[str, str]]:
    """:return: the messages with ``answer_prompt`` ending the last (state) message"""
    last = messages[-1]
    return [*messages[:-1], {**last, "content": f"{last['content']}\n{answer_prompt}"}]


def _parse_json_reply(reply: str) -> int | None:
    # A server that ignored the schema may still answer in free text.
    action = parse_json_action(reply)
    return action if action is not None else parse_action(reply)


class LLMExpert(Expert):
    """
    A language model as the expert: it reads a text description of the env and answers with
    actions. Works with any OpenAI-compatible endpoint (OpenAI, OpenRouter, vLLM, Ollama, llama.cpp).

    :param model: the model name as the endpoint knows it (ignored when ``client`` is given)
    :param mode: ``"step"`` asks once per env step from the egocentric view (closed loop);
        ``"plan"`` describes the full map once and executes the returned action list,
        re-planning when it runs out or an action changes nothing
    :param client: a ready ``ChatClient``; otherwise one is built from the keyword arguments below
    :param base_url: the endpoint; defaults to ``$OPENAI_BASE_URL``
    :param api_key: defaults to ``$OPENAI_API_KEY`` (a local server needs none); never stored anywhere
    :param settings: the client's sampling, timeout and retry settings (:class:`ChatSettings`)
    :param cache: a ``ResponseCache`` or the path of its SQLite file; ``None`` for no cache
    :param step_template: prompt template of ``step`` mode
    :param plan_template: prompt template of ``plan`` mode
    :param history_length: how many recent actions ``step`` mode recalls in its prompt
    :param max_plans: most plans requested per episode in ``plan`` mode
    :param decision: how a step-mode reply gives its action: ``"text"`` (free text, parsed; the
        default), ``"logprobs"`` (one token per step, the most probable action's; its distribution is
        kept in the demonstrations for soft-target BC; the endpoint must return log-probabilities) or
        ``"json"`` (a ``response_format`` JSON schema whose ``action`` is one of the action names)
    :param fallback: what to do when a reply holds no action even after a correction:
        ``"random_turn"`` (the reference's choice), ``"forward"``, or ``"raise"``
    :param prices: the provider's token prices, to report the cost of the calls in :meth:`usage`
    """

    def __init__(
        self,
        model: str | None = None,
        mode: LLMMode = DEFAULT_LLM_MODE,
        *,
        client: ChatClient | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        settings: ChatSettings | None = None,
        cache: ResponseCache | str | Path | None = None,
        step_template: PromptTemplate = STEP_TEMPLATE,
        plan_template: PromptTemplate = PLAN_TEMPLATE,
        history_length: int = DEFAULT_HISTORY_LENGTH,
        max_plans: int = DEFAULT_MAX_PLANS,
        fallback: Fallback = "random_turn",
        prices: TokenPrices | None = None,
        decision: Decision = "text",
    ) -> None:
        if mode not in LLM_MODES:
            raise ValueError(f"Unknown mode {mode!r}: choose one of {', '.join(LLM_MODES)}.")
        if history_length < 0 or max_plans < 1:
            raise ValueError(
                f"history_length must be >= 0 and max_plans >= 1, got {history_length} and {max_plans}."
            )
        if decision not in DECISIONS:
            raise ValueError(f"Unknown decision {decision!r}: choose one of {', '.join(DECISIONS)}.")
        if decision != "text" and mode != "step":
            raise ValueError(
                f"decision={decision!r} chooses one action per request: use it with mode='step' "
                "(plan mode asks for a whole action list, in text)."
            )
        if fallback not in FALLBACKS:
            raise ValueError(f"Unknown fallback {fallback!r}: choose one of {', '.join(FALLBACKS)}.")
        if client is None:
            if not model:
                raise ValueError(
                    "LLMExpert needs model=... (the model name as the endpoint knows it) or client=..."
                )
            client = ChatClient(model, base_url=base_url, api_key=api_key, settings=settings, cache=cache)
        self.client = client
        self.mode = mode
        self.step_template = step_template
        self.plan_template = plan_template
        self.history_length = history_length
        self.max_plans = max_plans
        self.fallback = fallback
        self.prices = prices
        self.decision = decision

    def step_messages(self, env: MiniGridEnv, history: list[int]) -> list[dict[str, str]]:
        """
        :param env: the env in its current state
        :param history: the actions taken so far this episode
        :return: the chat messages of one ``step`` request
        """
        return step_messages(env, self.step_template, history=history, max_history=self.history_length)

    def plan_messages(self, env: MiniGridEnv) -> list[dict[str, str]]:
        """
        :param env: the env in its current state
        :return: the chat messages of one ``plan`` request
        """
        return plan_messages(env, self.plan_template)

    def start_episode(self, env: MiniGridEnv, seed: int) -> LLMEpisode:
        return LLMEpisode(env, seed, self)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "llm",
            "mode": self.mode,
            "decision": self.decision,
            **self.client.describe(),
            "history_length": self.history_length,
            "max_plans": self.max_plans,
            "fallback": self.fallback,
            "templates": {
                "step": template_fingerprint(self.step_template),
                "plan": template_fingerprint(self.plan_template),
            },
        }

    def identity(self) -> dict[str, Any]:
        # Endpoint, timeouts, retries and cache file do not change the replies: a run interrupted by
        # timeouts may resume with a longer timeout, or on another host serving the same model.
        return {k: v for k, v in self.describe().items() if k not in OPERATIONAL_SETTINGS}

    def usage(self) -> dict[str, Any]:
        """
        :return: the client's calls, cache hits, retries, failures and tokens so far, and their cost in USD
            when ``prices`` are known (``None`` otherwise)
        """
        usage: dict[str, Any] = self.client.usage.as_dict()
        prices = self.prices
        cost = prices.cost(usage["prompt_tokens"], usage["completion_tokens"]) if prices is not None else None
        return {**usage, "cost_usd": cost}

    def cancel(self) -> None:
        self.client.cancel()

    def progress_info(self) -> dict[str, Any]:
        usage = self.client.usage
        return {
            "calls": usage.calls,
            "cached": usage.cache_hits,
            "tokens": usage.prompt_tokens + usage.completion_tokens,
        }
