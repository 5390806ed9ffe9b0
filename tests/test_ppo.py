import numpy as np
import pytest
from gymnasium import spaces
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import PPO

from sb3_llmae import MinigridFeaturesExtractor, make_ppo, make_vec_env
from sb3_llmae.envs import obs_mode_of
from sb3_llmae.training import KLPPO, REFERENCE_PPO_KWARGS, default_policy_kwargs
from sb3_llmae.training.ppo import load_ppo, saved_algo, saved_obs_mode
from tests.training_helpers import ENV_ID, SMALL_PPO_KWARGS, state_of


def test_make_ppo_uses_the_reference_hyperparameters_and_the_minigrid_extractor():
    model = make_ppo(ENV_ID, seed=0)
    assert isinstance(model, PPO)
    assert model.n_envs == 4
    assert model.n_steps == REFERENCE_PPO_KWARGS["n_steps"]
    assert model.batch_size == REFERENCE_PPO_KWARGS["batch_size"]
    assert model.learning_rate == REFERENCE_PPO_KWARGS["learning_rate"]
    assert isinstance(model.policy.pi_features_extractor, MinigridFeaturesExtractor)


def test_ppo_kwargs_override_the_reference_and_merge_policy_kwargs():
    model = make_ppo(ENV_ID, n_envs=2, learning_rate=3e-4, policy_kwargs={"net_arch": {"pi": [8], "vf": [8]}})
    assert model.learning_rate == 3e-4 and model.n_envs == 2
    assert model.policy.mlp_extractor.latent_dim_pi == 8
    assert isinstance(model.policy.features_extractor, MinigridFeaturesExtractor)


def test_scratch_and_actor_init_build_the_same_network():
    scratch = make_ppo(ENV_ID, init="scratch", n_envs=1, seed=0)
    actor = make_ppo(ENV_ID, init="actor", n_envs=1, seed=0)
    full = make_ppo(ENV_ID, init="full", n_envs=1, seed=0)
    assert state_of(scratch.policy).keys() == state_of(actor.policy).keys()
    assert not scratch.policy.share_features_extractor
    assert full.policy.share_features_extractor


def test_flat_observations_get_sb3s_default_extractor():
    model = make_ppo(ENV_ID, obs_mode="flat", n_envs=1)
    assert not isinstance(model.policy.features_extractor, MinigridFeaturesExtractor)
    assert "features_extractor_class" not in default_policy_kwargs(model.observation_space)


def test_unknown_init_is_a_clear_error():
    with pytest.raises(ValueError, match="scratch, actor, full"):
        make_ppo(ENV_ID, init="critic")  # type: ignore[arg-type]


@pytest.mark.parametrize("obs_mode", ["image", "flat"])
def test_load_ppo_reads_the_observation_mode_from_the_zip(tmp_path, obs_mode):
    model = make_ppo(ENV_ID, obs_mode=obs_mode, n_envs=1, seed=0, **SMALL_PPO_KWARGS)
    model.learn(32)
    model.save(tmp_path / "model.zip")
    assert saved_obs_mode(tmp_path / "model.zip", ENV_ID) == obs_mode
    loaded = load_ppo(tmp_path / "model.zip", ENV_ID, n_envs=2, seed=1)
    assert loaded.observation_space == model.observation_space
    assert loaded.num_timesteps == model.num_timesteps


def test_load_ppo_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.zip: "):
        load_ppo(tmp_path / "missing.zip", ENV_ID)


def test_observations_no_mode_of_the_env_gives_are_refused():
    with pytest.raises(ValueError, match="another env"):
        obs_mode_of(ENV_ID, spaces.Box(0, 1, (4,), np.float32))


@pytest.mark.parametrize("algo", [PPO, KLPPO, MaskablePPO, RecurrentPPO])
def test_saved_algo_tells_each_algorithm_and_load_ppo_continues_it(tmp_path, algo):
    model = make_ppo(ENV_ID, algo=algo, n_envs=1, seed=0, **SMALL_PPO_KWARGS)
    if isinstance(model, KLPPO):
        model.set_prior()
    model.save(tmp_path / "model.zip")
    assert saved_algo(tmp_path / "model.zip") is algo
    loaded = load_ppo(tmp_path / "model.zip", env=ENV_ID, n_envs=2, seed=1)
    assert type(loaded) is algo
    loaded.learn(64, reset_num_timesteps=False)  # MaskablePPO's envs got their action masks
    assert type(load_ppo(tmp_path / "model.zip", device="cpu")) is algo  # no env: to predict or record
    assert load_ppo(tmp_path / "model.zip").get_env() is None


def test_load_ppo_takes_a_vec_env_and_refuses_a_file_that_is_no_model(tmp_path):
    make_ppo(ENV_ID, n_envs=1, seed=0, **SMALL_PPO_KWARGS).save(tmp_path / "model.zip")
    env = make_vec_env(ENV_ID, n_envs=2)
    assert load_ppo(tmp_path / "model.zip", env=env).get_env() is env
    (tmp_path / "bad.zip").write_text("not a zip")
    with pytest.raises(ValueError, match=r"bad\.zip cannot be read as a model"):
        saved_algo(tmp_path / "bad.zip")
