import numpy as np
import pytest

from sb3_llmae import generate_demonstrations, load_demonstrations
from sb3_llmae.cli import main
from sb3_llmae.demonstrations.rollout import rollout_episode
from sb3_llmae.experts import NoisyExpert, PlannerExpert
from tests.conftest import ScriptedExpert

DOORKEY_8X8 = "MiniGrid-DoorKey-8x8-v0"
# An expert that only turns left: every action other than 'left' (0) is a random one.
ALWAYS_LEFT = ScriptedExpert(actions=())


def actions_of(expert, env_id, seed, max_episode_steps):
    return rollout_episode(env_id, expert, seed, max_episode_steps=max_episode_steps).trajectory.acts


@pytest.mark.parametrize("epsilon", [0.0, 0.3, 1.0])
def test_random_actions_are_taken_at_the_given_rate(epsilon):
    expert = NoisyExpert(ALWAYS_LEFT, epsilon, seed=3)
    records = [rollout_episode("MiniGrid-Empty-5x5-v0", expert, s, max_episode_steps=100) for s in range(20)]
    steps = sum(r.length for r in records)
    random_steps = sum(r.expert_summary["noise"]["random_actions"] for r in records)
    assert steps >= 1500  # random moves may reach the goal early
    assert random_steps / steps == pytest.approx(epsilon, abs=0.03)
    # The expert's own action is 'left' (0); random ones are uniform over the 7 actions.
    acts = np.concatenate([r.trajectory.acts for r in records])
    assert np.mean(acts != 0) == pytest.approx(epsilon * 6 / 7, abs=0.03)
    for record in records:
        noise = record.expert_summary["noise"]
        assert all(
            record.trajectory.acts[i] == 0 for i in range(record.length) if i not in noise["random_steps"]
        )


def test_same_seed_same_episode_other_seed_other_episode():
    first = actions_of(NoisyExpert(PlannerExpert(), 0.5, seed=1), DOORKEY_8X8, 5, 100)
    again = actions_of(NoisyExpert(PlannerExpert(), 0.5, seed=1), DOORKEY_8X8, 5, 100)
    other_noise = actions_of(NoisyExpert(PlannerExpert(), 0.5, seed=2), DOORKEY_8X8, 5, 100)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_noise)
    # Each episode has its own random steps: seeds 5 and 6 do not share a sequence.
    assert not np.array_equal(
        rollout_episode(
            DOORKEY_8X8, NoisyExpert(ALWAYS_LEFT, 0.5, 1), 5, max_episode_steps=30
        ).trajectory.acts,
        rollout_episode(
            DOORKEY_8X8, NoisyExpert(ALWAYS_LEFT, 0.5, 1), 6, max_episode_steps=30
        ).trajectory.acts,
    )


def test_the_planner_recovers_from_every_state_random_actions_lead_to():
    # Random toggles close open doors, drops leave the key in the only corridor to the goal (seed
    # 26), pickups take it again: the planner must finish every episode. One plan per episode may
    # be all it is allowed for its own deviations.
    expert = NoisyExpert(PlannerExpert(max_plans_per_episode=1), 0.5, seed=0)
    records = [rollout_episode(DOORKEY_8X8, expert, s, max_episode_steps=640) for s in range(100)]
    assert all(r.success for r in records)
    random_actions = sum(r.expert_summary["noise"]["random_actions"] for r in records)
    assert random_actions / sum(r.length for r in records) == pytest.approx(0.5, abs=0.05)
    assert all(r.expert_summary["noise"]["expert_gave_up_at"] is None for r in records)


def test_a_dead_end_left_by_random_actions_ends_the_episode_randomly_not_the_run():
    # UnlockPickup seed 13: a random toggle opens (destroys) the box to pick up.
    expert = NoisyExpert(PlannerExpert(), 0.3, seed=0)
    record = rollout_episode("MiniGrid-UnlockPickup-v0", expert, 13, max_episode_steps=200)
    noise = record.expert_summary["noise"]
    assert not record.success and record.length == 200
    assert noise["expert_gave_up_at"] is not None
    assert set(range(noise["expert_gave_up_at"], 200)) <= set(noise["random_steps"])


def test_noise_settings_are_recorded_in_the_metadata():
    demos = generate_demonstrations(
        DOORKEY_8X8, NoisyExpert(PlannerExpert(), 0.5, seed=4), 4, max_episode_steps=50, progress_bar=False
    )
    assert demos.metadata["expert"] == {
        "kind": "noisy",
        "epsilon": 0.5,
        "seed": 4,
        "expert": PlannerExpert().describe(),
    }
    assert all("random_steps" in episode["noise"] for episode in demos.metadata["episodes"])


@pytest.mark.parametrize("epsilon", [-0.1, 1.5])
def test_epsilon_must_be_a_probability(epsilon):
    with pytest.raises(ValueError, match="epsilon is a probability"):
        NoisyExpert(PlannerExpert(), epsilon)


def test_only_experts_are_wrapped():
    with pytest.raises(TypeError, match="wraps an Expert"):
        NoisyExpert("planner", 0.5)  # type: ignore[arg-type]


def test_generate_noise_flag(tmp_path, capsys):
    out = tmp_path / "demos"
    args = ["generate", "--env", DOORKEY_8X8, "--episodes", "4", "--max-episode-steps", "50"]
    assert main([*args, "--noise", "0.5", "--noise-seed", "2", "--no-progress", "--out", str(out)]) == 0
    assert "noise: 0.5 (seed 2)" in capsys.readouterr().out
    expert = load_demonstrations(out).metadata["expert"]
    assert (expert["kind"], expert["epsilon"], expert["seed"]) == ("noisy", 0.5, 2)
