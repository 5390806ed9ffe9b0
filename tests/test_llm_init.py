import inspect

import numpy as np
import pytest
from stable_baselines3 import PPO

from sb3_llmae import MinigridFeaturesExtractor, generate_demonstrations, make_vec_env
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.experts.planner import PlannerExpert
from sb3_llmae.training.bc import pretrain_bc
from sb3_llmae.training.config import BCConfig, EvalConfig
from sb3_llmae.training.critic import actor_parameters, critic_modules, warm_up_critic
from sb3_llmae.training.evaluation import evaluate_success
from sb3_llmae.training.kl_ppo import KLPPO
from sb3_llmae.training.llm_init import llm_init_ppo
from tests.training_helpers import (
    ENV_ID,
    FAST_BC_KWARGS,
    SMALL_PPO_KWARGS,
    empty_5x5_demos,
    same_weights,
    small_ppo,
    state_of,
)

# The scripted expert needs 5 steps: failing policies need not play Empty-5x5's 100.
MAX_EPISODE_STEPS = 20
# One rollout of SMALL_PPO_KWARGS on 2 envs is 64 env steps.
ROLLOUT = 64
BC_KWARGS = {**FAST_BC_KWARGS, "eval_episodes": 2}

# What llm_init_ppo runs BC with, given BC_KWARGS, MAX_EPISODE_STEPS and seed=0
MATCHING_BC = BCConfig(seed=0, **FAST_BC_KWARGS)
MATCHING_EVALUATION = EvalConfig(n_episodes=2, max_episode_steps=MAX_EPISODE_STEPS)


@pytest.fixture(scope="module")
def demos():
    return empty_5x5_demos()


def init_ppo(demos, bc_kwargs=None, **kwargs):
    return llm_init_ppo(
        ENV_ID,
        demos,
        n_envs=2,
        max_episode_steps=MAX_EPISODE_STEPS,
        seed=0,
        bc_kwargs={**BC_KWARGS, **(bc_kwargs or {})},
        **SMALL_PPO_KWARGS,
        **kwargs,
    )


def actor_state(model: PPO) -> dict:
    return {str(i): param.detach().clone() for i, param in enumerate(actor_parameters(model.policy))}


def critic_state(model: PPO) -> dict:
    return {
        f"{i}.{k}": v
        for i, module in enumerate(critic_modules(model.policy))
        for k, v in state_of(module).items()
    }


def test_returns_a_ppo_that_plays_like_the_expert(demos):
    model = init_ppo(demos, bc_kwargs={"stop_at_success": 1.0}, critic_warmup_steps=0)
    assert type(model) is PPO  # no KL options: plain PPO
    assert isinstance(model.policy.features_extractor, MinigridFeaturesExtractor)
    assert evaluate_success(model, ENV_ID, seeds=range(3)).success_rate == 1.0


def test_actor_init_keeps_the_bc_actor_and_draws_a_fresh_critic(demos):
    model = init_ppo(demos, init="actor", critic_warmup_steps=0)
    # the same BC on the same model, by hand
    reference = small_ppo(seed=0)
    initial_critic = critic_state(reference)
    pretrain_bc(reference, demos, MATCHING_BC, evaluation=MATCHING_EVALUATION)

    assert not model.policy.share_features_extractor
    assert same_weights(actor_state(model), actor_state(reference))
    assert same_weights(critic_state(reference), initial_critic)  # BC leaves the critic alone...
    assert not same_weights(critic_state(model), initial_critic)  # ...and init="actor" redraws it


def test_full_init_keeps_every_weight_bc_leaves(demos):
    model = init_ppo(demos, init="full", critic_warmup_steps=0)
    reference = small_ppo(seed=0, init="full")
    initial_features = state_of(reference.policy.features_extractor)
    pretrain_bc(reference, demos, MATCHING_BC, evaluation=MATCHING_EVALUATION)

    assert model.policy.share_features_extractor
    assert same_weights(state_of(model.policy), state_of(reference.policy))
    # the critic reads the features BC trained
    assert not same_weights(state_of(model.policy.features_extractor), initial_features)


@pytest.mark.parametrize("init", ["actor", "full"])
def test_critic_warm_up_fits_the_value_function_only(demos, init):
    model = init_ppo(demos, init=init, critic_warmup_steps=0)
    assert model.num_timesteps == 0
    actor_before, critic_before = actor_state(model), critic_state(model)

    warm_up_critic(model, ROLLOUT + 1)  # rounded up to whole rollouts

    assert model.num_timesteps == 2 * ROLLOUT
    assert same_weights(actor_state(model), actor_before)
    assert not same_weights(critic_state(model), critic_before)
    assert all(param.requires_grad for param in model.policy.parameters())  # the actor is thawed again


def test_warm_up_steps_are_counted_and_training_continues_the_count(demos):
    model = init_ppo(demos, critic_warmup_steps=ROLLOUT)
    assert model.num_timesteps == ROLLOUT
    actor_before = actor_state(model)
    model.learn(ROLLOUT, reset_num_timesteps=False)
    assert model.num_timesteps == 2 * ROLLOUT
    assert not same_weights(actor_state(model), actor_before)


