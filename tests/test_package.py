import subprocess
import sys


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


def test_missing_imitation_names_the_install_command():
    # sys.modules[name] = None makes `import name` fail, as if imitation were not installed
    code = "import sys; sys.modules['imitation'] = None; import sb3_llmae"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "pip install --no-deps imitation==1.0.1" in result.stderr


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    import sb3_llmae

    assert sb3_llmae.__version__ == version("sb3-llmae")


def test_every_exported_name_exists():
    import sb3_llmae

    missing = [name for name in sb3_llmae.__all__ if not hasattr(sb3_llmae, name)]
    assert not missing
