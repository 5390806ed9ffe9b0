from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from minigrid.wrappers import ImgObsWrapper
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

from sb3_llmae import MinigridFeaturesExtractor, make_ppo, make_vec_env
from sb3_llmae.envs import make_env

REPO_ROOT = Path(__file__).resolve().parents[1]
# rl-zoo3's own keys, and those make_ppo already sets the same way
ZOO_ONLY_KEYS = {"env_wrapper", "normalize", "n_envs", "n_timesteps", "policy", "policy_kwargs"}

POLICY_KWARGS = dict(
    features_extractor_class=MinigridFeaturesExtractor, features_extractor_kwargs=dict(features_dim=32)
)


def test_output_shape_and_one_hot_planes():
    env = make_env("MiniGrid-DoorKey-5x5-v0")
    extractor = MinigridFeaturesExtractor(env.observation_space, features_dim=32)
    observations = th.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(4)])).float()
    assert extractor(observations).shape == (4, 32)
    planes = extractor.one_hot(observations)
    assert planes.shape == (4, 20, 7, 7)
    # exactly one object, one color and one state plane is hot in every cell
    assert th.all(planes.sum(dim=1) == 3)


def test_channels_first_and_divided_by_255_give_the_same_features():
    """What SB3 makes of minigrid's ImgObsWrapper: transposed, and /255 when normalize_images=True."""
    env = make_env("MiniGrid-DoorKey-5x5-v0")
    observation = th.as_tensor(env.reset(seed=0)[0]).float().unsqueeze(0)
    channels_last = MinigridFeaturesExtractor(env.observation_space, features_dim=16)
    channels_first = MinigridFeaturesExtractor(gym.spaces.Box(0, 255, (3, 7, 7), np.uint8), features_dim=16)
    channels_first.load_state_dict(channels_last.state_dict())
    transposed = observation.permute(0, 3, 1, 2)
    expected = channels_last(observation)
    th.testing.assert_close(channels_first(transposed), expected)
    th.testing.assert_close(channels_first(transposed / 255.0), expected)


def test_rejects_non_grid_spaces():
    with pytest.raises(ValueError, match="obs_mode='image'"):
        MinigridFeaturesExtractor(make_env("MiniGrid-Empty-5x5-v0", obs_mode="flat").observation_space)


@pytest.mark.parametrize("policy", ["MlpPolicy", "CnnPolicy"])
def test_ppo_learns_with_extractor(policy):
    env = make_vec_env("MiniGrid-DoorKey-5x5-v0", n_envs=2, seed=0)
    model = PPO(policy, env, policy_kwargs=POLICY_KWARGS, n_steps=64, batch_size=64, n_epochs=1, seed=0)
    before = [p.detach().clone() for p in model.policy.features_extractor.parameters()]
    model.learn(256)
    assert model.num_timesteps == 256
    after = list(model.policy.features_extractor.parameters())
    assert any(not th.equal(b, a) for b, a in zip(before, after, strict=True))


def test_ppo_with_minigrid_img_obs_wrapper_through_sb3_transpose():
    """Plain minigrid ImgObsWrapper: SB3 transposes to channels-first and divides by 255."""
    env = DummyVecEnv([lambda: ImgObsWrapper(gym.make("MiniGrid-Empty-5x5-v0"))])
    model = PPO("CnnPolicy", env, policy_kwargs=POLICY_KWARGS, n_steps=32, batch_size=32, n_epochs=1, seed=0)
    assert isinstance(model.get_env(), VecTransposeImage)
    model.learn(64)
    assert model.num_timesteps == 64


@pytest.mark.slow
def test_ppo_with_the_zoo_hyperparams_solves_doorkey_5x5():
    """About 2.5 minutes on 2 cores: hyperparams/ppo.yml's PPO from scratch reaches 1.0 greedy success on
    20 unseen seeds after 100k steps (seed 0)."""
    zoo = yaml.safe_load((REPO_ROOT / "hyperparams" / "ppo.yml").read_text())["MiniGrid-DoorKey-5x5-v0"]
    ppo_kwargs = {k: v for k, v in zoo.items() if k not in ZOO_ONLY_KEYS}
    model = make_ppo("MiniGrid-DoorKey-5x5-v0", n_envs=zoo["n_envs"], seed=0, **ppo_kwargs)
    model.learn(100_000)
    eval_env = make_env("MiniGrid-DoorKey-5x5-v0")
    successes = 0
    for seed in range(1000, 1020):
        observation, _ = eval_env.reset(seed=seed)
        done = False
        while not done:
            action, _ = model.predict(observation, deterministic=True)
            observation, reward, terminated, truncated, _ = eval_env.step(action)
            done = terminated or truncated
        successes += bool(terminated and reward > 0)
    assert successes >= 16
