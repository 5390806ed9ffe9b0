"""The plugin against a real OpenAI-compatible server: llama.cpp's llama-server serving Gemma 3 270M
(``sb3_llmae.testing.local_llm``), on 127.0.0.1.

Run with ``make test-real-llm`` (or ``bash .ci/real-llm``), which installs the server first (cached).
Without an installed server the tests skip, except where ``$SB3_LLMAE_REQUIRE_REAL_LLM`` or ``$CI``
is set: there a missing server fails them. A 270M base model is no MiniGrid expert: these tests check
the plumbing (requests, replies, token counts, the server's quirks), not success.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from sb3_llmae.cli import main
from sb3_llmae.testing.local_llm import (
    MODEL_NAME,
    LocalServerConfig,
    LocalServerError,
    RunningServer,
    server_binary_path,
    start,
    stop,
)

# Each test waits on a real model's replies, slow on a loaded CPU: more time than the default 300 s.
pytestmark = [pytest.mark.real_llm, pytest.mark.timeout(1800)]

REQUIRE_ENV = "SB3_LLMAE_REQUIRE_REAL_LLM"
EMPTY = "MiniGrid-Empty-5x5-v0"
# Small budgets: the model is slow on a loaded CPU and no expert anyway.
STEP_ARGS = (
    "--max-tokens",
    "48",
    "--max-episode-steps",
    "6",
    "--no-cache",
    "--no-progress",
    "--keep-failures",
)

StartServer = Callable[..., RunningServer]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _required() -> bool:
    return bool(os.environ.get(REQUIRE_ENV) or os.environ.get("CI"))


@pytest.fixture(scope="session")
def start_real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Starts real servers (``LocalServerConfig`` fields as keywords) on free ports; stops them at the end."""
    if not server_binary_path(LocalServerConfig()).exists() or not LocalServerConfig().venv_dir.exists():
        reason = (
            "no local llama-server installed: run `make llm-server` (or "
            "`python -m sb3_llmae.testing.local_llm install`) first"
        )
        if _required():
            pytest.fail(f"{reason} ({REQUIRE_ENV} or CI is set, so a missing server is a failure)")
        pytest.skip(reason)
    started: list[LocalServerConfig] = []

    def start_server(*extra_args: str, **fields: Any) -> RunningServer:
        state_dir = tmp_path_factory.mktemp("llm-server")
        config = LocalServerConfig(port=_free_port(), state_dir=state_dir, start_timeout_s=300.0, **fields)
        started.append(config)
        try:
            return start(config, extra_args)
        except LocalServerError as error:
            pytest.fail(str(error))

    yield start_server
    for config in started:
        stop(config)


@pytest.fixture(scope="session")
def real_server(start_real_server: StartServer) -> RunningServer:
    """The shared server, as ``make llm-server`` starts it (2 slots)."""
    return start_real_server("--metrics")


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)


