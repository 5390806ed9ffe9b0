"""sb3-contrib: MiniGrid action masks, MaskablePPO (BC, llm_init_ppo, evaluation, callbacks), RecurrentPPO."""

from __future__ import annotations

import numpy as np
import pytest
from minigrid.core.actions import Actions
from minigrid.core.world_object import Ball, Box, Door, Key
from sb3_contrib import MaskablePPO, RecurrentPPO
from sb3_contrib.common.maskable.utils import get_action_masks

from sb3_llmae import (
    SampleEfficiencyCallback,
    VisitationHeatmapCallback,
    llm_init_ppo,
    make_ppo,
    make_vec_env,
    pretrain_bc,
)
from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.masks import valid_actions
from sb3_llmae.training import evaluate_success, evaluation
from tests.training_helpers import ENV_ID, FAST_BC_KWARGS, SMALL_PPO_KWARGS, empty_5x5_demos


def agent_facing(obj, carrying=None):
    """:return: an Empty-5x5 env whose agent, at (1, 1) facing east, has ``obj`` in front (at (2, 1))"""
    env = make_env("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    minigrid = unwrap_minigrid(env)
    minigrid.grid.set(2, 1, obj)
    minigrid.carrying = carrying
    return minigrid


def allowed(minigrid) -> set[int]:
    return {int(action) for action in np.flatnonzero(valid_actions(minigrid))}


MOVES = {Actions.left, Actions.right, Actions.forward}


def test_masks_follow_the_state_in_front_of_the_agent():
    assert allowed(agent_facing(None)) == MOVES  # nothing to pick up, toggle or drop
    assert allowed(agent_facing(None, carrying=Key("yellow"))) == {*MOVES, Actions.drop}
    assert allowed(agent_facing(Key("yellow"))) == {*MOVES, Actions.pickup}
    assert allowed(agent_facing(Ball("red"), carrying=Key("yellow"))) == MOVES  # hands full, cell full
    assert allowed(agent_facing(Door("yellow", is_locked=True))) == MOVES
    assert allowed(agent_facing(Door("yellow", is_locked=True), carrying=Key("blue"))) == MOVES
    assert allowed(agent_facing(Door("yellow", is_locked=True), carrying=Key("yellow"))) == {
        *MOVES,
        Actions.toggle,
    }
    assert allowed(agent_facing(Door("yellow", is_open=True))) == {*MOVES, Actions.toggle}
    assert allowed(agent_facing(Box("green"))) == {*MOVES, Actions.toggle, Actions.pickup}


def test_masked_vec_env_gives_masks_to_maskable_ppo():
    env = make_vec_env("MiniGrid-DoorKey-5x5-v0", n_envs=2, seed=0, action_masks=True)
    env.reset()
    masks = get_action_masks(env)
    assert masks.shape == (2, len(Actions)) and not masks[:, Actions.done].any()
    model = make_ppo("MiniGrid-DoorKey-5x5-v0", algo=MaskablePPO, n_envs=2, seed=0, **SMALL_PPO_KWARGS)
    assert isinstance(model, MaskablePPO)
    model.learn(64)


def test_evaluation_passes_masks_to_a_maskable_policy(monkeypatch):
    model = make_ppo(ENV_ID, algo=MaskablePPO, n_envs=2, seed=0, **SMALL_PPO_KWARGS)
    given = []
    original = model.predict

    def spy(observation, **kwargs):
        given.append(kwargs.get("action_masks"))
        return original(observation, **kwargs)

    monkeypatch.setattr(model, "predict", spy)
    result = evaluate_success(model, ENV_ID, seeds=[0, 1], max_episode_steps=5)
    assert len(given) == 5 and all(mask is not None and not mask[:, Actions.done].any() for mask in given)
    assert given[0].shape == (2, len(Actions))
    assert result.lengths == (5, 5)


def test_bc_and_llm_init_on_maskable_ppo(tmp_path):
    demos = empty_5x5_demos()
    model = make_ppo(ENV_ID, algo=MaskablePPO, n_envs=2, seed=0, **SMALL_PPO_KWARGS)
    report = pretrain_bc(model, demos, {"epochs": 30, "stop_at_success": 1.0, **FAST_BC_KWARGS})
    assert report.success_rate == 1.0

    model = llm_init_ppo(
        ENV_ID,
        demos,
        algo=MaskablePPO,
        bc_kwargs={**FAST_BC_KWARGS, "stop_at_success": 1.0, "epochs": 30},
        critic_warmup_steps=64,
        n_envs=2,
        seed=0,
        **SMALL_PPO_KWARGS,
    )
    assert isinstance(model, MaskablePPO) and model.num_timesteps == 64
    assert evaluate_success(model, ENV_ID, seeds=range(3)).success_rate == 1.0
    # the callbacks work on it too
    model.learn(
        64,
        reset_num_timesteps=False,
        callback=[
            SampleEfficiencyCallback(eval_freq=64, n_eval_episodes=2, log_dir=tmp_path),
            VisitationHeatmapCallback(save_freq=64, log_dir=tmp_path),
        ],
    )
    assert (tmp_path / "eval_logs" / "eval_step128.npz").exists()
    assert np.load(tmp_path / "heatmaps" / "visits_step128.npy").sum() == 64


def test_recurrent_ppo_evaluation_carries_lstm_states(monkeypatch):
    model = make_ppo(ENV_ID, algo=RecurrentPPO, n_envs=2, seed=0, n_steps=32, batch_size=32)
    assert isinstance(model, RecurrentPPO)
    calls = []
    original = model.predict

    def spy(observation, state=None, episode_start=None, **kwargs):
        calls.append((state, episode_start.copy()))
        return original(observation, state=state, episode_start=episode_start, **kwargs)

    monkeypatch.setattr(model, "predict", spy)
    evaluate_success(model, ENV_ID, seeds=[0, 1], max_episode_steps=3)
    assert [starts.tolist() for _, starts in calls] == [[True, True], [False, False], [False, False]]
    first_state, _ = calls[0]
    second_state, _ = calls[1]
    assert not np.any(first_state[0])  # zeros at the start
    assert np.any(second_state[0])  # then the states the LSTM returned


def test_policy_memory_keeps_the_states_of_running_episodes_only():
    model = make_ppo(ENV_ID, algo=RecurrentPPO, n_envs=2, seed=0, n_steps=32, batch_size=32)
    memory = evaluation.PolicyMemory(model, 3)
    kwargs = memory.predict_kwargs([0, 2])
    assert kwargs["state"][0].shape[1] == 2 and kwargs["episode_start"].tolist() == [True, True]
    layers, _, hidden = model.policy.lstm_hidden_state_shape
    new = tuple(np.full((layers, 2, hidden), value, dtype=np.float32) for value in (1.0, 2.0))
    memory.update([0, 2], new)
    assert memory.predict_kwargs([2])["state"][1][0, 0, 0] == 2.0
    assert memory.predict_kwargs([1])["episode_start"].tolist() == [True]


def test_bc_into_a_recurrent_policy_is_refused_with_the_reason():
    model = make_ppo(ENV_ID, algo=RecurrentPPO, n_envs=2, seed=0, n_steps=32, batch_size=32)
    with pytest.raises(TypeError, match="whole demonstration sequences"):
        pretrain_bc(model, empty_5x5_demos(2), {"epochs": 1, "batch_size": 4})
