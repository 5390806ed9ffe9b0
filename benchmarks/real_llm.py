"""
The LLM expert against a real model: llama.cpp's llama-server serving Gemma 3 270M
(``python -m sb3_llmae.testing.local_llm start``), or any endpoint given by ``--base-url``.

Three measurements, each a table printed and appended as JSON lines to ``--out``:

- ``throughput``: step mode at 1, 2 and 4 workers: requests and completion tokens per second
  (the server's slots bound how many requests run at once);
- ``max-tokens``: seconds per step and cut replies of step mode at several ``max_tokens``;
- ``modes``: per decision mode and env, success (a random policy's alongside), fallbacks, calls,
  prompt and completion tokens per step, seconds per step and tokens per successful episode.

    python benchmarks/real_llm.py --base-url http://127.0.0.1:18080/v1 throughput --episodes 4
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sb3_llmae import generate_demonstrations
from sb3_llmae.demonstrations.containers import N_ACTIONS
from sb3_llmae.envs import make_env
from sb3_llmae.experts.llm import ChatClient, ChatSettings, LLMExpert
from sb3_llmae.testing.local_llm import MODEL_NAME

ENVS = ("MiniGrid-Empty-5x5-v0", "MiniGrid-DoorKey-5x5-v0")
# The decision modes of the table: LLMExpert keywords and the max_tokens each needs.
MODES: dict[str, tuple[dict[str, Any], int]] = {
    "step": ({"mode": "step"}, 48),
    "plan": ({"mode": "plan"}, 256),
    "logprobs": ({"mode": "step", "decision": "logprobs"}, 48),
    "json": ({"mode": "step", "decision": "json"}, 48),
}


def run_generation(
    base_url: str,
    env_id: str,
    episodes: int,
    max_steps: int,
    workers: int = 1,
    expert_kwargs: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Generate demonstrations with the LLM expert and measure them.

    :return: the figures of one run
    """
    client = ChatClient(MODEL_NAME, base_url=base_url, settings=ChatSettings(**(settings or {})), cache=None)
    expert = LLMExpert(client=client, **(expert_kwargs or {}))
    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        demos = generate_demonstrations(
            env_id,
            expert,
            n_episodes=episodes,
            only_successful=False,
            max_episode_steps=max_steps,
            n_workers=workers,
            out_dir=out_dir,
            progress_bar=False,
        )
        wall = time.perf_counter() - started
    stats = demos.stats
    usage = expert.usage()
    steps = max(int(stats["transitions"]), 1)
    successes = int(stats["successes"])
    tokens = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "env": env_id,
        "episodes": episodes,
        "max_steps": max_steps,
        "workers": workers,
        "success_rate": stats["success_rate"],
        "fallback_rate": stats.get("fallback_rate"),
        "steps": steps,
        "calls": usage["calls"],
        "prompt_tokens_per_step": usage["prompt_tokens"] / steps,
        "completion_tokens_per_step": usage["completion_tokens"] / steps,
        "seconds_per_step": wall / steps,
        "calls_per_s": usage["calls"] / wall,
        "completion_tokens_per_s": usage["completion_tokens"] / wall,
        "tokens_per_success": tokens / successes if successes else None,
        "invalid_replies": sum(int(e.get("invalid_replies", 0)) for e in demos.metadata["episodes"]),
        "cut_replies": sum(int(e.get("cut_replies", 0)) for e in demos.metadata["episodes"]),
        "wall_s": wall,
        "episodes_meta": [
            {key: episode.get(key) for key in ("seed", "success", "length", "invalid_replies", "fallbacks")}
            for episode in demos.metadata["episodes"]
        ],
    }


def random_success_rate(env_id: str, episodes: int, max_steps: int, seed: int = 0) -> float:
    """:return: the success rate of uniformly random actions on the same seeds and step limit"""
    rng = random.Random(seed)
    successes = 0
    for episode in range(episodes):
        env = make_env(env_id, max_episode_steps=max_steps)
        env.reset(seed=episode)
        for _ in range(max_steps):
            _, reward, terminated, truncated, _ = env.step(rng.randrange(N_ACTIONS))
            if terminated or truncated:
                successes += int(float(reward) > 0)
                break
        env.close()
    return successes / episodes


def _emit(out: Path, measurement: str, row: dict[str, Any]) -> None:
    with out.open("a") as file:
        file.write(json.dumps({"measurement": measurement, **row}) + "\n")
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "episodes_meta"}
    print(measurement, shown, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--out", type=Path, default=Path("real_llm_measurements.jsonl"))
    parser.add_argument("measurement", choices=("throughput", "max-tokens", "modes"))
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[256, 96, 48, 24])
    parser.add_argument("--modes", nargs="+", choices=tuple(MODES), default=list(MODES))
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    args = parser.parse_args(argv)

    if args.measurement == "throughput":
        for workers in args.workers:
            row = run_generation(args.base_url, ENVS[0], args.episodes, args.max_steps, workers,
                                 settings={"max_tokens": 48})  # fmt: skip
            _emit(args.out, "throughput", row)
    elif args.measurement == "max-tokens":
        for max_tokens in args.max_tokens:
            row = run_generation(args.base_url, ENVS[0], args.episodes, args.max_steps, 1,
                                 settings={"max_tokens": max_tokens})  # fmt: skip
            _emit(args.out, "max-tokens", {"max_tokens": max_tokens, **row})
    else:
        for env_id in args.envs:
            random_rate = random_success_rate(env_id, args.episodes, args.max_steps)
            for mode in args.modes:
                expert_kwargs, max_tokens = MODES[mode]
                row = run_generation(
                    args.base_url,
                    env_id,
                    args.episodes,
                    args.max_steps,
                    max(args.workers),
                    expert_kwargs=expert_kwargs,
                    settings={"max_tokens": max_tokens},
                )
                _emit(args.out, "modes", {"mode": mode, "random_success_rate": random_rate, **row})


if __name__ == "__main__":
    main()
