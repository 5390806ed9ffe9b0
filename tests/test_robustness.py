"""Nothing finished is lost and every fault is one clear message: output directories, paths and files,
arguments checked before anything is written, and inputs that must not be accepted silently."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from imitation.data.types import TrajectoryWithRew

from sb3_llmae import generate_demonstrations, llm_init_ppo, load_demonstrations, make_ppo, pretrain_bc
from sb3_llmae.cli import main
from sb3_llmae.cli.outputs import save_model
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.demonstrations.containers import METADATA_SCHEMA_VERSION, DemonstrationMetadata
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.llm import ChatClient, ChatSettings
from tests.conftest import ScriptedExpert

ENV_ID = "MiniGrid-Empty-5x5-v0"
PLANNER_ENV = "MiniGrid-DoorKey-5x5-v0"


def generate_cli(out, *extra: str, env: str = ENV_ID, episodes: int = 2) -> list[str]:
    return [
        "generate",
        "--env",
        env,
        "--expert",
        "planner",
        "--episodes",
        str(episodes),
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def saved_demos(tmp_path, scripted_expert):
    out = tmp_path / "saved"
    demos = generate_demonstrations(ENV_ID, scripted_expert, n_episodes=3, progress_bar=False)
    save_demonstrations(demos, out)
    return out


# --- data loss -------------------------------------------------------------------------------------


def test_generate_refuses_a_directory_of_saved_demonstrations(saved_demos, capsys):
    before = sorted(p.name for p in saved_demos.rglob("*"))
    assert main(generate_cli(saved_demos, env=PLANNER_ENV)) == 2
    error = capsys.readouterr().err
    assert (
        "holds saved demonstrations" in error and "metadata.json" in error and "Nothing was written" in error
    )
    assert sorted(p.name for p in saved_demos.rglob("*")) == before
    assert len(load_demonstrations(saved_demos)) == 3


def test_generate_refuses_a_directory_of_other_files(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(generate_cli(tmp_path, env=PLANNER_ENV)) == 2
    assert "files of something else (notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_generate_into_an_empty_directory_works(tmp_path):
    assert main(generate_cli(tmp_path, env=PLANNER_ENV)) == 0
    assert len(load_demonstrations(tmp_path)) == 2


def test_save_model_falls_back_beside_the_temporary_directory(tmp_path):
    model = make_ppo(ENV_ID, n_envs=1, n_steps=16, batch_size=16, seed=0)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    saved = save_model(model, blocker / "model.zip")
    try:
        assert saved.parent == Path(tempfile.gettempdir()) and saved.is_file()
    finally:
        saved.unlink()


# --- paths and files -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_generate_out_that_cannot_be_a_directory_is_refused_before_work(tmp_path, capsys, kind):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker if kind == "file" else blocker / "sub"
    assert main(generate_cli(out, env=PLANNER_ENV)) == 2
    error = capsys.readouterr().err
    assert "is a file" in error if kind == "file" else "not a writable directory" in error


def test_pretrain_out_is_checked_before_bc(tmp_path, saved_demos, capsys):
    args = [
        "pretrain",
        "--env",
        ENV_ID,
        "--demos",
        str(saved_demos),
        "--bc-epochs",
        "1",
        "--warmup-steps",
        "0",
    ]
    (tmp_path / "a-dir.zip").mkdir()
    assert main([*args, "--out", str(tmp_path / "a-dir.zip")]) == 2
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main([*args, "--out", str(tmp_path / "a-file" / "model.zip")]) == 2
    assert "not a writable directory" in capsys.readouterr().err


def test_train_paths_are_clear(tmp_path, capsys):
    (tmp_path / "model-dir").mkdir()
    base = ["train", "--env", ENV_ID, "--steps", "64", "--eval-episodes", "0", "--no-progress"]
    assert main([*base, "--load", str(tmp_path / "model-dir"), "--out", str(tmp_path / "o1")]) == 2
    assert "No model file at" in capsys.readouterr().err
    assert main([*base, "--load", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "o2")]) == 2
    error = capsys.readouterr().err
    assert "missing.zip" in error and "missing.zip.zip" not in error
    (tmp_path / "a-file").write_text("")
    assert main([*base, "--out", str(tmp_path / "a-file")]) == 2
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not a model")
    assert main([*base, "--load", str(tmp_path / "bad.zip"), "--out", str(tmp_path / "o4")]) == 2
    assert "bad.zip cannot be read as a model" in capsys.readouterr().err
    assert main(["train", "--env", ENV_ID, "--steps", "-5", "--out", str(tmp_path / "o3")]) == 2
    assert "--steps must be positive" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()


@pytest.mark.parametrize("kind", ["directory", "corrupt"])
def test_unusable_cache_is_a_message(tmp_path, capsys, kind, fake_openai_server):
    cache = tmp_path / "cache.sqlite"
    if kind == "directory":
        cache.mkdir()
    else:
        cache.write_bytes(b"garbage" * 1000)
    args = [
        "generate",
        "--env",
        PLANNER_ENV,
        "--expert",
        "llm",
        "--model",
        "m",
        "--base-url",
        fake_openai_server.base_url,
        "--cache",
        str(cache),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert str(cache) in error and "--no-cache" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated"])
def test_damaged_episode_on_resume_is_named_with_the_way_to_drop_it(tmp_path, capsys, damage):
    out = tmp_path / "run"
    assert main(generate_cli(out, env=PLANNER_ENV)) == 0
    (out / "metadata.json").unlink()
    damaged = out / "episodes" / "seed_1.npz"
    damaged.write_bytes(damage)
    assert main(generate_cli(out, env=PLANNER_ENV)) == 2
    error = capsys.readouterr().err
    assert str(damaged) in error and "Delete that file" in error
    damaged.unlink()
    assert main(generate_cli(out, env=PLANNER_ENV)) == 0
    assert len(load_demonstrations(out)) == 2


def test_corrupt_generation_file_is_named(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(generate_cli(out, env=PLANNER_ENV)) == 0
    (out / "generation.json").write_text("{oops")
    assert main(generate_cli(out, env=PLANNER_ENV)) == 2
    assert f"{out / 'generation.json'} cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("kept_seeds", "0,1,2", "'kept_seeds' must be a list of integers, got str"),
        ("obs_mode", 3, "'obs_mode' must be one of image, flat"),
        ("observation_space", {"shape": "7x7"}, "'observation_space' must be an object"),
        ("max_episode_steps", -1, "'max_episode_steps' must be a positive integer or null"),
        ("schema_version", METADATA_SCHEMA_VERSION + 1, "newer than this sb3-llmae reads"),
    ],
)
def test_metadata_of_the_wrong_type_names_file_and_field(saved_demos, field, value, expected):
    path = saved_demos / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata[field] = value
    path.write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="metadata") as error_info:
        load_demonstrations(saved_demos)
    assert str(path) in str(error_info.value) and expected in str(error_info.value)


def test_metadata_without_a_schema_version_loads_as_version_1(saved_demos):
    path = saved_demos / "metadata.json"
    metadata = json.loads(path.read_text())
    del metadata["schema_version"]
    metadata["written_by_another_tool"] = {"x": 1}
    path.write_text(json.dumps(metadata))
    demos = load_demonstrations(saved_demos)
    assert demos.metadata.schema_version == 1 and demos.metadata["written_by_another_tool"] == {"x": 1}
    save_demonstrations(demos, saved_demos)
    assert json.loads(path.read_text())["written_by_another_tool"] == {"x": 1}


def test_missing_metadata_field_is_named():
    with pytest.raises(ValueError, match="required field 'kept_seeds' is missing"):
        DemonstrationMetadata.from_dict({"env_id": ENV_ID, "obs_mode": "image", "observation_space": {}}, "x")


# --- arguments are checked before anything is written ---------------------------------------------


@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        (["--seed", "-5"], PLANNER_ENV, "seed must be >= 0"),
        (["--max-episode-steps", "0"], PLANNER_ENV, "max_episode_steps must be positive"),
        ([], "MiniGrid-MemoryS7-v0", "MiniGrid-MemoryS7-v0"),
    ],
    ids=["negative-seed", "zero-step-limit", "env-the-planner-cannot-play"],
)
def test_bad_generate_arguments_write_nothing(tmp_path, capsys, extra, env, expected):
    out = tmp_path / "run"
    assert main(generate_cli(out, *extra, env=env)) == 2
    error = capsys.readouterr().err
    assert expected in error and "resume" not in error
    assert not out.exists()
    # the corrected run is not refused as another generation
    assert main(generate_cli(out, env=PLANNER_ENV)) == 0


def test_a_run_that_failed_at_once_leaves_no_stub(tmp_path):
    out = tmp_path / "run"
    dead = ChatClient("m", base_url="http://127.0.0.1:9/v1", settings=ChatSettings(max_retries=0, timeout=2))
    with pytest.raises(Exception, match=r"Is a server running at http://127\.0\.0\.1:9/v1"):
        generate_demonstrations(
            PLANNER_ENV, LLMExpert(client=dead), n_episodes=2, out_dir=out, progress_bar=False
        )
    assert not out.exists()


def test_resume_mismatch_names_the_setting(tmp_path):
    generate_demonstrations(ENV_ID, ScriptedExpert(), n_episodes=1, out_dir=tmp_path, progress_bar=False)
    with pytest.raises(ValueError, match=r"expert\.actions: \[2, 2, 1, 2, 2\] -> \[2\]"):
        generate_demonstrations(
            ENV_ID, ScriptedExpert((2,)), n_episodes=1, out_dir=tmp_path, progress_bar=False
        )


# --- silently accepted -----------------------------------------------------------------------------

BC_KWARGS = {"epochs": 1, "batch_size": 4, "stop_at_success": None}


def test_demonstrations_of_another_env_are_refused_unless_allowed(saved_demos, capsys):
    other = "MiniGrid-Empty-6x6-v0"
    with pytest.raises(ValueError, match=rf"come from {ENV_ID}, but the policy is trained on {other}"):
        llm_init_ppo(
            other,
            saved_demos,
            bc_kwargs=BC_KWARGS,
            critic_warmup_steps=0,
            n_envs=1,
            n_steps=16,
            batch_size=16,
        )
    model = make_ppo(other, n_envs=1, n_steps=16, batch_size=16)
    with pytest.raises(ValueError, match="allow_env_mismatch=True"):
        pretrain_bc(model, saved_demos, BC_KWARGS)
    pretrain_bc(model, saved_demos, BC_KWARGS, allow_env_mismatch=True)
    llm_init_ppo(
        other,
        saved_demos,
        bc_kwargs=BC_KWARGS,
        critic_warmup_steps=0,
        n_envs=1,
        n_steps=16,
        batch_size=16,
        allow_env_mismatch=True,
    )
    args = [
        "pretrain",
        "--env",
        other,
        "--demos",
        str(saved_demos),
        "--bc-epochs",
        "1",
        "--bc-batch-size",
        "4",
        "--stop-at-success",
        "none",
        "--warmup-steps",
        "0",
        "--n-envs",
        "1",
    ]
    assert main([*args, "--out", str(saved_demos.parent / "m1.zip")]) == 2
    assert "--allow-env-mismatch" in capsys.readouterr().err
    assert main([*args, "--allow-env-mismatch", "--out", str(saved_demos.parent / "m2.zip")]) == 0


def _demos_with(obs_change=None, act_change=None):
    """Demonstrations of 2 episodes with float observations, one value of episode 1 changed."""
    demos = generate_demonstrations(ENV_ID, ScriptedExpert(), n_episodes=2, progress_bar=False)
    for index, trajectory in enumerate(demos.trajectories):
        obs, acts = trajectory.obs.astype(np.float64), trajectory.acts.copy()
        if index == 1 and obs_change is not None:
            obs[3, 2, 2, 1] = obs_change
        if index == 1 and act_change is not None:
            acts[2] = act_change
        demos.trajectories[index] = TrajectoryWithRew(
            obs=obs, acts=acts, infos=None, terminal=True, rews=trajectory.rews
        )
    return demos


@pytest.mark.parametrize(
    ("obs_change", "act_change", "expected"),
    [
        (np.nan, None, "trajectory 1 (seed 1), step 3: the observation holds NaN"),
        (300.0, None, "trajectory 1 (seed 1), step 3: observation value 300.0 lies outside"),
        (None, 9, "trajectory 1 (seed 1), step 2: action 9 is not in Discrete(7)"),
        (None, -1, "step 2: action -1 is not in Discrete(7)"),
    ],
)
def test_bad_transitions_are_named_before_training(obs_change, act_change, expected):
    demos = _demos_with(obs_change, act_change)
    model = make_ppo(ENV_ID, n_envs=1, n_steps=16, batch_size=16)
    with pytest.raises(ValueError) as error_info:
        pretrain_bc(model, demos, BC_KWARGS)
    assert expected in str(error_info.value)


def test_nan_observations_are_refused_on_load(tmp_path):
    demos = _demos_with(obs_change=np.nan)
    save_demonstrations(demos, tmp_path)
    with pytest.raises(ValueError, match=r"trajectory 1, step 3: an observation value is not a uint8"):
        load_demonstrations(tmp_path)


def test_fallback_rate_is_reported_and_marked(tmp_path, fake_openai_server, capsys):
    fake_openai_server.responder = lambda request: "I am not sure what to do here."
    args = [
        "generate",
        "--env",
        ENV_ID,
        "--expert",
        "llm",
        "--model",
        "m",
        "--base-url",
        fake_openai_server.base_url,
        "--no-cache",
        "--episodes",
        "1",
        "--max-episode-steps",
        "5",
        "--no-progress",
        "--keep-failures",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fallback rate: 100.0% of steps" in printed and "WARNING: a high fallback rate" in printed
    demos = load_demonstrations(tmp_path / "run")
    assert demos.stats["fallback_rate"] == 1.0 and demos.stats["mostly_fallback_episodes"] == 1
    assert demos.metadata.episodes[0]["mostly_fallback"] is True


# --- noise and advice ------------------------------------------------------------------------------


def test_connection_advice_names_the_given_base_url(tmp_path, capsys):
    args = [
        "generate",
        "--env",
        PLANNER_ENV,
        "--expert",
        "llm",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--max-retries",
        "0",
        "--no-cache",
        "--episodes",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert (
        "Is a server running at http://127.0.0.1:9/v1? (the address comes from base_url (--base-url))"
        in error
    )
    assert "OPENAI_BASE_URL" not in error
    assert not (tmp_path / "run").exists()


def test_env_mismatch_check_reads_the_models_env(saved_demos):
    model = make_ppo("MiniGrid-Empty-6x6-v0", n_envs=1, n_steps=16, batch_size=16)
    with pytest.raises(ValueError, match="MiniGrid-Empty-6x6-v0"):
        pretrain_bc(model, saved_demos, BC_KWARGS)
    same = make_ppo(ENV_ID, n_envs=1, n_steps=16, batch_size=16)
    assert pretrain_bc(same, saved_demos, BC_KWARGS).epochs == 1
