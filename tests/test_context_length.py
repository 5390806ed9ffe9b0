"""Prompts longer than the server's context, in the words of each server."""

import pytest

from sb3_llmae.experts.llm.context_length import context_overflow


@pytest.mark.parametrize(
    ("body", "prompt", "context"),
    [
        (
            '{"error":{"code":400,"message":"request (928 tokens) exceeds the available context size (512 '
            'tokens), try increasing it","type":"exceed_context_size_error"}}',
            928,
            512,
        ),
        ("input (1200 tokens) is larger than the max context size (1024 tokens). skipping", 1200, 1024),
        (
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 "
            "tokens. Please reduce the length of the messages.",
            9000,
            8192,
        ),
        (
            "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens (1844 in "
            "the messages, 256 in the completion). Please reduce the length of the messages or completion.",
            2100,
            2048,
        ),
        (
            "'max_tokens' or 'max_completion_tokens' is too large: 256. This model's maximum context length "
            "is 2048 tokens and your request has 1900 input tokens (256 > 2048 - 1900).",
            1900,
            2048,
        ),
    ],
)
def test_overflow_is_read_from_each_server(body, prompt, context):
    overflow = context_overflow(body)
    assert overflow is not None
    assert (overflow.prompt_tokens, overflow.context_tokens) == (prompt, context)
    assert overflow.message().startswith(
        f"prompt too long for the server's context ({prompt} > {context} tokens)"
    )
    assert "--max-history" in overflow.message() and "compact" in overflow.message()


@pytest.mark.parametrize("body", ["", "Invalid model", "the context of this conversation is 12 tokens"])
def test_other_errors_are_no_overflow(body):
    assert context_overflow(body) is None
