"""The run-folder layout: one set of names for writers and readers, and the evaluation .npz schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sb3_llmae import run_layout
from sb3_llmae.experiments import run_folder, runs
from sb3_llmae.experiments.runs import read_evaluation
from sb3_llmae.run_layout import EvaluationArrays, eval_file_name
from sb3_llmae.training.callbacks import heatmap, sample_efficiency
from sb3_llmae.training.evaluation import EvaluationResult
from tests.test_report import REFERENCE_RUNS

GREEDY = EvaluationResult(
    seeds=(7, 8, 9), successes=(True, True, False), returns=(0.9, 0.8, 0.0), lengths=(3, 5, 9)
)
SAMPLED = EvaluationResult(
    seeds=(7, 8, 9), successes=(True, False, False), returns=(0.7, 0.0, 0.0), lengths=(6, 9, 9)
)


def test_writers_and_readers_name_the_files_with_the_same_objects() -> None:
    for name in ("EVAL_LOGS_DIR", "EVALUATIONS_CSV", "THRESHOLDS_FILE", "CSV_COLUMNS", "eval_file_name"):
        assert getattr(sample_efficiency, name) is getattr(run_layout, name)
    assert sample_efficiency.EvaluationArrays is EvaluationArrays
    assert heatmap.HEATMAPS_DIR is run_layout.HEATMAPS_DIR and runs.HEATMAPS_DIR is run_layout.HEATMAPS_DIR
    assert heatmap.heatmap_stem is run_layout.heatmap_stem
    assert runs.EVAL_LOGS_DIR is run_layout.EVAL_LOGS_DIR and runs.CONFIG_FILE is run_layout.CONFIG_FILE
    assert (
        run_folder.RESULT_FILE is run_layout.RESULT_FILE and run_folder.CONFIG_FILE is run_layout.CONFIG_FILE
    )
    assert run_layout.checkpoint_step("model_128_steps.zip") == 128
    assert run_layout.checkpoint_step("model_128_steps.partial.zip") is None
    assert run_layout.heatmap_step(run_layout.heatmap_stem(64) + ".npy") == 64


def test_an_evaluation_round_trips_through_its_npz(tmp_path: Path) -> None:
    written = EvaluationArrays.from_results(256, GREEDY, SAMPLED)
    path = written.to_npz(tmp_path / eval_file_name(256))
    assert path.name == "eval_step256.npz"
    read = EvaluationArrays.from_npz(path)
    assert read.step == 256
    assert written.to_arrays().keys() == read.to_arrays().keys()
    for name, array in written.to_arrays().items():
        np.testing.assert_array_equal(read.to_arrays()[name], array)
        assert read.to_arrays()[name].dtype == array.dtype
    # the reference layout: sampled actions under its keys, one eval env per seed
    assert read.returns is not None and read.returns.shape == (3, 1) and read.returns.dtype == np.float32
    np.testing.assert_array_equal(read.success_greedy, [[1.0], [1.0], [0.0]])
    np.testing.assert_array_equal(read.eval_seeds, [7, 8, 9])
    step, scores = read_evaluation(path)
    assert step == 256
    assert scores == pytest.approx(
        {"return": 0.7 / 3, "success": 1 / 3, "return_greedy": 1.7 / 3, "success_greedy": 2 / 3}
    )


def test_an_older_file_without_step_masks_or_greedy_entries_is_read(tmp_path: Path) -> None:
    path = tmp_path / "eval_step1000.npz"
    np.savez(path, returns=np.array([[0.5], [0.0]], dtype=np.float32), success=np.array([[1.0], [0.0]]))
    read = EvaluationArrays.from_npz(path)
    assert read.step == 1000 and read.mask is None and read.returns_greedy is None and read.lengths is None
    assert set(read.metric_values()) == {"return", "success"}
    assert read_evaluation(path) == (1000, {"return": 0.25, "success": 0.5})


def test_a_file_that_is_no_evaluation_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "eval_step5.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="holds none of the evaluation entries returns, success"):
        EvaluationArrays.from_npz(tmp_path / "eval_step5.npz")
    np.savez(tmp_path / "evaluation.npz", returns=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="no 'step' entry"):
        EvaluationArrays.from_npz(tmp_path / "evaluation.npz")


@pytest.mark.skipif(not REFERENCE_RUNS.is_dir(), reason=f"no reference runs at {REFERENCE_RUNS}")
def test_a_reference_system_file_is_read() -> None:
    path = next((REFERENCE_RUNS / "multirun").glob("*/transfer_ppo/3/eval_logs/Transfer_PPO_step300000.npz"))
    read = EvaluationArrays.from_npz(path)
    assert read.step == 300_000
    assert read.returns is not None and read.mask is not None and read.returns.shape == read.mask.shape
    assert read.returns.shape[0] == len(read.eval_seeds if read.eval_seeds is not None else ())
    assert read.success_greedy is None and read.lengths is None
    assert set(read.metric_values()) == {"return", "success"}
