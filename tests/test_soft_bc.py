"""Soft-target BC: the cloned policy's action probabilities approach the teacher's distribution."""

import numpy as np
import pytest
import torch as th

from sb3_llmae import Demonstrations, pretrain_bc
from sb3_llmae.cli import main
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.training.soft_bc import train_soft_targets
from tests.training_helpers import empty_5x5_demos, small_ppo


def policy_probs(policy, obs: np.ndarray) -> np.ndarray:
    with th.no_grad():
        distribution = policy.get_distribution(policy.obs_to_tensor(obs)[0])
        return distribution.distribution.probs.cpu().numpy()


def teacher_distribution(acts: np.ndarray) -> np.ndarray:
    """A teacher that is 60% sure of the action it took and spreads the rest over two others."""
    targets = np.zeros((len(acts), 7), dtype=np.float32)
    targets[np.arange(len(acts)), acts] = 0.6
    targets[np.arange(len(acts)), (acts + 1) % 3] += 0.3
    targets[np.arange(len(acts)), 6] += 0.1
    return targets


def test_cloned_probabilities_approach_the_teacher_distribution():
    transitions = empty_5x5_demos(n_episodes=4).transitions
    obs, acts = transitions.obs, transitions.acts.astype(np.int64)
    targets = teacher_distribution(acts)
    model = small_ppo(seed=0)
    before = np.abs(policy_probs(model.policy, obs) - targets).max()
    optimizer = th.optim.Adam(model.policy.parameters(), lr=3e-3)
    loss = train_soft_targets(
        model.policy, optimizer, obs, targets, batch_size=8, rng=np.random.default_rng(0), n_epochs=150
    )
    after = policy_probs(model.policy, obs)
    assert before > 0.3
    assert np.abs(after - targets).max() < 0.05
    # The cross-entropy approaches the teacher's own entropy, its lower bound.
    teacher_entropy = float(-(targets * np.log(np.where(targets > 0, targets, 1))).sum(axis=1).mean())
    assert loss == pytest.approx(teacher_entropy, abs=0.02)


def test_one_hot_targets_clone_the_actions():
    transitions = empty_5x5_demos(n_episodes=4).transitions
    obs, acts = transitions.obs, transitions.acts.astype(np.int64)
    model = small_ppo(seed=1)
    optimizer = th.optim.Adam(model.policy.parameters(), lr=3e-3)
    targets = np.eye(7, dtype=np.float32)[acts]
    train_soft_targets(model.policy, optimizer, obs, targets, 8, np.random.default_rng(0), n_batches=200)
    assert (policy_probs(model.policy, obs).argmax(axis=1) == acts).all()


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (np.full((3, 7), 1 / 7), "3 soft targets"),
        (np.full((20, 7), 0.5), "sum to 1"),
        (np.full((20, 7), np.nan), "finite"),
    ],
)
def test_bad_targets_are_clear(targets, message):
    transitions = empty_5x5_demos(n_episodes=4).transitions
    model = small_ppo()
    optimizer = th.optim.Adam(model.policy.parameters())
    with pytest.raises(ValueError, match=message):
        train_soft_targets(
            model.policy, optimizer, transitions.obs, targets, 8, np.random.default_rng(0), n_epochs=1
        )


def with_teacher(demos: Demonstrations) -> Demonstrations:
    probs = [teacher_distribution(np.asarray(t.acts, dtype=np.int64)) for t in demos.trajectories]
    return Demonstrations(trajectories=demos.trajectories, metadata=demos.metadata, action_probs=probs)


def test_pretrain_bc_with_soft_targets_approaches_the_teacher():
    demos = with_teacher(empty_5x5_demos(n_episodes=4))
    targets = demos.soft_targets()
    soft, hard = small_ppo(seed=0), small_ppo(seed=0)
    settings = {
        "epochs": 150,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "ent_weight": 0.0,
        "stop_at_success": None,
    }
    pretrain_bc(soft, demos, {**settings, "soft_targets": True})
    pretrain_bc(hard, demos, settings)
    obs = demos.transitions.obs
    assert np.abs(policy_probs(soft.policy, obs) - targets).max() < 0.05
    # Hard targets drive the taken action towards certainty instead.
    assert policy_probs(hard.policy, obs).max(axis=1).min() > 0.9


def test_soft_targets_without_distributions_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="--decision logprobs"):
        pretrain_bc(small_ppo(), empty_5x5_demos(n_episodes=4), {"soft_targets": True, "batch_size": 8})
    save_demonstrations(empty_5x5_demos(n_episodes=4), tmp_path / "demos")
    args = ["pretrain", "--env", "MiniGrid-Empty-5x5-v0", "--demos", str(tmp_path / "demos"),
            "--out", str(tmp_path / "m.zip"), "--soft-targets", "--bc-batch-size", "8"]  # fmt: skip
    assert main(args) == 2
    assert "drop soft_targets (--soft-targets)" in capsys.readouterr().err
