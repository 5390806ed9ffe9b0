"""What a comparison will train before it starts: the env steps of its runs and of the transfer source
models they need, so that ``compare`` can say up front how long the work is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sb3_llmae.experiments.models import source_model_path
from sb3_llmae.experiments.run_folder import is_finished, latest_checkpoint
from sb3_llmae.experiments.specs import RunSpec


@dataclass(frozen=True)
class TrainingBudget:
    """
    The env steps a comparison will train, as far as its folders tell before it starts.

    :param runs: runs to train (finished ones excluded)
    :param finished: runs finished before, only read back
    :param run_steps: env steps of those runs on the target env (a resumed run from its checkpoint on)
    :param sources: transfer source models to train (each once, whatever the runs sharing it)
    :param source_steps: env steps of those source models
    """

    runs: int
    finished: int
    run_steps: int
    sources: int
    source_steps: int

    @property
    def total_steps(self) -> int:
        """:return: every env step to train, sources included"""
        return self.run_steps + self.source_steps

    def describe(self) -> str:
        """:return: one line for the user, e.g. ``4 runs to train (0 finished before): 1,200,000 env ...``"""
        return (
            f"{self.runs} runs to train ({self.finished} finished before): {self.total_steps:,} env steps "
            f"in all, {self.run_steps:,} on the target env + {self.source_steps:,} for "
            f"{self.sources} transfer source model{'' if self.sources == 1 else 's'}"
        )


def training_budget(runs: Sequence[RunSpec]) -> TrainingBudget:
    """
    :param runs: a comparison's runs (:func:`~sb3_llmae.experiments.runner.plan_runs`)
    :return: what training them will take: the runs not finished, and the source models that the
        transfer runs among them still need (not on disk, and not skipped by a resume)
    """
    pending = [spec for spec in runs if not is_finished(spec)]
    run_steps = 0
    sources: dict[str, int] = {}
    for spec in pending:
        checkpoint = latest_checkpoint(spec.run_dir)
        run_steps += max(spec.settings.steps - (0 if checkpoint is None else checkpoint[0]), 0)
        if spec.method.init == "transfer" and checkpoint is None:
            path = source_model_path(spec)
            if not path.is_file():
                sources[str(path)] = spec.method.source_steps
    return TrainingBudget(
        runs=len(pending),
        finished=len(runs) - len(pending),
        run_steps=run_steps,
        sources=len(sources),
        source_steps=sum(sources.values()),
    )
