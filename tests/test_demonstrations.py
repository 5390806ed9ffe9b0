import json
import threading

import numpy as np
import pytest
from imitation.data.types import TrajectoryWithRew, Transitions

from sb3_llmae import generate_demonstrations, load_demonstrations
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.demonstrations.rollout import GenerationInterrupted, rollout_episode
from sb3_llmae.demonstrations.storage import EpisodeStore
from sb3_llmae.envs import make_env
from tests.conftest import ScriptedEpisode, ScriptedExpert

ENV_ID = "MiniGrid-Empty-5x5-v0"


def test_generation_gives_imitation_trajectories_in_policy_layout(scripted_expert):
    demos = generate_demonstrations(ENV_ID, scripted_expert, n_episodes=3, seed=0, progress_bar=False)
    assert len(demos) == 3
    assert all(isinstance(t, TrajectoryWithRew) for t in demos.trajectories)
    trajectory = demos.trajectories[0]
    assert trajectory.obs.shape == (6, 7, 7, 3)
    assert trajectory.terminal and trajectory.rews[-1] > 0
    env = make_env(ENV_ID)
    first_observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(trajectory.obs[0], first_observation)
    assert isinstance(demos.transitions, Transitions)
    assert len(demos.transitions) == 15
    demos.check_observation_space(env.observation_space)


def test_stats_and_metadata(scripted_expert):
    demos = generate_demonstrations(ENV_ID, scripted_expert, n_episodes=2, seed=5, progress_bar=False)
    assert demos.stats["episodes"] == 2
    assert demos.stats["success_rate"] == 1.0
    assert demos.stats["transitions"] == 10
    assert demos.stats["mean_length"] == 5.0
    assert demos.stats["action_counts"]["forward"] == 8
    assert demos.stats["action_counts"]["right"] == 2
    metadata = demos.metadata
    assert metadata["env_id"] == ENV_ID
    assert metadata["obs_mode"] == "image"
    assert metadata["seeds"] == [5, 6]
    assert metadata["observation_space"]["shape"] == [7, 7, 3]
    assert metadata["expert"] == scripted_expert.describe()
    assert "stable-baselines3" in metadata["versions"]
    assert metadata["created"]
    assert metadata.env_id == ENV_ID and metadata.seeds == [5, 6] and metadata.schema_version == 1
    assert json.loads(json.dumps(metadata.to_dict()))["schema_version"] == 1


def test_only_successful_filters_failures(tmp_path):
    failing = ScriptedExpert(actions=())  # only turns: never reaches the goal
    demos = generate_demonstrations(
        ENV_ID, failing, n_episodes=2, max_episode_steps=4, out_dir=tmp_path, progress_bar=False
    )
    assert len(demos) == 0
    assert load_demonstrations(tmp_path).stats["episodes"] == 2
    assert demos.stats["success_rate"] == 0.0
    with pytest.raises(ValueError, match="no trajectory"):
        _ = demos.transitions
    kept = generate_demonstrations(
        ENV_ID, failing, n_episodes=2, max_episode_steps=4, only_successful=False, progress_bar=False
    )
    assert len(kept) == 2
    assert not kept.trajectories[0].terminal


def test_flat_mode_demonstrations(scripted_expert):
    demos = generate_demonstrations(
        ENV_ID, scripted_expert, n_episodes=1, obs_mode="flat", progress_bar=False
    )
    assert demos.trajectories[0].obs.ndim == 2
    with pytest.raises(ValueError, match=r"policy expects Box\(0, 10, \(7, 7, 3\)"):
        demos.check_observation_space(make_env(ENV_ID).observation_space)


def test_save_load_round_trip(tmp_path, scripted_expert):
    demos = generate_demonstrations(ENV_ID, scripted_expert, n_episodes=2, progress_bar=False)
    save_demonstrations(demos, tmp_path / "demos")
    loaded = load_demonstrations(tmp_path / "demos", observation_space=make_env(ENV_ID).observation_space)
    assert loaded.metadata.to_dict() == json.loads(json.dumps(demos.metadata.to_dict()))
    for original, restored in zip(demos.trajectories, loaded.trajectories, strict=True):
        np.testing.assert_array_equal(original.obs, restored.obs)
        assert restored.obs.dtype == original.obs.dtype
        np.testing.assert_array_equal(original.acts, restored.acts)
        np.testing.assert_allclose(original.rews, restored.rews)


