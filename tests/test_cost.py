"""Cost before a run (--dry-run, from the env's real prompts) and after it (usage in summary and metadata)."""

import json

import pytest

from sb3_llmae.cli import main
from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.llm import ChatClient, ChatSettings, TokenPrices
from sb3_llmae.experts.llm.cost import estimate_generation_cost
from sb3_llmae.experts.llm.tokens import approximate_prompt_tokens
from sb3_llmae.testing.oracle import OracleResponder

ENV_ID = "MiniGrid-DoorKey-5x5-v0"


def offline_expert(mode: str, **settings) -> LLMExpert:
    # Never contacted: the estimate only builds prompts.
    client = ChatClient("m", base_url="http://127.0.0.1:9/v1", settings=ChatSettings(**settings))
    return LLMExpert(mode=mode, client=client)


def test_plan_mode_estimate_measures_the_real_first_prompts():
    expert = offline_expert("plan", max_tokens=100)
    estimate = estimate_generation_cost(ENV_ID, expert, 4, seed=3, prices=TokenPrices(2.0, 8.0))
    sizes = []
    for seed in range(3, 7):
        env = make_env(ENV_ID)
        env.reset(seed=seed)
        sizes.append(approximate_prompt_tokens(expert.plan_messages(unwrap_minigrid(env))))
    assert estimate.calls == 4 and estimate.calls_per_episode == 1
    assert estimate.prompt_tokens_per_call == pytest.approx(sum(sizes) / 4)
    assert estimate.prompt_tokens == round(sum(sizes))
    assert estimate.completion_tokens == 4 * 100
    assert estimate.cost == pytest.approx((estimate.prompt_tokens * 2.0 + 400 * 8.0) / 1e6)


def test_step_mode_estimate_uses_the_step_limit_or_the_given_steps():
    expert = offline_expert("step")
    step_limit = unwrap_minigrid(make_env(ENV_ID)).max_steps
    by_limit = estimate_generation_cost(ENV_ID, expert, 3)
    assert by_limit.calls == 3 * step_limit and by_limit.cost is None
    given = estimate_generation_cost(ENV_ID, expert, 3, steps_per_episode=12, max_episode_steps=40)
    assert given.calls == 36
    # Step prompts carry the system prompt and the few-shot examples: far longer than a view alone.
    assert given.prompt_tokens_per_call > 200
    assert estimate_generation_cost(ENV_ID, expert, 3, max_episode_steps=40).calls == 120


def test_estimate_needs_a_completion_size():
    with pytest.raises(ValueError, match="completion_tokens_per_call"):
        estimate_generation_cost(ENV_ID, offline_expert("plan", max_tokens=None), 2)
    estimate = estimate_generation_cost(
        ENV_ID, offline_expert("plan", max_tokens=None), 2, completion_tokens_per_call=30
    )
    assert estimate.completion_tokens == 60


def test_dry_run_then_the_same_run_reports_actual_figures(tmp_path, capsys, fake_openai_server):
    out = tmp_path / "demos"
    base = ["generate", "--env", ENV_ID, "--expert", "llm", "--model", "fake-model",
            "--base-url", fake_openai_server.base_url, "--mode", "plan", "--episodes", "3",
            "--no-progress", "--cache", str(tmp_path / "cache.sqlite"), "--max-tokens", "64",
            "--price-in", "2.5", "--price-out", "10", "--out", str(out)]  # fmt: skip
    assert main([*base, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert fake_openai_server.request_count == 0 and not out.exists()
    assert "expected calls: 3 " in printed and "expected tokens:" in printed and "expected cost: $" in printed

    expert = LLMExpert(client=ChatClient("fake-model", base_url=fake_openai_server.base_url), mode="plan")
    fake_openai_server.responder = OracleResponder(ENV_ID, range(3), expert)
    assert main(base) == 0
    printed = capsys.readouterr().out
    assert "calls: 3  cache hits: 0" in printed and "cost: $" in printed
    usage = json.loads((out / "metadata.json").read_text())["usage"]
    assert usage["calls"] == 3 and usage["cache_hits"] == 0
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * 2.5 + usage["completion_tokens"] * 10) / 1e6
    )


def test_dry_run_needs_no_endpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = ["generate", "--env", ENV_ID, "--expert", "llm", "--model", "m", "--episodes", "2",
            "--steps-estimate", "10", "--out", str(tmp_path / "x"), "--dry-run"]  # fmt: skip
    assert main(args) == 0
    assert "expected calls: 20 " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--price-in", "1"], "--price-out"),
        (["--price-in", "-1", "--price-out", "1"], "--price-in must be a finite number >= 0"),
    ],
)
def test_bad_prices_are_clear(tmp_path, capsys, extra, message):
    args = ["generate", "--env", ENV_ID, "--expert", "llm", "--model", "m", "--base-url",
            "http://127.0.0.1:9/v1", "--out", str(tmp_path), "--dry-run", *extra]  # fmt: skip
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_planner_runs_record_no_usage_and_refuse_llm_flags(tmp_path, capsys):
    assert main(["generate", "--env", ENV_ID, "--out", str(tmp_path), "--dry-run"]) == 2
    assert "--dry-run is for --expert llm" in capsys.readouterr().err
