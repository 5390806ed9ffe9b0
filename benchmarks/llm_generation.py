"""
LLM demonstration generation at scale, against the local OpenAI-compatible test server (100 ms per call):
episode throughput at 1/8/32/64 workers, a re-run served from the cache, and (``--transports``) threads
against asyncio for raw requests in flight. The "model" answers with the planner's actions, so every
episode succeeds and the run is realistic in length. Run from the repository root:

    python -m benchmarks.llm_generation [--env MiniGrid-Empty-5x5-v0] [--workers 1 8 32 64] [--transports]

The server runs in a process of its own, as a provider would: in the benchmark's process its request
handling would compete with the client for the interpreter lock and be counted as the client's cost.
Throughput is measured from the start of the first episode to the end of the last (so a run's fixed
start-up and the final save are left out); the wall time of each run is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import openai
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae import generate_demonstrations
from sb3_llmae.experts.base import Expert, ExpertEpisode
from sb3_llmae.experts.llm import ChatClient, ChatSettings
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.testing.oracle import OracleResponder
from sb3_llmae.testing.server import FakeOpenAIServer, Responder


def _serve(responder: Responder, latency_s: float, urls: Any, stop: Any) -> None:
    with FakeOpenAIServer(responder, latency_s=latency_s) as server:
        urls.put(server.base_url)
        stop.wait()


@contextmanager
def server_process(responder: Responder, latency_s: float) -> Iterator[str]:
    """
    :param responder: the server's responder
    :param latency_s: seconds per reply
    :return: the base URL of a ``FakeOpenAIServer`` running in a child process
    """
    context = multiprocessing.get_context("fork")
    urls, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(responder, latency_s, urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=30)
    finally:
        stop.set()
        process.join(timeout=10)


class TimedExpert(Expert):
    """Wraps an expert to note when the first episode started and the last one ended."""

    def __init__(self, inner: Expert) -> None:
        self.inner = inner
        self.first_start = float("inf")
        self.last_end = 0.0
        self._lock = threading.Lock()

    def start_episode(self, env: MiniGridEnv, seed: int) -> ExpertEpisode:
        with self._lock:
            self.first_start = min(self.first_start, time.perf_counter())
        return _TimedEpisode(self.inner.start_episode(env, seed), self)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


class _TimedEpisode(ExpertEpisode):
    def __init__(self, inner: ExpertEpisode, timer: TimedExpert) -> None:
        super().__init__(inner.env, inner.seed)
        self.inner = inner
        self.timer = timer

    def act(self) -> int:
        return self.inner.act()

    def observe(self, action: int, reward: float, terminated: bool, truncated: bool) -> None:
        self.inner.observe(action, reward, terminated, truncated)
        if terminated or truncated:
            with self.timer._lock:
                self.timer.last_end = max(self.timer.last_end, time.perf_counter())


def timed_run(
    base_url: str,
    args: argparse.Namespace,
    n_workers: int,
    n_episodes: int,
    cache: Path | None,
    out_dir: Path,
) -> dict[str, float]:
    """
    :return: episodes per second while episodes ran, wall seconds, this process's CPU milliseconds per
        step, server calls, cache hits, success rate
    """
    client = ChatClient("oracle", base_url=base_url, cache=cache, settings=ChatSettings(max_tokens=64))
    expert = TimedExpert(LLMExpert(mode=args.mode, client=client))
    start, cpu_start = time.perf_counter(), time.process_time()
    demos = generate_demonstrations(
        args.env, expert, n_episodes, n_workers=n_workers, out_dir=out_dir, progress_bar=False
    )
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    client.close()
    return {
        "episodes": n_episodes,
        "throughput": n_episodes / (expert.last_end - expert.first_start),
        "wall_s": wall_s,
        "cpu_ms_per_step": 1000 * cpu_s / (client.usage.calls + client.usage.cache_hits),
        "calls": client.usage.calls,
        "cache_hits": client.usage.cache_hits,
        "success": demos.stats["success_rate"],
    }


def compare_transports(base_url: str, n_in_flight: int, calls_each: int) -> dict[str, float]:
    """
    Raw chat requests, ``n_in_flight`` at a time: ``ChatClient`` on threads against ``openai.AsyncOpenAI``
    on asyncio tasks.

    :return: requests per second of each
    """
    messages = [{"role": "user", "content": "Which way to the goal?"}]
    client = ChatClient("oracle", base_url=base_url, settings=ChatSettings(max_tokens=64))

    def work() -> None:
        for _ in range(calls_each):
            client.complete(messages)

    threads = [threading.Thread(target=work) for _ in range(n_in_flight)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    threaded = n_in_flight * calls_each / (time.perf_counter() - start)
    client.close()

    async def run_async() -> float:
        async_client = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0)

        async def task() -> None:
            for _ in range(calls_each):
                await async_client.chat.completions.create(
                    model="oracle",
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0.0,
                    max_tokens=64,
                )

        begin = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(n_in_flight)))
        elapsed = time.perf_counter() - begin
        await async_client.close()
        return n_in_flight * calls_each / elapsed

    return {"threads": threaded, "asyncio": asyncio.run(run_async())}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-Empty-5x5-v0")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--episodes-per-worker", type=int, default=4)
    parser.add_argument("--min-episodes", type=int, default=16, help="fewest episodes of a run")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server takes per call")
    parser.add_argument("--mode", choices=("step", "plan"), default="step")
    parser.add_argument("--transports", action="store_true", help="also compare threads with asyncio")
    args = parser.parse_args()
    datasets.disable_progress_bars()

    counts = {w: max(w * args.episodes_per_worker, args.min_episodes) for w in args.workers}
    seeds = range(max(counts.values()))
    oracle = OracleResponder(args.env, seeds, LLMExpert(model="oracle", base_url="http://127.0.0.1:1/v1"))
    with tempfile.TemporaryDirectory() as tmp, server_process(oracle, args.latency) as base_url:
        root = Path(tmp)
        # Without a cache for the speed comparison: at temperature 0 a serial run re-uses the replies to
        # states that recur across episodes, which would flatter it.
        runs = {w: timed_run(base_url, args, w, n, None, root / f"workers_{w}") for w, n in counts.items()}
        top = max(args.workers)
        cache = root / "responses.sqlite"
        filling = timed_run(base_url, args, top, counts[top], cache, root / "filling")
        rerun = timed_run(base_url, args, top, counts[top], cache, root / "rerun")
        transports = compare_transports(base_url, 32, 10) if args.transports else None

    print(f"{args.env}, {args.mode} mode, {args.latency * 1000:.0f} ms per call, server in its own process")
    base = runs[min(args.workers)]["throughput"]
    print(
        f"  {'run':<34} {'episodes':>8} {'episodes/s':>10} {'speed-up':>8} {'wall s':>7} "
        f"{'CPU ms/step':>11} {'calls':>6} {'hits':>6}"
    )
    rows = [(f"workers={w}, no cache", r) for w, r in runs.items()]
    rows += [(f"workers={top}, filling a cache", filling), (f"workers={top}, identical re-run", rerun)]
    for name, r in rows:
        print(
            f"  {name:<34} {r['episodes']:8.0f} {r['throughput']:10.2f} {r['throughput'] / base:7.1f}x "
            f"{r['wall_s']:7.2f} {r['cpu_ms_per_step']:11.1f} {r['calls']:6.0f} {r['cache_hits']:6.0f}  "
            f"success {r['success']:.0%}"
        )
    print(f"identical re-run: {rerun['calls']:.0f} server calls in {rerun['wall_s']:.2f} s (target: 0 calls)")
    if transports is not None:
        print(
            f"raw requests, 32 in flight: threads {transports['threads']:.0f}/s, "
            f"asyncio {transports['asyncio']:.0f}/s (ideal {32 / args.latency:.0f}/s)"
        )


if __name__ == "__main__":
    main()
