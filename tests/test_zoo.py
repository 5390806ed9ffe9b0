"""rl-zoo3 trains LLM-initialised PPO from hyperparams/llmae_ppo.yml alone, leaving the plugin's files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sb3_llmae import generate_demonstrations
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.experts import PlannerExpert
from sb3_llmae.zoo import hyperparams_path

ENV_ID = "MiniGrid-DoorKey-5x5-v0"


def tiny_conf(path: Path) -> Path:
    """hyperparams/llmae_ppo.yml (as the package ships it) with the DoorKey-5x5 entry shrunk to two small
    rollouts."""
    conf = yaml.safe_load(hyperparams_path("llmae_ppo").read_text())
    entry = conf[ENV_ID]
    entry.update(n_envs=2, n_steps=32, batch_size=32)
    sizes = {
        "sb3_llmae.LLMInitCallback": {
            "bc_kwargs": {"epochs": 2, "stop_at_success": None},
            "critic_warmup_steps": 64,
        },
        "sb3_llmae.SampleEfficiencyCallback": {
            "eval_freq": 64,
            "n_eval_episodes": 2,
            "max_episode_steps": 20,
        },
        "sb3_llmae.VisitationHeatmapCallback": {"save_freq": 64},
    }
    for callback in entry["callback"]:
        ((name, kwargs),) = callback.items()
        kwargs.update(sizes[name])
    assert [next(iter(callback)) for callback in entry["callback"]] == list(sizes)
    path.write_text(yaml.safe_dump({ENV_ID: entry}))
    return path


def test_rl_zoo3_trains_llm_initialised_ppo_from_the_hyperparams(tmp_path):
    demos = generate_demonstrations(ENV_ID, PlannerExpert(), 4, progress_bar=False)
    # the path the hyperparameters name, relative to where rl-zoo3 runs
    save_demonstrations(demos, tmp_path / "demos" / ENV_ID)
    command = [
        sys.executable, "-m", "rl_zoo3.train",
        "--algo", "ppo",
        "--env", ENV_ID,
        "--gym-packages", "sb3_llmae",
        "-conf", str(tiny_conf(tmp_path / "llmae_ppo.yml")),
        "-n", "128",
        "-f", str(tmp_path / "logs"),
        "-tb", str(tmp_path / "tb"),
        "--seed", "0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]

    (run_dir,) = (tmp_path / "logs" / "ppo").glob(f"{ENV_ID}_*")
    assert sorted(path.name for path in (run_dir / "eval_logs").glob("*.npz")) == [
        "eval_step0.npz",
        "eval_step128.npz",
        "eval_step64.npz",
    ]
    with np.load(run_dir / "eval_logs" / "eval_step128.npz") as data:
        assert data["returns"].shape == data["success_greedy"].shape == (2, 1)
    assert (run_dir / "eval_logs" / "evaluations.csv").exists()
    assert {path.name for path in (run_dir / "heatmaps").iterdir()} >= {
        "visits_step64.png",
        "visits_step128.png",
    }
    assert np.load(run_dir / "heatmaps" / "visits_step128.npy").sum() == 128

    (events,) = (tmp_path / "tb").rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    assert "heatmap/visits" in tags["images"]
    assert {"eval/success_rate", "eval/success_rate_sampled", "bc/loss"} <= set(tags["scalars"])
    # what the prior is, on rl-zoo3's console: 2 BC epochs (no threshold), warm-up for one rollout
    assert "llm_init/" in result.stdout
    assert [line.split("|")[2].strip() for line in result.stdout.splitlines() if "bc_epochs" in line] == ["2"]
    assert [
        line.split("|")[2].strip() for line in result.stdout.splitlines() if "critic_warmup_until" in line
    ] == ["64"]


def zoo(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=280)


@pytest.mark.slow
def test_rl_zoo3_tooling_works_on_the_plugins_runs(tmp_path):
    env_id = "sb3_llmae/MiniGrid-Empty-5x5-v0"
    folder_name = "sb3_llmae-MiniGrid-Empty-5x5-v0"  # rl-zoo3's folder name for the id
    # two runs: plot_from_file needs at least two per env
    for seed in ("0", "1"):
        trained = zoo(
            "rl_zoo3.train", "--algo", "ppo", "--env", env_id, "--gym-packages", "sb3_llmae",
            "-conf", str(hyperparams_path("ppo")), "-n", "1024", "--seed", seed,
            "--hyperparams", "n_envs:2", "n_steps:64", "batch_size:64",
            "--eval-freq", "256", "--eval-episodes", "2", "-f", "logs", cwd=tmp_path,
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr[-3000:]
    run_dirs = sorted((tmp_path / "logs" / "ppo").glob(f"{folder_name}_*"))
    assert len(run_dirs) == 2
    assert "is_success" in (run_dirs[0] / "0.monitor.csv").read_text().splitlines()[1]

    enjoyed = zoo(
        "rl_zoo3.enjoy", "--algo", "ppo", "--env", env_id, "--gym-packages", "sb3_llmae", "-f", "logs",
        "-n", "50", "--no-render", cwd=tmp_path,
    )  # fmt: skip
    assert enjoyed.returncode == 0, enjoyed.stderr[-3000:]

    recorded = zoo(
        "sb3_llmae.zoo", "record_video", "--algo", "ppo", "--env", env_id, "-f", "logs", "-n", "20",
        "-o", "videos", cwd=tmp_path,
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    assert list((tmp_path / "videos").rglob("*.mp4"))

    for y_axis in ("success", "reward"):
        plotted = zoo(
            "rl_zoo3.plots.plot_train", "-a", "ppo", "-e", folder_name, "-f", "logs", "-y", y_axis, "-w", "5",
            cwd=tmp_path,
        )  # fmt: skip
        assert plotted.returncode == 0, plotted.stderr[-3000:]
        assert "No data available" not in plotted.stdout

    all_plotted = zoo(
        "rl_zoo3.plots.all_plots", "-a", "ppo", "-e", folder_name, "-f", "logs", "--no-display",
        "-o", "all_plots", cwd=tmp_path,
    )  # fmt: skip
    assert all_plotted.returncode == 0, all_plotted.stderr[-3000:]
    assert (tmp_path / "all_plots.pkl").exists()
    from_file = zoo(
        "rl_zoo3.plots.plot_from_file", "-i", "all_plots.pkl", "-o", "from_file", "--format", "png",
        cwd=tmp_path,
    )  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr[-3000:]
    assert (tmp_path / "from_file").read_bytes().startswith(b"\x89PNG")  # saved under the name as given