def test_load_errors_are_clear(tmp_path, scripted_expert):
    with pytest.raises(FileNotFoundError, match="No demonstrations at"):
        load_demonstrations(tmp_path / "missing")
    demos = generate_demonstrations(ENV_ID, scripted_expert, n_episodes=1, progress_bar=False)
    save_demonstrations(demos, tmp_path / "demos")
    flat_space = make_env(ENV_ID, obs_mode="flat").observation_space
    with pytest.raises(ValueError, match="policy expects"):
        load_demonstrations(tmp_path / "demos", observation_space=flat_space)
    (tmp_path / "demos" / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"metadata.json cannot be read \(JSONDecodeError"):
        load_demonstrations(tmp_path / "demos")


def test_workers_keep_seed_order(scripted_expert):
    serial = generate_demonstrations(ENV_ID, scripted_expert, n_episodes=6, seed=10, progress_bar=False)
    parallel = generate_demonstrations(
        ENV_ID, scripted_expert, n_episodes=6, seed=10, n_workers=3, progress_bar=False
    )
    assert parallel.metadata["kept_seeds"] == list(range(10, 16))
    for a, b in zip(serial.trajectories, parallel.trajectories, strict=True):
        np.testing.assert_array_equal(a.obs, b.obs)


def test_out_dir_saves_each_episode_and_resumes(tmp_path, scripted_expert):
    out = tmp_path / "run"
    generate_demonstrations(ENV_ID, scripted_expert, n_episodes=3, out_dir=out, progress_bar=False)
    assert (out / "metadata.json").exists()
    assert len(list((out / "episodes").glob("*.npz"))) == 3
    assert len(list((out / "transcripts").glob("*.jsonl"))) == 3

    played = set()

    class CountingEpisode(ScriptedEpisode):
        def act(self):
            played.add(self.seed)
            return super().act()

    class CountingExpert(ScriptedExpert):
        def start_episode(self, env, seed):
            return CountingEpisode(env, seed, self.actions)

    demos = generate_demonstrations(ENV_ID, CountingExpert(), n_episodes=5, out_dir=out, progress_bar=False)
    assert sorted(played) == [3, 4]
    assert len(demos) == 5
    assert load_demonstrations(out).metadata["seeds"] == [0, 1, 2, 3, 4]


def test_out_dir_of_another_generation_is_refused(tmp_path, scripted_expert):
    generate_demonstrations(ENV_ID, scripted_expert, n_episodes=1, out_dir=tmp_path, progress_bar=False)
    with pytest.raises(
        ValueError,
        match=r"another generation run.*env_id: 'MiniGrid-Empty-5x5-v0' -> 'MiniGrid-Empty-6x6-v0'",
    ):
        generate_demonstrations(
            "MiniGrid-Empty-6x6-v0", scripted_expert, n_episodes=1, out_dir=tmp_path, progress_bar=False
        )


def test_interrupted_run_keeps_finished_episodes(tmp_path):
    """An expert that fails mid-run (like Ctrl-C) loses nothing already finished."""

    class InterruptingEpisode(ScriptedEpisode):
        def act(self):
            if self.seed == 2:
                raise KeyboardInterrupt
            return super().act()

    class InterruptingExpert(ScriptedExpert):
        def start_episode(self, env, seed):
            return InterruptingEpisode(env, seed, self.actions)

    with pytest.raises(KeyboardInterrupt):
        generate_demonstrations(
            ENV_ID, InterruptingExpert(), n_episodes=4, out_dir=tmp_path, progress_bar=False
        )
    with EpisodeStore(tmp_path, json.loads((tmp_path / "generation.json").read_text())) as store:
        assert 0 in store and 1 in store and 2 not in store
    demos = generate_demonstrations(
        ENV_ID, InterruptingExpert(), n_episodes=2, out_dir=tmp_path, progress_bar=False
    )
    assert len(demos) == 2


