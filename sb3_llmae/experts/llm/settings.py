"""How a chat client asks: the one home of the sampling, timeout, retry and rate-limit defaults."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

# Parameters that ChatClient sets itself, so extra_params may not override them.
# The longest attempt a timeout may allow (a day): beyond it timers overflow and nothing would end.
MAX_TIMEOUT_S = 86_400.0
RESERVED_PARAMS = frozenset({"model", "messages", "temperature", "max_tokens", "stream"})
# Where a reply in the prompts' format is over, sent as `stop` by default: the end-of-turn markers a model
# served without its chat template writes as text (ChatML, which llama.cpp falls back to), a blank line,
# and the start of a second reasoning. OpenAI accepts at most 4.
DEFAULT_STOP_SEQUENCES: tuple[str, ...] = ("<|im_end|>", "<|im_start|>", "\n\n", "\nReasoning:")
MAX_STOP_SEQUENCES = 4


LLMMode = Literal["step", "plan"]
LLM_MODES: tuple[str, ...] = ("step", "plan")
# How a step-mode reply gives its action: free text that is parsed, the most probable action token
# (one completion token, its log-probabilities kept as the teacher's distribution), or a JSON object
# constrained by a schema.
Decision = Literal["text", "logprobs", "json"]
DECISIONS: tuple[str, ...] = ("text", "logprobs", "json")
# The prompt templates by name (experts.llm.prompts.STEP_TEMPLATES / PLAN_TEMPLATES hold them).
TEMPLATE_NAMES: tuple[str, ...] = ("full", "zero-shot", "compact")
# How many recent actions step mode names in its prompt.
DEFAULT_HISTORY_LENGTH = 4
# Most plans plan mode requests per episode.
DEFAULT_MAX_PLANS = 5
# Replies cut by max_tokens (finish_reason "length") above this share of a run are warned about.
HIGH_CUT_RATE = 0.2
DEFAULT_LLM_MODE: LLMMode = "step"
# Plan mode: one plan per episode when the model's plans work; re-plans add to it.
DEFAULT_PLANS_PER_EPISODE = 1
# A run where this share of the steps fell back to a default action says so loudly.
HIGH_FALLBACK_RATE = 0.2


@dataclass(frozen=True)
class ChatSettings:
    """
    How a :class:`~sb3_llmae.experts.llm.ChatClient` asks: sampling, timeouts and retries. The one place
    their defaults live (``LLMExpert``, :func:`~sb3_llmae.experts.make_expert` and the ``generate``
    command read them from here).

    :param temperature: sampling temperature; 0 for (near-)greedy replies that the cache re-uses
    :param max_tokens: most tokens per reply; ``None`` leaves it to the server
    :param stop: sequences that end a reply (sent as ``stop``; at most 4); ``None`` or ``()`` sends none
    :param timeout: seconds one attempt may take in all (connecting, waiting and reading the whole reply)
        before it is abandoned (and retried)
    :param max_retries: how many times a failed request is retried (429 / 5xx / timeouts)
    :param extra_params: further request parameters (e.g. ``top_p``, ``seed``, ``stop``), sent in the
        request body and part of the cache key
    :param backoff_base_s: the first backoff wait, doubled on each retry
    :param backoff_max_s: the longest wait between retries, also a cap on ``Retry-After``
    :param rpm: most requests per minute, over all threads of the client; ``None`` for no limit of its own
        (429s and ``x-ratelimit-*`` headers slow it down either way)
    :param tpm: most tokens (prompt + completion) per minute, over all threads; ``None`` for no limit
    """

    temperature: float = 0.0
    max_tokens: int | None = 256
    stop: tuple[str, ...] | None = DEFAULT_STOP_SEQUENCES
    timeout: float = 60.0
    max_retries: int = 5
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    rpm: float | None = None
    tpm: float | None = None

    def __post_init__(self) -> None:
        # NaN passes every comparison below unnoticed, and an infinite or huge wait overflows timers
        for name in ("temperature", "timeout", "backoff_base_s", "backoff_max_s", "rpm", "tpm"):
            value = getattr(self, name, None)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.timeout > MAX_TIMEOUT_S:
            raise ValueError(f"timeout must be at most {MAX_TIMEOUT_S:g} s (a day), got {self.timeout}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive or None, got {self.max_tokens}")
        if self.stop is not None:
            stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
            if len(stop) > MAX_STOP_SEQUENCES or not all(isinstance(s, str) and s for s in stop):
                raise ValueError(
                    f"stop must be at most {MAX_STOP_SEQUENCES} non-empty strings (OpenAI's limit), "
                    f"got {self.stop!r}"
                )
            object.__setattr__(self, "stop", stop or None)
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name, limit in (("rpm", self.rpm), ("tpm", self.tpm)):
            if limit is not None and not limit > 0:
                raise ValueError(f"{name} must be positive, or None for no limit; got {limit}")
        reserved = sorted(RESERVED_PARAMS.intersection(self.extra_params))
        if reserved:
            raise ValueError(f"extra_params may not set {reserved}: they are ChatSettings' own fields")
        # A private copy, so that a caller's later change to its dict cannot alter the cache key.
        object.__setattr__(self, "extra_params", MappingProxyType(dict(self.extra_params)))

    @property
    def sampling_params(self) -> dict[str, Any]:
        """The parameters that shape a reply besides the messages (part of the cache key)."""
        # `stop` only when set, so that the cache keys of requests without one stay as they were.
        stop = {"stop": list(self.stop)} if self.stop else {}
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, **stop, **self.extra_params}

    def request_body(
        self, model: str, messages: list[dict[str, str]], params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """
        :param model: the model name
        :param messages: the chat so far
        :param params: parameters of this request alone, over the settings' (e.g. ``logprobs``)
        :return: the JSON body of a ``/chat/completions`` request with these settings
        """
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": self.temperature}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.stop:
            body["stop"] = list(self.stop)
        body.update(self.extra_params)
        body.update(params or {})
        return body


@dataclass(frozen=True)
class BatchSettings:
    """
    How plan requests go through the Batch API.

    :param completion_window: the window the provider has to finish a batch (OpenAI offers ``"24h"``)
    :param poll_interval_s: seconds between two looks at a batch's status
    :param max_rounds: most batches submitted in a row (re-plans and corrections need further rounds;
        an expired batch's unanswered requests go in the next)
    """

    completion_window: str = "24h"
    poll_interval_s: float = 30.0
    max_rounds: int = 10

    def __post_init__(self) -> None:
        if self.poll_interval_s < 0:
            raise ValueError(f"poll_interval_s must be >= 0, got {self.poll_interval_s}")
        if self.max_rounds <= 0:
            raise ValueError(f"max_rounds must be positive, got {self.max_rounds}")
