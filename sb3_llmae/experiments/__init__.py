"""Experiments: method specs, the compare runner (local processes or Ray), and the report
(rliable IQM with stratified-bootstrap CIs, time to threshold, plots, heatmap panels)."""

from sb3_llmae.experiments.methods import BUILTIN_METHODS, MethodSpec, load_method_specs, resolve_methods
from sb3_llmae.experiments.report import Report, write_report
from sb3_llmae.experiments.runner import compare, plan_runs
from sb3_llmae.experiments.runs import RunCurves, discover_runs
from sb3_llmae.experiments.specs import CompareSettings, RunOutcome, RunSpec
from sb3_llmae.experiments.training_run import train_run

__all__ = [
    "BUILTIN_METHODS",
    "CompareSettings",
    "MethodSpec",
    "Report",
    "RunCurves",
    "RunOutcome",
    "RunSpec",
    "compare",
    "discover_runs",
    "load_method_specs",
    "plan_runs",
    "resolve_methods",
    "train_run",
    "write_report",
]
