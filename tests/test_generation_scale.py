"""Many episodes in flight: requests bounded by the workers, transcripts not kept in memory."""

import time

from sb3_llmae import generate_demonstrations
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.llm import ChatClient, ChatSettings
from sb3_llmae.testing.oracle import OracleResponder

ENV_ID = "MiniGrid-Empty-5x5-v0"


def test_requests_in_flight_are_bounded_by_the_workers(fake_openai_server, tmp_path):
    fake_openai_server.latency_s = 0.1
    client = ChatClient("oracle", base_url=fake_openai_server.base_url, settings=ChatSettings(timeout=10))
    expert = LLMExpert(mode="step", client=client)
    fake_openai_server.responder = OracleResponder(ENV_ID, range(24), expert)
    start = time.perf_counter()
    demos = generate_demonstrations(ENV_ID, expert, 24, n_workers=8, out_dir=tmp_path, progress_bar=False)
    elapsed = time.perf_counter() - start
    assert demos.stats["success_rate"] == 1.0 and client.usage.calls == 5 * 24
    assert 4 <= fake_openai_server.peak_in_flight <= 8
    # 120 calls of 100 ms, 8 at a time, take 1.5 s at best; one at a time they would take 12 s.
    assert elapsed < 6.0
    # Each finished episode's transcript is on disk, not held in memory for the rest of the run.
    assert len(list((tmp_path / "transcripts").glob("seed_*.jsonl"))) == 24
