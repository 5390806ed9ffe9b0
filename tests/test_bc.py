import inspect
from dataclasses import replace

import numpy as np
import pytest
from stable_baselines3 import DQN

from sb3_llmae import BCConfig, generate_demonstrations, make_ppo, make_vec_env
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.experts import PlannerExpert
from sb3_llmae.training import EvalConfig
from sb3_llmae.training.bc import pretrain_bc, score_on_demonstrations
from sb3_llmae.training.config import BC_EVALUATION
from sb3_llmae.training.evaluation import evaluate_success
from tests.training_helpers import ENV_ID, FAST_BC_KWARGS, empty_5x5_demos, same_weights, small_ppo, state_of

# The scripted expert needs 5 steps: failing policies need not play Empty-5x5's 100.
MAX_EPISODE_STEPS = 20
EVALUATION = EvalConfig(n_episodes=4, max_episode_steps=MAX_EPISODE_STEPS)


@pytest.fixture(scope="module")
def demos():
    return empty_5x5_demos()


def test_bc_trains_the_models_own_policy_to_imitate(demos):
    model = small_ppo()
    policy = model.policy
    loss_before, accuracy_before = score_on_demonstrations(policy, demos.transitions)
    assert (
        evaluate_success(model, ENV_ID, seeds=range(5), max_episode_steps=MAX_EPISODE_STEPS).success_rate == 0
    )

    report = pretrain_bc(
        model,
        demos,
        BCConfig(epochs=20, eval_every=5, stop_at_success=None, patience=None, **FAST_BC_KWARGS),
        evaluation=EvalConfig(n_episodes=5, max_episode_steps=MAX_EPISODE_STEPS),
        eval_env_id=ENV_ID,
    )

    assert model.policy is policy
    assert report.epochs == 20 and not report.stopped_early
    assert report.loss < loss_before
    assert report.accuracy == 1.0 > accuracy_before
    assert report.success_rate == 1.0
    # the success is the PPO model's own: nothing to copy back
    assert evaluate_success(model, ENV_ID, seeds=range(5)).success_rate == 1.0
    assert [checkpoint.epoch for checkpoint in report.history] == [5, 10, 15, 20]


def test_bc_moves_the_actor_only(demos):
    model = small_ppo()
    critic_before = state_of(model.policy.value_net)
    actor_before = state_of(model.policy.action_net)
    pretrain_bc(model.policy, demos, BCConfig(epochs=2, **FAST_BC_KWARGS))
    assert same_weights(state_of(model.policy.value_net), critic_before)
    assert not same_weights(state_of(model.policy.action_net), actor_before)


def test_early_stopping_at_the_success_threshold(demos):
    model = small_ppo()
    report = pretrain_bc(
        model,
        demos,
        BCConfig(epochs=200, stop_at_success=0.5, eval_every=2, patience=None, **FAST_BC_KWARGS),
        evaluation=EVALUATION,
    )
    assert report.stopped_early
    assert report.epochs < 200
    assert report.success_rate >= 0.5
    assert all(checkpoint.success_rate < 0.5 for checkpoint in report.history[:-1])
    assert report.history[-1].epoch == report.epochs


def test_without_threshold_or_evaluation_env_success_is_not_measured(demos):
    report = pretrain_bc(small_ppo(), demos, BCConfig(epochs=1, stop_at_success=None, **FAST_BC_KWARGS))
    assert report.success_rate is None
    assert report.history[0].success_rate is None


def test_demonstrations_from_a_directory(demos, tmp_path):
    save_demonstrations(demos, tmp_path / "demos")
    report = pretrain_bc(small_ppo(), tmp_path / "demos", BCConfig(epochs=1, **FAST_BC_KWARGS))
    assert report.epochs == 1


def test_mismatched_demonstrations_name_both_spaces():
    flat_demos = empty_5x5_demos(n_episodes=2, obs_mode="flat")
    model = small_ppo()
    with pytest.raises(ValueError) as error:
        pretrain_bc(model, flat_demos, BCConfig(epochs=1, batch_size=4))
    message = str(error.value)
    assert flat_demos.metadata["observation_space"]["repr"] in message
    assert str(model.observation_space) in message


def test_invalid_arguments(demos):
    with pytest.raises(ValueError, match="fewer than batch_size"):
        pretrain_bc(small_ppo(), demos, BCConfig(epochs=1, batch_size=1000))
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        pretrain_bc(small_ppo(), demos, {"epochs": 0})
    with pytest.raises(ValueError, match="Unknown BC setting"):
        pretrain_bc(small_ppo(), demos, {"epoch": 1})
    dqn = DQN("MlpPolicy", make_vec_env(ENV_ID, n_envs=1), buffer_size=100)
    with pytest.raises(TypeError, match="ActorCriticPolicy"):
        pretrain_bc(dqn, demos, BCConfig(epochs=1))


def test_a_jump_past_the_threshold_is_measured_again_more_finely(demos):
    settings = BCConfig(epochs=40, stop_at_success=0.25, eval_every=8, patience=None, **FAST_BC_KWARGS)
    # Empty-5x5's layout is fixed: success jumps from 0 to 1 within one interval of 8 epochs
    coarse = pretrain_bc(small_ppo(), demos, replace(settings, refine_chunks=1), evaluation=EVALUATION)
    assert coarse.refined_from is None and coarse.epochs % 8 == 0

    refined = pretrain_bc(small_ppo(), demos, replace(settings, refine_chunks=4), evaluation=EVALUATION)
    assert refined.refined_from == coarse.history[-1]  # same seed: the same jump
    assert refined.success_rate >= 0.25 and refined.stopped_early
    assert coarse.epochs - 8 < refined.epochs <= coarse.epochs
    epochs = [checkpoint.epoch for checkpoint in refined.history]
    assert epochs == sorted(epochs) and 2 in np.diff(epochs)  # quarter intervals
    assert all(checkpoint.success_rate < 0.25 for checkpoint in refined.history[:-1])


