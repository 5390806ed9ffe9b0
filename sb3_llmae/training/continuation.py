"""A model whose steps so far are its own pre-training: its next ``learn(n)`` goes on counting.

SB3's ``learn(n)`` defaults to ``reset_num_timesteps=True``, which restarts ``num_timesteps`` (and the
TensorBoard x-axis) at 0: right for a model that finished a run, wrong for one that comes out of
:func:`~sb3_llmae.training.llm_init.llm_init_ppo`, whose critic warm-up steps are the first steps of
the run the user is about to start.
"""

from __future__ import annotations

from typing import Any, TypeVar

from stable_baselines3.common.base_class import BaseAlgorithm

# The instance attributes that stand in for the class's methods until the next learn().
_HOOKS = ("_setup_learn", "_excluded_save_params")

AlgorithmT = TypeVar("AlgorithmT", bound=BaseAlgorithm)


def continue_on_next_learn(model: AlgorithmT) -> AlgorithmT:
    """
    Make the model's next ``learn()`` continue its step count and its TensorBoard run, whatever its
    ``reset_num_timesteps`` (as ``learn(n, reset_num_timesteps=False)`` does). Only that call: later
    ones behave as SB3's always do. The model saves and loads as a plain model of its class (a loaded
    model resets on ``learn(n)``, as every SB3 model does: pass ``reset_num_timesteps=False``).

    :param model: a model whose ``num_timesteps`` so far are its own pre-training (e.g. critic warm-up)
    :return: the model
    """
    if model.num_timesteps == 0:
        return model
    algo = type(model)

    def setup_learn(
        total_timesteps: int,
        callback: Any = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> Any:
        forget_continuation(model)
        return algo._setup_learn(model, total_timesteps, callback, False, tb_log_name, progress_bar)

    def excluded_save_params() -> list[str]:
        return [*algo._excluded_save_params(model), *_HOOKS]

    vars(model).update(_setup_learn=setup_learn, _excluded_save_params=excluded_save_params)
    return model


def continues_on_next_learn(model: BaseAlgorithm) -> bool:
    """:return: whether the model's next ``learn()`` continues its count (:func:`continue_on_next_learn`)"""
    return "_setup_learn" in vars(model)


def forget_continuation(model: BaseAlgorithm) -> None:
    """:param model: a model whose next ``learn()`` is to obey ``reset_num_timesteps`` again"""
    for name in _HOOKS:
        vars(model).pop(name, None)