def _get_json(server: RunningServer, path: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(server.base_url.removesuffix("/v1") + path, timeout=30) as response:
        return json.loads(response.read())


def _metrics(server: RunningServer) -> dict[str, float]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(server.base_url.removesuffix("/v1") + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        match.group(1): float(match.group(2))
        for match in re.finditer(r"^llamacpp:(\w+) ([0-9.e+-]+)$", text, re.MULTILINE)
    }


def _generate(server: RunningServer, out: Path, *args: str, model: str = MODEL_NAME) -> dict[str, Any]:
    status = main(
        ["generate", "--env", EMPTY, "--expert", "llm", "--model", model, "--base-url", server.base_url,
         *args, "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    metadata: dict[str, Any] = json.loads((out / "metadata.json").read_text())
    return metadata


def _transcript(out: Path, seed: int) -> list[dict[str, Any]]:
    lines = (out / "transcripts" / f"seed_{seed}.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["kind"] != "fallback"]


def _client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0, timeout=120)


def test_logprobs_decision_on_the_real_server(real_server, no_proxy, tmp_path):
    demos = tmp_path / "demos"
    metadata = _generate(real_server, demos, "--decision", "logprobs", "--episodes", "1", *STEP_ARGS)
    steps = metadata["stats"]["transitions"]
    assert metadata["usage"]["calls"] == steps and metadata["usage"]["completion_tokens"] == steps
    transcript = _transcript(demos, metadata["episodes"][0]["seed"])
    with_distribution = [entry for entry in transcript if "distribution" in entry]
    assert with_distribution, "no step had an action token among the top log-probabilities"
    for entry in with_distribution:
        assert sum(entry["distribution"]) == pytest.approx(1.0, abs=1e-4)
        assert entry["parsed"] == max(range(7), key=lambda action: entry["distribution"][action])
    assert (demos / "action_probs.npz").exists()
    # The distributions feed soft-target BC.
    pretrain = ["pretrain", "--env", EMPTY, "--demos", str(demos), "--out", str(tmp_path / "m.zip"),
                "--soft-targets", "--bc-batch-size", "4", "--bc-epochs", "2", "--warmup-steps", "0",
                "--n-envs", "2", "--no-progress"]  # fmt: skip
    assert main(pretrain) == 0


def test_json_decision_is_grammar_constrained_on_the_real_server(real_server, no_proxy, tmp_path):
    demos = tmp_path / "demos"
    metadata = _generate(real_server, demos, "--decision", "json", "--episodes", "1", *STEP_ARGS)
    transcript = _transcript(demos, metadata["episodes"][0]["seed"])
    assert transcript and all(json.loads(entry["reply"])["action"] for entry in transcript)
    assert metadata["episodes"][0]["invalid_replies"] == 0


def test_replies_record_why_they_ended(real_server, no_proxy, tmp_path):
    demos = tmp_path / "demos"
    metadata = _generate(real_server, demos, "--episodes", "1", *STEP_ARGS)
    transcript = _transcript(demos, metadata["episodes"][0]["seed"])
    assert {entry["finish_reason"] for entry in transcript} <= {"stop", "length"}
    cut = sum(entry["finish_reason"] == "length" for entry in transcript)
    assert metadata["episodes"][0]["cut_replies"] == cut


def test_a_prompt_longer_than_the_context_is_one_clear_error(start_real_server, no_proxy, tmp_path, capsys):
    server = start_real_server(context=512, parallel=1)
    status = main(
        ["generate", "--env", EMPTY, "--expert", "llm", "--model", MODEL_NAME, "--base-url", server.base_url,
         "--episodes", "1", *STEP_ARGS, "--out", str(tmp_path / "demos")]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert status != 0
    assert re.search(r"prompt too long for the server's context \(\d+ > 512 tokens\)", error), error
    assert "--max-history" in error and "compact" in error and "HTTP 400" not in error
    # The compact template fits.
    metadata = _generate(server, tmp_path / "compact", "--template", "compact", "--episodes", "1", *STEP_ARGS)
    assert metadata["usage"]["calls"] >= 1


@pytest.mark.parametrize("mode", ["step", "plan"])
def test_generate_pretrain_train(real_server, no_proxy, tmp_path, mode):
    demos = tmp_path / "demos"
    metadata = _generate(real_server, demos, "--mode", mode, "--episodes", "2", "--workers", "2", *STEP_ARGS)
    assert metadata["stats"]["transitions"] > 0
    usage = metadata["usage"]
    assert usage["calls"] >= (2 if mode == "plan" else metadata["stats"]["transitions"])
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    for episode in metadata["episodes"]:
        assert len(_transcript(demos, episode["seed"])) == episode["requests"]

    model = tmp_path / "pretrained.zip"
    pretrain = ["pretrain", "--env", EMPTY, "--demos", str(demos), "--out", str(model),
                "--bc-epochs", "2", "--bc-batch-size", "4", "--stop-at-success", "none",
                "--warmup-steps", "64", "--n-envs", "2", "--no-progress"]  # fmt: skip
    assert main(pretrain) == 0
    train = ["train", "--env", EMPTY, "--load", str(model), "--steps", "64", "--n-envs", "2",
             "--eval-episodes", "1", "--out", str(tmp_path / "train"), "--no-progress"]  # fmt: skip
    assert main(train) == 0
    assert (tmp_path / "train" / "model.zip").exists()


def test_the_model_has_no_chat_template_and_the_server_falls_back_to_chatml(real_server):
    props = _get_json(real_server, "/props")
    assert "<|im_start|>" in props["chat_template"]


def test_more_than_two_choices_are_refused(real_server, no_proxy):
    client = _client(real_server)
    messages = [{"role": "user", "content": "Say yes."}]
    two = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=2, n=2)  # type: ignore[arg-type]
    assert len(two.choices) == 2
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=2, n=3)  # type: ignore[arg-type]


def test_an_unknown_model_name_is_answered_by_the_loaded_model(real_server, no_proxy, tmp_path):
    metadata = _generate(
        real_server, tmp_path / "demos", "--episodes", "1", *STEP_ARGS, model="no-such-model"
    )
    assert metadata["usage"]["calls"] >= 1
    assert metadata["stats"]["transitions"] > 0


def test_four_workers_share_two_slots(real_server, no_proxy, tmp_path):
    slots = _get_json(real_server, "/slots")
    assert len(slots) == 2
    metadata = _generate(real_server, tmp_path / "demos", "--episodes", "4", "--workers", "4", *STEP_ARGS)
    assert len(metadata["episodes"]) == 4
    requests = sum(episode["requests"] for episode in metadata["episodes"])
    assert metadata["usage"]["calls"] == requests >= metadata["stats"]["transitions"]


def test_usage_in_metadata_matches_the_server(start_real_server, no_proxy, tmp_path):
    # Without prompt caching the server counts every prompt token it evaluates.
    server = start_real_server("--metrics", "--no-cache-prompt", parallel=1)
    before = _metrics(server)
    metadata = _generate(server, tmp_path / "demos", "--episodes", "1", *STEP_ARGS)
    after = _metrics(server)
    usage = metadata["usage"]
    served = {
        name: after[name] - before.get(name, 0) for name in ("tokens_predicted_total", "prompt_tokens_total")
    }
    assert usage["completion_tokens"] == served["tokens_predicted_total"]
    assert usage["prompt_tokens"] == served["prompt_tokens_total"]
    transcript = _transcript(tmp_path / "demos", metadata["episodes"][0]["seed"])
    assert sum(entry["completion_tokens"] for entry in transcript) == usage["completion_tokens"]
