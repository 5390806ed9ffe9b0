import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import kl_divergence

from sb3_llmae import make_ppo
from sb3_llmae.training import KLPPO
from sb3_llmae.training.critic import critic_modules
from sb3_llmae.training.ppo import load_ppo, saved_algo
from tests.training_helpers import ENV_ID, SMALL_PPO_KWARGS, same_weights, state_of

# One rollout of SMALL_PPO_KWARGS on 2 envs is 64 env steps.
ROLLOUT = 64
# A high learning rate moves the policy far from where it started within a few rollouts.
DRIFTING_PPO_KWARGS = {**SMALL_PPO_KWARGS, "learning_rate": 3e-3, "n_epochs": 8}


def kl_ppo(seed: int = 0, **kwargs) -> KLPPO:
    model = make_ppo(ENV_ID, init="actor", n_envs=2, seed=seed, algo=KLPPO, **{**SMALL_PPO_KWARGS, **kwargs})
    assert isinstance(model, KLPPO)
    return model


def observations(n: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 11, size=(n, 7, 7, 3), dtype=np.uint8)


def kl_to_prior(model: KLPPO) -> float:
    obs, _ = model.policy.obs_to_tensor(observations())
    with th.no_grad():
        return float(
            kl_divergence(model.prior_policy.get_distribution(obs), model.policy.get_distribution(obs)).mean()
        )


def test_with_beta_zero_it_trains_exactly_as_ppo():
    # Each model seeds the global random generators when built: build and train one at a time.
    plain = make_ppo(ENV_ID, init="actor", n_envs=2, seed=0, **SMALL_PPO_KWARGS).learn(2 * ROLLOUT)
    with_prior = kl_ppo(kl_coef=0.0).learn(2 * ROLLOUT)
    assert same_weights(state_of(plain.policy), state_of(with_prior.policy))


def test_a_large_beta_keeps_the_policy_at_the_prior():
    free = kl_ppo(kl_coef=0.0, **DRIFTING_PPO_KWARGS)
    held = kl_ppo(kl_coef=10.0, **DRIFTING_PPO_KWARGS)
    for model in (free, held):
        model.set_prior()
        model.learn(4 * ROLLOUT)
    assert kl_to_prior(free) > 4 * kl_to_prior(held)
    assert held.logger.name_to_value["train/prior_kl"] > 0


def test_the_prior_pulls_a_moved_policy_back():
    model = kl_ppo(kl_coef=10.0, **DRIFTING_PPO_KWARGS)
    model.set_prior()
    prior = state_of(model.prior_policy)
    # Move the actor away from the prior, as BC or another run would.
    with th.no_grad():
        model.policy.action_net.bias.add_(th.tensor([3.0, 0, 0, 0, 0, 0, 0]))
    before = kl_to_prior(model)
    model.learn(4 * ROLLOUT)
    assert kl_to_prior(model) < before / 4
    assert same_weights(prior, state_of(model.prior_policy))  # training never moves the prior


def test_beta_falls_linearly_to_zero_from_the_step_the_prior_was_set():
    model = kl_ppo(kl_coef=0.5, kl_decay_steps=4 * ROLLOUT)
    model.learn(ROLLOUT)
    model.set_prior()
    assert model.current_kl_coef() == 0.5
    model.learn(2 * ROLLOUT, reset_num_timesteps=False)
    assert model.current_kl_coef() == pytest.approx(0.25)
    model.learn(4 * ROLLOUT, reset_num_timesteps=False)
    assert model.current_kl_coef() == 0.0
    assert model.logger.name_to_value["train/kl_coef"] == 0.0


def test_the_critic_learns_at_its_own_rate():
    model = kl_ppo(learning_rate=1e-4, critic_learning_rate=2.5e-4)
    model.learn(ROLLOUT)
    actor_group, critic_group = model.policy.optimizer.param_groups
    assert (actor_group["lr"], critic_group["lr"]) == (1e-4, 2.5e-4)
    critic_ids = {id(p) for module in critic_modules(model.policy) for p in module.parameters()}
    assert {id(p) for p in critic_group["params"]} == critic_ids
    assert not critic_ids & {id(p) for p in actor_group["params"]}
    assert len(actor_group["params"]) + len(critic_group["params"]) == len(list(model.policy.parameters()))


def test_save_and_load_round_trip(tmp_path):
    model = kl_ppo(kl_coef=0.3, kl_decay_steps=10 * ROLLOUT, critic_learning_rate=2.5e-4)
    model.set_prior()
    model.learn(2 * ROLLOUT)
    model.save(tmp_path / "model.zip")

    loaded = KLPPO.load(tmp_path / "model.zip")
    assert same_weights(state_of(loaded.prior_policy), state_of(model.prior_policy))
    assert same_weights(state_of(loaded.policy), state_of(model.policy))
    assert not same_weights(state_of(loaded.prior_policy), state_of(loaded.policy))
    assert (loaded.kl_coef, loaded.kl_decay_steps, loaded.critic_learning_rate) == (0.3, 10 * ROLLOUT, 2.5e-4)
    assert loaded.current_kl_coef() == pytest.approx(model.current_kl_coef())
    assert [g["lr"] for g in loaded.policy.optimizer.param_groups] == [
        SMALL_PPO_KWARGS["learning_rate"],
        2.5e-4,
    ]
    assert saved_algo(tmp_path / "model.zip") is KLPPO
    resumed = load_ppo(tmp_path / "model.zip", ENV_ID, n_envs=2, seed=1)
    assert isinstance(resumed, KLPPO)
    resumed.learn(ROLLOUT, reset_num_timesteps=False)
    assert same_weights(state_of(resumed.prior_policy), state_of(model.prior_policy))


def test_a_kl_ppo_zip_loads_as_plain_ppo_without_its_prior(tmp_path):
    model = kl_ppo(kl_coef=0.3)
    model.learn(ROLLOUT)
    model.save(tmp_path / "model.zip")
    plain = PPO.load(tmp_path / "model.zip")
    assert same_weights(state_of(plain.policy), state_of(model.policy))
    assert saved_algo(tmp_path / "model.zip") is KLPPO
    make_ppo(ENV_ID, n_envs=2, **SMALL_PPO_KWARGS).save(tmp_path / "ppo.zip")
    assert saved_algo(tmp_path / "ppo.zip") is PPO


def test_kl_options_need_the_kl_class():
    with pytest.raises(ValueError, match="pass algo=KLPPO"):
        make_ppo(ENV_ID, n_envs=2, kl_coef=0.1, **SMALL_PPO_KWARGS)


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"kl_coef": -1.0}, "kl_coef"),
        ({"kl_decay_steps": 0}, "kl_decay_steps"),
        ({"critic_learning_rate": 0.0}, "critic"),
    ],
)
def test_bad_options_are_named(option, match):
    with pytest.raises(ValueError, match=match):
        kl_ppo(**option)
