"""Test helpers that tests, benchmarks and users' own tests import: an OpenAI-compatible chat server
on 127.0.0.1, a flaky proxy that breaks its replies in transit, and oracles that know the right answers."""

from sb3_llmae.testing.batch import FakeBatchAPI
from sb3_llmae.testing.flaky import FlakyProxy
from sb3_llmae.testing.oracle import OracleResponder, shortest_solution_length
from sb3_llmae.testing.server import FakeOpenAIServer, FakeReply, ReceivedRequest, echo_responder

__all__ = [
    "FakeBatchAPI",
    "FakeOpenAIServer",
    "FakeReply",
    "FlakyProxy",
    "OracleResponder",
    "ReceivedRequest",
    "echo_responder",
    "shortest_solution_length",
]