def test_save_and_load_give_the_same_greedy_actions(demos, tmp_path):
    model = init_ppo(demos, critic_warmup_steps=ROLLOUT)
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip")

    observations = np.concatenate(
        [demos.transitions.obs, np.random.default_rng(0).integers(0, 11, size=(32, 7, 7, 3), dtype=np.uint8)]
    )
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0],
        model.predict(observations, deterministic=True)[0],
    )
    assert loaded.num_timesteps == model.num_timesteps == ROLLOUT
    assert same_weights(state_of(loaded.policy), state_of(model.policy))


def test_accepts_a_vec_env_demonstration_directory_and_policy_kwargs(demos, tmp_path):
    save_demonstrations(demos, tmp_path / "demos")
    env = make_vec_env(ENV_ID, n_envs=2, seed=1)
    model = llm_init_ppo(
        env,
        tmp_path / "demos",
        bc_kwargs={**BC_KWARGS, "stop_at_success": None, "epochs": 1},
        critic_warmup_steps=0,
        policy_kwargs={"net_arch": {"pi": [16], "vf": [8]}},
        **SMALL_PPO_KWARGS,
    )
    assert model.env is env
    assert model.policy.mlp_extractor.latent_dim_pi == 16 and model.policy.mlp_extractor.latent_dim_vf == 8
    assert isinstance(model.policy.pi_features_extractor, MinigridFeaturesExtractor)


def test_invalid_init_is_a_clear_error(demos):
    with pytest.raises(ValueError, match=r"Unknown init 'critic'.*scratch, actor, full"):
        llm_init_ppo(ENV_ID, demos, init="critic")


def test_mismatched_demonstrations_are_refused():
    flat_demos = empty_5x5_demos(n_episodes=2, obs_mode="flat")
    with pytest.raises(ValueError, match="policy expects"):
        llm_init_ppo(make_vec_env(ENV_ID, n_envs=2), flat_demos)


def test_an_env_id_is_made_in_the_demonstrations_observation_mode():
    flat_demos = empty_5x5_demos(n_episodes=2, obs_mode="flat")
    model = llm_init_ppo(
        ENV_ID,
        flat_demos,
        bc_kwargs={"stop_at_success": None, "epochs": 1, "batch_size": 4},
        critic_warmup_steps=0,
        n_envs=1,
    )
    assert model.observation_space.shape == flat_demos.transitions.obs.shape[1:]


@pytest.mark.slow
def test_llm_init_ppo_keeps_and_improves_a_good_prior_on_doorkey():
    env_id = "MiniGrid-DoorKey-5x5-v0"
    demos = generate_demonstrations(env_id, PlannerExpert(), n_episodes=30, progress_bar=False)
    model = llm_init_ppo(
        env_id,
        demos,
        bc_kwargs={"stop_at_success": 0.8, "learning_rate": 1e-3},
        critic_warmup_steps=1024,
        seed=0,
    )
    eval_seeds = range(10_000, 10_020)
    assert evaluate_success(model, env_id, eval_seeds).success_rate >= 0.6
    model.learn(10_000, reset_num_timesteps=False)
    assert model.num_timesteps == 1024 + 10_240
    assert evaluate_success(model, env_id, eval_seeds).success_rate >= 0.9


def test_bc_warm_up_and_training_share_one_tensorboard_run(demos, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = init_ppo(
        demos,
        bc_kwargs={"stop_at_success": 1.0},
        critic_warmup_steps=ROLLOUT,
        tensorboard_log=str(tmp_path),
        tb_log_name="llm",
    )
    model.learn(ROLLOUT, reset_num_timesteps=False)
    runs = list(tmp_path.iterdir())
    assert [run.name for run in runs] == ["llm_1"]
    (events,) = runs[0].glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
    accumulator.Reload()
    scalars = set(accumulator.Tags()["scalars"])
    assert {"bc/loss", "bc/accuracy", "bc/success_rate", "bc/epoch", "train/value_loss"} <= scalars
    assert accumulator.Scalars("bc/success_rate")[-1].value == 1.0
    assert max(event.step for event in accumulator.Scalars("train/value_loss")) == 2 * ROLLOUT


def test_a_typed_bc_config_and_its_mapping_give_the_same_model(demos):
    typed = llm_init_ppo(
        ENV_ID,
        demos,
        bc_kwargs=BCConfig(epochs=2, seed=0, **FAST_BC_KWARGS),
        critic_warmup_steps=0,
        n_envs=2,
        seed=0,
        **SMALL_PPO_KWARGS,
    )
    mapped = init_ppo(demos, bc_kwargs={"epochs": 2}, critic_warmup_steps=0)
    assert same_weights(state_of(typed.policy), state_of(mapped.policy))


def test_kl_options_make_a_klppo_and_a_bad_bc_setting_fails_first(demos):
    model = init_ppo(demos, bc_kwargs={"epochs": 1}, critic_warmup_steps=0, kl_coef=0.5)
    assert isinstance(model, KLPPO) and model.kl_coef == 0.5
    with pytest.raises(ValueError, match=r"Unknown BC setting.*learning_rat\b"):
        init_ppo(demos, bc_kwargs={"learning_rat": 1e-3})
    with pytest.raises(ValueError, match="kl_coef is an option of KLPPO"):
        init_ppo(demos, algo=PPO, kl_coef=0.5)


def test_llm_init_ppo_takes_at_most_10_named_parameters():
    parameters = inspect.signature(llm_init_ppo).parameters.values()
    named = [parameter for parameter in parameters if parameter.kind is not parameter.VAR_KEYWORD]
    assert len(named) <= 10
