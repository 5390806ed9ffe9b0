import os
import subprocess
import sys
from pathlib import Path

import pytest
from stable_baselines3 import PPO

from sb3_llmae import MinigridFeaturesExtractor
from sb3_llmae.cli import main
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.training import KLPPO
from sb3_llmae.training.evaluation import evaluate_success
from tests.training_helpers import ENV_ID, empty_5x5_demos

REPO_ROOT = Path(__file__).resolve().parents[1]
# The reference PPO settings collect 128 steps per env: one rollout of 2 envs is 256 env steps.
ROLLOUT = 256


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("pretrain")
    save_demonstrations(empty_5x5_demos(), directory / "demos")
    model_path = directory / "pretrained.zip"
    status = main(
        [
            "pretrain",
            "--env", ENV_ID,
            "--demos", str(directory / "demos"),
            "--out", str(model_path),
            # a prior that plays (BC keeps the first checkpoint at or just above the threshold, and
            # Empty-5x5's success jumps from 0 to 1): it must survive a few rl-zoo3 updates below
            "--stop-at-success", "1.0",
            "--bc-batch-size", "8",
            "--bc-learning-rate", "3e-3",
            "--warmup-steps", str(ROLLOUT),
            "--n-envs", "2",
            "--max-episode-steps", "20",
        ]
    )  # fmt: skip
    assert status == 0
    return model_path


def test_pretrain_writes_a_ppo_zip_with_the_bc_policy(pretrained):
    model = PPO.load(pretrained)
    assert isinstance(model.policy.pi_features_extractor, MinigridFeaturesExtractor)
    assert model.num_timesteps == ROLLOUT  # the critic warm-up
    assert evaluate_success(model, ENV_ID, seeds=range(2)).success_rate == 1.0


def test_train_continues_a_pretrained_model(pretrained, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--env", ENV_ID, "--load", str(pretrained), "--steps", str(ROLLOUT), "--seed", "1"]
    assert main([*args, "--out", str(out), "--n-envs", "2", "--eval-episodes", "2", "--no-progress"]) == 0

    model = PPO.load(out / "model.zip")
    assert model.num_timesteps == 2 * ROLLOUT  # the warm-up stays counted
    assert list(out.glob("PPO_*/events.out.tfevents.*"))
    assert "greedy success" in capsys.readouterr().out


def test_train_from_scratch(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--env", ENV_ID, "--steps", str(ROLLOUT), "--out", str(out), "--n-envs", "2"]
    assert main([*args, "--eval-episodes", "0", "--no-progress"]) == 0
    model = PPO.load(out / "model.zip")
    assert model.num_timesteps == ROLLOUT
    assert isinstance(model.policy.features_extractor, MinigridFeaturesExtractor)


def test_rl_zoo3_continues_a_pretrained_model(pretrained, tmp_path):
    command = [
        sys.executable, "-m", "rl_zoo3.train",
        "--algo", "ppo",
        "--env", ENV_ID,
        "--gym-packages", "sb3_llmae",
        "--conf-file", str(REPO_ROOT / "hyperparams" / "ppo.yml"),
        "-i", str(pretrained),
        "-n", "64",
        "--hyperparams", "n_envs:2", "n_steps:32", "batch_size:32",  # one small rollout
        "-f", str(tmp_path / "zoo"),
        "--seed", "0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Loading pretrained agent" in result.stdout

    (saved,) = (tmp_path / "zoo" / "ppo").glob(f"{ENV_ID}_*/{ENV_ID}.zip")
    model = PPO.load(saved)
    # the pretrained architecture, not ppo.yml's policy_kwargs
    assert not model.policy.share_features_extractor
    assert isinstance(model.policy.pi_features_extractor, MinigridFeaturesExtractor)
    assert evaluate_success(model, ENV_ID, seeds=range(2)).success_rate == 1.0


def test_pretrain_prints_a_command_that_works_as_printed(tmp_path, capsys):
    save_demonstrations(empty_5x5_demos(2), tmp_path / "demos")
    model_path = tmp_path / "model.zip"
    pretrain = ["pretrain", "--env", ENV_ID, "--demos", str(tmp_path / "demos"), "--out", str(model_path)]
    assert main([*pretrain, "--stop-at-success", "none", "--bc-epochs", "1", "--bc-batch-size", "4",
                 "--warmup-steps", "0", "--n-envs", "2", "--no-progress"]) == 0  # fmt: skip
    (hint,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  sb3-llmae train")]
    command = hint.split()[1:]
    assert command[command.index("--steps") + 1] == "100000"
    command[command.index("--steps") + 1] = str(ROLLOUT)  # the same command, a shorter run
    assert main([*command, "--n-envs", "2", "--eval-episodes", "0", "--no-progress"]) == 0
    assert (tmp_path / "model_run" / "model.zip").exists()


def test_pretrain_kl_options_reach_the_model(tmp_path):
    save_demonstrations(empty_5x5_demos(), tmp_path / "demos")
    args = ["pretrain", "--env", ENV_ID, "--demos", str(tmp_path / "demos"), "--out", str(tmp_path / "m.zip")]
    options = ["--kl-coef", "0.2", "--kl-decay-steps", "5000", "--critic-learning-rate", "2.5e-4"]
    small = ["--stop-at-success", "none", "--bc-epochs", "1", "--bc-batch-size", "8", "--warmup-steps", "0"]
    assert main([*args, *options, *small, "--n-envs", "2"]) == 0
    model = KLPPO.load(tmp_path / "m.zip")
    assert (model.kl_coef, model.kl_decay_steps, model.critic_learning_rate) == (0.2, 5000, 2.5e-4)
