import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_llmae.training.temperature import (
    MAX_LOGIT_SCALE,
    cap_action_entropy,
    mean_action_entropy,
    scale_action_logits,
)
from tests.training_helpers import empty_5x5_demos, small_ppo


@pytest.fixture(scope="module")
def observations():
    return np.asarray(empty_5x5_demos(4).transitions.obs)


def greedy_actions(policy, observations):
    return policy.predict(observations, deterministic=True)[0]


def policy_with_distinct_logits():
    # SB3 draws the action head with gain 0.01, all logits ~0: give it logits that differ, as BC does
    policy = small_ppo().policy
    th.manual_seed(0)
    th.nn.init.normal_(policy.action_net.weight, std=0.3)
    return policy


def test_a_cap_sharpens_to_it_and_keeps_every_greedy_action(observations):
    policy = policy_with_distinct_logits()
    greedy_before = greedy_actions(policy, observations)
    assert mean_action_entropy(policy, observations) > 1.0

    scale = cap_action_entropy(policy, observations, max_entropy=0.6)

    assert scale > 1.0
    assert mean_action_entropy(policy, observations) == pytest.approx(0.6, abs=1e-3)
    np.testing.assert_array_equal(greedy_actions(policy, observations), greedy_before)


def test_a_policy_under_the_cap_is_left_as_it_is(observations):
    policy = policy_with_distinct_logits()
    entropy = mean_action_entropy(policy, observations)
    weights = [parameter.detach().clone() for parameter in policy.action_net.parameters()]
    assert cap_action_entropy(policy, observations, max_entropy=entropy + 0.01) == 1.0
    assert all((a == b).all() for a, b in zip(weights, policy.action_net.parameters(), strict=True))


def test_scaling_the_logits_is_a_temperature(observations):
    policy = policy_with_distinct_logits()
    sharper = mean_action_entropy(policy, observations, logit_scale=3.0)
    scale_action_logits(policy, 3.0)
    assert mean_action_entropy(policy, observations) == pytest.approx(sharper, rel=1e-5)
    with pytest.raises(ValueError, match="logit_scale must be a positive number"):
        scale_action_logits(policy, 0.0)


def test_a_cap_needs_a_discrete_action_space(observations):
    policy = small_ppo().policy
    policy.action_space = spaces.Box(-1, 1, (2,))
    with pytest.raises(ValueError, match=r"discrete action space.*max_entropy=None"):
        cap_action_entropy(policy, observations, 0.6)


def test_an_untrained_head_is_scaled_as_far_as_allowed_with_a_warning(observations, caplog):
    policy = small_ppo().policy  # logits ~0: uniform over 7 actions, ~1.95 nats
    assert cap_action_entropy(policy, observations, 0.1) == MAX_LOGIT_SCALE
    assert "cannot be brought down" in caplog.text
