import signal
import subprocess
import sys
import time

import pytest

from sb3_llmae import llm_init_ppo, load_demonstrations
from sb3_llmae.cli import main
from sb3_llmae.envs import make_env
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.llm import ChatClient
from sb3_llmae.testing.oracle import OracleResponder

ENV_ID = "MiniGrid-DoorKey-5x5-v0"


def plan_mode_llm_args(server, n_episodes: int, out, *extra: str) -> list[str]:
    """`generate --expert llm` in plan mode against the local server, its oracle set to answer."""
    expert = LLMExpert(client=ChatClient("fake-model", base_url=server.base_url), mode="plan")
    server.responder = OracleResponder(ENV_ID, range(n_episodes), expert)
    return ["generate", "--env", ENV_ID, "--expert", "llm", "--model", "fake-model",
            "--base-url", server.base_url, "--mode", "plan", "--episodes", str(n_episodes),
            "--workers", "2", "--no-progress", *extra, "--out", str(out)]  # fmt: skip


def test_generate_with_planner_prints_summary_and_writes_demonstrations(tmp_path, capsys):
    out = tmp_path / "demos"
    status = main(
        [
            "generate",
            "--env",
            ENV_ID,
            "--expert",
            "planner",
            "--episodes",
            "3",
            "--seed",
            "7",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "episodes: 3" in printed and "success rate: 100.0%" in printed and "transitions:" in printed
    assert "wall time:" in printed and str(out) in printed
    demos = load_demonstrations(out, make_env(ENV_ID).observation_space)
    assert demos.metadata["seeds"] == [7, 8, 9]


def test_generate_with_llm_against_local_server(tmp_path, capsys, fake_openai_server):
    cache = ["--cache", str(tmp_path / "cache.sqlite")]
    assert main(plan_mode_llm_args(fake_openai_server, 4, tmp_path / "run1", *cache)) == 0
    printed = capsys.readouterr().out
    assert "success rate: 100.0%" in printed
    assert "calls: 4  cache hits: 0" in printed
    assert "tokens:" in printed
    # the same generation into a new directory: every reply comes from the cache
    assert main(plan_mode_llm_args(fake_openai_server, 4, tmp_path / "run2", *cache)) == 0
    assert "calls: 0  cache hits: 4" in capsys.readouterr().out
    assert fake_openai_server.request_count == 4


def test_generate_errors_are_one_clear_line(tmp_path, capsys, monkeypatch):
    assert main(["generate", "--env", "MiniGrid-DoorKey-7x7-v0", "--out", str(tmp_path)]) == 2
    assert "Unknown MiniGrid env id" in capsys.readouterr().err
    assert main(["generate", "--env", ENV_ID, "--expert", "llm", "--out", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    status = main(
        ["generate", "--env", ENV_ID, "--expert", "llm", "--model", "m", "--no-cache", "--out", str(tmp_path)]
    )
    assert status == 2
    assert "OPENAI_BASE_URL" in capsys.readouterr().err


def test_generate_unsupported_env_for_planner(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--env",
                "MiniGrid-MemoryS7-v0",
                "--episodes",
                "1",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "MiniGrid-MemoryS7-v0" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["--help"], ["generate", "--help"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 0
    assert "usage: sb3-llmae" in capsys.readouterr().out


def test_ctrl_c_keeps_finished_episodes_and_rerun_resumes(tmp_path, fake_openai_server):
    """A real SIGINT to `sb3-llmae generate`: exit 130, finished episodes on disk, a re-run resumes."""
    n_episodes = 12
    out = tmp_path / "run"
    args = plan_mode_llm_args(fake_openai_server, n_episodes, out, "--no-cache")
    fake_openai_server.latency_s = 0.4
    # A shell's background jobs (CI's, say) ignore SIGINT, and Python then installs no Ctrl-C handler.
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    process = subprocess.Popen(
        [sys.executable, "-m", "sb3_llmae.cli", *args],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=restore_sigint,
    )
    episodes = out / "episodes"
    deadline = time.monotonic() + 60
    while len(list(episodes.glob("seed_*.npz"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "re-run with the same output directory to resume" in stderr
    finished = len(list(episodes.glob("seed_*.npz")))
    assert 2 <= finished < n_episodes
    assert not (out / "metadata.json").exists()

    fake_openai_server.latency_s = 0.0
    calls_before = fake_openai_server.request_count
    assert main(args) == 0
    assert fake_openai_server.request_count - calls_before == n_episodes - finished
    assert load_demonstrations(out).stats["successes"] == n_episodes


def test_llm_demonstrations_from_the_cli_seed_llm_init_ppo(tmp_path, fake_openai_server):
    out = tmp_path / "llm-demos"
    assert main(plan_mode_llm_args(fake_openai_server, 3, out, "--no-cache")) == 0
    model = llm_init_ppo(ENV_ID, out, bc_kwargs={"stop_at_success": None, "epochs": 2, "batch_size": 8},
                         critic_warmup_steps=64, n_envs=2, n_steps=32, batch_size=32, seed=0)  # fmt: skip
    assert model.num_timesteps == 64
    model.learn(64, reset_num_timesteps=False)
    assert model.num_timesteps == 128
