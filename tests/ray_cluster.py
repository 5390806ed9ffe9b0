"""A real multi-node Ray cluster on 127.0.0.1 for tests: a head and worker nodes, each its own raylet
(``ray start --head`` + ``ray start --address``), stopped by the ids of its own processes only."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    """:return: a TCP port free on 127.0.0.1 now"""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _processes() -> dict[int, tuple[int, str]]:
    """:return: this user's processes: pid -> (parent pid, command line)"""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry.name)] = (parent, cmdline)
    return found


class RayCluster:
    """
    ``ray start --head`` and ``nodes - 1`` ``ray start --address`` on this machine, one CPU each, in a temp
    dir of their own; on exit every process of the cluster (found by that dir, its GCS port and as their
    descendants) is stopped by its id, so that no other Ray on the machine is touched.

    :param nodes: raylets in the cluster, the head included
    :param cwd: the working directory of the nodes (and so of their workers)
    :param env: the nodes' environment (and so their workers')
    """

    def __init__(self, nodes: int, cwd: Path, env: dict[str, str]) -> None:
        self.nodes = nodes
        self.cwd = cwd
        self.port = free_port()
        # short: Ray's socket paths live under it, and a Unix socket path is at most 107 bytes
        self.temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self.env = {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        self.address = f"127.0.0.1:{self.port}"

    def _start(self, *arguments: str) -> None:
        common = ("--num-cpus", "1", "--temp-dir", self.temp_dir, "--disable-usage-stats")
        subprocess.run(
            [RAY, "start", *arguments, *common],
            cwd=self.cwd,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=300,
        )

    def __enter__(self) -> RayCluster:
        try:
            self._start(
                "--head",
                "--port",
                str(self.port),
                "--node-ip-address",
                "127.0.0.1",
                "--include-dashboard=false",
            )
            for _ in range(self.nodes - 1):
                self._start("--address", self.address)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def pids(self) -> set[int]:
        """:return: the ids of the cluster's processes still running"""
        processes = _processes()
        marks = (self.temp_dir, f":{self.port} ", f":{self.port}\0", f"={self.port} ")
        own = {pid for pid, (_, cmdline) in processes.items() if any(mark in cmdline + " " for mark in marks)}
        own.discard(os.getpid())
        grown = True
        while grown:
            children = {pid for pid, (parent, _) in processes.items() if parent in own} - own
            own |= children
            grown = bool(children)
        return own

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every process of the cluster: SIGTERM, then SIGKILL whatever is left after ``timeout``."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.5)
            if not self.pids():
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)