def test_progress_bar_shows_epochs_loss_and_success(demos, capsys):
    pretrain_bc(
        small_ppo(),
        demos,
        BCConfig(epochs=2, eval_every=1, **FAST_BC_KWARGS),
        evaluation=EvalConfig(n_episodes=2, max_episode_steps=MAX_EPISODE_STEPS),
        eval_env_id=ENV_ID,
        progress_bar=True,
    )
    shown = capsys.readouterr().err
    assert "BC" in shown and "2/2" in shown and "loss=" in shown and "greedy success=" in shown


def test_a_plain_mapping_of_earlier_versions_gives_the_same_run(demos):
    config = BCConfig(epochs=4, stop_at_success=1.0, eval_every=2, **FAST_BC_KWARGS)
    typed = pretrain_bc(small_ppo(), demos, config, evaluation=EVALUATION)
    mapping = {
        "epochs": 4,
        "stop_at_success": 1.0,
        "eval_every": 2,
        "eval_episodes": 4,
        "eval_max_episode_steps": MAX_EPISODE_STEPS,
        **FAST_BC_KWARGS,
    }
    assert pretrain_bc(small_ppo(), demos, mapping) == typed


def test_pretrain_bc_takes_at_most_8_parameters():
    parameters = inspect.signature(pretrain_bc).parameters
    assert len(parameters) <= 8
    assert not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values())


def test_the_bc_progress_bar_never_goes_backwards_when_an_interval_is_refined(demos, monkeypatch):
    import sb3_llmae.training.bc as bc_module

    positions: list[float] = []
    postfixes: list[str] = []
    real_tqdm = bc_module.tqdm

    class RecordingBar(real_tqdm):  # type: ignore[misc, valid-type]
        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            positions.append(self.n)
            postfixes.append(str(ordered_dict))
            return super().set_postfix(ordered_dict, refresh, **kwargs)

    monkeypatch.setattr(bc_module, "tqdm", RecordingBar)
    model = small_ppo()
    # the set-up of test_a_jump_past_the_threshold_is_measured_again_more_finely: a jump is refined
    settings = BCConfig(epochs=40, stop_at_success=0.25, eval_every=8, refine_chunks=4, **FAST_BC_KWARGS)
    report = pretrain_bc(model, demos, settings, evaluation=EVALUATION, progress_bar=True)
    assert report.refined_from is not None, "this set-up refines the interval that reached the threshold"
    assert positions == sorted(positions)
    assert any("refining" in postfix for postfix in postfixes)


def test_patience_stops_bc_and_the_best_weights_are_kept(demos):
    model = small_ppo()
    config = BCConfig(epochs=200, stop_at_success=None, eval_every=1, patience=2, **FAST_BC_KWARGS)
    report = pretrain_bc(model, demos, config, evaluation=EVALUATION, eval_env_id=ENV_ID)

    rates = [checkpoint.success_rate for checkpoint in report.history]
    assert report.stopped_early and len(rates) < 200
    # stopped by the first 2 evaluations in a row that beat no earlier one
    first_best = rates.index(max(rates))
    assert len(rates) == first_best + 3
    latest_best = len(rates) - 1 - rates[::-1].index(max(rates))
    assert report.success_rate == max(rates) and report.epochs == report.history[latest_best].epoch
    # the weights kept are the best evaluation's: measured again, they play as well
    assert evaluate_success(
        model, ENV_ID, EVALUATION.seeds, max_episode_steps=MAX_EPISODE_STEPS
    ).success_rate == (report.success_rate)


def test_the_entropy_cap_keeps_greedy_actions_and_is_reported(demos):
    uncapped = small_ppo()
    capped = small_ppo()
    config = BCConfig(epochs=3, stop_at_success=None, max_entropy=None, **FAST_BC_KWARGS)
    plain = pretrain_bc(uncapped, demos, config)
    sharp = pretrain_bc(capped, demos, replace(config, max_entropy=0.1))
    assert plain.logit_scale == 1.0 and plain.entropy > 0.1
    assert sharp.logit_scale > 1.0 and sharp.entropy == pytest.approx(0.1, abs=1e-3)
    observations = np.asarray(demos.transitions.obs)
    np.testing.assert_array_equal(
        uncapped.predict(observations, deterministic=True)[0],
        capped.predict(observations, deterministic=True)[0],
    )
    assert sharp.accuracy == plain.accuracy


def test_default_bc_on_doorkey_planner_demos_acts_right_greedily():
    # make demo's case: before the defaults of issue 16, the greedy policy failed every held-out seed
    env_id = "MiniGrid-DoorKey-5x5-v0"
    demos = generate_demonstrations(env_id, PlannerExpert(), 20, seed=0, progress_bar=False)
    model = make_ppo(env_id, init="actor", seed=0)
    report = pretrain_bc(model, demos)
    seeds = EvalConfig().seeds  # where training is reported: apart from BC's own evaluation seeds
    assert not set(seeds) & set(BC_EVALUATION.seeds)
    assert evaluate_success(model, env_id, seeds).success_rate >= 0.9
    assert evaluate_success(model, env_id, seeds, deterministic=False).success_rate >= 0.9
    assert report.logit_scale == 1.0  # no entropy cap by default
