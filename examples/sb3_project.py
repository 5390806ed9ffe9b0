"""
sb3-llmae dropped into an existing Stable-Baselines3 script: the plugin's env ids (image observations,
``agent_pos`` and ``is_success`` in ``info``) for SB3's own ``make_vec_env``, the MiniGrid features
extractor, the LLM prior as a callback (BC on demonstrations + critic warm-up when training starts), and
the sample-efficiency and visitation-heatmap callbacks. Five lines differ from a plain SB3 script; they
are marked ``# sb3-llmae``.

    python examples/sb3_project.py --steps 20000 --out sb3_project_output

Demonstrations come from the planner here; from an LLM: ``sb3-llmae generate --expert llm ...`` and
``--demos DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch as th
from stable_baselines3.common.env_util import make_vec_env

import sb3_llmae  # sb3-llmae: registers the sb3_llmae/<MiniGrid id> envs
from sb3_llmae import (
    LLMInitCallback,
    SampleEfficiencyCallback,
    VisitationHeatmapCallback,
    generate_demonstrations,
    make_ppo,
)
from sb3_llmae.experts import PlannerExpert


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-5x5-v0")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--demos", help="demonstrations directory (default: 20 planner episodes)")
    parser.add_argument("--eval-freq", type=int, default=5_000)
    parser.add_argument("--out", default="sb3_project_output")
    args = parser.parse_args()
    th.set_num_threads(1)
    out = Path(args.out)
    demos = args.demos or generate_demonstrations(
        args.env, PlannerExpert(), 20, seed=0, out_dir=out / "demonstrations", progress_bar=False
    )

    # The user's own SB3 code: SB3's make_vec_env, on the plugin's wrapped id.
    env = make_vec_env(f"sb3_llmae/{args.env}", n_envs=4, seed=0)  # sb3-llmae: the env id
    # make_ppo is PPO("MlpPolicy", env, policy_kwargs=sb3_llmae.training.default_policy_kwargs(...), ...)
    # with the MinigridFeaturesExtractor; any PPO kwargs pass through.
    model = make_ppo(env, seed=0, tensorboard_log=str(out / "tensorboard"))  # sb3-llmae: the extractor
    callbacks = [
        LLMInitCallback(demos),  # sb3-llmae: BC prior + critic warm-up at the start of learn()
        SampleEfficiencyCallback(args.env, eval_freq=args.eval_freq, log_dir=out),  # sb3-llmae
        VisitationHeatmapCallback(save_freq=args.eval_freq, log_dir=out),  # sb3-llmae
    ]
    model.learn(args.steps, callback=callbacks)
    model.save(out / "model.zip")
    print(f"sb3-llmae {sb3_llmae.__version__}: {model.num_timesteps} env steps")
    print(f"evaluations: {out / 'eval_logs' / 'evaluations.csv'}; heatmaps: {out / 'heatmaps'}")


if __name__ == "__main__":
    main()
