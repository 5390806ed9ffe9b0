"""``compare --backend ray`` on a real two-node Ray cluster on 127.0.0.1 (two raylets, one CPU each):
paths resolved on the driver, the shared-storage probe on every node, progress streamed from the
workers, and ``report`` working as ``compare`` prints it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sb3_llmae.experiments import plan_runs
from sb3_llmae.experiments.ray_backend import check_shared_storage
from sb3_llmae.experiments.runner import RunProgress, compare
from tests.ray_cluster import RayCluster
from tests.test_compare import SCRATCH, SETTINGS
from tests.training_helpers import ENV_ID, SMALL_PPO_KWARGS

ray = pytest.importorskip("ray", reason="the Ray backend is an extra: pip install 'sb3-llmae[ray]'")
REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    # the nodes (and their workers) run elsewhere than the driver: a relative path would land here
    node_cwd = tmp_path_factory.mktemp("node-cwd")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with RayCluster(2, cwd=node_cwd, env=env) as running:
        yield running
        pids = running.pids()
    assert pids  # the cluster was running until here
    assert not running.pids(), "Ray processes left behind"
    assert not list(node_cwd.rglob("*.npz")), "a run landed in a worker's working directory"


def test_compare_on_a_two_node_cluster_then_report_as_printed(
    cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]
        assert len(nodes) == 2 and {node["Resources"]["CPU"] for node in nodes} == {1.0}
        answers = check_shared_storage(ray, (tmp_path / "probe").resolve())
        assert len({answer["node"] for answer in answers}) == 2
        assert all("error" not in answer for answer in answers)
        assert not list((tmp_path / "probe").iterdir())  # the probe cleans up after itself

        # progress comes from the workers while they train, not only at the end
        seen: list[tuple[str, int]] = []
        update = RunProgress.update
        monkeypatch.setattr(
            RunProgress,
            "update",
            lambda self, key, steps, success: seen.append((key, steps)) or update(self, key, steps, success),
        )
        runs = plan_runs([SCRATCH], [0, 1], SETTINGS, "runs/lib")
        outcomes = compare(runs, backend="ray", progress_bar=False)
    finally:
        ray.shutdown()
    assert [outcome.status for outcome in outcomes] == ["finished", "finished"]
    assert {key for key, steps in seen if 0 < steps < SETTINGS.steps} == {"scratch/seed0", "scratch/seed1"}
    assert (tmp_path / "runs" / "lib" / "scratch" / "seed1" / "eval_logs" / "eval_step256.npz").is_file()

    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"}
    command = [sys.executable, "-m", "sb3_llmae", "compare", "--env", ENV_ID, "--methods", "scratch"]
    command += ["--seeds", "0", "1", "2", "--steps", "128", "--n-envs", "2", "--eval-freq", "64"]
    command += ["--eval-episodes", "2", "--ppo-kwargs", json.dumps(SMALL_PPO_KWARGS), "--no-progress"]
    command += ["--backend", "ray", "--ray-address", cluster.address, "--out", "runs/x"]
    compared = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert compared.returncode == 0, compared.stderr[-3000:]
    printed = compared.stdout.strip().splitlines()[-1]
    assert printed == "next: sb3-llmae report runs/x"
    assert (tmp_path / "runs" / "x" / "scratch" / "seed2" / "result.json").is_file()
    report_args = printed.removeprefix("next: sb3-llmae ").split()
    reported = subprocess.run(
        [sys.executable, "-m", "sb3_llmae", *report_args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert (tmp_path / "runs" / "x" / "report.md").is_file()
