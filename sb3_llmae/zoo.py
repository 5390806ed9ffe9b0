"""
Run an rl-zoo3 script with the plugin's env ids registered, for the scripts that have no
``--gym-packages`` option (``record_video``, ``record_training``)::

    python -m sb3_llmae.zoo record_video --algo ppo --env sb3_llmae/MiniGrid-DoorKey-5x5-v0 -f logs -n 200

The first argument names a module of ``rl_zoo3`` (``record_video``, ``enjoy``, ``plots.plot_train``,
...); the rest are its own arguments.

The plugin's rl-zoo3 hyperparameter files (``hyperparams/`` in a checkout) ship inside the package;
``hyperparams_path`` gives the installed path for ``--conf-file``::

    python -m rl_zoo3.train --algo ppo --env MiniGrid-DoorKey-5x5-v0 --gym-packages sb3_llmae \
        --conf-file "$(python -c 'import sb3_llmae.zoo as z; print(z.hyperparams_path("ppo"))')"
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from sb3_llmae.envs import register_envs

# package data (setup.cfg); in a checkout, a link to the top-level hyperparams/
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"


def hyperparams_names() -> list[str]:
    """:return: the names of the rl-zoo3 hyperparameter files the package ships (``ppo``, ``llmae_ppo``)"""
    return sorted(path.stem for path in HYPERPARAMS_DIR.glob("*.yml"))


def hyperparams_path(name: str) -> Path:
    """
    :param name: a hyperparameter file's name without ``.yml``: ``ppo`` (PPO from scratch) or
        ``llmae_ppo`` (LLM-initialised PPO)
    :return: the file's path in the installed package (in a checkout: the top-level ``hyperparams/``),
        for rl-zoo3's ``--conf-file``
    :raises ValueError: for a name the package does not ship, listing those it does
    """
    path = HYPERPARAMS_DIR / f"{name}.yml"
    if not path.is_file():
        raise ValueError(
            f"No hyperparameter file {name!r}: the package ships {', '.join(hyperparams_names())}"
        )
    return path


def run_zoo_script(argv: Sequence[str]) -> None:
    """
    :param argv: an ``rl_zoo3`` module name, then its arguments
    :raises SystemExit: with a usage message when no module is named
    """
    if not argv or argv[0].startswith("-"):
        raise SystemExit(f"usage: python -m sb3_llmae.zoo RL_ZOO3_SCRIPT [ARGS...]\n{__doc__}")
    register_envs()
    module = argv[0] if argv[0].startswith("rl_zoo3.") else f"rl_zoo3.{argv[0]}"
    sys.argv = [module, *argv[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_zoo_script(sys.argv[1:])
