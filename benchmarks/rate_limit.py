"""
Client-side rate limiting against a local server that answers 429 beyond its requests-per-minute limit:
a 32-worker generation run with the client's ``rpm`` set to the server's limit, against the ideal time
(calls / limit), and the share of requests refused. Run from the repository root:

    python -m benchmarks.rate_limit [--rpm 300] [--workers 32] [--episodes 60] [--unlimited]

``--unlimited`` also runs the same generation without a client-side limit, where only 429s and the
provider's headers slow the workers down.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import datasets

from sb3_llmae import generate_demonstrations
from sb3_llmae.experts.llm import ChatClient, ChatSettings, LLMRequestError
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.testing.oracle import OracleResponder
from sb3_llmae.testing.server import FakeOpenAIServer


def limited_run(args: argparse.Namespace, client_rpm: float | None, out_dir: Path) -> str:
    """
    :return: one line: calls, requests the server refused, wall time against the ideal
    """
    with FakeOpenAIServer(latency_s=args.latency, rate_limit_rpm=args.rpm) as server:
        settings = ChatSettings(rpm=client_rpm, max_retries=args.max_retries, max_tokens=64)
        client = ChatClient("oracle", base_url=server.base_url, settings=settings)
        expert = LLMExpert(mode="step", client=client)
        server.responder = OracleResponder(args.env, range(args.episodes), expert)
        start = time.perf_counter()
        outcome = "finished"
        try:
            generate_demonstrations(
                args.env, expert, args.episodes, n_workers=args.workers, out_dir=out_dir, progress_bar=False
            )
        except LLMRequestError:
            outcome = f"FAILED (a request was refused {args.max_retries + 1} times)"
        wall_s = time.perf_counter() - start
        arrivals = sorted(request.received_at for request in server.requests)
        refused = server.rate_limited_count
        client.close()
    calls = client.usage.calls
    ideal_s = calls * 60.0 / args.rpm
    name = f"client rpm={client_rpm:g}" if client_rpm is not None else "no client limit"
    return (
        f"  {name:<18} {outcome}: calls {calls}, requests {len(arrivals)}, 429s {refused} "
        f"({refused / len(arrivals):.1%}), wall {wall_s:.1f} s, ideal {ideal_s:.1f} s (calls / limit), "
        f"wall/ideal {wall_s / ideal_s:.2f}, first-to-last request {arrivals[-1] - arrivals[0]:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-Empty-5x5-v0")
    parser.add_argument("--rpm", type=float, default=300.0, help="the server's limit, and the client's")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server takes per call")
    parser.add_argument("--max-retries", type=int, default=20)
    parser.add_argument("--unlimited", action="store_true", help="also run without a client-side limit")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    # Every refused request would log a warning.
    logging.getLogger("sb3_llmae.experts.llm.transport").setLevel(logging.ERROR)

    print(
        f"{args.env}, {args.episodes} episodes, {args.workers} workers, server limit {args.rpm:g} rpm, "
        f"{args.latency * 1000:.0f} ms per call",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        print(limited_run(args, args.rpm, Path(tmp) / "limited"), flush=True)
        if args.unlimited:
            print(limited_run(args, None, Path(tmp) / "unlimited"), flush=True)


if __name__ == "__main__":
    main()
