"""
LLM demonstration generation against the local OpenAI-compatible test server (100 ms per call):
episodes played at once (``n_workers``) against one at a time, and a re-run served from the cache.
The "model" answers with the planner's actions, so every episode succeeds and the run is realistic
in length. Run from the repository root:

    python -m benchmarks.llm_generation [--episodes 32] [--workers 8] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import datasets

from sb3_llmae import generate_demonstrations
from sb3_llmae.experts.llm.client import ChatClient, ChatSettings
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.testing.oracle import OracleResponder
from sb3_llmae.testing.server import FakeOpenAIServer


def timed_run(
    server: FakeOpenAIServer, args: argparse.Namespace, n_workers: int, cache: Path | None, out_dir: Path
) -> tuple[float, int, int, float]:
    """
    :return: wall seconds, server calls, cache hits, success rate of one generation run
    """
    client = ChatClient("oracle", base_url=server.base_url, cache=cache, settings=ChatSettings(max_tokens=64))
    expert = LLMExpert(mode=args.mode, client=client)
    server.responder = OracleResponder(args.env, range(args.episodes), expert)
    calls_before = server.request_count
    start = time.perf_counter()
    demos = generate_demonstrations(
        args.env, expert, args.episodes, n_workers=n_workers, out_dir=out_dir, progress_bar=False
    )
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed, server.request_count - calls_before, client.usage.cache_hits, demos.stats["success_rate"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-5x5-v0")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server takes per call")
    parser.add_argument("--mode", choices=("step", "plan"), default="step")
    args = parser.parse_args()
    datasets.disable_progress_bars()

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(latency_s=args.latency) as server:
        root = Path(tmp)
        # Without a cache for the speed comparison: at temperature 0 a serial run re-uses the replies to
        # states that recur across episodes, which would flatter it.
        serial = timed_run(server, args, 1, None, root / "serial")
        parallel = timed_run(server, args, args.workers, None, root / "parallel")
        cache = root / "responses.sqlite"
        filling = timed_run(server, args, args.workers, cache, root / "filling")
        rerun = timed_run(server, args, args.workers, cache, root / "rerun")
    rows = [
        ("workers=1, no cache", serial),
        (f"workers={args.workers}, no cache", parallel),
        (f"workers={args.workers}, filling a cache", filling),
        (f"workers={args.workers}, identical re-run", rerun),
    ]
    print(f"{args.env}, {args.episodes} episodes, {args.mode} mode, {args.latency * 1000:.0f} ms per call")
    for name, (seconds, calls, hits, success) in rows:
        print(f"  {name:<32} {seconds:7.2f} s  server calls {calls:5d}  cache hits {hits:5d}  ", end="")
        print(f"success {success:.0%}")
    print(f"speed-up of workers={args.workers} over workers=1: {serial[0] / parallel[0]:.1f}x (target >= 5x)")
    print(f"identical re-run: {rerun[1]} server calls in {rerun[0]:.2f} s (target: 0 calls, < 2 s)")


if __name__ == "__main__":
    main()
