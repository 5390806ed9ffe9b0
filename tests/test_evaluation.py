import numpy as np
import pytest
from minigrid.core.actions import Actions

from sb3_llmae.envs import make_env
from sb3_llmae.training.evaluation import evaluate_success, play_episodes
from tests.conftest import EMPTY_5X5_SOLUTION

ENV_ID = "MiniGrid-Empty-5x5-v0"


class ScriptedPredictor:
    """Stands in for a policy: plays one action sequence in every env at once, then turns left."""

    def __init__(self, actions: tuple[int, ...], obs_mode: str = "image") -> None:
        self.actions = actions
        self.observation_space = make_env(ENV_ID, obs_mode=obs_mode).observation_space
        self.calls = 0

    def predict(self, observations: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        assert observations.shape[1:] == self.observation_space.shape
        action = self.actions[self.calls] if self.calls < len(self.actions) else Actions.left
        self.calls += 1
        return np.full(len(observations), int(action)), None


def test_successful_episodes_are_counted_per_seed():
    result = evaluate_success(ScriptedPredictor(EMPTY_5X5_SOLUTION), ENV_ID, seeds=[3, 1, 2])
    assert result.seeds == (3, 1, 2)
    assert result.successes == (True, True, True)
    assert result.success_rate == 1.0
    assert result.lengths == (5, 5, 5)
    # MiniGrid's reward: 1 - 0.9 * steps / max_steps, with max_steps 100 on Empty-5x5
    assert result.mean_return == pytest.approx(1 - 0.9 * 5 / 100)


def test_failed_episodes_run_to_the_step_limit():
    always_forward = ScriptedPredictor((Actions.forward,) * 100)
    result = evaluate_success(always_forward, ENV_ID, seeds=range(4), max_episode_steps=12)
    assert result.success_rate == 0.0
    assert result.lengths == (12,) * 4
    assert result.mean_return == 0.0
    assert always_forward.calls == 12  # all episodes stepped together: one batched call per step


def test_observation_layout_mismatch_is_a_clear_error():
    flat_predictor = ScriptedPredictor(EMPTY_5X5_SOLUTION, obs_mode="flat")
    with pytest.raises(ValueError, match=r"obs_mode=.image.*policy expects"):
        evaluate_success(flat_predictor, ENV_ID, seeds=[0], obs_mode="image")


def test_no_seed_is_an_error():
    with pytest.raises(ValueError, match="at least one seed"):
        evaluate_success(ScriptedPredictor(EMPTY_5X5_SOLUTION), ENV_ID, seeds=[])


def test_play_episodes_calls_the_frame_hook_after_each_reset_and_step():
    frames: dict[int, int] = {}

    def count(index, env):
        frames[index] = frames.get(index, 0) + 1
        assert env.unwrapped.step_count == frames[index] - 1

    played = list(
        play_episodes(
            ScriptedPredictor((Actions.forward,) * 100),
            ENV_ID,
            seeds=[5, 6],
            max_episode_steps=4,
            on_frame=count,
        )
    )
    assert sorted(episode.index for episode in played) == [0, 1]
    assert [episode.seed for episode in sorted(played, key=lambda episode: episode.index)] == [5, 6]
    assert all(episode.length == 4 and not episode.success for episode in played)
    assert frames == {0: 5, 1: 5}  # the reset and 4 steps each


def test_play_episodes_stops_at_the_step_limit_and_needs_a_seed():
    played = play_episodes(ScriptedPredictor(EMPTY_5X5_SOLUTION), ENV_ID, seeds=[0], max_episode_steps=3)
    (episode,) = played
    assert (episode.length, episode.success) == (3, False)
    with pytest.raises(ValueError, match="at least one seed"):
        list(play_episodes(ScriptedPredictor(EMPTY_5X5_SOLUTION), ENV_ID, seeds=[]))
