"""What a report checks about the runs it aggregates before it believes them: one env, one run per seed,
and the budgets (env steps) of its methods, which it states and warns about when they differ."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_llmae.experiments.runs import RunCurves
from sb3_llmae.run_layout import CONFIG_FILE as RUN_CONFIG_FILE
from sb3_llmae.run_layout import RESULT_FILE

logger = logging.getLogger(__name__)

RESUME_ADVICE = (
    "delete it and re-run the same `sb3-llmae compare` into the folder: it resumes the run from its last "
    "checkpoint"
)


@dataclass(frozen=True)
class RunFacts:
    """
    What a run's own files say about it, beyond its evaluations.

    :param env_id: the env it trained on (``config.json``), ``None`` where no file says
    :param env_steps: the env steps it trained (``result.json``, else its budget in ``config.json``, else
        its last evaluated step)
    """

    env_id: str | None
    env_steps: int


def read_json_file(path: Path) -> Any:
    """
    :param path: a JSON file of a run
    :return: its content
    :raises ValueError: naming the file and the fix when it cannot be read (empty, half-written, not JSON)
    """
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path} cannot be read ({type(error).__name__}: {error}): {RESUME_ADVICE}."
        ) from None


def run_facts(run: RunCurves) -> RunFacts:
    """
    :param run: a run's curves
    :return: its env and env steps, from its files
    :raises ValueError: when one of them cannot be read
    """
    env_id: str | None = None
    env_steps: int | None = None
    config_path = run.path / RUN_CONFIG_FILE
    if config_path.is_file():
        config = read_json_file(config_path)
        settings = config.get("settings") if isinstance(config, dict) else None
        if isinstance(settings, dict):
            env_id = settings.get("env_id")
            env_steps = settings.get("steps")
    result_path = run.path / RESULT_FILE
    if result_path.is_file():
        result = read_json_file(result_path)
        if isinstance(result, dict) and isinstance(result.get("env_steps"), int):
            env_steps = result["env_steps"]
    if env_steps is None:
        env_steps = int(run.steps[-1])
    return RunFacts(env_id=None if env_id is None else str(env_id), env_steps=int(env_steps))


def check_runs(runs: Mapping[str, Sequence[RunCurves]]) -> tuple[dict[str, list[RunFacts]], list[str]]:
    """
    Refuse runs that cannot be compared; say what the comparison is and where it is unfair.

    :param runs: per method, its runs
    :return: per method its runs' facts, and the warnings (budgets that differ), also logged
    :raises ValueError: for runs of more than one env, or two runs of a method with the same seed
    """
    facts = {method: [run_facts(run) for run in method_runs] for method, method_runs in runs.items()}
    envs = {
        fact.env_id for method_facts in facts.values() for fact in method_facts if fact.env_id is not None
    }
    if len(envs) > 1:
        by_method = "; ".join(
            f"{method}: {', '.join(sorted({str(fact.env_id) for fact in method_facts}))}"
            for method, method_facts in facts.items()
        )
        raise ValueError(
            f"The runs are of {len(envs)} envs ({by_method}; see each run's {RUN_CONFIG_FILE}): a report "
            "compares methods on one env. Pass a folder holding the runs of one env (--out of one compare)."
        )
    for method, method_runs in runs.items():
        by_seed: dict[int, RunCurves] = {}
        for run in method_runs:
            if run.seed is None:
                continue
            if run.seed in by_seed:
                raise ValueError(
                    f"Method {method} has two runs of seed {run.seed}: {by_seed[run.seed].path} and "
                    f"{run.path} "
                    f"(see their {RUN_CONFIG_FILE}); a seed counts once. Move one of the folders out of the "
                    "report's folder."
                )
            by_seed[run.seed] = run
    warnings = []
    budgets = {
        method: sorted({fact.env_steps for fact in method_facts}) for method, method_facts in facts.items()
    }
    if len({budget for method_budgets in budgets.values() for budget in method_budgets}) > 1:
        warnings.append(
            "The budgets differ: "
            + "; ".join(f"{method} {describe_budgets(values)}" for method, values in budgets.items())
            + " env steps per run. Scores after different budgets are not comparable: re-run the short ones "
            "to the same --steps (a method whose warm-up overran a small --steps trained more)."
        )
    for warning in warnings:
        logger.warning(warning)
    return facts, warnings


def describe_budgets(values: Sequence[int]) -> str:
    """:return: ``4,000`` for one budget, ``1,000-4,000`` for several"""
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}-{values[-1]:,}"


def comparison_line(facts: Mapping[str, Sequence[RunFacts]]) -> str:
    """:return: the env(s) and each method's env steps per run, in one line of the report"""
    envs = sorted(
        {str(fact.env_id) for method_facts in facts.values() for fact in method_facts if fact.env_id}
    )
    budgets = ", ".join(
        f"{method} {describe_budgets(sorted({fact.env_steps for fact in method_facts}))}"
        for method, method_facts in facts.items()
    )
    return f"Env: {', '.join(envs) if envs else 'not recorded'}. Env steps per run: {budgets}."
