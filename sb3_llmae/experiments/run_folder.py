"""The life of a run folder: whether it holds a finished run of the same settings, claiming it for a
run, its resume checkpoints, and its result or error (names in :mod:`sb3_llmae.run_layout`)."""

from __future__ import annotations

import contextlib
import json
import traceback
from pathlib import Path
from typing import Any

from sb3_llmae.experiments.methods import bc_config, bc_kwargs_of
from sb3_llmae.experiments.specs import RunSpec
from sb3_llmae.run_layout import (
    CHECKPOINT_PREFIX,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    ERROR_FILE,
    RESULT_FILE,
    checkpoint_step,
)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    """
    :param run_dir: a run folder
    :return: the step and path of its latest resume checkpoint, if any
    """
    found = []
    for path in (run_dir / CHECKPOINTS_DIR).glob(f"{CHECKPOINT_PREFIX}_*_steps.zip"):
        step = checkpoint_step(path.name)
        if step is not None:
            found.append((step, path))
    return max(found) if found else None


class OtherRunError(ValueError):
    """A run folder holds a run of other settings; nothing in it was touched."""


def comparable_config(config: Any) -> Any:
    """
    :param config: a run's settings as plain data (``RunSpec.config()`` or a ``config.json``)
    :return: the same with its method's BC settings complete, so that a folder written when only the
        settings given were stored (``bc_kwargs: {learning_rate: ...}``) matches the same run now; and
        without the demonstrations as given (``settings.demos``, ``method.demos``): the run's own, resolved
        (top-level ``demos``), is what identifies it, so ``--demos`` is no part of a scratch run
    """
    if not isinstance(config, dict):
        return config
    config = dict(config)
    if isinstance(config.get("settings"), dict):
        config["settings"] = {key: value for key, value in config["settings"].items() if key != "demos"}
    if not isinstance(config.get("method"), dict):
        return config
    method = {key: value for key, value in config["method"].items() if key != "demos"}
    with contextlib.suppress(TypeError, ValueError):  # settings of no BCConfig: compared as they are
        method["bc_kwargs"] = bc_kwargs_of(bc_config(method.get("bc_kwargs") or {}))
    return {**config, "method": method}


def config_differences(stored: Any, current: Any, prefix: str = "") -> list[str]:
    """
    :param stored: settings as a run folder holds them (``comparable_config`` of its ``config.json``)
    :param current: the same for the run asked for now
    :return: one line per setting that differs, ``settings.steps: 2048 -> 4096``, by dotted name
    """
    if isinstance(stored, dict) and isinstance(current, dict):
        lines = []
        for key in sorted(set(stored) | set(current), key=str):
            name = f"{prefix}{key}"
            if key not in stored:
                lines.append(f"{name}: (not set) -> {current[key]!r}")
            elif key not in current:
                lines.append(f"{name}: {stored[key]!r} -> (not set)")
            else:
                lines += config_differences(stored[key], current[key], f"{name}.")
        return lines
    return [] if stored == current else [f"{prefix.rstrip('.') or 'config'}: {stored!r} -> {current!r}"]


def other_run_differences(spec: RunSpec) -> list[str]:
    """
    :param spec: a run
    :return: the settings in which the run in its folder differs from ``spec`` (``config_differences``);
        empty when the folder holds no run, or a run of the same settings
    """
    path = spec.run_dir / CONFIG_FILE
    if not path.is_file():
        return []
    stored = comparable_config(json.loads(path.read_text()))
    current = _spec_config(spec)
    if isinstance(stored, dict) and "training" not in stored:
        # written before config.json held the resolved training settings: compared on the rest
        current.pop("training", None)
    return config_differences(stored, current)


def holds_other_run(spec: RunSpec) -> bool:
    """:return: whether the run's folder holds a ``config.json`` of other settings"""
    return bool(other_run_differences(spec))


def is_finished(spec: RunSpec) -> bool:
    """
    :param spec: a run
    :return: whether its folder holds a finished run of the same settings
    """
    return (
        (spec.run_dir / RESULT_FILE).is_file()
        and (spec.run_dir / CONFIG_FILE).is_file()
        and not holds_other_run(spec)
    )


def claim_run_dir(spec: RunSpec) -> None:
    """
    Make the run's folder, write its ``config.json`` and clear an earlier attempt's ``error.txt``.

    :param spec: a run
    :raises OtherRunError: if the folder holds a run of other settings (nothing in it is touched)
    """
    differences = other_run_differences(spec)
    if differences:
        raise OtherRunError(
            f"{spec.run_dir} holds a run with other settings ({'; '.join(differences)}; see its "
            f"{CONFIG_FILE}): use another --out, or delete that folder to start the run over."
        )
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads(json.dumps(spec.config()))
    (spec.run_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (spec.run_dir / ERROR_FILE).unlink(missing_ok=True)


def read_result(run_dir: Path) -> dict[str, Any]:
    """:return: a finished run's ``result.json``"""
    result: dict[str, Any] = json.loads((run_dir / RESULT_FILE).read_text())
    return result


def write_result(run_dir: Path, result: dict[str, Any]) -> None:
    """Write a finished run's ``result.json``."""
    (run_dir / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")


def write_error(run_dir: Path) -> Path:
    """
    Write the traceback of the exception being handled to the run's ``error.txt``.

    :return: that file
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ERROR_FILE
    path.write_text(traceback.format_exc())
    return path


def _spec_config(spec: RunSpec) -> Any:
    # through JSON, as config.json holds it (tuples become lists, keys strings)
    return comparable_config(json.loads(json.dumps(spec.config())))
