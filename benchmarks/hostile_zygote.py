"""A fork server for the hostile suite: imports the ``sb3-llmae`` command line once, then forks one real
process per command, so that sixty commands do not pay sixty imports of torch (about 10 s each on the
project's 2-core machine).

Each child is what ``python -m sb3_llmae.cli ARGS`` would be after its imports: its own process group (so
that a Ctrl-C can go to the whole group, as a terminal sends it), its own working directory, environment,
stdin (``/dev/null``), stdout and stderr files; ``main(argv)`` runs, an uncaught exception prints its
traceback as the interpreter does, and the child ends as the interpreter would (non-daemon threads
joined, atexit handlers run, files flushed) but without tearing every module down, which takes seconds
after torch and is no behaviour of the command. Environment variables read at import time
(``OMP_NUM_THREADS``) are the fork server's.

Protocol, one JSON object a line: the parent writes ``{"argv", "cwd", "env", "stdout", "stderr",
"status"}``; the server answers ``{"pid": PID}``; when the child ends its exit status (negative: the
signal that ended it) is written atomically to the file ``status``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import sys
import threading
import traceback
from typing import Any

SERVER_PID = os.getpid()


def _child(job: dict[str, Any]) -> int:
    """Become the command of ``job``: its process group, cwd, environment and files; run it."""
    os.setpgid(0, 0)
    # as started from a terminal: a server started in the background by a shell without job control
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    stdin = os.open(os.devnull, os.O_RDONLY)
    stdout = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    stderr = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, target)
        os.close(source)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own stdin, kept open to its end
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    sys.argv = ["sb3-llmae", *job["argv"]]
    from sb3_llmae.cli import main

    try:
        return main(job["argv"])
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return 130
    except BaseException:
        traceback.print_exc()
        return 1


def _write_status(path: str, status: int) -> None:
    partial = path + ".partial"
    with open(partial, "w") as file:
        file.write(str(status))
    os.replace(partial, path)


def serve() -> int:
    """
    Answer jobs on stdin until it closes.

    :return: 0 in the server; in a child, the child's exit status
    """
    import sb3_llmae.cli  # noqa: F401 - the import every child shares

    children: dict[int, str] = {}
    print(json.dumps({"ready": os.getpid()}), flush=True)
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 0.05)
        if readable:
            line = sys.stdin.readline()
            if not line:
                break
            job = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                return _child(job)
            # as well as in the child, so that no signal to the group can come before the group exists
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)
            children[pid] = job["status"]
            print(json.dumps({"pid": pid}), flush=True)
        for pid in list(children):
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(wait_status)
                _write_status(children.pop(pid), code)
    return 0


def _end(status: int) -> None:
    """End a child as the interpreter would (non-daemon threads joined, atexit handlers run, files
    flushed) but without tearing its modules down one by one, which takes seconds after torch."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    status = serve()
    if os.getpid() != SERVER_PID:
        _end(status)
    sys.exit(status)
