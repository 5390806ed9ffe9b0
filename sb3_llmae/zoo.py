"""
Run an rl-zoo3 script with the plugin's env ids registered, for the scripts that have no
``--gym-packages`` option (``record_video``, ``record_training``)::

    python -m sb3_llmae.zoo record_video --algo ppo --env sb3_llmae/MiniGrid-DoorKey-5x5-v0 -f logs -n 200

The first argument names a module of ``rl_zoo3`` (``record_video``, ``enjoy``, ``plots.plot_train``,
...); the rest are its own arguments.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

from sb3_llmae.envs import register_envs


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
