"""Action distributions read from top log-probabilities, in both shapes servers send."""

import json
import math

import numpy as np
import openai
import pytest

from sb3_llmae.experts.llm.logprobs import (
    LogprobsUnsupportedError,
    MalformedLogprobsError,
    action_distribution,
    first_token_top_logprobs,
    valid_action_mass,
)
from sb3_llmae.experts.llm.replies import parse_completion_body
from sb3_llmae.experts.llm.structured import action_response_format, parse_json_action

N_ACTIONS = 7


def chat_shape(alternatives: dict[str, float]) -> dict:
    top = [{"token": token, "logprob": value, "bytes": None} for token, value in alternatives.items()]
    return {"content": [{"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]}


def test_distribution_from_the_chat_shape():
    alternatives = {"2": math.log(0.5), " 2": math.log(0.1), "1": math.log(0.2), "Action": math.log(0.2)}
    pairs = first_token_top_logprobs(chat_shape(alternatives))
    assert pairs[0] == ("2", pytest.approx(math.log(0.5)))
    distribution = action_distribution(pairs, N_ACTIONS)
    assert distribution is not None
    np.testing.assert_allclose(distribution, [0, 0.25, 0.75, 0, 0, 0, 0], atol=1e-6)
    assert valid_action_mass(pairs, N_ACTIONS) == pytest.approx(0.8)


def test_legacy_completion_shape_and_llama_server_completion_shape():
    legacy = {
        "tokens": ["3"],
        "token_logprobs": [-0.1],
        "top_logprobs": [{"3": math.log(0.6), "5": math.log(0.3)}],
    }
    distribution = action_distribution(first_token_top_logprobs(legacy), N_ACTIONS)
    np.testing.assert_allclose(distribution, [0, 0, 0, 2 / 3, 0, 1 / 3, 0], atol=1e-6)
    # llama-server answers /v1/completions in the chat shape: the openai client's Logprobs object
    # then has top_logprobs=None and the chat shape in an extra field.
    body = {
        "id": "c",
        "object": "text_completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "text": "4", "finish_reason": "length", "logprobs": chat_shape({"4": math.log(0.9)})}
        ],
    }
    completion = openai.types.Completion.model_validate(body)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.top_logprobs is None
    distribution = action_distribution(first_token_top_logprobs(logprobs), N_ACTIONS)
    np.testing.assert_allclose(distribution, np.eye(N_ACTIONS)[4], atol=1e-6)


def test_no_action_token_gives_no_distribution():
    pairs = first_token_top_logprobs(chat_shape({"The": -0.1, "7": -3.0, "12": -4.0}))
    assert action_distribution(pairs, N_ACTIONS) is None
    assert valid_action_mass(pairs, N_ACTIONS) == 0.0


@pytest.mark.parametrize("logprobs", [None, {}, {"content": []}, {"content": None, "top_logprobs": None}])
def test_missing_logprobs_are_unsupported(logprobs):
    with pytest.raises(LogprobsUnsupportedError):
        first_token_top_logprobs(logprobs)


@pytest.mark.parametrize(
    "logprobs",
    [
        "2: -0.1",
        {"content": "2"},
        {"content": [{"top_logprobs": [{"token": "2", "logprob": "high"}]}]},
        {"content": [{"top_logprobs": [{"token": "2", "logprob": float("nan")}]}]},
        {"content": [{"top_logprobs": [{"token": "2", "logprob": 0.5}]}]},
        {"content": [{"top_logprobs": [{"token": 2, "logprob": -0.5}]}]},
        {"content": [{"top_logprobs": ["2"]}]},
        {"content": [{"logprob": -0.1}]},
        {"top_logprobs": [["2", -0.1]]},
        {"top_logprobs": "2"},
    ],
)
def test_malformed_logprobs_are_errors(logprobs):
    with pytest.raises(MalformedLogprobsError):
        first_token_top_logprobs(logprobs)


def test_the_sampled_token_alone_counts_without_alternatives():
    pairs = first_token_top_logprobs({"content": [{"token": "0", "logprob": -0.2, "top_logprobs": []}]})
    np.testing.assert_allclose(action_distribution(pairs, N_ACTIONS), np.eye(N_ACTIONS)[0])


def test_json_schema_names_every_action():
    schema = action_response_format()["json_schema"]["schema"]
    names = schema["properties"]["action"]["enum"]
    assert names == ["left", "right", "forward", "pickup", "drop", "toggle", "done"]
    assert [parse_json_action(f'{{"action": "{name}"}}') for name in names] == list(range(N_ACTIONS))
    for reply in ['{"action": "jump"}', "forward", '["forward"]', '{"action": 2}', "{"]:
        assert parse_json_action(reply) is None


def test_the_reply_body_keeps_finish_reason_and_logprobs():
    logprobs = chat_shape({"5": -0.05, "2": -3.2})
    body = {
        "choices": [{"message": {"content": "5"}, "finish_reason": "length", "logprobs": logprobs}],
        "usage": {"prompt_tokens": 90, "completion_tokens": 1},
    }
    reply = parse_completion_body(json.dumps(body).encode())
    assert (reply.text, reply.finish_reason, reply.completion_tokens) == ("5", "length", 1)
    distribution = action_distribution(first_token_top_logprobs(reply.logprobs), N_ACTIONS)
    assert int(np.argmax(distribution)) == 5
    bare = parse_completion_body(b'{"choices": [{"message": {"content": "hi"}, "finish_reason": 3}]}')
    assert bare.finish_reason is None and bare.logprobs is None
