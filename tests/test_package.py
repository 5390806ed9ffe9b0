import subprocess
import sys


def test_public_api_imports():
    from sb3_llmae import (  # noqa: F401
        Demonstrations,
        MinigridFeaturesExtractor,
        PlannerExpert,
        generate_demonstrations,
        load_demonstrations,
        make_env,
        make_vec_env,
        save_demonstrations,
    )


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