def test_stop_event_abandons_an_episode(scripted_expert):
    stop = threading.Event()
    stop.set()
    with pytest.raises(GenerationInterrupted):
        rollout_episode(ENV_ID, scripted_expert, seed=0, stop=stop)


def test_invalid_action_is_a_clear_error():
    with pytest.raises(ValueError, match="chose action 9"):
        rollout_episode(ENV_ID, ScriptedExpert(actions=(9,)), seed=0)


def test_bad_arguments_are_clear(scripted_expert):
    with pytest.raises(ValueError, match="n_episodes"):
        generate_demonstrations(ENV_ID, scripted_expert, n_episodes=0)
    with pytest.raises(ValueError, match="Unknown MiniGrid env id"):
        generate_demonstrations("MiniGrid-Nope-v0", scripted_expert, n_episodes=1)


class DistributionEpisode(ScriptedEpisode):
    """Plays the scripted actions and reports a distribution peaked on each, except at step 1."""

    def act(self) -> int:
        self.step = getattr(self, "step", -1) + 1
        self.chosen = super().act()
        return self.chosen

    def action_distribution(self):
        if self.step == 1:
            return None
        probs = np.full(7, 0.05, dtype=np.float32)
        probs[self.chosen] = 0.7
        return probs


class DistributionExpert(ScriptedExpert):
    def start_episode(self, env, seed):
        return DistributionEpisode(env, seed, self.actions)


def test_action_distributions_are_kept_saved_and_resumed(tmp_path):
    out = tmp_path / "demos"
    demos = generate_demonstrations(
        "MiniGrid-Empty-5x5-v0", DistributionExpert(), n_episodes=2, out_dir=out, progress_bar=False
    )
    assert demos.action_probs is not None and [len(p) for p in demos.action_probs] == [5, 5]
    targets = demos.soft_targets()
    acts = demos.transitions.acts
    assert targets.shape == (10, 7)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(targets[0][acts[0]], 0.7)
    # The step without a distribution is a hard target.
    np.testing.assert_array_equal(targets[1], np.eye(7)[acts[1]])
    loaded = load_demonstrations(out, make_env("MiniGrid-Empty-5x5-v0").observation_space)
    np.testing.assert_array_equal(loaded.soft_targets(), targets)
    # A resumed run reads the distributions of the episodes already played back from their files.
    resumed = generate_demonstrations(
        "MiniGrid-Empty-5x5-v0", DistributionExpert(), n_episodes=3, out_dir=out, progress_bar=False
    )
    assert len(resumed.soft_targets()) == 15
    np.testing.assert_array_equal(resumed.soft_targets()[:10], targets)


def test_demonstrations_without_distributions_have_no_soft_targets(tmp_path, scripted_expert):
    demos = generate_demonstrations(
        "MiniGrid-Empty-5x5-v0", scripted_expert, n_episodes=1, progress_bar=False
    )
    assert demos.action_probs is None and demos.soft_targets() is None
    save_demonstrations(demos, tmp_path / "d")
    assert load_demonstrations(tmp_path / "d").action_probs is None


def test_damaged_distributions_are_named(tmp_path):
    demos = generate_demonstrations(
        "MiniGrid-Empty-5x5-v0", DistributionExpert(), n_episodes=1, progress_bar=False
    )
    save_demonstrations(demos, tmp_path / "d")
    (tmp_path / "d" / "action_probs.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"action_probs\.npz is damaged"):
        load_demonstrations(tmp_path / "d")


def test_check_env_id_compares_the_env_ids(scripted_expert):
    demos = generate_demonstrations("MiniGrid-Empty-5x5-v0", scripted_expert, 1, progress_bar=False)
    demos.check_env_id("MiniGrid-Empty-5x5-v0")
    demos.check_env_id(None)
    with pytest.raises(ValueError, match="allow_env_mismatch=True"):
        demos.check_env_id("MiniGrid-Empty-6x6-v0")
    demos.check_env_id("MiniGrid-Empty-6x6-v0", allow_env_mismatch=True)
    with pytest.warns(DeprecationWarning, match="use Demonstrations.check_env_id"):
        demos.check_env("MiniGrid-Empty-5x5-v0")
