"""
An expert for BabyAI levels: minigrid's own ``BabyAIBot`` (``minigrid.utils.baby_ai_bot``) as an
:class:`~sb3_llmae.experts.base.Expert`.

BabyAI missions are sentences of the BabyAI grammar ("put the red ball next to a door on your left,
then open the grey door"), which every level verifies with its own instruction objects
(``env.instrs``). The bot reads those objects, not the text, so it plays every mission the grammar
can say. It sees the grid as the agent explores it (its own visibility mask), and it adapts its
plan to the action actually taken, so it also follows a noisy hand
(:class:`~sb3_llmae.experts.noisy.NoisyExpert`).
"""

from __future__ import annotations

from typing import Any

from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.minigrid_env import MiniGridEnv
from minigrid.utils.baby_ai_bot import BabyAIBot, DisappearedBoxError

from sb3_llmae.experts.base import Expert, ExpertEpisode, NoWayForwardError, UnsupportedEnvError

# Levels minigrid's documentation lists as beyond the bot (``BabyAIBot``'s docstring).
BOT_UNSOLVABLE_LEVELS: frozenset[str] = frozenset(
    {
        "BabyAI-PutNextS5N2Carrying-v0",
        "BabyAI-PutNextS6N3Carrying-v0",
        "BabyAI-PutNextS7N4Carrying-v0",
        "BabyAI-KeyInBox-v0",
    }
)


class BabyAIBotError(NoWayForwardError):
    """The BabyAI bot found no way forward (e.g. a random action opened a box, which destroys its content)."""


def env_id_of(env: MiniGridEnv) -> str:
    """
    :param env: an unwrapped MiniGrid env
    :return: its registered id, or its class name when it was not made by ``gym.make``
    """
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env).__name__


def is_babyai_level(env: MiniGridEnv) -> bool:
    """
    :param env: an unwrapped MiniGrid env, reset
    :return: whether it is a BabyAI level, whose mission comes with instruction objects (``env.instrs``)
    """
    return isinstance(env, RoomGridLevel) and getattr(env, "instrs", None) is not None


class BabyAIEpisode(ExpertEpisode):
    """
    One episode of :class:`BabyAIExpert`: a fresh ``BabyAIBot``, replanned once after every env step.

    The bot must see every step (it tracks what the last action changed), including the steps a
    wrapper such as :class:`~sb3_llmae.experts.noisy.NoisyExpert` plays without asking: so the
    replanning happens in :meth:`observe`, and :meth:`act` returns the suggestion it left.

    :param env: the unwrapped BabyAI level, already reset
    :param seed: the seed the env was reset with
    """

    def __init__(self, env: MiniGridEnv, seed: int) -> None:
        super().__init__(env, seed)
        self.bot = BabyAIBot(env)
        self.n_steps = 0
        self.n_overridden = 0
        self.error: BabyAIBotError | None = None
        self.suggestion = self._replan(None)

    def act(self) -> int:
        """
        :return: the bot's suggestion for the current state
        :raises BabyAIBotError: if the bot found no way forward after the last step
        """
        if self.error is not None:
            raise self.error
        return self.suggestion

    def observe(self, action: int, reward: float, terminated: bool, truncated: bool) -> None:
        """Replan after the step, telling the bot the action taken when it was not its suggestion."""
        self.n_steps += 1
        if terminated or truncated or self.error is not None:
            return
        # The bot reads None as "my suggestion was taken"; another action makes it plan to undo it.
        overridden = action != self.suggestion
        self.n_overridden += overridden
        self.suggestion = self._replan(action if overridden else None)

    def summary(self) -> dict[str, Any]:
        """:return: how many steps were not the bot's, its searches, and why it gave up (if it did)"""
        return {
            "overridden_steps": self.n_overridden,
            "bfs_searches": self.bot.bfs_counter,
            "gave_up": None if self.error is None else str(self.error),
        }

    def _replan(self, action_taken: int | None) -> int:
        try:
            return int(self.bot.replan(action_taken))
        # The bot states its dead ends as assertions (e.g. "Forward cell has to be a door" once a
        # random toggle closed the door it was opening) and as DisappearedBoxError.
        except (DisappearedBoxError, AssertionError, IndexError) as error:
            self.error = BabyAIBotError(
                f"The BabyAI bot found no way forward on {env_id_of(self.env)} (seed {self.seed}, "
                f"step {self.n_steps}, mission {self.env.mission!r}): {error or type(error).__name__}"
            )
            return int(self.env.actions.done)


class BabyAIExpert(Expert):
    """
    Plays BabyAI levels (``BabyAI-*`` ids) with minigrid's ``BabyAIBot``, which solves every level of
    the BabyAI paper (measured here: 100/100 episodes of GoToLocal, PickupLoc, Open, UnlockPickup,
    PutNextLocal and Synth, see ``benchmarks/babyai_expert.py``). Without an LLM and without cost, it
    gives demonstrations for BabyAI missions, alone or, wrapped in
    :class:`~sb3_llmae.experts.noisy.NoisyExpert`, of LLM quality.
    """

    def start_episode(self, env: MiniGridEnv, seed: int) -> BabyAIEpisode:
        """
        :param env: the unwrapped BabyAI level, just reset with ``seed``
        :param seed: the reset seed
        :return: the episode's controller
        :raises UnsupportedEnvError: if the env is no BabyAI level, or one the bot cannot solve
        """
        name = env_id_of(env)
        if not is_babyai_level(env):
            raise UnsupportedEnvError(
                f"BabyAIExpert plays BabyAI levels (BabyAI-* ids), whose missions come as instruction "
                f"objects; {name} (mission {env.mission!r}) is none: use PlannerExpert."
            )
        if name in BOT_UNSOLVABLE_LEVELS:
            raise UnsupportedEnvError(
                f"BabyAIExpert cannot play {name}: minigrid's BabyAIBot does not solve it (its documentation "
                f"lists {', '.join(sorted(BOT_UNSOLVABLE_LEVELS))})."
            )
        return BabyAIEpisode(env, seed)

    def describe(self) -> dict[str, Any]:
        """:return: ``{"kind": "babyai_bot"}``"""
        return {"kind": "babyai_bot"}
