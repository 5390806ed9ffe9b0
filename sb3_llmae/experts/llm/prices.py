"""What a provider charges for tokens."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenPrices:
    """
    What a provider charges, in USD per million tokens (for the Batch API, give its own, usually half).

    :param prompt: price of a million prompt (input) tokens
    :param completion: price of a million completion (output) tokens
    """

    prompt: float
    completion: float

    def __post_init__(self) -> None:
        if self.prompt < 0 or self.completion < 0:
            raise ValueError(f"Token prices must be >= 0, got {self.prompt} (prompt) and {self.completion}")

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """
        :param prompt_tokens: prompt tokens
        :param completion_tokens: completion tokens
        :return: their price in USD
        """
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6
