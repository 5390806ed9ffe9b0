"""make_expert: each kind of expert by name, with typed options, and clear errors for bad ones."""

import pytest

from sb3_llmae.demonstrations import generate_demonstrations
from sb3_llmae.experts import EXPERT_KINDS, LLMExpert, NoisyExpert, PlannerExpert, make_expert
from sb3_llmae.experts.factory import DRY_RUN_BASE_URL
from sb3_llmae.experts.llm import ChatSettings, TokenPrices
from sb3_llmae.testing.oracle import OracleResponder

ENV_ID = "MiniGrid-DoorKey-5x5-v0"


def test_planner_plays_its_episodes():
    expert = make_expert("planner")
    assert isinstance(expert, PlannerExpert)
    demos = generate_demonstrations(ENV_ID, expert, n_episodes=2, seed=0, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0


def test_llm_expert_uses_the_given_options(fake_openai_server, tmp_path):
    settings = ChatSettings(temperature=0.5, max_tokens=32, timeout=5.0, max_retries=1)
    prices = TokenPrices(prompt=1.0, completion=2.0)
    expert = make_expert(
        "llm",
        model="fake-model",
        mode="plan",
        base_url=fake_openai_server.base_url,
        settings=settings,
        cache=tmp_path / "cache.sqlite",
        prices=prices,
    )
    assert isinstance(expert, LLMExpert)
    assert expert.mode == "plan" and expert.prices == prices
    assert expert.client.settings == settings
    assert expert.client.base_url == fake_openai_server.base_url
    assert expert.client.cache is not None and expert.client.cache.path == tmp_path / "cache.sqlite"
    fake_openai_server.responder = OracleResponder(ENV_ID, range(2), expert)
    demos = generate_demonstrations(ENV_ID, expert, n_episodes=2, seed=0, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0
    assert fake_openai_server.request_count == 2  # one plan per episode


@pytest.mark.parametrize("kind", EXPERT_KINDS)
def test_noise_wraps_either_kind(kind, fake_openai_server):
    options = {"model": "fake-model", "base_url": fake_openai_server.base_url} if kind == "llm" else {}
    expert = make_expert(kind, noise=0.25, noise_seed=7, **options)
    assert isinstance(expert, NoisyExpert)
    assert (expert.epsilon, expert.seed) == (0.25, 7)
    assert isinstance(expert.expert, PlannerExpert if kind == "planner" else LLMExpert)


def test_dry_run_needs_no_endpoint_and_keeps_no_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    expert = make_expert("llm", model="m", cache=tmp_path / "cache.sqlite", dry_run=True)
    assert isinstance(expert, LLMExpert)
    assert expert.client.base_url == DRY_RUN_BASE_URL
    assert expert.client.cache is None
    assert not (tmp_path / "cache.sqlite").exists()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8/v1")
    configured = make_expert("llm", model="m", dry_run=True)
    assert isinstance(configured, LLMExpert) and configured.client.base_url == "http://127.0.0.1:8/v1"


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match=r"Unknown expert kind 'oracle': choose one of planner, llm"):
        make_expert("oracle")  # type: ignore[arg-type]


def test_llm_without_model_says_what_to_give():
    with pytest.raises(ValueError, match="needs a model name"):
        make_expert("llm", base_url="http://127.0.0.1:9/v1")


@pytest.mark.parametrize("option", ["batch", "dry_run"])
def test_planner_refuses_llm_only_options(option):
    with pytest.raises(ValueError, match=f"{option} only apply to kind='llm'"):
        make_expert("planner", **{option: True})


def test_batch_checks_that_the_expert_can_batch(tmp_path):
    with pytest.raises(ValueError, match="each prompt depends on the reply"):
        make_expert("llm", model="m", mode="step", base_url="http://127.0.0.1:9/v1", batch=True)
    with pytest.raises(ValueError, match="needs a response cache"):
        make_expert("llm", model="m", mode="plan", base_url="http://127.0.0.1:9/v1", batch=True)
    expert = make_expert(
        "llm",
        model="m",
        mode="plan",
        base_url="http://127.0.0.1:9/v1",
        cache=tmp_path / "c.sqlite",
        batch=True,
    )
    assert isinstance(expert, LLMExpert)
