"""Plan mode through the Batch API, against a local fake of its files and batches endpoints."""

import json

import pytest

from sb3_llmae import generate_demonstrations
from sb3_llmae.cli import main
from sb3_llmae.demonstrations.rollout import rollout_episode
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.llm import ChatClient, ChatSettings
from sb3_llmae.experts.llm.batch import BatchSettings, LLMBatchError, fill_cache_by_batches
from sb3_llmae.experts.llm.batch_state import BATCH_STATE_FILE
from sb3_llmae.testing.batch import FakeBatchAPI
from sb3_llmae.testing.oracle import OracleResponder

ENV_ID = "MiniGrid-DoorKey-5x5-v0"
SEEDS = range(4)
NO_WAIT = BatchSettings(poll_interval_s=0.0)


def make_expert(server, tmp_path, **kwargs) -> LLMExpert:
    client = ChatClient(
        "fake-model",
        base_url=server.base_url,
        cache=tmp_path / "cache.sqlite",
        settings=ChatSettings(max_retries=0, timeout=5),
    )
    return LLMExpert(mode="plan", client=client, **kwargs)


def play(expert, seed):
    return rollout_episode(ENV_ID, expert, seed)


def chat_requests(server) -> int:
    return sum(r.path.endswith("/chat/completions") for r in server.requests)


def test_plans_come_from_one_batch_and_the_episodes_make_no_call(fake_openai_server, tmp_path):
    batches = FakeBatchAPI(fake_openai_server, polls_to_finish=2)
    expert = make_expert(fake_openai_server, tmp_path)
    fake_openai_server.responder = OracleResponder(ENV_ID, SEEDS, expert)
    out = tmp_path / "demos"
    report = fill_cache_by_batches(expert, play, SEEDS, out, NO_WAIT, progress_bar=False)
    assert len(batches.batches) == 1 and report.requests == report.answered == len(SEEDS)
    (batch,) = batches.batches.values()
    assert batch.endpoint == "/v1/chat/completions" and batch.completion_window == "24h"
    assert {line["body"]["model"] for line in batch.requests} == {"fake-model"}
    # The batch state lives in the output directory, which the generation then takes over.
    demos = generate_demonstrations(ENV_ID, expert, len(SEEDS), out_dir=out, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0
    assert chat_requests(fake_openai_server) == 0
    usage = demos.metadata["usage"]
    assert (usage["calls"], usage["cache_hits"]) == (len(SEEDS), len(SEEDS))
    assert usage["prompt_tokens"] > 0
    assert json.loads((out / BATCH_STATE_FILE).read_text())["pending"] == []


def test_replans_go_in_the_next_round(fake_openai_server, tmp_path):
    batches = FakeBatchAPI(fake_openai_server)
    # One turn per plan: every episode re-plans until max_plans, one batch round per plan.
    fake_openai_server.responder = lambda request: "Actions: [left]"
    expert = make_expert(fake_openai_server, tmp_path, max_plans=3)
    fill_cache_by_batches(expert, play, range(2), tmp_path, NO_WAIT, progress_bar=False)
    assert len(batches.batches) == 3
    assert [len(b.requests) for b in batches.batches.values()] == [2, 2, 2]
    demos = generate_demonstrations(ENV_ID, expert, 2, max_episode_steps=20, progress_bar=False)
    assert chat_requests(fake_openai_server) == 0
    assert [e["plans"] for e in demos.metadata["episodes"]] == [3, 3]


def test_a_restart_waits_for_the_submitted_batch(fake_openai_server, tmp_path):
    batches = FakeBatchAPI(fake_openai_server, polls_to_finish=3)
    expert = make_expert(fake_openai_server, tmp_path)
    fake_openai_server.responder = OracleResponder(ENV_ID, SEEDS, expert)

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fill_cache_by_batches(expert, play, SEEDS, tmp_path, NO_WAIT, progress_bar=False, sleep=interrupted)
    state = json.loads((tmp_path / BATCH_STATE_FILE).read_text())
    assert state["pending"] == list(batches.batches)
    # A new process: another expert on the same cache and output directory.
    again = make_expert(fake_openai_server, tmp_path)
    report = fill_cache_by_batches(again, play, SEEDS, tmp_path, NO_WAIT, progress_bar=False)
    assert len(batches.batches) == 1 and report.batch_ids == tuple(batches.batches)
    assert again.client.usage.calls == len(SEEDS)


def test_an_expired_batch_leaves_its_rest_to_the_next(fake_openai_server, tmp_path, caplog):
    batches = FakeBatchAPI(fake_openai_server, outcomes=("expired",))
    expert = make_expert(fake_openai_server, tmp_path)
    fake_openai_server.responder = OracleResponder(ENV_ID, SEEDS, expert)
    report = fill_cache_by_batches(expert, play, SEEDS, tmp_path, NO_WAIT, progress_bar=False)
    assert [b.status for b in batches.batches.values()] == ["expired", "completed"]
    assert [len(b.requests) for b in batches.batches.values()] == [4, 2]
    assert report.answered == 4 and "expired" in caplog.text
    demos = generate_demonstrations(ENV_ID, expert, len(SEEDS), progress_bar=False)
    assert demos.stats["success_rate"] == 1.0 and chat_requests(fake_openai_server) == 0


def test_a_failed_batch_is_a_clear_error_and_a_rerun_submits_again(fake_openai_server, tmp_path):
    batches = FakeBatchAPI(fake_openai_server, outcomes=("failed",))
    expert = make_expert(fake_openai_server, tmp_path)
    fake_openai_server.responder = OracleResponder(ENV_ID, SEEDS, expert)
    with pytest.raises(LLMBatchError, match=r"batch-fake-\d+ failed \(invalid_request: The fake batch"):
        fill_cache_by_batches(expert, play, SEEDS, tmp_path, NO_WAIT, progress_bar=False)
    assert json.loads((tmp_path / BATCH_STATE_FILE).read_text())["pending"] == []
    fill_cache_by_batches(expert, play, SEEDS, tmp_path, NO_WAIT, progress_bar=False)
    assert [b.status for b in batches.batches.values()] == ["failed", "completed"]


def test_cli_batch_run(fake_openai_server, tmp_path, capsys):
    FakeBatchAPI(fake_openai_server)
    oracle_expert = LLMExpert(
        client=ChatClient("fake-model", base_url=fake_openai_server.base_url), mode="plan"
    )
    fake_openai_server.responder = OracleResponder(ENV_ID, SEEDS, oracle_expert)
    out = tmp_path / "demos"
    args = ["generate", "--env", ENV_ID, "--expert", "llm", "--model", "fake-model",
            "--base-url", fake_openai_server.base_url, "--mode", "plan", "--episodes", "4",
            "--no-progress", "--cache", str(tmp_path / "cache.sqlite"), "--batch",
            "--batch-poll-interval", "0", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "success rate: 100.0%" in printed and "calls: 4  cache hits: 4" in printed
    assert chat_requests(fake_openai_server) == 0
    assert (out / BATCH_STATE_FILE).exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "step", "--batch"], "each prompt depends on the reply"),
        (["--mode", "plan", "--batch", "--no-cache"], "needs a response cache"),
    ],
)
def test_cli_refuses_batches_it_cannot_do(tmp_path, capsys, extra, message):
    args = ["generate", "--env", ENV_ID, "--expert", "llm", "--model", "m", "--base-url",
            "http://127.0.0.1:9/v1", "--out", str(tmp_path), *extra]  # fmt: skip
    assert main(args) == 2
    assert message in capsys.readouterr().err
