"""Experiments: method specs, the compare runner (local processes or Ray), and the report
(rliable IQM with stratified-bootstrap CIs, time to threshold, plots, heatmap panels)."""

from typing import TYPE_CHECKING

from sb3_llmae._lazy import lazy_exports

if TYPE_CHECKING:
    from sb3_llmae.experiments.budget import TrainingBudget, training_budget
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
    "TrainingBudget",
    "compare",
    "discover_runs",
    "load_method_specs",
    "plan_runs",
    "resolve_methods",
    "train_run",
    "training_budget",
    "write_report",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "sb3_llmae.experiments.budget": ("TrainingBudget", "training_budget"),
        "sb3_llmae.experiments.methods": (
            "BUILTIN_METHODS",
            "MethodSpec",
            "load_method_specs",
            "resolve_methods",
        ),
        "sb3_llmae.experiments.report": ("Report", "write_report"),
        "sb3_llmae.experiments.runner": ("compare", "plan_runs"),
        "sb3_llmae.experiments.runs": ("RunCurves", "discover_runs"),
        "sb3_llmae.experiments.specs": ("CompareSettings", "RunOutcome", "RunSpec"),
        "sb3_llmae.experiments.training_run": ("train_run",),
    },
)
