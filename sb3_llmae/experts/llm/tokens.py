"""Token counts known before a request is sent: rate limiting and cost estimates need them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# OpenAI's rule of thumb for English text; tokenizers differ, so figures built on it are estimates.
CHARS_PER_TOKEN = 4.0
# The chat format wraps every message in a few tokens of its own (role, separators).
TOKENS_PER_MESSAGE = 4


def approximate_tokens(text: str) -> int:
    """
    :param text: any text
    :return: about how many tokens a typical tokenizer makes of it (``CHARS_PER_TOKEN`` characters each)
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def approximate_prompt_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """
    :param messages: chat messages, as ``{"role": ..., "content": ...}`` dicts
    :return: about how many prompt tokens they make
    """
    return sum(
        approximate_tokens(str(message.get("content", ""))) + TOKENS_PER_MESSAGE for message in messages
    )
