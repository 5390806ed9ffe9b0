"""GIFs of saved models of every algorithm the plugin trains, through the library and the CLI."""

from __future__ import annotations

import pytest
from PIL import Image
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import PPO

from sb3_llmae import make_ppo
from sb3_llmae.cli import main
from sb3_llmae.record import DEFAULT_FPS, EPISODE_END_PAUSE_MS, gif_frame_ms, record_gif
from sb3_llmae.training.evaluation import evaluate_success
from sb3_llmae.training.ppo import saved_algo
from tests.training_helpers import ENV_ID, SMALL_PPO_KWARGS


@pytest.mark.parametrize("algo", [PPO, MaskablePPO, RecurrentPPO])
def test_record_gif_of_a_saved_model(tmp_path, algo):
    model = make_ppo(ENV_ID, algo=algo, n_envs=2, seed=0, **SMALL_PPO_KWARGS)
    model.save(tmp_path / "model.zip")
    assert saved_algo(tmp_path / "model.zip") is algo

    out = tmp_path / "gifs" / "episodes.gif"
    recorded = record_gif(tmp_path / "model.zip", f"sb3_llmae/{ENV_ID}", out, episodes=2, max_episode_steps=6)
    assert [episode.seed for episode in recorded] == [0, 1]
    assert all(episode.length <= 6 for episode in recorded)
    with Image.open(out) as gif:
        assert gif.size == (5 * 32, 5 * 32)
        assert gif.info["loop"] == 0
        total_ms = 0
        for index in range(gif.n_frames):
            gif.seek(index)
            total_ms += gif.info["duration"]
    # the first frame of each episode and one per step, then a pause on the last one
    frame_ms = gif_frame_ms(DEFAULT_FPS)
    assert total_ms == sum((episode.length + 1) * frame_ms + EPISODE_END_PAUSE_MS for episode in recorded)


def test_record_cli(tmp_path, capsys):
    make_ppo(ENV_ID, n_envs=2, seed=0, **SMALL_PPO_KWARGS).save(tmp_path / "model.zip")
    out = tmp_path / "run.gif"
    args = ["record", str(tmp_path / "model.zip"), "--env", ENV_ID, "--out", str(out), "--episodes", "1"]
    assert main([*args, "--max-episode-steps", "4", "--sampled"]) == 0
    printed = capsys.readouterr().out
    assert "seed 0:" in printed and f"GIF written to {out}" in printed
    assert out.stat().st_size > 0


def test_record_bad_input_is_a_clear_error(tmp_path, capsys):
    assert (
        main(["record", str(tmp_path / "missing.zip"), "--env", ENV_ID, "--out", str(tmp_path / "x.gif")])
        == 2
    )
    assert "No model file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="episodes and fps must be positive"):
        record_gif(make_ppo(ENV_ID, n_envs=1, **SMALL_PPO_KWARGS), ENV_ID, tmp_path / "x.gif", episodes=0)


def test_the_gif_plays_the_episodes_the_evaluation_plays(tmp_path):
    model = make_ppo(ENV_ID, n_envs=2, seed=3, **SMALL_PPO_KWARGS)
    recorded = record_gif(model, ENV_ID, tmp_path / "x.gif", episodes=3, seed=10, max_episode_steps=8)
    evaluated = evaluate_success(model, ENV_ID, range(10, 13), max_episode_steps=8)
    assert tuple(episode.seed for episode in recorded) == evaluated.seeds
    assert tuple(episode.length for episode in recorded) == evaluated.lengths
    assert tuple(episode.episode_return for episode in recorded) == evaluated.returns
    assert tuple(episode.success for episode in recorded) == evaluated.successes
