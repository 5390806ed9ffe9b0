"""A prompt longer than the server's context, recognised in the error bodies of the servers that say
so (llama.cpp, OpenAI, vLLM), and told as what it is and what shortens it."""

from __future__ import annotations

import re
from dataclasses import dataclass

# What shortens the step prompt, as the CLI names it.
SHORTER_PROMPT_ADVICE = (
    "raise the server's context or use --max-history / the compact template (--template compact)"
)

# (pattern, group of the prompt tokens, group of the context size)
_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # llama.cpp: "request (928 tokens) exceeds the available context size (512 tokens), try increasing it"
    # and "input (928 tokens) is larger than the max context size (512 tokens). skipping"
    (
        re.compile(
            r"(?:request|input) \((?P<prompt>\d+) tokens\) (?:exceeds the available|is larger than the max) "
            r"context size \((?P<context>\d+) tokens\)"
        ),
        "prompt",
        "context",
    ),
    # OpenAI and older vLLM: "This model's maximum context length is 8192 tokens. However, your messages
    # resulted in 9000 tokens" / "However, you requested 2100 tokens (1844 in the messages, 256 in the
    # completion)"
    (
        re.compile(
            r"maximum context length is (?P<context>\d+) tokens\. However, (?:your messages resulted in "
            r"(?P<prompt>\d+) tokens|you requested (?P<requested>\d+) tokens)"
        ),
        "prompt",
        "context",
    ),
    # newer vLLM: "This model's maximum context length is 2048 tokens and your request has 1900 input tokens"
    (
        re.compile(
            r"maximum context length is (?P<context>\d+) tokens and your request has (?P<prompt>\d+) input"
        ),
        "prompt",
        "context",
    ),
)


@dataclass(frozen=True)
class ContextOverflow:
    """
    A request the server refused because it does not fit its context.

    :param prompt_tokens: the request's tokens, as the server counted them (prompt, or prompt + completion
        where the server counts both)
    :param context_tokens: the server's context (per slot, for llama.cpp)
    """

    prompt_tokens: int
    context_tokens: int

    def message(self) -> str:
        """:return: what happened, by how much, and what to do"""
        sizes = f"{self.prompt_tokens} > {self.context_tokens} tokens"
        return f"prompt too long for the server's context ({sizes}): {SHORTER_PROMPT_ADVICE}"


def context_overflow(error_text: str) -> ContextOverflow | None:
    """
    :param error_text: a refused request's error message or body
    :return: the overflow it reports, ``None`` when it reports none
    """
    for pattern, prompt_group, context_group in _PATTERNS:
        match = pattern.search(error_text)
        if match is None:
            continue
        prompt = match.group(prompt_group) or match.groupdict().get("requested")
        if prompt is None:
            continue
        return ContextOverflow(prompt_tokens=int(prompt), context_tokens=int(match.group(context_group)))
    return None
