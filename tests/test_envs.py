import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_llmae import make_vec_env
from sb3_llmae.envs import MinigridImageWrapper, make_env, minigrid_env_ids, unwrap_minigrid


def test_image_mode_is_egocentric_grid_of_indices():
    env = make_env("MiniGrid-DoorKey-5x5-v0", seed=0)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (7, 7, 3)
    assert observation.dtype == np.uint8
    assert env.observation_space.contains(observation)
    np.testing.assert_array_equal(observation, unwrap_minigrid(env).gen_obs()["image"])


def test_flat_mode_matches_minigrid_flat_wrapper():
    env = make_env("MiniGrid-DoorKey-5x5-v0", obs_mode="flat")
    observation, _ = env.reset(seed=0)
    assert observation.ndim == 1
    assert env.observation_space.contains(observation)


def test_seeding_is_reproducible():
    first, _ = make_env("MiniGrid-DoorKey-8x8-v0").reset(seed=3)
    second, _ = make_env("MiniGrid-DoorKey-8x8-v0").reset(seed=3)
    np.testing.assert_array_equal(first, second)
    positions = {
        tuple(unwrap_minigrid(make_env("MiniGrid-DoorKey-8x8-v0", seed=s)).agent_pos) for s in range(10)
    }
    assert len(positions) > 1


def test_max_episode_steps_truncates():
    env = make_env("MiniGrid-Empty-5x5-v0", max_episode_steps=3)
    env.reset(seed=0)
    outcomes = [env.step(0)[2:4] for _ in range(3)]
    assert outcomes[-1] == (False, True)
    assert all(outcome == (False, False) for outcome in outcomes[:-1])


def test_unknown_env_id_lists_close_valid_ids():
    with pytest.raises(ValueError, match="MiniGrid-DoorKey-8x8-v0"):
        make_env("MiniGrid-DoorKey-7x7-v0")
    with pytest.raises(ValueError, match="Unknown MiniGrid env id"):
        make_vec_env("CartPole-v1")


def test_unknown_obs_mode_lists_valid_modes():
    with pytest.raises(ValueError, match="image, flat"):
        make_env("MiniGrid-Empty-5x5-v0", obs_mode="rgb")


def test_vec_env_shapes_and_seeds():
    vec_env = make_vec_env("MiniGrid-Empty-5x5-v0", n_envs=3, seed=0)
    assert isinstance(vec_env, DummyVecEnv)
    observations = vec_env.reset()
    assert observations.shape == (3, 7, 7, 3)


def test_babyai_ids_are_valid():
    assert "BabyAI-GoToRedBall-v0" in minigrid_env_ids()
    observation, _ = make_env("BabyAI-GoToRedBall-v0").reset(seed=0)
    assert observation.shape == (7, 7, 3)


def test_registered_plugin_ids_are_wrapped():
    import sb3_llmae  # noqa: F401  (registers the ids, as --gym-packages sb3_llmae does)

    env = gym.make("sb3_llmae/MiniGrid-DoorKey-5x5-v0")
    assert isinstance(env.observation_space, gym.spaces.Box)
    assert env.observation_space.shape == (7, 7, 3)
    flat = gym.make("sb3_llmae/MiniGrid-DoorKey-5x5-flat-v0")
    assert flat.observation_space.shape[0] > 147


def test_image_space_is_not_an_sb3_pixel_image():
    """SB3 must neither transpose nor divide MiniGrid's cell indices by 255."""
    from stable_baselines3.common.preprocessing import is_image_space

    env = MinigridImageWrapper(gym.make("MiniGrid-Empty-5x5-v0"))
    assert not is_image_space(env.observation_space)


def test_non_positive_max_episode_steps_is_a_clear_error():
    with pytest.raises(ValueError, match="max_episode_steps must be positive"):
        make_env("MiniGrid-Empty-5x5-v0", max_episode_steps=0)
    with pytest.raises(ValueError, match="max_episode_steps must be positive"):
        make_vec_env("MiniGrid-Empty-5x5-v0", max_episode_steps=-1)
