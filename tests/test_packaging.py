"""The package as pip builds and installs it: what setup.cfg ships, the metadata, the relaxed imitation wheel,
the packaged rl-zoo3 hyperparameters, ``--version`` and ``python -m sb3_llmae``."""

from __future__ import annotations

import configparser
import email.parser
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tomllib
import zipfile
from base64 import urlsafe_b64encode
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# what a build needs; left out: the venv, VCS data and every output a run leaves in the tree
SOURCE_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "dist", "build", "*.egg-info", "__pycache__", ".*_cache", "runs", "logs", "demo_output"
)


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel setuptools builds from a copy of the source tree (a stale ``build/`` cannot leak into it)."""
    source = tmp_path_factory.mktemp("source") / "sb3-llmae"
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=SOURCE_IGNORE)
    out = tmp_path_factory.mktemp("wheel")
    # no isolation: the venv's setuptools (the dev extra's), so that the test needs no package index
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w"]
    result = subprocess.run([*command, str(out), str(source)], capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = out.glob("sb3_llmae-*.whl")
    return wheel


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_setup_cfg_and_pyproject_configure_nothing_twice():
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(REPO_ROOT / "setup.cfg")
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    # setup.cfg: what goes into the archives; pyproject.toml: metadata, dependencies and the tools
    assert setup_cfg.sections() == ["options", "options.packages.find", "options.package_data"]
    assert "setuptools" not in pyproject.get("tool", {})
    assert set(setup_cfg["options"]) == {"packages"}
    assert not set(pyproject["project"]) & {"packages", "package-data", "package-dir"}


def test_the_wheel_ships_what_setup_cfg_declares(built_wheel):
    with zipfile.ZipFile(built_wheel) as archive:
        names = set(archive.namelist())
        for yml in sorted((REPO_ROOT / "hyperparams").glob("*.yml")):
            assert archive.read(f"sb3_llmae/hyperparams/{yml.name}") == yml.read_bytes()
    assert "sb3_llmae/py.typed" in names
    modules = {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "sb3_llmae").rglob("*.py")}
    assert not modules - names, "modules missing from the wheel"
    assert not [name for name in names if "__pycache__" in name]
    dist_info = built_wheel.name.split("-py3")[0] + ".dist-info"
    assert {name.split("/")[0] for name in names} == {"sb3_llmae", dist_info}


def test_the_wheel_carries_the_full_metadata(built_wheel):
    metadata = wheel_metadata(built_wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Author"]
    assert "reinforcement-learning" in metadata["Keywords"]
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert any(url.startswith("Stable-Baselines3, https://") for url in metadata.get_all("Project-URL"))
    assert "imitation==1.0.1" in metadata.get_all("Requires-Dist")
    with zipfile.ZipFile(built_wheel) as archive:
        (license_name,) = [
            name for name in archive.namelist() if name.endswith(".dist-info/licenses/LICENSE")
        ]
        assert archive.read(license_name) == (REPO_ROOT / "LICENSE").read_bytes()
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")


def load_relaxer() -> ModuleType:
    path = REPO_ROOT / ".ci" / "relaxed_imitation_wheel.py"
    spec = importlib.util.spec_from_file_location("relaxed_imitation_wheel", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


UPSTREAM_METADATA = """Metadata-Version: 2.1
Name: imitation
Version: 1.0.1
Requires-Dist: gymnasium[classic-control]~=0.29
Requires-Dist: numpy>=1.15
Requires-Dist: seals~=0.2.1
Requires-Dist: stable-baselines3~=2.2.1
Requires-Dist: huggingface-sb3~=3.0
Requires-Dist: datasets>=2.8.0
Provides-Extra: test
Requires-Dist: pytest~=7.1.2; extra == "test"

imitation's description
"""


def fake_upstream_wheel(folder: Path, metadata: str = UPSTREAM_METADATA) -> Path:
    """A wheel laid out as PyPI's imitation 1.0.1 (one module, its dist-info), with the given METADATA."""
    path = folder / "imitation-1.0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("imitation/__init__.py", "VALUE = 1\n")
        archive.writestr("imitation-1.0.1.dist-info/METADATA", metadata)
        archive.writestr("imitation-1.0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        archive.writestr("imitation-1.0.1.dist-info/RECORD", "stale,,\n")
    return path


def test_the_relaxed_imitation_wheel_changes_only_the_stale_pins(tmp_path):
    relaxer = load_relaxer()
    wheel = relaxer.relax_wheel(fake_upstream_wheel(tmp_path), tmp_path / "out")
    assert wheel.name == "imitation-1.0.1+sb3llmae.1-py3-none-any.whl"
    info = "imitation-1.0.1+sb3llmae.1.dist-info/"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("imitation/__init__.py") == b"VALUE = 1\n"
        metadata = archive.read(info + "METADATA").decode()
        record = archive.read(info + "RECORD").decode().splitlines()
        files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("RECORD")}
    parsed = email.parser.Parser().parsestr(metadata)
    assert parsed["Version"] == "1.0.1+sb3llmae.1"
    assert parsed.get_all("Requires-Dist") == [
        "gymnasium[classic-control]<2,>=0.29",
        "numpy>=1.15",
        "seals~=0.2.1",
        "stable-baselines3<3,>=2.2.1",
        "sb3-team-hf-integration<4,>=3.0",
        "datasets>=2.8.0",
        'pytest~=7.1.2; extra == "test"',
    ]
    assert metadata.endswith("imitation's description\n")
    # RECORD names every file with its hash and size, as installers check
    expected = {
        f"{name},sha256={urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    }
    assert set(record) == expected | {info + "RECORD,,"}
    # the same input gives the same bytes
    again = relaxer.relax_wheel(fake_upstream_wheel(tmp_path), tmp_path / "again")
    assert again.read_bytes() == wheel.read_bytes()


def test_the_relaxer_refuses_metadata_it_was_not_written_for(tmp_path):
    relaxer = load_relaxer()
    newer = UPSTREAM_METADATA.replace("stable-baselines3~=2.2.1", "stable-baselines3>=2.9")
    with pytest.raises(ValueError, match=r"stable-baselines3~=2\.2\.1"):
        relaxer.relax_wheel(fake_upstream_wheel(tmp_path, newer), tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.whl"))


def test_hyperparams_path_gives_the_packaged_files():
    import sb3_llmae.zoo as zoo

    top_level = sorted((REPO_ROOT / "hyperparams").glob("*.yml"))
    assert zoo.hyperparams_names() == [path.stem for path in top_level] == ["llmae_ppo", "ppo"]
    for path in top_level:
        packaged = zoo.hyperparams_path(path.stem)
        assert packaged.parent.parent == Path(zoo.__file__).resolve().parent
        assert packaged.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="No hyperparameter file 'a2c': the package ships llmae_ppo, ppo"):
        zoo.hyperparams_path("a2c")


def test_version_flag(capsys):
    import sb3_llmae
    from sb3_llmae.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"sb3-llmae {sb3_llmae.__version__}\n"


def test_python_m_sb3_llmae_is_the_console_script():
    import sb3_llmae

    command = [sys.executable, "-m", "sb3_llmae", "--version"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f"sb3-llmae {sb3_llmae.__version__}\n"
    usage = subprocess.run([sys.executable, "-m", "sb3_llmae"], capture_output=True, text=True, timeout=280)
    assert usage.returncode == 2
    assert usage.stderr.startswith("usage: sb3-llmae")
