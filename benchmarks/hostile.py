"""The hostile suite: the ``sb3-llmae`` command line played end to end as a hostile user would, and each
outcome classified.

Every case runs real ``sb3-llmae`` processes (forked from a server that has imported the command line once,
see ``benchmarks/hostile_zygote.py``; ``--exec`` starts each as ``python -m sb3_llmae.cli`` instead),
sends them real signals, points them at real local servers on 127.0.0.1 that misbehave
(``sb3_llmae.testing``), fills a real disk (a 1 MB tmpfs, when this process may mount one) and writes to
really unwritable paths (under ``/proc``). Each case gets its own folder, ``HOME`` and cache, and an API
key that must not appear anywhere. Outcomes, worst first:

- ``hang``: a command ran past its limit, or left processes running after it ended;
- ``leak``: the API key is in the output or in a file the case wrote;
- ``traceback``: a Python traceback reached the terminal;
- ``lost``: work already produced was lost or overwritten, or a file was left half-written;
- ``wrong``: no traceback, nothing lost, but not what a user needs (a bad value accepted, an error that
  does not say what is wrong, a silent report over runs that cannot be compared);
- ``clean``: what a user needs.

::

    python -m benchmarks.hostile                 # the default cases; prints one line per case and the counts
    python -m benchmarks.hostile --all           # the slow ones too (compare runs, signals to workers)
    python -m benchmarks.hostile --only cut --exec
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sb3_llmae.testing import FakeOpenAIServer, FakeReply
from sb3_llmae.testing.flaky import Fault, FlakyProxy

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ("hang", "leak", "traceback", "lost", "wrong", "clean")
TRACEBACK = "Traceback (most recent call last)"
ENV_ID = "MiniGrid-Empty-5x5-v0"
# An LLM run of one short episode: a handful of requests.
LLM_ARGS = ("--expert", "llm", "--model", "fake-model", "--episodes", "1", "--max-episode-steps", "3")
LLM_FAST = ("--timeout", "5", "--max-retries", "2", "--no-progress", "--keep-failures")
REPORT_FAST = ("--reps", "20")
UNWRITABLE = "/proc/sb3-llmae-hostile"


# ----------------------------------------------------------------------------- processes


@dataclass
class Command:
    """
    One finished ``sb3-llmae`` command.

    :param argv: its arguments
    :param rc: its exit status (negative: the signal that ended it); ``None`` if it ran past its limit
    :param stdout: what it printed
    :param stderr: what it logged
    :param seconds: how long it ran
    :param leftover: whether processes it started were still running after it ended
    """

    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    leftover: bool = False

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr

    def says(self, *words: str) -> bool:
        """:return: whether the output holds every one of ``words`` (any case)"""
        lowered = self.output.lower()
        return all(word.lower() in lowered for word in words)


class Running:
    """A command started in its own process group (``pid`` is the group's id too)."""

    def __init__(
        self, argv: list[str], pid: int, poll: Callable[[], int | None], stdout: Path, stderr: Path
    ) -> None:
        self.argv = argv
        self.pid = pid
        self._poll = poll
        self.stdout_path = stdout
        self.stderr_path = stderr
        self.started = time.monotonic()

    def poll(self) -> int | None:
        """:return: the exit status, or ``None`` while it runs"""
        return self._poll()

    def wait(self, timeout: float) -> int | None:
        """:return: the exit status, or ``None`` if it still runs after ``timeout`` seconds"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.poll()
            if status is not None:
                return status
            time.sleep(0.05)
        return self.poll()

    def signal(self, signum: int, group: bool = False) -> None:
        """
        :param signum: the signal
        :param group: to the whole process group, as a terminal sends Ctrl-C; else to the command only
        """
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.pid, signum)
            else:
                os.kill(self.pid, signum)

    def group_alive(self) -> bool:
        """:return: whether any process of the command's group still runs"""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # a zombie of the group counts as ended
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == self.pid and fields[0] != "Z":
                    return True
        return False

    def output_so_far(self) -> str:
        """:return: what it has printed and logged until now"""
        return _read(self.stdout_path) + _read(self.stderr_path)

    def finish(self, timeout: float, grace_s: float = 5.0) -> Command:
        """
        Wait for the command to end (killing its group past ``timeout``) and collect it.

        :param timeout: seconds from now it may still run
        :param grace_s: how long the processes it started may outlive it
        :return: the finished command
        """
        rc = self.wait(timeout)
        leftover = False
        if rc is None:
            self.signal(signal.SIGKILL, group=True)
            self.wait(10)
        else:
            deadline = time.monotonic() + grace_s
            while self.group_alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            leftover = self.group_alive()
            if leftover:
                self.signal(signal.SIGKILL, group=True)
        return Command(
            self.argv,
            rc,
            _read(self.stdout_path),
            _read(self.stderr_path),
            time.monotonic() - self.started,
            leftover,
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _terminal_signals() -> None:
    """In a child before exec: SIGINT and SIGTERM as a terminal leaves them (a shell without job control
    starts background commands with SIGINT ignored, which Python then keeps)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class ExecLauncher:
    """Each command a fresh ``python -m sb3_llmae.cli`` process (about 10 s of imports each)."""

    def start(self, argv: list[str], cwd: Path, env: dict[str, str], stdout: Path, stderr: Path) -> Running:
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "sb3_llmae.cli", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_terminal_signals,
            )
        return Running(argv, process.pid, process.poll, stdout, stderr)

    def close(self) -> None:
        """Nothing to stop."""


class ForkLauncher:
    """Commands forked from a server that imported the command line once (``benchmarks.hostile_zygote``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.hostile_zygote"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._server.stdout is not None
        ready = self._server.stdout.readline()
        if not ready.startswith('{"ready"'):
            raise RuntimeError(f"the fork server did not start: {ready!r}")

    def start(self, argv: list[str], cwd: Path, env: dict[str, str], stdout: Path, stderr: Path) -> Running:
        status_path = stdout.with_suffix(".status")
        status_path.unlink(missing_ok=True)
        job = {
            "argv": argv,
            "cwd": str(cwd),
            "env": env,
            "stdout": str(stdout),
            "stderr": str(stderr),
            "status": str(status_path),
        }
        assert self._server.stdin is not None and self._server.stdout is not None
        self._server.stdin.write(json.dumps(job) + "\n")
        self._server.stdin.flush()
        pid = int(json.loads(self._server.stdout.readline())["pid"])

        def poll() -> int | None:
            try:
                return int(status_path.read_text())
            except (FileNotFoundError, ValueError):
                return None

        return Running(argv, pid, poll, stdout, stderr)

    def close(self) -> None:
        """Stop the fork server."""
        if self._server.stdin is not None:
            self._server.stdin.close()
        try:
            self._server.wait(10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()


# ----------------------------------------------------------------------------- the cases


@dataclass
class Verdict:
    """How one case ended: its outcome (``OUTCOMES``), and why."""

    name: str
    group: int
    outcome: str
    reasons: list[str]
    seconds: float


class CaseContext:
    """
    What a case works with: its own folder and environment, and the commands it ran, for the checks.

    :param harness: the suite's harness (launcher, shared artefacts, the key)
    :param folder: the case's folder; every file in it is searched for the key afterwards
    """

    def __init__(self, harness: Harness, folder: Path) -> None:
        self.harness = harness
        self.dir = folder
        self.logs = folder / "_logs"
        self.logs.mkdir(parents=True)
        home = folder / "home"
        home.mkdir()
        self.key = harness.key
        self.env = {
            **harness.base_env,
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "OPENAI_API_KEY": harness.key,
            "TMPDIR": str(folder / "tmp"),
        }
        (folder / "tmp").mkdir()
        self.commands: list[Command] = []
        self.problems: list[tuple[str, str]] = []
        self.extra_outputs: list[str] = []
        self.watched: list[Path] = []
        self._servers: list[Any] = []
        self._count = 0

    # running commands

    def start(self, *argv: str, env: dict[str, str] | None = None) -> Running:
        """Start ``sb3-llmae ARGV`` in the case's folder."""
        self._count += 1
        stdout = self.logs / f"{self._count}.out"
        stderr = self.logs / f"{self._count}.err"
        return self.harness.launcher.start(list(argv), self.dir, {**self.env, **(env or {})}, stdout, stderr)

    def finish(self, running: Running, timeout: float = 60.0) -> Command:
        """Wait for a started command and record it for the checks."""
        command = running.finish(timeout)
        self.commands.append(command)
        if command.rc is None:
            self.flag("hang", f"`{' '.join(command.argv[:2])}` ran past its {timeout:.0f} s limit")
        elif command.leftover:
            self.flag("hang", f"`{' '.join(command.argv[:2])}` left processes running after it ended")
        return command

    def cli(self, *argv: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> Command:
        """Run ``sb3-llmae ARGV`` to its end."""
        return self.finish(self.start(*argv, env=env), timeout)

    # servers

    def server(self, **kwargs: Any) -> FakeOpenAIServer:
        """:return: a started fake chat server, stopped after the case"""
        server = FakeOpenAIServer(**kwargs).start()
        self._servers.append(server)
        return server

    def proxy(self, upstream: FakeOpenAIServer, **kwargs: Any) -> FlakyProxy:
        """:return: a started flaky proxy in front of ``upstream``, stopped after the case"""
        proxy = FlakyProxy(upstream.base_url, **kwargs).start()
        self._servers.append(proxy)
        return proxy

    def close(self) -> None:
        """Stop the case's servers."""
        for server in self._servers:
            server.stop()

    # verdicts

    def flag(self, outcome: str, reason: str) -> None:
        """Record a problem (``outcome`` one of ``OUTCOMES``)."""
        assert outcome in OUTCOMES, outcome
        self.problems.append((outcome, reason))

    def expect(self, condition: bool, outcome: str, reason: str) -> bool:
        """Flag ``reason`` unless ``condition`` holds; :return: ``condition``"""
        if not condition:
            self.flag(outcome, reason)
        return condition

    def expect_ok(self, command: Command) -> bool:
        """The command must succeed."""
        return self.expect(command.rc == 0, "wrong", f"failed (exit {command.rc}): {_last_line(command)}")

    def expect_refusal(self, command: Command, *words: str, quick_s: float | None = None) -> bool:
        """
        The command must refuse: a non-zero exit of its own (not a signal) and a message holding ``words``.

        :param quick_s: and within this many seconds (before any long work)
        """
        if command.rc is None:
            return False
        if not self.expect(command.rc > 0, "wrong", f"accepted (exit {command.rc}): {_last_line(command)}"):
            return False
        ok = self.expect(
            command.says(*words), "wrong", f"refused without naming {words}: {_last_line(command)}"
        )
        if quick_s is not None:
            ok &= self.expect(
                command.seconds < quick_s, "wrong", f"refused only after {command.seconds:.0f} s of work"
            )
        return ok

    def verdict(self, name: str, group: int, seconds: float) -> Verdict:
        """Classify the case from its commands, its files and the problems its checks flagged."""
        texts = [command.output for command in self.commands] + self.extra_outputs
        if any(TRACEBACK in text for text in texts):
            first = next(text for text in texts if TRACEBACK in text)
            self.flag("traceback", "a traceback: " + _last_line_of(first))
        leaked = [path for path in _files(self.dir) if self.key.encode() in _read_bytes(path)]
        leaked += [path for path in self.watched if path.is_file() and self.key.encode() in _read_bytes(path)]
        for path in leaked:
            where = "the terminal" if path.parent == self.logs else str(path.relative_to(self.dir))
            self.flag("leak", f"the key is in {where}")
        found = {outcome for outcome, _ in self.problems}
        outcome = next((candidate for candidate in OUTCOMES if candidate in found), "clean")
        reasons = [f"{kind}: {reason}" for kind, reason in self.problems]
        return Verdict(name, group, outcome, reasons, seconds)


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _last_line(command: Command) -> str:
    return _last_line_of(command.output) or "(no output)"


def _last_line_of(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


@dataclass(frozen=True)
class Case:
    """
    One hostile case.

    :param name: its name (``--only`` selects by substring)
    :param group: the class of the issue it belongs to (1-8)
    :param play: runs it: ``play(context)``
    :param slow: whether it trains for real (compare runs), left out of the default run
    :param needs_mount: whether it needs a tmpfs (skipped where mounting is not allowed)
    """

    name: str
    group: int
    play: Callable[[CaseContext], None]
    slow: bool = False
    needs_mount: bool = False


CASES: list[Case] = []


def case(group: int, name: str | None = None, slow: bool = False, needs_mount: bool = False) -> Callable:
    """Register a case function."""

    def register(play: Callable[[CaseContext], None]) -> Callable[[CaseContext], None]:
        CASES.append(Case(name or play.__name__, group, play, slow, needs_mount))
        return play

    return register


def cases_of(group: int, prefix: str, variants: dict[str, Any], slow: bool = False) -> Callable:
    """Register one case per variant: ``play(context, variant)``, named ``<prefix>-<variant name>``."""

    def register(play: Callable[[CaseContext, Any], None]) -> Callable[[CaseContext, Any], None]:
        for label, variant in variants.items():

            def bound(context: CaseContext, variant: Any = variant) -> None:
                play(context, variant)

            CASES.append(Case(f"{prefix}-{label}", group, bound, slow))
        return play

    return register


# ----------------------------------------------------------------------------- artefacts


class Harness:
    """
    The suite's shared state: the launcher, a key, a scratch root and artefacts made once (saved
    demonstrations, a trained model, a finished comparison) that cases copy.

    :param root: where the cases' folders go
    :param launcher: ``"fork"`` or ``"exec"``
    """

    def __init__(self, root: Path, launcher: str = "fork") -> None:
        self.root = root
        self.key = "sk-hostile-" + secrets.token_hex(12)
        self.base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO_ROOT),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "LANG": "C.UTF-8",
            "COLUMNS": "120",
        }
        self.launcher: ExecLauncher | ForkLauncher = (
            ForkLauncher(self.base_env) if launcher == "fork" else ExecLauncher()
        )
        self._artefacts: dict[str, Path] = {}
        self.can_mount = _can_mount_tmpfs(root)

    def close(self) -> None:
        """Stop the launcher."""
        self.launcher.close()

    def artefact(self, name: str) -> Path:
        """:return: the shared artefact ``name`` (``demos``, ``model``, ``dqn``, ``comparison``), made once"""
        if name not in self._artefacts:
            folder = self.root / "_artefacts" / name
            context = CaseContext(self, folder)
            path = getattr(self, f"_make_{name}")(context)
            for command in context.commands:
                if command.rc != 0:
                    raise RuntimeError(f"making the {name} artefact failed:\n{command.output[-3000:]}")
            self._artefacts[name] = path
        return self._artefacts[name]

    def _make_demos(self, context: CaseContext) -> Path:
        context.cli("generate", "--env", ENV_ID, "--episodes", "2", "--out", "demos", "--no-progress")
        return context.dir / "demos"

    def _make_model(self, context: CaseContext) -> Path:
        context.cli(
            "train", "--env", ENV_ID, "--steps", "64", "--n-envs", "1", "--eval-episodes", "0",
            "--out", "run", "--no-progress",
        )  # fmt: skip
        return context.dir / "run"

    def _make_dqn(self, context: CaseContext) -> Path:
        from stable_baselines3 import DQN

        from sb3_llmae.envs import make_vec_env

        env = make_vec_env(ENV_ID, n_envs=1, seed=0)
        DQN("MlpPolicy", env, buffer_size=100, learning_starts=10**9, seed=0).save(context.dir / "dqn.zip")
        return context.dir / "dqn.zip"

    def _make_comparison(self, context: CaseContext) -> Path:
        context.cli(*compare_args("cmp", steps=128, seeds=("0", "1")), timeout=300)
        return context.dir / "cmp"


def _can_mount_tmpfs(root: Path) -> bool:
    probe = root / "_mount_probe"
    probe.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
    )
    if mounted.returncode != 0:
        return False
    subprocess.run(["umount", str(probe)], capture_output=True)
    return True


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"1m"``) mounted at ``path`` while the block runs: a real full disk."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def compare_args(out: str, steps: int = 128, seeds: tuple[str, ...] = ("0",), *extra: str) -> list[str]:
    """``compare`` of PPO from scratch on Empty-5x5, as small as a run can be."""
    return [
        "compare", "--env", ENV_ID, "--methods", "scratch", "--seeds", *seeds, "--steps", str(steps),
        "--n-envs", "1", "--eval-freq", "64", "--eval-episodes", "2", "--ppo-kwargs",
        '{"n_steps": 64, "batch_size": 64, "n_epochs": 1}', "--out", out, "--no-progress", *extra,
    ]  # fmt: skip


def llm_generate(base_url: str, out: str, *extra: str) -> list[str]:
    """``generate`` of one short LLM episode against ``base_url``."""
    return ["generate", "--env", ENV_ID, *LLM_ARGS, *LLM_FAST, "--base-url", base_url, "--out", out, *extra]


def saved_episodes(folder: Path) -> int:
    """:return: how many episodes a ``generate --out`` folder holds"""
    return len(list((folder / "episodes").glob("*"))) if (folder / "episodes").is_dir() else 0


def all_files_readable(folder: Path) -> list[str]:
    """:return: the files under ``folder`` that are half-written (zip, JSON, npz, npy that do not load)"""
    bad = []
    for path in _files(folder):
        try:
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    archive.testzip()
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".npz":
                with np.load(path) as data:
                    for key in data.files:
                        data[key]
            elif path.suffix == ".npy":
                np.load(path)
        except Exception:
            bad.append(str(path.relative_to(folder)))
    return bad


# ----------------------------------------------------------------------------- 1: network


TRANSPORT_FAULTS = {"cut": "cut", "reset": "reset", "drop": "drop", "garbled": "garbled"}


@cases_of(1, "drop-once", TRANSPORT_FAULTS)
def transport_fault_once(context: CaseContext, fault: Fault) -> None:
    """One reply broken at the transport level: retried, the episode plays on."""
    proxy = context.proxy(context.server())
    proxy.enqueue(fault)
    command = context.cli(*llm_generate(proxy.base_url, "demos"))
    if context.expect_ok(command):
        context.expect(saved_episodes(context.dir / "demos") == 1, "lost", "the episode was not saved")


@cases_of(1, "drop-always", TRANSPORT_FAULTS)
def transport_fault_always(context: CaseContext, fault: Fault) -> None:
    """Every reply broken: retried, then one error naming the endpoint."""
    proxy = context.proxy(context.server(), always=fault)
    command = context.cli(*llm_generate(proxy.base_url, "demos"))
    context.expect_refusal(command, proxy.base_url)


@case(1)
def drop_once_in_plan_mode(context: CaseContext) -> None:
    proxy = context.proxy(context.server())
    proxy.enqueue("cut")
    command = context.cli(*llm_generate(proxy.base_url, "demos", "--mode", "plan"))
    context.expect_ok(command)


@case(1)
def drop_once_with_workers(context: CaseContext) -> None:
    proxy = context.proxy(context.server())
    proxy.enqueue("cut", "reset")
    argv = llm_generate(proxy.base_url, "demos", "--workers", "2")
    argv[argv.index("--episodes") + 1] = "2"
    command = context.cli(*argv)
    if context.expect_ok(command):
        context.expect(saved_episodes(context.dir / "demos") == 2, "lost", "an episode was not saved")


@case(1)
def drop_after_a_finished_episode_keeps_it(context: CaseContext) -> None:
    server = context.server(latency_s=0.3)
    # the first episode's three steps forwarded, then the connection drops for good
    proxy = context.proxy(server)
    argv = llm_generate(proxy.base_url, "demos")
    argv[argv.index("--episodes") + 1] = "2"
    running = context.start(*argv)
    deadline = time.monotonic() + 60
    while (
        saved_episodes(context.dir / "demos") < 1 and time.monotonic() < deadline and running.poll() is None
    ):
        time.sleep(0.05)
    proxy.always = "cut"
    command = context.finish(running)
    if command.rc == 0:
        return
    context.expect(saved_episodes(context.dir / "demos") >= 1, "lost", "the finished episode was lost")
    context.expect_refusal(command, proxy.base_url)


# ----------------------------------------------------------------------------- 2: run folders


def resumable_comparison(context: CaseContext) -> Path:
    """A comparison whose one run is interrupted after its first checkpoint: copied from the finished one."""
    source = context.harness.artefact("comparison")
    target = context.dir / "cmp"
    shutil.copytree(source, target)
    run = target / "scratch" / "seed0"
    (run / "result.json").unlink()
    (run / "model.zip").unlink()
    shutil.rmtree(target / "scratch" / "seed1")
    return target


@case(2, slow=True)
def truncated_checkpoint_on_resume(context: CaseContext) -> None:
    """SIGKILL or a full disk during a checkpoint's save leaves it truncated: a resume must skip it."""
    target = resumable_comparison(context)
    checkpoints = sorted((target / "scratch" / "seed0" / "checkpoints").glob("*.zip"))
    if not context.expect(len(checkpoints) >= 2, "wrong", "the comparison kept fewer than 2 checkpoints"):
        return
    latest = max(checkpoints, key=lambda path: int(path.name.split("_")[1]))
    latest.write_bytes(latest.read_bytes()[:1000])
    command = context.cli(*compare_args("cmp", steps=128, seeds=("0",)), timeout=300)
    if context.expect_ok(command):
        context.expect(
            command.says("skip") or command.says("unreadable"), "wrong", "the skipped checkpoint is not named"
        )


@case(2, slow=True, needs_mount=True)
def full_disk_during_compare(context: CaseContext) -> None:
    """A real full disk in the middle of a run: no half-written file stays behind, a re-run resumes."""
    with small_disk(context.dir / "disk", "600k") as disk:
        command = context.cli(*compare_args(str(disk / "cmp"), steps=2048), timeout=300)
        context.expect(command.rc != 0, "wrong", "a full disk went unnoticed")
        bad = all_files_readable(disk / "cmp")
        context.expect(not bad, "lost", f"half-written files left behind: {', '.join(bad[:3])}")


@cases_of(2, "half-written", {"npz": "npz", "config": "config", "result": "result", "heatmap": "heatmap"})
def half_written_file(context: CaseContext, kind: str) -> None:
    """A half-written file in a run folder (as a kill during a save leaves): named, never a traceback."""
    # the files as `compare` lays them out (written directly: no training needed to damage one)
    target = fabricated_runs(context, {"llmae": {}, "scratch": {}})
    run = target / "scratch" / "seed0"
    path = {
        "npz": max((run / "eval_logs").glob("*.npz")),
        "config": run / "config.json",
        "result": run / "result.json",
        "heatmap": run / "heatmaps" / "visits_step1000.npy",  # the last: the report reads it
    }[kind]
    path.write_bytes(path.read_bytes()[: max(len(path.read_bytes()) // 2, 1)])
    command = context.cli("report", str(target), "--out", "report", *REPORT_FAST)
    context.expect_refusal(command, path.name)


# ----------------------------------------------------------------------------- 3: train, compare


@case(3)
def train_ctrl_c_keeps_the_model(context: CaseContext) -> None:
    running = context.start(
        "train", "--env", ENV_ID, "--steps", "100000000", "--n-envs", "1", "--out", "run", "--no-progress"
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((context.dir / "run").rglob("events.out.tfevents*")):
        time.sleep(0.1)
    time.sleep(3)
    running.signal(signal.SIGINT, group=True)
    command = context.finish(running, timeout=30)
    context.expect(command.rc == 130, "wrong", f"exit {command.rc} after Ctrl-C, not 130")
    context.expect(
        (context.dir / "run" / "model.zip").is_file(), "lost", "no model.zip: the training is lost"
    )


@case(3)
def train_onto_a_finished_run(context: CaseContext) -> None:
    run = context.dir / "run"
    shutil.copytree(context.harness.artefact("model"), run)
    before = (run / "model.zip").read_bytes()
    command = context.cli(
        "train", "--env", ENV_ID, "--steps", "64", "--n-envs", "1", "--eval-episodes", "0", "--out", "run",
        "--no-progress", "--seed", "7",
    )  # fmt: skip
    kept = (run / "model.zip").read_bytes() == before
    context.expect(kept, "lost", "the finished run's model.zip was overwritten")
    context.expect_refusal(command, "model.zip")


@case(3, slow=True)
def two_compares_on_one_out(context: CaseContext) -> None:
    first = context.start(*compare_args("cmp", steps=256))
    time.sleep(1.0)
    second = context.cli(*compare_args("cmp", steps=256), timeout=300)
    context.finish(first, timeout=300)
    context.expect_refusal(second, "cmp")
    csv_path = context.dir / "cmp" / "scratch" / "seed0" / "evaluations.csv"
    if csv_path.is_file():
        rows = csv_path.read_text().splitlines()[1:]
        steps = [row.split(",")[0] for row in rows]
        context.expect(len(steps) == len(set(steps)), "lost", "evaluations.csv holds every evaluation twice")


def _wait_for_workers(context: CaseContext, running: Running, out: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running.poll() is None:
        if len(list(out.glob("scratch/seed*/eval_logs/*.npz"))) >= 2:
            return
        time.sleep(0.2)


@case(3, slow=True)
def sigterm_to_compare_with_workers(context: CaseContext) -> None:
    argv = compare_args("cmp", 100_000, ("0", "1"), "--workers", "2")
    running = context.start(*argv)
    _wait_for_workers(context, running, context.dir / "cmp")
    running.signal(signal.SIGTERM)
    command = context.finish(running, timeout=30)
    context.expect(command.rc not in (0, None), "wrong", "exit 0 after SIGTERM")
    bad = all_files_readable(context.dir / "cmp")
    context.expect(not bad, "lost", f"half-written files left behind: {', '.join(bad[:3])}")


@case(3, slow=True)
def ctrl_c_to_compare_with_workers(context: CaseContext) -> None:
    running = context.start(*compare_args("cmp", 100_000, ("0", "1"), "--workers", "2"))
    _wait_for_workers(context, running, context.dir / "cmp")
    running.signal(signal.SIGINT, group=True)
    command = context.finish(running, timeout=30)
    context.expect(command.rc == 130, "wrong", f"exit {command.rc} after Ctrl-C, not 130")


@case(3)
def generate_ctrl_c_keeps_episodes(context: CaseContext) -> None:
    server = context.server(latency_s=0.05)
    argv = llm_generate(server.base_url, "demos", "--workers", "2")
    argv[argv.index("--episodes") + 1] = "1000"
    running = context.start(*argv)
    deadline = time.monotonic() + 60
    while (
        saved_episodes(context.dir / "demos") < 2 and time.monotonic() < deadline and running.poll() is None
    ):
        time.sleep(0.1)
    kept = saved_episodes(context.dir / "demos")
    running.signal(signal.SIGINT, group=True)
    command = context.finish(running, timeout=20)
    context.expect(command.rc == 130, "wrong", f"exit {command.rc} after Ctrl-C, not 130")
    context.expect(saved_episodes(context.dir / "demos") >= kept > 0, "lost", "finished episodes were lost")


@case(3)
def generate_ctrl_c_with_a_hung_server(context: CaseContext) -> None:
    server = context.server()
    server.enqueue(*[FakeReply.hang(60)] * 4)
    running = context.start(*llm_generate(server.base_url, "demos", "--timeout", "120"))
    deadline = time.monotonic() + 30
    while server.request_count == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    running.signal(signal.SIGINT, group=True)
    command = context.finish(running, timeout=15)
    context.expect(command.rc == 130, "wrong", f"exit {command.rc} after Ctrl-C, not 130")


@case(3)
def second_generate_on_one_out(context: CaseContext) -> None:
    server = context.server()
    server.enqueue(*[FakeReply.hang(60)] * 2)
    first = context.start(*llm_generate(server.base_url, "demos", "--timeout", "120"))
    deadline = time.monotonic() + 30
    while server.request_count == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    second = context.cli(*llm_generate(server.base_url, "demos"))
    first.signal(signal.SIGINT, group=True)
    context.finish(first, timeout=15)
    context.expect_refusal(second, "demos")


# ----------------------------------------------------------------------------- 4, 7: report


def fabricated_runs(
    context: CaseContext,
    methods: dict[str, dict[str, Any]],
    seeds: tuple[int, ...] = (0, 1, 2),
) -> Path:
    """
    A comparison folder written directly, as ``compare`` lays it out: per method an env id, a budget
    and the success at each evaluation (``success``: a function of (seed, step)).

    :return: the folder
    """
    root = context.dir / "runs"
    for method, spec in methods.items():
        for seed in spec.get("seeds", seeds):
            run = root / method / f"seed{seed}"
            (run / "eval_logs").mkdir(parents=True)
            steps = spec.get("steps", 1000)
            env_id = spec.get("env", ENV_ID)
            config = {
                "method": {"name": method, "init": "scratch"},
                "seed": spec.get("seed_of", lambda s: s)(seed),
                "settings": {"env_id": env_id, "steps": steps},
                "demos": None,
            }
            (run / "config.json").write_text(json.dumps(config))
            (run / "result.json").write_text(json.dumps({"env_steps": steps}))
            for step in range(0, steps + 1, steps // 4):
                success = spec.get("success", lambda s, t: min(1.0, t / 1000))(seed, step)
                values = np.full(4, success, dtype=np.float64)
                np.savez(
                    run / "eval_logs" / f"eval_step{step}.npz",
                    step=step,
                    success=values,
                    success_greedy=values,
                    success_mask=np.ones(4, dtype=bool),
                    returns=values,
                    returns_greedy=values,
                    mask=np.ones(4, dtype=bool),
                )
                (run / "heatmaps").mkdir(exist_ok=True)
                np.save(run / "heatmaps" / f"visits_step{step}.npy", np.full((5, 5), step, dtype=np.int64))
    return root


def report_of(context: CaseContext, root: Path, *extra: str) -> tuple[Command, str]:
    command = context.cli("report", str(root), "--out", str(context.dir / "report"), *REPORT_FAST, *extra)
    report = context.dir / "report" / "report.md"
    return command, report.read_text() if report.is_file() else ""


@case(4)
def report_budgets_differ(context: CaseContext) -> None:
    root = fabricated_runs(context, {"llmae": {"steps": 4000}, "scratch": {"steps": 1000}})
    command, text = report_of(context, root)
    if context.expect_ok(command):
        said = (text + command.output).lower()
        context.expect(
            "4,000" in said and "1,000" in said, "wrong", "the report does not state each method's env steps"
        )
        context.expect("differ" in said, "wrong", "no word that the budgets differ")


@case(4)
def report_states_env_and_budget(context: CaseContext) -> None:
    root = fabricated_runs(context, {"llmae": {}, "scratch": {}})
    command, text = report_of(context, root)
    if context.expect_ok(command):
        context.expect(ENV_ID in text, "wrong", "the report does not name its env")
        context.expect("1,000" in text, "wrong", "the report does not state the budget")


@case(4)
def report_envs_differ(context: CaseContext) -> None:
    root = fabricated_runs(context, {"llmae": {"env": "MiniGrid-DoorKey-5x5-v0"}, "scratch": {}})
    command, text = report_of(context, root)
    said = (text + command.output).lower()
    context.expect(
        command.rc != 0 or ("doorkey" in said and "differ" in said),
        "wrong",
        "runs of two envs aggregated silently",
    )


@case(7, slow=True)
def report_of_a_real_comparison(context: CaseContext) -> None:
    command, _ = report_of(context, context.harness.artefact("comparison"))
    context.expect_ok(command)


@cases_of(7, "report-scores", {"nan": math.nan, "inf": math.inf, "minus-inf": -math.inf})
def report_bad_scores(context: CaseContext, value: float) -> None:
    root = fabricated_runs(
        context, {"llmae": {"success": lambda s, t: value if (s, t) == (1, 500) else t / 1000}, "scratch": {}}
    )
    command, _ = report_of(context, root)
    context.expect_refusal(command, "eval_step500.npz")


@case(7)
def report_duplicate_seeds(context: CaseContext) -> None:
    root = fabricated_runs(context, {"llmae": {"seed_of": lambda s: 0}, "scratch": {}})
    command, text = report_of(context, root)
    said = (text + command.output).lower()
    context.expect(command.rc != 0 or ("seed" in said and "twice" in said) or "duplicate" in said, "wrong",
                   "two runs of one seed counted as two")  # fmt: skip


@cases_of(7, "report-npz", {"zero-byte": 0, "truncated": 200})
def report_damaged_npz(context: CaseContext, keep: int) -> None:
    root = fabricated_runs(context, {"llmae": {}, "scratch": {}})
    path = root / "llmae" / "seed1" / "eval_logs" / "eval_step500.npz"
    path.write_bytes(path.read_bytes()[:keep])
    command, _ = report_of(context, root)
    context.expect_refusal(command, "eval_step500.npz")


@case(7)
def report_corrupt_config(context: CaseContext) -> None:
    root = fabricated_runs(context, {"llmae": {}, "scratch": {}})
    (root / "llmae" / "seed1" / "config.json").write_text('{"seed": 1, "settin')
    command, _ = report_of(context, root)
    context.expect_refusal(command, "config.json")


@cases_of(7, "report-threshold", {"nan": "nan", "inf": "inf", "above-one": "1.5", "negative": "-0.2"})
def report_bad_threshold(context: CaseContext, value: str) -> None:
    root = fabricated_runs(context, {"llmae": {}, "scratch": {}})
    command, _ = report_of(context, root, "--threshold", value)
    context.expect_refusal(command, "--threshold")


@case(7)
def report_out_unwritable(context: CaseContext) -> None:
    root = fabricated_runs(context, {"llmae": {}, "scratch": {}})
    command = context.cli("report", str(root), "--out", UNWRITABLE, *REPORT_FAST)
    context.expect_refusal(command, UNWRITABLE)


# ----------------------------------------------------------------------------- 5: the key


@cases_of(
    5,
    "key-in-url",
    {
        "userinfo": "http://user:{key}@127.0.0.1:{port}/v1",
        "query": "http://127.0.0.1:{port}/v1?api-key={key}",
    },
)
def key_in_base_url(context: CaseContext, template: str) -> None:
    server = context.server()
    url = template.format(key=context.key, port=server.base_url.split(":")[2].split("/")[0])
    command = context.cli(*llm_generate(url, "demos"))
    context.expect_ok(command)


@case(5)
def key_in_url_of_a_server_that_is_down(context: CaseContext) -> None:
    url = f"http://user:{context.key}@127.0.0.1:9/v1"
    command = context.cli(*llm_generate(url, "demos", "--max-retries", "0"))
    context.expect_refusal(command, "127.0.0.1:9")


@case(5)
def key_in_url_with_verbose_logging(context: CaseContext) -> None:
    server = context.server()
    port = server.base_url.split(":")[2].split("/")[0]
    command = context.cli("-v", *llm_generate(f"http://127.0.0.1:{port}/v1?api-key={context.key}", "demos"))
    context.expect_ok(command)


@case(5)
def key_in_base_url_environment_variable(context: CaseContext) -> None:
    server = context.server()
    port = server.base_url.split(":")[2].split("/")[0]
    argv = llm_generate("x", "demos")
    del argv[argv.index("--base-url") : argv.index("--base-url") + 2]
    command = context.cli(*argv, env={"OPENAI_BASE_URL": f"http://user:{context.key}@127.0.0.1:{port}/v1"})
    context.expect_ok(command)


def echo_key_401(context: CaseContext) -> Callable[[Any], tuple[int, dict[str, str], Any]]:
    message = f"Incorrect API key provided: {context.key}. You can find your API key at ..."
    return lambda request: (401, {}, {"error": {"message": message, "type": "invalid_request_error"}})


@case(5)
def batch_401_echoes_the_key(context: CaseContext) -> None:
    server = context.server()
    for method in ("GET", "POST"):
        for path in ("/v1/files", "/v1/batches"):
            server.add_route(method, path, echo_key_401(context))
    command = context.cli(
        *llm_generate(server.base_url, "demos", "--mode", "plan", "--batch", "--cache", "c.sqlite")
    )
    context.expect_refusal(command, "401")


@case(5)
def step_401_echoes_the_key(context: CaseContext) -> None:
    server = context.server()
    message = f"Incorrect API key provided: {context.key}."
    server.enqueue(FakeReply(text=message, status=401))
    command = context.cli(*llm_generate(server.base_url, "demos"))
    context.expect_refusal(command, "401")


@cases_of(5, "reply-quotes-key", {"cache": "cache", "transcript": "transcript"})
def reply_quotes_the_key(context: CaseContext, where: str) -> None:
    server = context.server(responder=lambda request: f"Your key is {context.key}. Action: 2")
    extra = ("--cache", "c.sqlite") if where == "cache" else ("--no-cache",)
    command = context.cli(*llm_generate(server.base_url, "demos", *extra))
    context.expect_ok(command)


@case(5)
def dry_run_with_key_in_url(context: CaseContext) -> None:
    url = f"http://user:{context.key}@127.0.0.1:9/v1"
    command = context.cli(*llm_generate(url, "demos", "--dry-run"))
    context.expect_ok(command)


# ----------------------------------------------------------------------------- 6: numbers


@case(6)
def huge_usage_with_tpm(context: CaseContext) -> None:
    server = context.server()
    server.enqueue(FakeReply(text="Action: 2", prompt_tokens=10**12, completion_tokens=1))
    command = context.cli(*llm_generate(server.base_url, "demos", "--tpm", "100000"), timeout=60)
    if context.expect_ok(command):
        context.expect(command.says("usage"), "wrong", "the absurd usage figure went unmentioned")


@case(6)
def overflowing_usage_with_tpm(context: CaseContext) -> None:
    server = context.server()
    server.enqueue(FakeReply(text="Action: 2", prompt_tokens=10**14, completion_tokens=1))
    command = context.cli(*llm_generate(server.base_url, "demos", "--tpm", "100000"), timeout=60)
    context.expect_ok(command)


@cases_of(6, "provider-limit", {"requests-0.001": ("requests", "0.001"), "tokens-1": ("tokens", "1")})
def tiny_provider_limit(context: CaseContext, header: tuple[str, str]) -> None:
    server = context.server()
    server.enqueue(FakeReply(text="Action: 2", headers={f"x-ratelimit-limit-{header[0]}": header[1]}))
    command = context.cli(*llm_generate(server.base_url, "demos"), timeout=60)
    context.expect_ok(command)


@case(6)
def long_reset_header(context: CaseContext) -> None:
    server = context.server()
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "99999h"}
    server.enqueue(FakeReply(text="Action: 2", headers=headers))
    command = context.cli(*llm_generate(server.base_url, "demos"), timeout=90)
    context.expect_ok(command)


GENERATE_BAD_NUMBERS = {
    "timeout-inf": ("--timeout", "inf"),
    "timeout-1e10": ("--timeout", "1e10"),
    "timeout-nan": ("--timeout", "nan"),
    "timeout-negative": ("--timeout", "-1"),
    "temperature-nan": ("--temperature", "nan"),
    "temperature-negative": ("--temperature", "-1"),
    "rpm-nan": ("--rpm", "nan"),
    "tpm-inf": ("--tpm", "inf"),
    "max-retries-negative": ("--max-retries", "-1"),
    "max-tokens-zero": ("--max-tokens", "0"),
    "noise-nan": ("--noise", "nan"),
    "noise-above-one": ("--noise", "1.5"),
    "workers-zero": ("--workers", "0"),
    "episodes-negative": ("--episodes", "-3"),
    "price-nan": ("--price-in", "nan"),
    "max-episode-steps-zero": ("--max-episode-steps", "0"),
}


@cases_of(6, "generate", GENERATE_BAD_NUMBERS)
def generate_bad_number(context: CaseContext, flag: tuple[str, str]) -> None:
    server = context.server()
    # both prices given, so that only the flag under test can be wrong (the last of a flag wins)
    command = context.cli(
        *llm_generate(server.base_url, "demos", "--price-in", "1", "--price-out", "1", *flag)
    )
    context.expect_refusal(command, flag[0])
    context.expect(
        server.request_count == 0, "wrong", f"{server.request_count} requests sent before refusing"
    )
    context.expect(not (context.dir / "demos").exists(), "wrong", "an output folder was left behind")


PRETRAIN_BAD_NUMBERS = {
    "kl-coef-nan": ("--kl-coef", "nan"),
    "bc-learning-rate-inf": ("--bc-learning-rate", "inf"),
    "bc-epochs-negative": ("--bc-epochs", "-1"),
}


@cases_of(6, "pretrain", PRETRAIN_BAD_NUMBERS)
def pretrain_bad_number(context: CaseContext, flag: tuple[str, str]) -> None:
    demos = context.harness.artefact("demos")
    command = context.cli(
        "pretrain", "--env", ENV_ID, "--demos", str(demos), "--out", "m.zip", "--bc-batch-size", "8", *flag
    )
    context.expect_refusal(command, flag[0], quick_s=30)
    context.expect(not (context.dir / "m.zip").exists(), "wrong", "a model was written")


COMPARE_BAD_NUMBERS = {"steps-negative": ("--steps", "-5"), "eval-freq-zero": ("--eval-freq", "0")}


@cases_of(6, "compare", COMPARE_BAD_NUMBERS)
def compare_bad_number(context: CaseContext, flag: tuple[str, str]) -> None:
    argv = compare_args("cmp")
    index = argv.index(flag[0]) if flag[0] in argv else None
    if index is not None:
        argv[index + 1] = flag[1]
    else:
        argv += list(flag)
    command = context.cli(*argv)
    context.expect_refusal(command, flag[0].lstrip("-").replace("-", "_")[:4])


@case(6)
def train_steps_zero(context: CaseContext) -> None:
    command = context.cli("train", "--env", ENV_ID, "--steps", "0", "--out", "run")
    context.expect_refusal(command, "--steps")


# ----------------------------------------------------------------------------- 8: odd endpoints


@case(8)
def batch_without_a_batch_api(context: CaseContext) -> None:
    server = context.server()
    command = context.cli(
        *llm_generate(server.base_url, "demos", "--mode", "plan", "--batch", "--cache", "c.sqlite")
    )
    context.expect_refusal(command, "batch")


CONTEXT_LENGTH_BODIES = {
    "openai": {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9120 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    },
    "llama.cpp": {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 9120,
            "n_ctx": 4096,
        }
    },
    "vllm": {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens. However, you requested 4608 "
        "tokens (4096 in the messages, 512 in the completion). Please reduce the length of the messages or "
        "completion.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    },
}


@cases_of(8, "context-length", CONTEXT_LENGTH_BODIES)
def context_length_body(context: CaseContext, body: dict[str, Any]) -> None:
    server = context.server()
    server.enqueue(FakeReply(status=400, body=json.dumps(body).encode()))
    command = context.cli(*llm_generate(server.base_url, "demos"))
    context.expect_refusal(command, "too long")


@case(8)
def cache_of_another_schema(context: CaseContext) -> None:
    server = context.server()
    with sqlite3.connect(context.dir / "c.sqlite") as connection:
        connection.execute("CREATE TABLE responses (id INTEGER PRIMARY KEY, payload BLOB)")
    command = context.cli(*llm_generate(server.base_url, "demos", "--cache", "c.sqlite"))
    context.expect_refusal(command, "c.sqlite")


@case(8)
def cache_not_sqlite(context: CaseContext) -> None:
    server = context.server()
    (context.dir / "c.sqlite").write_text("not a database, just some text " * 100)
    command = context.cli(*llm_generate(server.base_url, "demos", "--cache", "c.sqlite"))
    context.expect_refusal(command, "c.sqlite")


@case(8)
def record_a_dqn_zip(context: CaseContext) -> None:
    command = context.cli("record", str(context.harness.artefact("dqn")), "--env", ENV_ID, "--out", "a.gif")
    context.expect_refusal(command, "DQN")


@case(8)
def record_out_an_existing_dir(context: CaseContext) -> None:
    (context.dir / "gifs").mkdir()
    model = context.harness.artefact("model") / "model.zip"
    command = context.cli("record", str(model), "--env", ENV_ID, "--out", "gifs", "--episodes", "2")
    context.expect_refusal(command, "gifs")
    context.expect("seed 0:" not in command.stdout, "wrong", "refused only after recording")


@case(8)
def record_a_billion_episodes(context: CaseContext) -> None:
    model = context.harness.artefact("model") / "model.zip"
    running = context.start(
        "record", str(model), "--env", ENV_ID, "--out", "a.gif", "--episodes", "1000000000"
    )
    running.wait(8)
    memory = _group_rss_mb(running.pid)
    running.signal(signal.SIGINT, group=True)
    command = context.finish(running, timeout=20)
    context.expect(memory < 3000, "wrong", f"{memory:.0f} MB in use after 8 s")
    # a GIF holds every frame in memory until it is written: a billion episodes are refused at once
    context.expect_refusal(command, "episodes", quick_s=8)


@case(8)
def generate_a_billion_episodes(context: CaseContext) -> None:
    running = context.start(
        "generate", "--env", ENV_ID, "--episodes", "1000000000", "--out", "demos", "--no-progress"
    )
    deadline = time.monotonic() + 30
    while (
        saved_episodes(context.dir / "demos") < 2 and time.monotonic() < deadline and running.poll() is None
    ):
        time.sleep(0.2)
    memory = _group_rss_mb(running.pid)
    running.signal(signal.SIGINT, group=True)
    command = context.finish(running, timeout=20)
    context.expect(memory < 3000, "wrong", f"{memory:.0f} MB in use")
    context.expect(command.rc == 130, "wrong", f"exit {command.rc} after Ctrl-C: {_last_line(command)}")
    context.expect(saved_episodes(context.dir / "demos") >= 1, "lost", "no episode kept")


def _group_rss_mb(pgid: int) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, IndexError, ValueError):
            continue
    return total


@cases_of(
    8, "methods-file", {"yaml-syntax": "llmae-full: {init: full\n  bad: [", "not-a-mapping": "- a\n- b\n"}
)
def bad_methods_file(context: CaseContext, text: str) -> None:
    (context.dir / "methods.yaml").write_text(text)
    argv = [*compare_args("cmp"), "--methods-file", "methods.yaml"]
    command = context.cli(*argv)
    context.expect_refusal(command, "methods.yaml")


UNWRITABLE_OUTS = {
    "generate": ["generate", "--env", ENV_ID, "--episodes", "1", "--out", UNWRITABLE + "/demos"],
    "train": ["train", "--env", ENV_ID, "--steps", "64", "--out", UNWRITABLE + "/run"],
    "compare": compare_args(UNWRITABLE + "/cmp"),
    "record": ["record", "MODEL", "--env", ENV_ID, "--out", UNWRITABLE + "/a.gif"],
    "pretrain": ["pretrain", "--env", ENV_ID, "--demos", "DEMOS", "--out", UNWRITABLE + "/m.zip"],
}


@cases_of(8, "unwritable", UNWRITABLE_OUTS)
def unwritable_out(context: CaseContext, argv: list[str]) -> None:
    argv = [
        str(context.harness.artefact("model") / "model.zip") if arg == "MODEL"
        else str(context.harness.artefact("demos")) if arg == "DEMOS"
        else arg
        for arg in argv
    ]  # fmt: skip
    command = context.cli(*argv)
    context.expect_refusal(command, UNWRITABLE, quick_s=20)


@case(8, needs_mount=True)
def full_disk_during_generate(context: CaseContext) -> None:
    with small_disk(context.dir / "disk", "256k") as disk:
        argv = [
            "generate",
            "--env",
            ENV_ID,
            "--episodes",
            "400",
            "--out",
            str(disk / "demos"),
            "--no-progress",
        ]
        command = context.cli(*argv, timeout=120)
        context.expect_refusal(command, "space")
        bad = all_files_readable(disk)
        context.expect(not bad, "lost", f"half-written files: {', '.join(bad[:3])}")


# ----------------------------------------------------------------------------- running


def play(harness: Harness, chosen: Case) -> Verdict:
    """Play one case in a fresh folder and classify it."""
    folder = harness.root / chosen.name
    if folder.exists():
        shutil.rmtree(folder)
    context = CaseContext(harness, folder)
    start = time.monotonic()
    try:
        chosen.play(context)
    except Exception as error:  # the case itself broke: say so, never call it clean
        context.flag("wrong", f"the case could not be played: {type(error).__name__}: {error}")
    finally:
        context.close()
    return context.verdict(chosen.name, chosen.group, time.monotonic() - start)


def select_cases(only: str | None = None, include_slow: bool = False, can_mount: bool = True) -> list[Case]:
    """:return: the cases to play"""
    return [
        chosen
        for chosen in CASES
        if (only is None or only in chosen.name)
        and (include_slow or not chosen.slow)
        and (can_mount or not chosen.needs_mount)
    ]


def counts_line(verdicts: list[Verdict]) -> str:
    """:return: ``hang 0  leak 0  traceback 1  lost 0  wrong 2  clean 57  total 60``"""
    counts = Counter(verdict.outcome for verdict in verdicts)
    return "  ".join(f"{outcome} {counts[outcome]}" for outcome in OUTCOMES) + f"  total {len(verdicts)}"


def main(argv: list[str] | None = None) -> int:
    """Play the cases, print one line per case and the counts; exit 1 unless every case is clean."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="the slow cases too")
    parser.add_argument("--only", help="cases whose name holds this")
    parser.add_argument("--exec", action="store_true", help="each command a fresh python -m sb3_llmae.cli")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    parser.add_argument("--json", help="write the verdicts to this file")
    args = parser.parse_args(argv)
    if args.list:
        for chosen in CASES:
            print(f"{chosen.group} {chosen.name}{' (slow)' if chosen.slow else ''}")
        return 0
    with tempfile.TemporaryDirectory(prefix="sb3-llmae-hostile-") as scratch:
        harness = Harness(Path(scratch), launcher="exec" if args.exec else "fork")
        try:
            verdicts = []
            for each in select_cases(args.only, args.all, harness.can_mount):
                verdict = play(harness, each)
                verdicts.append(verdict)
                why = f"  ({'; '.join(verdict.reasons)})" if verdict.reasons else ""
                line = f"[{verdict.group}] {verdict.name:<40} {verdict.outcome:<9} {verdict.seconds:5.1f} s"
                print(line + why, flush=True)
        finally:
            harness.close()
    print(counts_line(verdicts))
    if args.json:
        Path(args.json).write_text(json.dumps([vars(verdict) for verdict in verdicts], indent=2))
    return 0 if all(verdict.outcome == "clean" for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
