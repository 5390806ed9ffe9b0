"""The training callbacks through plain ``learn()`` on DoorKey-5x5 / Empty-5x5 with tiny budgets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sb3_llmae import (
    LLMInitCallback,
    SampleEfficiencyCallback,
    VisitationHeatmapCallback,
    make_ppo,
    make_vec_env,
)
from sb3_llmae.envs import MinigridImageWrapper, make_env, unwrap_minigrid
from sb3_llmae.training import evaluate_success
from sb3_llmae.training.callbacks.heatmap import TILE_SIZE
from sb3_llmae.training.critic import actor_parameters, critic_modules
from tests.training_helpers import FAST_BC_KWARGS, SMALL_PPO_KWARGS, empty_5x5_demos

DOORKEY = "MiniGrid-DoorKey-5x5-v0"
REFERENCE_KEYS = {"returns", "mask", "success", "success_mask", "eval_seeds", "step"}
PLUGIN_KEYS = {"returns_greedy", "success_greedy", "lengths", "lengths_greedy"}


def tiny_ppo(n_envs: int = 2, seed: int = 0, env_id: str = DOORKEY, **kwargs):
    return make_ppo(env_id, n_envs=n_envs, seed=seed, **{**SMALL_PPO_KWARGS, **kwargs})


def event_tags(log_dir: Path) -> dict[str, list[str]]:
    (events_file,) = log_dir.rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events_file), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator.Tags()


def test_info_wrapper_gives_agent_position_and_success():
    env = make_env("MiniGrid-Empty-5x5-v0")
    _, info = env.reset(seed=0)
    assert info["agent_pos"] == (1, 1)
    # Empty-5x5: forward, forward, right, forward, forward reaches the goal at (3, 3).
    for action in (2, 2, 1, 2):
        _, _, terminated, truncated, info = env.step(action)
        assert "is_success" not in info
    assert info["agent_pos"] == (3, 2)
    _, reward, terminated, _, info = env.step(2)
    assert terminated and reward > 0 and info["is_success"] is True
    assert info["agent_pos"] == tuple(unwrap_minigrid(env).agent_pos) == (3, 3)

    env = make_env("MiniGrid-Empty-5x5-v0", obs_mode="flat", max_episode_steps=2)
    env.reset(seed=0)
    env.step(0)
    _, _, terminated, truncated, info = env.step(0)
    assert truncated and not terminated and info["is_success"] is False


def test_sample_efficiency_files_follow_the_reference_layout(tmp_path):
    model = tiny_ppo(n_envs=4, tensorboard_log=str(tmp_path / "tb"))
    callback = SampleEfficiencyCallback(
        DOORKEY, eval_freq=128, n_eval_episodes=3, eval_seed=100, max_episode_steps=30, eval_at_start=True
    )
    before = evaluate_success(model, DOORKEY, [100, 101, 102], max_episode_steps=30)
    model.learn(256, callback=callback)

    eval_dir = Path(model.logger.get_dir()) / "eval_logs"
    # every 128 env steps whatever the number of envs, and once at the start
    assert sorted(path.name for path in eval_dir.glob("*.npz")) == [
        "eval_step0.npz",
        "eval_step128.npz",
        "eval_step256.npz",
    ]
    with np.load(eval_dir / "eval_step128.npz") as data:
        assert set(data.files) == REFERENCE_KEYS | PLUGIN_KEYS
        for key in ("returns", "success", "returns_greedy", "success_greedy"):
            assert data[key].shape == (3, 1) and data[key].dtype == np.float32
        for key in ("lengths", "lengths_greedy"):
            assert data[key].shape == (3, 1)
        assert data["mask"].all() and data["mask"].dtype == bool and data["success_mask"].all()
        assert data["eval_seeds"].tolist() == [100, 101, 102] and data["eval_seeds"].dtype == np.int64
        assert int(data["step"]) == 128 and data["step"].dtype == np.int64
        assert set(np.unique(data["success"])) <= {0.0, 1.0}
        assert (data["lengths"] <= 30).all()
    with np.load(eval_dir / "eval_step0.npz") as data:
        np.testing.assert_allclose(data["returns_greedy"][:, 0], before.returns, rtol=1e-6)
        np.testing.assert_array_equal(data["lengths_greedy"][:, 0], before.lengths)

    with (eval_dir / "evaluations.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [int(row["step"]) for row in rows] == [0, 128, 256]
    assert {"success_greedy", "success_sampled", "return_greedy", "return_sampled"} <= set(rows[0])

    tags = event_tags(tmp_path / "tb")
    assert {"eval/success_rate", "eval/success_rate_sampled", "eval/mean_reward_sampled"} <= set(
        tags["scalars"]
    )


def test_sampled_evaluation_leaves_training_unchanged(tmp_path):
    plain = tiny_ppo(seed=3)
    plain.learn(128)
    evaluated = tiny_ppo(seed=3)
    evaluated.learn(
        128, callback=SampleEfficiencyCallback(DOORKEY, eval_freq=64, n_eval_episodes=2, log_dir=tmp_path)
    )
    for first, second in zip(plain.policy.parameters(), evaluated.policy.parameters(), strict=True):
        assert np.array_equal(first.detach().numpy(), second.detach().numpy())


def test_thresholds_record_the_first_step_reaching_them(tmp_path):
    # Empty-5x5 within 100 steps: even a random policy succeeds sometimes, a threshold of a tiny rate
    # is reached at the first evaluation.
    model = tiny_ppo(env_id="MiniGrid-Empty-5x5-v0")
    callback = SampleEfficiencyCallback(
        eval_freq=64, n_eval_episodes=10, log_dir=tmp_path, success_thresholds=(0.01, 1.0)
    )
    model.learn(128, callback=callback)
    assert callback.eval_env_id == "MiniGrid-Empty-5x5-v0"  # from the training envs
    with (tmp_path / "eval_logs" / "evaluations.csv").open() as file:
        rows = list(csv.DictReader(file))
    reached = json.loads((tmp_path / "eval_logs" / "thresholds.json").read_text())
    for kind in ("greedy", "sampled"):
        first = next((int(row["step"]) for row in rows if float(row[f"success_{kind}"]) >= 0.01), None)
        assert reached[kind].get("0.01") == first
        assert callback.first_step_reached[kind].get(0.01) == first
    assert any(reached[kind] for kind in ("greedy", "sampled"))


def test_sample_efficiency_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="eval_freq"):
        SampleEfficiencyCallback(DOORKEY, eval_freq=0)
    with pytest.raises(ValueError, match="success_thresholds"):
        SampleEfficiencyCallback(DOORKEY, success_thresholds=(80,))
    with pytest.raises(ValueError, match="Unknown MiniGrid env id"):
        SampleEfficiencyCallback("MiniGrid-DoorKey-7x7-v0")


@pytest.mark.parametrize("vec_env_cls", [None, SubprocVecEnv])
def test_heatmap_counts_every_step_of_every_env(tmp_path, vec_env_cls):
    env = make_vec_env(DOORKEY, n_envs=2, seed=0, vec_env_cls=vec_env_cls)
    model = make_ppo(env, seed=0, tensorboard_log=str(tmp_path), **SMALL_PPO_KWARGS)
    callback = VisitationHeatmapCallback(save_freq=64)
    model.learn(128, callback=callback)
    env.close()

    heatmap_dir = Path(model.logger.get_dir()) / "heatmaps"
    assert sorted(path.name for path in heatmap_dir.iterdir()) == [
        "visits_step128.npy",
        "visits_step128.png",
        "visits_step64.npy",
        "visits_step64.png",
    ]
    counts = np.load(heatmap_dir / "visits_step128.npy")
    assert counts.shape == (5, 5) and counts.dtype == np.int64
    assert counts.sum() == 128  # one cell per env step
    # the outer walls are never stood on
    assert counts[0].sum() == counts[-1].sum() == counts[:, 0].sum() == counts[:, -1].sum() == 0
    assert np.load(heatmap_dir / "visits_step64.npy").sum() == 64
    assert callback.background is None  # DoorKey's layout changes from reset to reset
    tags = event_tags(tmp_path)
    assert "heatmap/visits" in tags["images"]
    assert "heatmap/cells_visited" in tags["scalars"]


def test_heatmap_draws_over_the_grid_when_the_layout_is_fixed(tmp_path):
    model = tiny_ppo(env_id="MiniGrid-Empty-5x5-v0")
    callback = VisitationHeatmapCallback(save_freq=1000, log_dir=tmp_path)
    model.learn(64, callback=callback)
    assert callback.background is not None and callback.background.shape == (5 * TILE_SIZE, 5 * TILE_SIZE, 3)
    # saved at the end of training, even before save_freq
    assert np.load(tmp_path / "heatmaps" / "visits_step64.npy").sum() == 64
    assert (tmp_path / "heatmaps" / "visits_step64.png").stat().st_size > 0


def test_heatmap_without_agent_position_says_how_to_get_it(tmp_path):
    def plain_env() -> gym.Env:
        # the observation wrapper alone, without MinigridInfoWrapper
        return MinigridImageWrapper(gym.make("MiniGrid-Empty-5x5-v0"))

    model = make_ppo(sb3_make_vec_env(plain_env, n_envs=1), **SMALL_PPO_KWARGS)
    with pytest.raises(KeyError, match="MinigridInfoWrapper"):
        model.learn(64, callback=VisitationHeatmapCallback(save_freq=64, log_dir=tmp_path))


class ActorSnapshot(BaseCallback):
    """Copies the actor's and the critic's weights when training starts (after the callbacks before it)."""

    def _on_training_start(self) -> None:
        policy = self.model.policy
        self.actor = [param.detach().clone() for param in actor_parameters(policy)]
        self.critic = [p.detach().clone() for module in critic_modules(policy) for p in module.parameters()]

    def _on_step(self) -> bool:
        return True


def changed(before, after) -> bool:
    return any(not np.array_equal(b.numpy(), a.detach().numpy()) for b, a in zip(before, after, strict=True))


@pytest.mark.parametrize(("warmup_steps", "actor_moves"), [(128, False), (64, True)])
def test_llm_init_callback_clones_then_warms_the_critic_up(tmp_path, warmup_steps, actor_moves):
    demos = empty_5x5_demos()
    model = tiny_ppo(env_id="MiniGrid-Empty-5x5-v0")
    before_bc = [param.detach().clone() for param in actor_parameters(model.policy)]
    init = LLMInitCallback(
        demos,
        bc_kwargs={**FAST_BC_KWARGS, "stop_at_success": 1.0, "epochs": 40},
        critic_warmup_steps=warmup_steps,
    )
    snapshot = ActorSnapshot()
    model.learn(128, callback=CallbackList([init, snapshot]))

    assert init.report is not None and init.report.success_rate == 1.0
    assert changed(before_bc, snapshot.actor)  # BC moved the actor
    assert changed(snapshot.actor, actor_parameters(model.policy)) == actor_moves
    critic_now = [p for module in critic_modules(model.policy) for p in module.parameters()]
    assert changed(snapshot.critic, critic_now)
    assert all(param.requires_grad for param in model.policy.parameters())
    assert model.num_timesteps == 128


def test_llm_init_callback_warns_when_the_warmup_takes_half_the_budget(recwarn):
    # 2 envs x 32 steps: rollouts of 64 env steps; the warm-up is 64 of them
    demos = empty_5x5_demos(2)
    init = LLMInitCallback(demos, bc_kwargs={**FAST_BC_KWARGS, "epochs": 1}, critic_warmup_steps=64)
    with pytest.warns(
        UserWarning, match=r"critic warm-up takes 64 of this learn\(\)'s 128 env steps.*rl-zoo3's -n"
    ):
        tiny_ppo(env_id="MiniGrid-Empty-5x5-v0").learn(128, callback=init)
    recwarn.clear()
    init = LLMInitCallback(demos, bc_kwargs={**FAST_BC_KWARGS, "epochs": 1}, critic_warmup_steps=64)
    tiny_ppo(env_id="MiniGrid-Empty-5x5-v0").learn(256, callback=init)
    assert not [warning for warning in recwarn if "critic warm-up takes" in str(warning.message)]


def test_llm_init_callback_refuses_full_init_on_two_extractors():
    model = tiny_ppo(env_id="MiniGrid-Empty-5x5-v0")
    with pytest.raises(ValueError, match="default_policy_kwargs"):
        model.learn(64, callback=LLMInitCallback(empty_5x5_demos(2), init="full"))
