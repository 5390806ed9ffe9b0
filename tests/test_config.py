"""The typed settings: their checks and the plain mappings users pass for them."""

import pytest

from sb3_llmae.training.config import BCConfig, EvalConfig, KLConfig, split_bc_settings


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BCConfig(epochs=0), "BCConfig.epochs must be a positive integer"),
        (lambda: BCConfig(batch_size=2.5), "BCConfig.batch_size must be a positive integer"),
        (lambda: BCConfig(learning_rate=0.0), "BCConfig.learning_rate must be a positive number"),
        (lambda: BCConfig(ent_weight=-1.0), "BCConfig.ent_weight must be a number >= 0"),
        (lambda: BCConfig(stop_at_success=1.5), r"stop_at_success must lie in \(0, 1\]"),
        (lambda: EvalConfig(seed=-1), "EvalConfig.seed must be >= 0"),
        (lambda: EvalConfig(n_episodes=0), "EvalConfig.n_episodes must be a positive integer"),
        (lambda: EvalConfig(max_episode_steps=0), "max_episode_steps must be a positive integer"),
        (lambda: KLConfig(kl_coef=-0.1), "KLConfig.kl_coef must be a number >= 0"),
        (lambda: KLConfig(kl_decay_steps=0), "KLConfig.kl_decay_steps must be a positive integer"),
        (lambda: KLConfig(critic_learning_rate=0.0), "critic_learning_rate must be positive or None"),
    ],
)
def test_invalid_settings_name_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_settings_are_frozen_and_give_their_seeds():
    evaluation = EvalConfig(seed=10, n_episodes=3)
    assert evaluation.seeds == (10, 11, 12)
    with pytest.raises(AttributeError):
        evaluation.seed = 0  # type: ignore[misc]
    assert KLConfig().is_default() and not KLConfig(kl_coef=0.1).is_default()


def test_a_mapping_of_bc_settings_with_the_keys_of_earlier_versions():
    config, evaluation, progress_bar = split_bc_settings(
        {"epochs": 3, "eval_episodes": 2, "eval_seed": 7, "eval_max_episode_steps": 9, "progress_bar": True}
    )
    assert config == BCConfig(epochs=3)
    assert evaluation == {"n_episodes": 2, "seed": 7, "max_episode_steps": 9}
    assert progress_bar is True
    assert split_bc_settings(None) == (BCConfig(), {}, None)
    typed = BCConfig(learning_rate=1e-4)
    assert split_bc_settings(typed) == (typed, {}, None)


def test_an_unknown_bc_setting_names_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"Unknown BC setting\(s\) epoch: valid ones are batch_size, .*epochs"
    ):
        split_bc_settings({"epoch": 3})
