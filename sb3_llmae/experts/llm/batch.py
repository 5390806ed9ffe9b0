"""Plan mode through OpenAI's Batch API: every plan request of a run goes in one batch (half the price),
in rounds until the episodes need no further reply, with the batch id kept on disk so that a re-run
picks a submitted batch up instead of paying for it twice."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import openai
from openai.types import Batch
from tqdm.auto import tqdm

from sb3_llmae.experts.llm.batch_state import BATCH_STATE_FILE, load_batch_state, save_batch_state
from sb3_llmae.experts.llm.cache import CachedReply, request_key
from sb3_llmae.experts.llm.client import ChatClient
from sb3_llmae.experts.llm.errors import LLMEndpointError
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.redaction import redact
from sb3_llmae.experts.llm.settings import BatchSettings
from sb3_llmae.experts.llm.usage import ChatResult

logger = logging.getLogger(__name__)

BATCH_ENDPOINT: Final = "/v1/chat/completions"
# OpenAI's limit on the requests of one batch.
MAX_REQUESTS_PER_BATCH = 50_000
FINAL_STATUSES = frozenset({"completed", "expired", "failed", "cancelled"})


class LLMBatchError(LLMEndpointError):
    """A batch failed, was cancelled, or its requests kept failing round after round."""


@dataclass(frozen=True)
class BatchReport:
    """
    What the batch rounds of a run did.

    :param batch_ids: the batches whose replies were used, in order
    :param requests: the requests sent in them
    :param answered: the requests answered
    """

    batch_ids: tuple[str, ...]
    requests: int
    answered: int


class _ReplyPending(Exception):
    """An episode needs a reply that is not in the cache yet: it stops here until a batch brings it."""


class _CacheOnlyClient(ChatClient):
    """
    Answers from the cache only, and notes the requests it cannot answer. Used to find which requests
    the episodes need next; never sends anything.

    :param client: the real client, whose model, settings and cache it shares
    """

    def __init__(self, client: ChatClient) -> None:  # no super().__init__(): it opens no connection
        self.model = client.model
        self.settings = client.settings
        self.cache = client.cache
        self.missing: dict[str, dict[str, Any]] = {}

    def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        sample_index: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        assert self.cache is not None
        sampling_params = {**self.sampling_params, **(params or {})}
        key = request_key(self.model, messages, sampling_params, sample_index)
        hit = self.cache.get(key)
        if hit is None:
            self.missing[key] = self.settings.request_body(
                self.model, [dict(message) for message in messages], params
            )
            raise _ReplyPending(key)
        return ChatResult(
            hit.text,
            hit.prompt_tokens,
            hit.completion_tokens,
            0.0,
            cached=True,
            retries=0,
            finish_reason=hit.finish_reason,
            logprobs=hit.logprobs,
        )


def check_batchable(expert: LLMExpert) -> None:
    """
    :param expert: the expert of a ``--batch`` run
    :raises ValueError: when it is not in plan mode or has no response cache
    """
    if expert.mode != "plan":
        raise ValueError(
            "Batch mode needs mode='plan' (--mode plan): in step mode each prompt depends on the reply to "
            "the one before, so the requests of an episode cannot be sent together."
        )
    if expert.client.cache is None:
        raise ValueError(
            "Batch mode needs a response cache (drop --no-cache): batch replies reach the episodes "
            "through it."
        )


def fill_cache_by_batches(
    expert: LLMExpert,
    play: Callable[[LLMExpert, int], object],
    seeds: Sequence[int],
    state_dir: str | os.PathLike[str],
    settings: BatchSettings | None = None,
    progress_bar: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchReport:
    """
    Fetch every reply the episodes will ask for through the Batch API, into the expert's response cache,
    so that playing them afterwards makes no call.

    Each round plays every episode from the cache until it needs a reply that is missing, sends all
    missing requests as one batch (the first round: every episode's first plan; later rounds: re-plans,
    corrections, and requests an expired batch left unanswered), waits for it and stores its replies.
    The id of a submitted batch is kept in ``state_dir/batch.json`` until its replies are stored: a
    re-run after an interruption waits for that batch instead of submitting a new one.

    :param expert: a plan-mode ``LLMExpert`` with a response cache
    :param play: plays one episode with the given expert and seed (e.g. ``rollout_episode`` bound to the env)
    :param seeds: the episodes' seeds
    :param state_dir: where the batch state lives (the run's output directory)
    :param settings: completion window, polling and rounds (:class:`BatchSettings`' defaults when ``None``)
    :param progress_bar: show a progress bar while a batch runs
    :param sleep: how to wait between polls (injectable for tests)
    :return: what was sent and answered
    :raises LLMBatchError: when a batch fails or is cancelled, or replies are still missing after
        ``settings.max_rounds`` rounds
    """
    check_batchable(expert)
    settings = settings if settings is not None else BatchSettings()
    state_path = Path(state_dir) / BATCH_STATE_FILE
    state = load_batch_state(state_path)
    try:
        return _fill_by_rounds(expert, play, seeds, state, state_path, settings, progress_bar, sleep)
    except (openai.APIStatusError, openai.APIConnectionError) as error:
        raise LLMBatchError(batch_api_failure(expert.client, error)) from None


def batch_api_failure(client: ChatClient, error: openai.APIStatusError | openai.APIConnectionError) -> str:
    """
    :param client: the client whose Batch API request failed
    :param error: how it failed
    :return: what failed and what to do, naming the endpoint and never the API key (a 401 may echo it)
    """
    if isinstance(error, openai.APIConnectionError):
        return (
            f"The Batch API of {client.base_url} could not be reached ({type(error).__name__}): is the "
            "server running? Re-running the same command picks a submitted batch up."
        )
    detail = redact(client.scrub(str(error.message)), None)
    if error.status_code in (404, 405):
        return (
            f"The endpoint {client.base_url} has no Batch API (HTTP {error.status_code} on "
            f"{error.request.url.path}): run without --batch, and plan mode asks for each plan as the "
            "episodes play."
        )
    advice = " Check OPENAI_API_KEY." if error.status_code in (401, 403) else ""
    return (
        f"The Batch API of {client.base_url} refused a request: HTTP {error.status_code}: {detail}.{advice}"
    )


def _fill_by_rounds(
    expert: LLMExpert,
    play: Callable[[LLMExpert, int], object],
    seeds: Sequence[int],
    state: dict[str, Any],
    state_path: Path,
    settings: BatchSettings,
    progress_bar: bool,
    sleep: Callable[[float], None],
) -> BatchReport:
    """The rounds of :func:`fill_cache_by_batches`, until no episode needs a reply that is missing."""
    probe_client = _CacheOnlyClient(expert.client)
    probe = copy.copy(expert)
    probe.client = probe_client
    rounds = 0
    while True:
        if not state["pending"]:
            probe_client.missing.clear()
            for seed in seeds:
                with contextlib.suppress(_ReplyPending):
                    play(probe, seed)
            if not probe_client.missing:
                return BatchReport(tuple(state["done"]), state["requests"], state["answered"])
            if rounds == settings.max_rounds:
                raise LLMBatchError(
                    f"{len(probe_client.missing)} requests are still unanswered after {rounds} batch rounds "
                    f"(batches {', '.join(state['done'])}): see their error files, or run without --batch."
                )
            state["requests"] += len(probe_client.missing)

            def remember(batch_id: str) -> None:
                # Written as soon as the batch exists, so that no restart pays for it twice.
                state["pending"].append(batch_id)
                save_batch_state(state_path, state)

            _submit(expert.client, probe_client.missing, settings, remember)
        rounds += 1
        for batch_id in list(state["pending"]):
            batch = _wait(expert.client, batch_id, settings, progress_bar, sleep)
            try:
                state["answered"] += _store_replies(expert.client, batch)
                state["done"].append(batch_id)
            finally:
                # A failed batch is forgotten too, so that a re-run submits its requests again.
                state["pending"].remove(batch_id)
                save_batch_state(state_path, state)


def _submit(
    client: ChatClient,
    requests: Mapping[str, dict[str, Any]],
    settings: BatchSettings,
    on_created: Callable[[str], None],
) -> None:
    """
    Upload the requests and create batches of them.

    :param client: the client whose endpoint and key to use
    :param requests: request bodies by cache key (the key is each request's ``custom_id``)
    :param settings: the batch settings
    :param on_created: called with each batch's id as soon as it is created
    """
    lines = [
        json.dumps({"custom_id": key, "method": "POST", "url": BATCH_ENDPOINT, "body": body})
        for key, body in requests.items()
    ]
    for start in range(0, len(lines), MAX_REQUESTS_PER_BATCH):
        chunk = lines[start : start + MAX_REQUESTS_PER_BATCH]
        upload = client.openai_client.files.create(
            file=("sb3-llmae-requests.jsonl", ("\n".join(chunk) + "\n").encode()), purpose="batch"
        )
        batch = client.openai_client.batches.create(
            input_file_id=upload.id,
            endpoint=BATCH_ENDPOINT,
            completion_window=settings.completion_window,  # type: ignore[arg-type]
            metadata={"created_by": "sb3-llmae"},
        )
        logger.info("Submitted batch %s with %d requests.", batch.id, len(chunk))
        on_created(batch.id)


def _wait(
    client: ChatClient,
    batch_id: str,
    settings: BatchSettings,
    progress_bar: bool,
    sleep: Callable[[float], None],
) -> Batch:
    """
    Poll a batch until it ends, with a progress bar of its answered requests.

    :return: the ended batch
    """
    with tqdm(desc=f"batch {batch_id}", unit="request", disable=not progress_bar) as bar:
        while True:
            batch = client.openai_client.batches.retrieve(batch_id)
            counts = batch.request_counts
            if counts is not None:
                bar.total = counts.total
                bar.n = counts.completed + counts.failed
                bar.set_postfix(status=batch.status)
                bar.refresh()
            if batch.status in FINAL_STATUSES:
                return batch
            sleep(settings.poll_interval_s)


def _store_replies(client: ChatClient, batch: Batch) -> int:
    """
    Put an ended batch's replies in the cache and count them as calls.

    :return: how many replies were stored
    :raises LLMBatchError: when the batch failed or was cancelled
    """
    if batch.status in ("failed", "cancelled"):
        errors = (
            [f"{error.code}: {error.message}" for error in (batch.errors.data or [])] if batch.errors else []
        )
        raise LLMBatchError(
            f"Batch {batch.id} {batch.status}"
            + (f" ({'; '.join(errors[:3])})" if errors else "")
            + ". Check the model name and the endpoint's Batch API support; re-running submits the requests "
            "in a new batch."
        )
    if batch.status == "expired":
        logger.warning(
            "Batch %s expired before all its requests were answered; the rest go in the next batch.", batch.id
        )
    if batch.error_file_id is not None:
        logger.warning("Some requests of batch %s failed; they are sent again in the next round.", batch.id)
    if batch.output_file_id is None:
        return 0
    assert client.cache is not None
    stored = 0
    for line in client.openai_client.files.content(batch.output_file_id).text.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        response = entry.get("response") or {}
        if response.get("status_code") != 200:
            continue
        body = response.get("body") or {}
        choices = body.get("choices") or [{}]
        text = (choices[0].get("message") or {}).get("content") or ""
        usage = body.get("usage") or {}
        prompt_tokens, completion_tokens = (
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )
        client.cache.put(
            entry["custom_id"],
            CachedReply(client.scrub(text), prompt_tokens, completion_tokens),
            model=client.model,
        )
        client.usage.record_call(prompt_tokens, completion_tokens, 0.0)
        stored += 1
    return stored
