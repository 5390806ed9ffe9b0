"""Every example runs, with a tiny budget, and leaves what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: Path = REPO, **env: str) -> str:
    """:return: the command's output; it must succeed"""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        environment.pop(variable, None)
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


# Each example is a whole program (imports, BC, training, evaluations, report): minutes on 2 busy cores.
pytestmark = pytest.mark.timeout(900)


def test_quickstart_compares_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    options = f"--out {out} --episodes 4 --steps 1024 --warmup-steps 256 --eval-freq 512 --eval-episodes 2 "
    options += "--seeds 0 --reps 200"
    printed = run([sys.executable, "examples/quickstart.py", *options.split()])
    assert "PLANNER expert plays instead of an LLM" in printed
    report = out / "report" / "report.md"
    assert f"report: {report.resolve()}" in printed
    text = report.read_text()
    assert "| llmae |" in text and "| scratch |" in text and "## Headline" in text
    for name in ("curves.png", "probability_of_improvement.png", "heatmaps.png"):
        assert f"plot:   {(out / 'report' / name).resolve()}" in printed
        assert (out / "report" / name).stat().st_size > 10_000


def test_sb3_project_trains_with_the_plugin_in_a_plain_sb3_script(tmp_path: Path) -> None:
    out = tmp_path / "project"
    run(
        [sys.executable, "examples/sb3_project.py", "--steps", "512", "--eval-freq", "256", "--out", str(out)]
    )
    assert (out / "model.zip").is_file()
    assert (out / "eval_logs" / "eval_step512.npz").is_file()
    assert list((out / "heatmaps").glob("visits_step*.png"))


def test_rl_zoo3_script_trains_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "zoo"
    printed = run(
        ["bash", "examples/rl_zoo3.sh"],
        PYTHON=sys.executable,
        STEPS="2048",
        EVAL_FREQ="1024",
        EVAL_EPISODES="2",
        SEEDS="0",
        OUT=str(out),
        REPS="200",
    )
    assert f"report: {out / 'report.md'}" in printed
    assert list((out / "ppo").glob("MiniGrid-DoorKey-5x5-v0_1/eval_logs/eval_step*.npz"))
    assert "| ppo |" in (out / "report.md").read_text()
