"""Actions by log-probability: one token per action (its digit), read from a reply's top log-probabilities.

A reply of one token with ``top_logprobs`` gives the model's distribution over the next token; the
mass on each action's digit, renormalised over the actions, is the model's distribution over the
actions. No parsing, no correction round, one completion token per step, and a distribution that
behaviour cloning can use as a soft target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sb3_llmae.experts.llm.observation_text import ACTION_NAMES

# The token that names each action: its number, as in the numbered action list of the prompts.
ACTION_TOKENS: dict[int, str] = {action: str(action) for action in ACTION_NAMES}
# The most alternatives OpenAI returns per token (llama.cpp and vLLM accept as many).
TOP_LOGPROBS = 20
LOGPROBS_ANSWER_PROMPT = (
    "Answer with the number of the action only (one digit "
    f"{min(ACTION_TOKENS.values())}-{max(ACTION_TOKENS.values())})."
)


class LogprobsUnsupportedError(RuntimeError):
    """The endpoint returned no log-probabilities: it cannot serve ``decision="logprobs"``."""


class MalformedLogprobsError(ValueError):
    """The endpoint returned log-probabilities in a shape or with values that cannot be read."""


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    """:return: ``value`` as a mapping (a dict, or an ``openai`` model dumped to one), ``None`` if neither"""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump()
        if isinstance(dumped, Mapping):
            return dumped
    return None


def _checked_logprob(token: Any, logprob: Any) -> tuple[str, float]:
    if not isinstance(token, str) or isinstance(logprob, bool) or not isinstance(logprob, int | float):
        raise MalformedLogprobsError(
            f"top log-probability entry {token!r}: {logprob!r} is not a token and a number"
        )
    value = float(logprob)
    if math.isnan(value) or value > 1e-6:
        raise MalformedLogprobsError(f"log-probability {value} of token {token!r} is not <= 0")
    return token, value


def first_token_top_logprobs(logprobs: Any) -> list[tuple[str, float]]:
    """
    The top alternatives of a reply's first token, from either shape that servers send.

    The chat shape (OpenAI chat completions, and llama-server on both endpoints):
    ``{"content": [{"token": ..., "logprob": ..., "top_logprobs": [{"token": ..., "logprob": ...}]}]}``.
    The legacy completions shape (OpenAI, vLLM): ``{"tokens": [...], "top_logprobs": [{token: logprob}]}``.

    :param logprobs: a choice's ``logprobs`` field (a dict or an ``openai`` object)
    :return: ``(token, log-probability)`` pairs, most probable first
    :raise LogprobsUnsupportedError: when there are none (the server ignored ``logprobs``)
    :raise MalformedLogprobsError: when they cannot be read
    """
    if logprobs is None:
        raise LogprobsUnsupportedError("the reply has no log-probabilities")
    fields = _as_mapping(logprobs)
    if fields is None:
        raise MalformedLogprobsError(f"log-probabilities of type {type(logprobs).__name__} cannot be read")
    pairs: list[tuple[str, float]]
    content = fields.get("content")
    legacy = fields.get("top_logprobs")
    if content:
        if not isinstance(content, Sequence) or isinstance(content, str):
            raise MalformedLogprobsError("logprobs.content is not a list")
        first = _as_mapping(content[0])
        alternatives = first.get("top_logprobs") if first is not None else None
        if not isinstance(alternatives, Sequence) or isinstance(alternatives, str) or not alternatives:
            # No alternatives: the sampled token alone (a server that ignores top_logprobs).
            if first is None or "token" not in first:
                raise MalformedLogprobsError("logprobs.content[0] has neither top_logprobs nor a token")
            alternatives = [first]
        pairs = []
        for alternative in alternatives:
            entry = _as_mapping(alternative)
            if entry is None:
                raise MalformedLogprobsError(f"top log-probability entry {alternative!r} is not an object")
            pairs.append(_checked_logprob(entry.get("token"), entry.get("logprob")))
    elif legacy:
        if not isinstance(legacy, Sequence) or isinstance(legacy, str):
            raise MalformedLogprobsError("logprobs.top_logprobs is not a list")
        first_alternatives = _as_mapping(legacy[0])
        if first_alternatives is None:
            raise MalformedLogprobsError("logprobs.top_logprobs[0] is not a token -> log-probability map")
        pairs = [_checked_logprob(token, value) for token, value in first_alternatives.items()]
    else:
        raise LogprobsUnsupportedError("the reply's log-probabilities are empty")
    return sorted(pairs, key=lambda pair: -pair[1])


def action_distribution(top_logprobs: Sequence[tuple[str, float]], n_actions: int) -> np.ndarray | None:
    """
    The model's distribution over the actions: the probability of each action's token (``"2"``,
    ``" 2"``: surrounding white space ignored, alternatives of one action added up), renormalised
    over the actions.

    :param top_logprobs: ``(token, log-probability)`` pairs of one position
    :param n_actions: the number of actions (tokens ``"0"`` to ``str(n_actions - 1)``)
    :return: probabilities summing to 1, ``None`` when no action's token is among the alternatives
    """
    action_of_token = {token: action for action, token in ACTION_TOKENS.items() if action < n_actions}
    mass = np.zeros(n_actions, dtype=np.float64)
    for token, logprob in top_logprobs:
        action = action_of_token.get(token.strip())
        if action is not None:
            mass[action] += math.exp(logprob)
    total = mass.sum()
    if total <= 0:
        return None
    return (mass / total).astype(np.float32)


def valid_action_mass(top_logprobs: Sequence[tuple[str, float]], n_actions: int) -> float:
    """
    :param top_logprobs: ``(token, log-probability)`` pairs of one position
    :param n_actions: the number of actions
    :return: the probability the model puts on the action tokens together (before renormalising):
        how much of its answer the distribution is based on
    """
    tokens = {token for action, token in ACTION_TOKENS.items() if action < n_actions}
    return float(sum(math.exp(logprob) for token, logprob in top_logprobs if token.strip() in tokens))
