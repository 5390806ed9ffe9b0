"""A persistent SQLite cache of chat replies, keyed by the request, shared by threads and processes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

# The columns of the cache's table; a file whose `responses` table lacks any is another program's.
COLUMNS = ("key", "model", "text", "prompt_tokens", "completion_tokens", "created_at")


def default_cache_path() -> Path:
    """:return: the user-wide LLM response cache, ``$XDG_CACHE_HOME/sb3-llmae/responses.sqlite``"""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "sb3-llmae" / "responses.sqlite"


@dataclass(frozen=True)
class CachedReply:
    """
    A reply as stored in the response cache.

    :param text: the assistant's message
    :param prompt_tokens: prompt tokens the server reported when the reply was first fetched
    :param completion_tokens: completion tokens the server reported when the reply was first fetched
    :param finish_reason: why the reply ended, as the server said (``None``: it did not say)
    :param logprobs: the reply's log-probabilities as the server sent them (JSON), ``None`` if none
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    logprobs: Any = None


def request_key(
    model: str,
    messages: Sequence[Mapping[str, str]],
    sampling_params: Mapping[str, Any],
    sample_index: int = 0,
) -> str:
    """
    The cache key of a chat request: a SHA-256 of its canonical JSON.

    The sample index is part of the key only when ``sampling_params["temperature"] > 0``, so that
    repeated samples of a stochastic model may differ while a greedy model answers each prompt once.
    The endpoint and the API key are not part of the key: the same model behind another address
    re-uses the cache, and no credential ever reaches the cache file.

    :param model: the model name
    :param messages: the chat messages
    :param sampling_params: temperature, max_tokens and any extra request parameters
    :param sample_index: which sample of a stochastic model this request is
    :return: a hex digest
    """
    request: dict[str, Any] = {
        "model": model,
        "messages": [dict(message) for message in messages],
        "params": dict(sampling_params),
    }
    if sampling_params.get("temperature", 0.0) > 0:
        request["sample_index"] = sample_index
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_SELECT_REPLY = (
    "SELECT text, prompt_tokens, completion_tokens, finish_reason, logprobs FROM responses WHERE key = ?"
)


def _reply_of_row(row: Sequence[Any]) -> CachedReply:
    return CachedReply(
        text=row[0],
        prompt_tokens=row[1],
        completion_tokens=row[2],
        finish_reason=row[3],
        logprobs=None if row[4] is None else json.loads(row[4]),
    )


class ResponseCache:
    """
    A persistent cache of chat replies in an SQLite file.

    Safe to share between threads (one connection behind a lock) and between processes
    (WAL journal, and a busy timeout so that concurrent writers wait instead of failing).

    :param path: the SQLite file; created with its parent folders when missing
    :param busy_timeout_s: how long a write waits for another process's lock before failing
    :raises ValueError: naming the file and the fix when it is a directory, not an SQLite file, or cannot
        be written
    """

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._connection_pid: int | None = None
        # Open now so that an unusable path fails here rather than at the first request.
        try:
            if self.path.is_dir():
                raise IsADirectoryError(f"{self.path} is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._connect()
        except (OSError, sqlite3.Error) as error:
            self._connection = None
            raise ValueError(
                f"The LLM response cache {self.path} cannot be used ({type(error).__name__}: {error}). "
                "Pass another cache file (--cache PATH), delete this one if it is corrupt, or run without "
                "a cache (--no-cache)."
            ) from None

    def _connect(self) -> sqlite3.Connection:
        # A connection inherited through fork() must not be used by the child: open a fresh one.
        if self._connection is not None and self._connection_pid == os.getpid():
            return self._connection
        # sqlite3's `timeout` is SQLite's busy_timeout; autocommit makes each statement its own transaction.
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS responses ("
            " key TEXT PRIMARY KEY,"
            " model TEXT NOT NULL,"
            " text TEXT NOT NULL,"
            " prompt_tokens INTEGER NOT NULL,"
            " completion_tokens INTEGER NOT NULL,"
            " created_at REAL NOT NULL,"
            " finish_reason TEXT,"
            " logprobs TEXT)"
        )
        # Caches written before finish_reason and logprobs were kept get the columns, empty.
        columns = {row[1] for row in connection.execute("PRAGMA table_info(responses)")}
        for column in ("finish_reason", "logprobs"):
            if column not in columns:
                connection.execute(f"ALTER TABLE responses ADD COLUMN {column} TEXT")
        columns = {row[1] for row in connection.execute("PRAGMA table_info(responses)")}
        missing = [column for column in COLUMNS if column not in columns]
        if missing:
            connection.close()
            raise sqlite3.DatabaseError(
                "it is an SQLite file of another schema, not an sb3-llmae response cache: its table "
                f"'responses' has the columns {', '.join(sorted(columns))} and lacks {', '.join(missing)}"
            )
        self._connection = connection
        self._connection_pid = os.getpid()
        return connection

    def get(self, key: str) -> CachedReply | None:
        """
        Look a reply up.

        :param key: the request's key (see ``request_key``)
        :return: the stored reply, or ``None`` when the request was never answered
        """
        with self._lock:
            row = self._connect().execute(_SELECT_REPLY, (key,)).fetchone()
        return None if row is None else _reply_of_row(row)

    def put(self, key: str, reply: CachedReply, model: str = "") -> CachedReply:
        """
        Store a reply, unless one is stored under the same key already: the first stored reply wins, so
        that runs sharing a cache, and their replays, all see the same reply to a request.

        :param key: the request's key (see ``request_key``)
        :param reply: the reply to store
        :param model: the model that wrote the reply, kept for whoever inspects the file
        :return: the reply stored under ``key`` now: ``reply``, or the one stored before it
        """
        with self._lock:
            connection = self._connect()
            logprobs = None if reply.logprobs is None else json.dumps(reply.logprobs)
            connection.execute(
                "INSERT OR IGNORE INTO responses"
                " (key, model, text, prompt_tokens, completion_tokens, created_at, finish_reason, logprobs)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, reply.text, reply.prompt_tokens, reply.completion_tokens, time.time(),
                 reply.finish_reason, logprobs),
            )  # fmt: skip
            row = connection.execute(_SELECT_REPLY, (key,)).fetchone()
        return reply if row is None else _reply_of_row(row)

    def __len__(self) -> int:
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the connection; a later use opens a new one."""
        with self._lock:
            if self._connection is not None and self._connection_pid == os.getpid():
                self._connection.close()
            self._connection = None
            self._connection_pid = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache(path={str(self.path)!r})"
