"""The compare runner: run folders, skipping finished runs, resuming, crash isolation, backends."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch as th
import yaml
from stable_baselines3 import PPO

from sb3_llmae.cli import build_parser, main
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.experiments import (
    CompareSettings,
    MethodSpec,
    TrainingBudget,
    compare,
    plan_runs,
    runner,
    train_run,
    training_budget,
)
from sb3_llmae.experiments.methods import BC_KWARGS, load_method_specs, resolve_methods
from sb3_llmae.experiments.models import source_model_path, train_source_model
from sb3_llmae.experiments.ray_backend import (
    probe_storage,
    shared_storage_error,
    storage_problems,
    write_probe,
)
from sb3_llmae.experiments.run_folder import is_finished, latest_checkpoint
from sb3_llmae.experiments.runner import plan_warnings
from sb3_llmae.experiments.specs import RunSpec
from sb3_llmae.training.config import BCConfig, EvalConfig
from sb3_llmae.training.ppo import REFERENCE_PPO_KWARGS, make_ppo
from sb3_llmae.training.transfer import transfer_ppo
from sb3_llmae.zoo import hyperparams_path
from tests.training_helpers import ENV_ID, FAST_BC_KWARGS, SMALL_PPO_KWARGS, empty_5x5_demos

# 2 envs x 32 steps: 64 env steps per rollout; 4 rollouts per run.
SETTINGS = CompareSettings(
    ENV_ID, steps=256, n_envs=2, evaluation=EvalConfig(freq=128, n_episodes=2), ppo_kwargs=SMALL_PPO_KWARGS
)
LLMAE = MethodSpec("llmae", init="actor", critic_warmup_steps=64, bc=BCConfig(**FAST_BC_KWARGS))
SCRATCH = MethodSpec("scratch")


@pytest.fixture(scope="module")
def demos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demos")
    save_demonstrations(empty_5x5_demos(), path)
    return path


def test_two_methods_two_seeds_then_a_rerun_skips_them(tmp_path: Path, demos_dir: Path) -> None:
    settings = CompareSettings(**{**SETTINGS.__dict__, "demos": str(demos_dir)})
    runs = plan_runs([LLMAE, SCRATCH], [0, 1], settings, tmp_path)
    outcomes = compare(runs, workers=2, progress_bar=False)
    assert [outcome.status for outcome in outcomes] == ["finished"] * 4
    for spec in runs:
        run_dir = tmp_path / spec.method.name / f"seed{spec.seed}"
        assert json.loads((run_dir / "config.json").read_text())["seed"] == spec.seed
        assert (run_dir / "model.zip").is_file()
        evaluations = sorted(path.name for path in (run_dir / "eval_logs").glob("*.npz"))
        assert "eval_step256.npz" in evaluations and len(evaluations) >= 3
        assert list((run_dir / "heatmaps").glob("*.npy")) and list((run_dir / "heatmaps").glob("*.png"))
        assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
        assert json.loads((run_dir / "result.json").read_text())["env_steps"] >= 256
    # the llmae runs start from their BC prior: their first evaluation is at the warm-up's end
    assert (tmp_path / "llmae" / "seed0" / "eval_logs" / "eval_step64.npz").is_file()

    again = compare(runs, workers=2, progress_bar=False)
    assert [outcome.status for outcome in again] == ["skipped"] * 4
    assert [outcome.result for outcome in again] == [outcome.result for outcome in outcomes]


def test_a_crashing_run_is_reported_and_the_others_finish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    methods_file = tmp_path / "methods.yml"
    methods_file.write_text(
        f"broken:\n  init: actor\n  critic_warmup_steps: 64\n  demos: {tmp_path / 'no-such-demos'}\n"
    )
    out = tmp_path / "runs"
    arguments = f"compare --env {ENV_ID} --methods broken scratch --methods-file {methods_file} --seeds 0 "
    arguments += (
        f"--steps 128 --n-envs 2 --eval-freq 64 --eval-episodes 2 --out {out} --workers 2 --no-progress"
    )
    status = main([*arguments.split(), "--ppo-kwargs", json.dumps(SMALL_PPO_KWARGS)])
    printed = capsys.readouterr().out
    assert status == 1
    assert "broken/seed0: FAILED: FileNotFoundError" in printed
    assert "scratch/seed0: finished, 128 steps" in printed
    assert "1/2 runs done" in printed
    # up front, before any training
    assert printed.startswith(
        "2 runs to train (0 finished before): 256 env steps in all, 256 on the target env + 0 for 0 "
        "transfer source models\n"
    )
    assert "FileNotFoundError" in (out / "broken" / "seed0" / "error.txt").read_text()
    assert (out / "scratch" / "seed0" / "result.json").is_file()


# MaskablePPO resumes on envs that give action masks (the loader builds them from the algorithm).
@pytest.mark.parametrize("method", [SCRATCH, MethodSpec("maskable", algo="maskable")], ids=lambda m: m.name)
def test_an_interrupted_run_resumes_from_its_latest_checkpoint(tmp_path: Path, method: MethodSpec) -> None:
    spec = RunSpec(method, 0, SETTINGS, tmp_path / method.name / "seed0", tmp_path / "_sources")
    assert train_run(spec).status == "finished"
    assert latest_checkpoint(spec.run_dir) == (256, spec.run_dir / "checkpoints" / "model_256_steps.zip")
    # as if stopped after the checkpoint at 128 steps
    for name in (
        "result.json",
        "model.zip",
        "checkpoints/model_192_steps.zip",
        "checkpoints/model_256_steps.zip",
    ):
        (spec.run_dir / name).unlink(missing_ok=True)
    outcome = train_run(spec)
    assert outcome.status == "finished"
    assert outcome.result["resumed_from"] == 128 and outcome.result["env_steps"] == 256


def test_a_folder_of_other_settings_is_refused(tmp_path: Path) -> None:
    spec = RunSpec(SCRATCH, 0, SETTINGS, tmp_path / "run", tmp_path / "_sources")
    spec.run_dir.mkdir()
    (spec.run_dir / "config.json").write_text(json.dumps({"seed": 5}))
    outcome = train_run(spec)
    assert outcome.status == "failed" and "other settings" in str(outcome.error)


def test_a_run_folder_of_an_earlier_version_still_counts_as_finished(tmp_path: Path) -> None:
    spec = RunSpec(LLMAE, 0, SETTINGS, tmp_path / "llmae" / "seed0", tmp_path / "_sources")
    spec.run_dir.mkdir(parents=True)
    # config.json as written before BCConfig: only the BC settings given, flat evaluation settings
    config = json.loads(json.dumps(spec.config()))
    config["method"]["bc_kwargs"] = dict(FAST_BC_KWARGS)
    assert config["settings"]["eval_freq"] == 128 and config["settings"]["n_eval_episodes"] == 2
    (spec.run_dir / "config.json").write_text(json.dumps(config))
    (spec.run_dir / "result.json").write_text(json.dumps({"env_steps": 256}))
    assert is_finished(spec)
    outcome = train_run(spec)
    assert outcome.status == "skipped" and outcome.result == {"env_steps": 256}
    # other BC settings are another run
    other = RunSpec(
        MethodSpec("llmae", init="actor", critic_warmup_steps=64, bc=BCConfig(epochs=3)),
        0,
        SETTINGS,
        spec.run_dir,
        spec.sources_dir,
    )
    assert not is_finished(other)
    assert train_run(other).status == "failed"
    assert json.loads((spec.run_dir / "config.json").read_text()) == config


def test_transfer_copies_the_source_policy_and_trains_each_source_once(tmp_path: Path) -> None:
    transfer = MethodSpec("transfer", init="transfer", source_env="MiniGrid-Empty-6x6-v0", source_steps=64)
    settings = CompareSettings(
        ENV_ID, steps=64, n_envs=2, evaluation=EvalConfig(freq=64, n_episodes=1), ppo_kwargs=SMALL_PPO_KWARGS
    )
    spec = RunSpec(transfer, 0, settings, tmp_path / "transfer" / "seed0", tmp_path / "_sources")
    assert train_run(spec).status == "finished"
    source = source_model_path(spec)
    trained_at = source.stat().st_mtime_ns
    # a second method with the same source reuses it
    again = RunSpec(
        MethodSpec("transfer-again", init="transfer", source_env="MiniGrid-Empty-6x6-v0", source_steps=64),
        0,
        settings,
        tmp_path / "transfer-again" / "seed0",
        tmp_path / "_sources",
    )
    assert train_run(again).status == "finished"
    assert source.stat().st_mtime_ns == trained_at

    model = transfer_ppo(ENV_ID, source, n_envs=2, seed=3, **SMALL_PPO_KWARGS)
    source_state = make_ppo("MiniGrid-Empty-6x6-v0", n_envs=1, **SMALL_PPO_KWARGS)
    source_state.set_parameters(str(source))
    for name, tensor in source_state.policy.state_dict().items():
        assert th.equal(tensor, model.policy.state_dict()[name])
    assert model.num_timesteps == 0


def test_two_seeds_share_one_source_trained_once_by_concurrent_workers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transfer = MethodSpec("transfer", init="transfer", source_env="MiniGrid-Empty-6x6-v0", source_steps=64)
    settings = CompareSettings(ENV_ID, steps=64, n_envs=2, ppo_kwargs=SMALL_PPO_KWARGS)
    runs = plan_runs([transfer, SCRATCH], [0, 1], settings, tmp_path)
    assert training_budget(runs) == TrainingBudget(
        runs=4, finished=0, run_steps=256, sources=1, source_steps=64
    )
    assert training_budget(runs).describe() == (
        "4 runs to train (0 finished before): 320 env steps in all, 256 on the target env + 64 for 1 "
        "transfer source model"
    )
    transfer_runs = [spec for spec in runs if spec.method.init == "transfer"]
    assert source_model_path(transfer_runs[0]) == source_model_path(transfer_runs[1])
    # both seeds' runs ask for the source at once, as two workers would: one trains it, one waits
    caplog.set_level(logging.INFO, logger="sb3_llmae.experiments.models")
    paths: list[Path] = []
    workers = [
        threading.Thread(target=lambda spec=spec: paths.append(train_source_model(spec)))
        for spec in transfer_runs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(set(paths)) == 1 and paths[0].is_file()
    assert sum("training the source model" in record.getMessage() for record in caplog.records) == 1
    assert [path.name for path in (tmp_path / "_sources").glob("*.zip")] == [paths[0].name]
    assert training_budget(runs).sources == 0 and training_budget(runs).total_steps == 256

    # asked for, each seed trains its own (on its own seed)
    per_seed = plan_runs([replace(transfer, source_per_seed=True)], [0, 1], settings, tmp_path / "per-seed")
    assert len({source_model_path(spec) for spec in per_seed}) == 2
    assert training_budget(per_seed).describe().endswith("+ 128 for 2 transfer source models")
    assert MethodSpec.from_dict({"name": "t", "init": "transfer", "source_per_seed": True}).source_per_seed


def test_transfer_between_other_observations_is_refused(tmp_path: Path) -> None:
    source = make_ppo(ENV_ID, n_envs=1, obs_mode="flat", **SMALL_PPO_KWARGS)
    source.save(tmp_path / "flat.zip")
    with pytest.raises(ValueError, match="same observations"):
        transfer_ppo(ENV_ID, tmp_path / "flat.zip", n_envs=1)
    with pytest.raises(FileNotFoundError, match="No source model"):
        transfer_ppo(ENV_ID, tmp_path / "missing.zip", n_envs=1)


def test_method_specs_from_yaml_and_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "methods.yml"
    path.write_text(
        "llmae-full-fast:\n  init: full\n  bc_kwargs: {learning_rate: 0.001}\n  ppo_kwargs: {n_steps: 64}\n"
    )
    specs = load_method_specs(path)
    assert specs["llmae-full-fast"] == MethodSpec(
        "llmae-full-fast", init="full", bc=BCConfig(learning_rate=0.001), ppo_kwargs={"n_steps": 64}
    )
    assert isinstance(specs["llmae-full-fast"].bc, BCConfig)
    # config.json's bc_kwargs read back as the same BCConfig
    for spec in (*specs.values(), LLMAE, *resolve_methods(["scratch", "llmae", "transfer"])):
        assert MethodSpec.from_dict(spec.to_dict()) == spec
    assert [spec.name for spec in resolve_methods(["scratch", "llmae-full-fast"], specs)] == [
        "scratch",
        "llmae-full-fast",
    ]
    with pytest.raises(ValueError, match="Unknown methods nope"):
        resolve_methods(["nope"])
    path.write_text("odd:\n  init: actor\n  learning_rate: 0.1\n")
    with pytest.raises(ValueError, match="unknown keys learning_rate"):
        load_method_specs(path)
    path.write_text("odd:\n  init: actor\n  bc_kwargs: {lr: 0.1}\n")
    with pytest.raises(
        ValueError, match="unknown bc_kwargs lr; BC settings are: epochs, batch_size"
    ) as error:
        load_method_specs(path)
    assert all(name in str(error.value) for name in BC_KWARGS)
    path.write_text("odd:\n  init: actor\n  bc_kwargs: {seed: 3}\n")
    with pytest.raises(ValueError, match="its own seed"):
        load_method_specs(path)
    path.write_text("odd:\n  init: actor\n  bc_kwargs: {epochs: 0}\n")
    with pytest.raises(ValueError, match=r"BCConfig\.epochs must be a positive integer"):
        load_method_specs(path)
    path.write_text("llmae-full: {init: full\n  bad: [")
    with pytest.raises(ValueError, match=r"methods.yml is not valid YAML .* at line 2, column"):
        load_method_specs(path)
    with pytest.raises(ValueError, match="unknown init"):
        MethodSpec("x", init="bc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--demos"):
        plan_runs([LLMAE], [0], SETTINGS, tmp_path)
    with pytest.raises(ValueError, match="Seeds repeated"):
        plan_runs([SCRATCH], [0, 0], SETTINGS, tmp_path)


# Starting a local Ray instance and its first worker (which imports torch and SB3) takes minutes on a
# loaded 2-core machine.
@pytest.mark.timeout(900)
def test_ray_backend_runs_the_same_runs(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray backend is an extra: pip install 'sb3-llmae[ray]'")
    runs = plan_runs([SCRATCH], [0], SETTINGS, tmp_path)
    outcomes = compare(runs, backend="ray", progress_bar=False)
    assert [outcome.status for outcome in outcomes] == ["finished"]
    assert (tmp_path / "scratch" / "seed0" / "eval_logs" / "eval_step256.npz").is_file()
    # the runs are the same whichever backend trains them: a local re-run finds them finished
    assert [outcome.status for outcome in compare(runs, progress_bar=False)] == ["skipped"]


def test_the_compare_flags_default_to_the_settings_objects(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["compare", "--env", ENV_ID, "--steps", "64", "--out", "runs"])
    defaults = EvalConfig()
    assert (args.eval_freq, args.eval_episodes, args.eval_seed) == (
        defaults.freq,
        defaults.n_episodes,
        defaults.seed,
    )
    assert args.n_envs == CompareSettings(ENV_ID, steps=1).n_envs
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    for flag, default in (("--eval-freq", defaults.freq), ("--eval-seed", defaults.seed), ("--workers", 1)):
        assert f"{flag} {flag[2:].upper().replace('-', '_')}" in printed
        assert f"(default: {default})" in printed


def test_a_budget_the_warmup_takes_whole_is_refused_before_work(
    tmp_path: Path, demos_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = CompareSettings(ENV_ID, steps=2048, demos=str(demos_dir))
    with pytest.raises(
        ValueError, match=r"--steps 2,048 leaves 'llmae' no PPO update.*critic warm-up takes 2,048"
    ):
        plan_runs(resolve_methods(["llmae", "scratch"]), [0, 1, 2], settings, tmp_path / "runs")
    out = tmp_path / "cli"
    status = main(
        [
            "compare",
            "--env",
            ENV_ID,
            "--steps",
            "2048",
            "--demos",
            str(demos_dir),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    error = capsys.readouterr().err
    assert status == 2 and "no PPO update" in error and "--steps well above 2,048" in error
    assert "critic_warmup_steps" in error  # the other fix
    assert not out.exists()  # refused before any work
    # a method without a warm-up has no such limit
    assert plan_runs([SCRATCH], [0], settings, tmp_path / "runs")


def test_few_seeds_and_a_dominant_warmup_are_warned_before_work(
    tmp_path: Path, demos_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = CompareSettings(ENV_ID, steps=4096, demos=str(demos_dir))
    runs = plan_runs(resolve_methods(["llmae", "scratch"]), [0, 1], settings, tmp_path)
    warnings = plan_warnings(runs)
    assert any("2 seeds per method" in line and "CIs collapse" in line for line in warnings)
    assert any(
        "'llmae' spends 2,048 of its 4,096 env steps in the critic warm-up" in line for line in warnings
    )
    assert not any("scratch" in line for line in warnings)
    enough = plan_runs(
        resolve_methods(["llmae", "scratch"]), [0, 1, 2], replace(settings, steps=50_000), tmp_path
    )
    assert plan_warnings(enough) == []
    # compare() logs them before it trains anything
    trained = []
    monkeypatch.setattr(runner, "_compare_local", lambda runs, *_: trained.append(caplog.text) or [])
    with caplog.at_level(logging.WARNING):
        compare(runs, progress_bar=False)
    assert "2 seeds per method" in trained[0] and "spends 2,048 of its 4,096" in trained[0]


def test_scratch_tuned_trains_with_ppo_yml_settings_and_methods_set_their_own(tmp_path: Path) -> None:
    zoo = yaml.safe_load(hyperparams_path("ppo").read_text())["default"]
    tuned = RunSpec(resolve_methods(["scratch-tuned"])[0], 0, SETTINGS, tmp_path / "a", tmp_path / "_sources")
    assert tuned.n_envs == zoo["n_envs"] == 16
    # ppo.yml's settings go over the comparison's (--ppo-kwargs); the rl-zoo3-only keys stay out
    assert tuned.ppo_kwargs["learning_rate"] == zoo["learning_rate"] == 1e-3
    assert tuned.ppo_kwargs["batch_size"] == zoo["batch_size"]
    assert not {"n_envs", "n_timesteps", "policy", "env_wrapper", "callback"} & set(tuned.ppo_kwargs)
    assert tuned.config()["training"]["n_envs"] == 16
    scratch = RunSpec(SCRATCH, 0, SETTINGS, tmp_path / "b", tmp_path / "_sources")
    assert scratch.n_envs == 2 and scratch.ppo_kwargs == SMALL_PPO_KWARGS
    assert scratch.config()["training"]["ppo_kwargs"] == {**REFERENCE_PPO_KWARGS, **SMALL_PPO_KWARGS}
    assert "n_envs" not in SCRATCH.to_dict() and "hyperparams" not in SCRATCH.to_dict()  # old folders match

    methods_file = tmp_path / "methods.yml"
    methods_file.write_text(
        "tuned-small: {hyperparams: ppo, n_envs: 3, ppo_kwargs: {n_steps: 32, batch_size: 48}}\n"
    )
    method = load_method_specs(methods_file)["tuned-small"]
    assert MethodSpec.from_dict(method.to_dict()) == method
    spec = plan_runs([method], [0], SETTINGS, tmp_path / "runs")[0]
    assert train_run(spec).status == "finished"
    model = PPO.load(spec.run_dir / "model.zip")
    assert (model.n_envs, model.n_steps, model.batch_size) == (3, 32, 48)
    assert model.learning_rate == 1e-3  # from ppo.yml
    training = json.loads((spec.run_dir / "config.json").read_text())["training"]
    assert training["n_envs"] == 3 and training["ppo_kwargs"]["learning_rate"] == 1e-3
    with pytest.raises(ValueError, match="No hyperparameter file 'nope'"):
        MethodSpec("x", hyperparams="nope")
    with pytest.raises(ValueError, match="n_envs must be positive"):
        MethodSpec("x", n_envs=0)


def test_raising_steps_on_a_finished_folder_names_the_setting_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = plan_runs([SCRATCH], [0], SETTINGS, tmp_path)
    assert [outcome.status for outcome in compare(runs, progress_bar=False)] == ["finished"]
    run_dir = runs[0].run_dir
    before = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")}
    longer = plan_runs([SCRATCH], [0], replace(SETTINGS, steps=320), tmp_path)
    with pytest.raises(ValueError, match=r"settings\.steps: 256 -> 320") as error:
        compare(longer, progress_bar=False)
    assert "Use another --out" in str(error.value) and "Nothing was changed" in str(error.value)
    # the run itself, asked directly, fails without writing into the other run's folder
    outcome = train_run(longer[0])
    assert outcome.status == "failed" and "settings.steps: 256 -> 320" in str(outcome.error)
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")} == before
    assert not (run_dir / "error.txt").exists()

    arguments = f"compare --env {ENV_ID} --methods scratch --seeds 0 --steps 320 --n-envs 2 --eval-freq 128 "
    arguments += f"--eval-episodes 2 --out {tmp_path} --no-progress"
    assert main([*arguments.split(), "--ppo-kwargs", json.dumps(SMALL_PPO_KWARGS)]) == 2
    assert "settings.steps: 256 -> 320" in capsys.readouterr().err
    assert not (run_dir / "error.txt").exists()


def test_demos_is_no_part_of_a_scratch_run(tmp_path: Path, demos_dir: Path) -> None:
    with_demos = replace(SETTINGS, demos=str(demos_dir))
    spec = plan_runs([SCRATCH], [0], with_demos, tmp_path)[0]
    spec.run_dir.mkdir(parents=True)
    # as an earlier version wrote it: --demos among the shared settings
    config = json.loads(json.dumps(spec.config()))
    config["settings"]["demos"] = str(demos_dir)
    (spec.run_dir / "config.json").write_text(json.dumps(config))
    (spec.run_dir / "result.json").write_text(json.dumps({"env_steps": 256}))
    for other in (SETTINGS, replace(SETTINGS, demos=str(tmp_path / "other-demos"))):
        assert is_finished(plan_runs([SCRATCH], [0], other, tmp_path)[0])
    assert "demos" not in spec.config()["settings"]
    # a method that clones them keeps them in its identity (resolved: the run's own "demos")
    llmae = plan_runs([LLMAE], [0], with_demos, tmp_path)[0]
    assert llmae.config()["demos"] == str(demos_dir.resolve())


def test_paths_are_resolved_on_the_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    method = MethodSpec("llmae-own", init="actor", demos="demos/own", critic_warmup_steps=64)
    runs = plan_runs([method, SCRATCH], [0], replace(SETTINGS, demos="demos/shared"), "runs/x")
    assert all(spec.run_dir.is_absolute() and spec.sources_dir.is_absolute() for spec in runs)
    assert runs[0].run_dir == tmp_path / "runs" / "x" / "llmae-own" / "seed0"
    assert runs[0].demos == str(tmp_path / "demos" / "own")
    assert runs[1].settings.demos == str(tmp_path / "demos" / "shared")


def test_the_shared_storage_probe_tells_which_node_cannot_share_the_folder(tmp_path: Path) -> None:
    shared = tmp_path / "runs"
    token = write_probe(shared)
    answer = probe_storage(str(shared), token, "node-a")
    assert "error" not in answer and Path(answer["reply"]).is_file()
    assert answer["host"] == socket.gethostname() and answer["cwd"]
    assert storage_problems([answer]) == []
    # a node without the shared folder: the path does not exist there, and the probe creates nothing
    elsewhere = probe_storage(str(tmp_path / "not-mounted" / "runs"), token, "node-b")
    assert "FileNotFoundError" in elsewhere["error"] and not (tmp_path / "not-mounted").exists()
    # a node whose reply the driver cannot see
    unseen = {**answer, "node": "node-c", "reply": str(tmp_path / "elsewhere" / "reply")}
    problems = storage_problems([answer, elsewhere, unseen])
    assert len(problems) == 2
    assert "node node-b" in problems[0] and "cannot read the driver's probe" in problems[0]
    assert "node node-c" in problems[1] and "the driver cannot see" in problems[1]
    error = shared_storage_error(shared, problems)
    assert "storage every node mounts at the same path" in str(error) and str(shared) in str(error)


def test_ray_backend_without_ray_is_one_line_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without Ray
    out = tmp_path / "runs"
    status = main(
        [
            "compare",
            "--env",
            ENV_ID,
            "--methods",
            "scratch",
            "--steps",
            "256",
            "--out",
            str(out),
            "--backend",
            "ray",
        ]
    )
    error = capsys.readouterr().err
    assert status == 2
    assert error.strip().splitlines() == [
        "error: --backend ray needs Ray, an optional extra: pip install 'sb3-llmae[ray]'"
    ]
    assert not out.exists()
    with pytest.raises(ImportError, match=r"sb3-llmae\[ray\]"):
        compare(plan_runs([SCRATCH], [0], SETTINGS, out), backend="ray", progress_bar=False)
