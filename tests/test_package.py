import subprocess
import sys

import pytest


def test_public_api_imports():
    from sb3_llmae import (  # noqa: F401
        BCConfig,
        Demonstrations,
        LLMInitCallback,
        MinigridFeaturesExtractor,
        SampleEfficiencyCallback,
        generate_demonstrations,
        llm_init_ppo,
        load_demonstrations,
        make_ppo,
        make_vec_env,
        pretrain_bc,
    )
    from sb3_llmae.demonstrations import save_demonstrations  # noqa: F401
    from sb3_llmae.envs import make_env  # noqa: F401
    from sb3_llmae.experts import PlannerExpert  # noqa: F401
    from sb3_llmae.training import KLPPO, EvalConfig, load_ppo, play_episodes, saved_algo  # noqa: F401


def test_the_top_level_holds_entry_and_extension_points_only():
    import sb3_llmae

    assert len(sb3_llmae.__all__) <= 15
    assert "__version__" in sb3_llmae.__all__
    # what rl-zoo3's YAML names as sb3_llmae.<name>
    assert {
        "LLMInitCallback",
        "SampleEfficiencyCallback",
        "VisitationHeatmapCallback",
        "default_policy_kwargs",
    } <= set(sb3_llmae.__all__)


# sys.modules[name] = None makes `import name` fail, as if imitation were not installed
BLOCK_IMITATION = "import sys; sys.modules['imitation'] = None; "


@pytest.mark.parametrize(
    "use", ["from sb3_llmae import llm_init_ppo", "import sb3_llmae; sb3_llmae.BCConfig"]
)
def test_missing_imitation_names_the_install_command_at_first_use(use):
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_IMITATION + use], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "pip install --no-deps imitation==1.0.1" in result.stderr


def test_without_imitation_the_cli_helps_and_its_commands_name_the_install_command(tmp_path):
    code = BLOCK_IMITATION + "from sb3_llmae.cli import main; sys.exit(main(sys.argv[1:]))"
    helped = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "generate" in helped.stdout
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "generate",
            "--env",
            "MiniGrid-Empty-5x5-v0",
            "--out",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 2
    assert "pip install --no-deps imitation==1.0.1" in ran.stderr and "Traceback" not in ran.stderr


HEAVY_MODULES = ("torch", "stable_baselines3", "datasets", "rliable", "arch", "ray", "openai", "imitation")


def test_the_package_and_the_cli_parser_import_no_heavy_dependency():
    # what `sb3-llmae --help` and an argument error pay for (benchmarks/cli_startup.py times it)
    code = (
        "import sys; import sb3_llmae; from sb3_llmae.cli import build_parser; build_parser(); "
        f"print(sorted(name for name in {HEAVY_MODULES!r} if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_lazy_exports_resolve_and_list_every_name():
    import sb3_llmae
    import sb3_llmae.experiments
    import sb3_llmae.experts
    import sb3_llmae.experts.llm
    import sb3_llmae.training

    for package in (
        sb3_llmae,
        sb3_llmae.training,
        sb3_llmae.experts,
        sb3_llmae.experts.llm,
        sb3_llmae.experiments,
    ):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
            assert name in dir(package)
    assert sb3_llmae.training.ppo.make_ppo is sb3_llmae.make_ppo  # submodules by attribute, as before
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = sb3_llmae.nothing


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    import sb3_llmae

    assert sb3_llmae.__version__ == version("sb3-llmae")


def test_every_exported_name_exists():
    import sb3_llmae

    missing = [name for name in sb3_llmae.__all__ if not hasattr(sb3_llmae, name)]
    assert not missing
