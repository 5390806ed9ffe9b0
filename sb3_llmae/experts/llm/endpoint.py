"""Where a chat client sends its requests: the base URL and key, from arguments or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sb3_llmae.experts.llm.errors import LLMEndpointError

BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# The openai client insists on a key; local servers (Ollama, vLLM, llama.cpp) ignore it.
PLACEHOLDER_API_KEY = "not-needed"

NO_ENDPOINT_MESSAGE = (
    f"No LLM endpoint is configured. Set {BASE_URL_ENV} to an OpenAI-compatible server "
    f"(and {API_KEY_ENV} if it needs a key), set {API_KEY_ENV} alone to use {OPENAI_BASE_URL}, "
    "or pass base_url explicitly. Examples:\n"
    f"  Ollama:    {BASE_URL_ENV}=http://localhost:11434/v1 --model llama3.1\n"
    f"  vLLM:      {BASE_URL_ENV}=http://localhost:8000/v1 --model <served model name>\n"
    f"  llama.cpp: {BASE_URL_ENV}=http://localhost:8080/v1 --model <any name>\n"
    f"  OpenAI:    {API_KEY_ENV}=<your key> --model gpt-4o-mini"
)


@dataclass(frozen=True)
class Endpoint:
    """
    A resolved endpoint.

    :param base_url: the endpoint's URL, without a trailing slash
    :param api_key: the key to send, ``None`` when there is none (local servers)
    :param origin: where ``base_url`` came from, for error messages
    """

    base_url: str
    api_key: str | None = field(repr=False)
    origin: str

    @property
    def client_api_key(self) -> str:
        """The key to hand the ``openai`` client, which needs one even where the server ignores it."""
        return self.api_key or PLACEHOLDER_API_KEY


def endpoint_is_configured(base_url: str | None = None, api_key: str | None = None) -> bool:
    """
    :param base_url: an explicit base URL, if any
    :param api_key: an explicit key, if any
    :return: whether :func:`resolve_endpoint` would find an endpoint (from the arguments or the environment)
    """
    # Empty variables count as unset, as in a shell's `OPENAI_API_KEY= cmd`.
    return bool(base_url or os.environ.get(BASE_URL_ENV) or api_key or os.environ.get(API_KEY_ENV))


def resolve_endpoint(base_url: str | None = None, api_key: str | None = None) -> Endpoint:
    """
    The endpoint to use: ``base_url``, else ``$OPENAI_BASE_URL``, else OpenAI's own when a key is known.

    :param base_url: an explicit base URL, e.g. ``http://localhost:11434/v1``
    :param api_key: an explicit key; defaults to ``$OPENAI_API_KEY``
    :return: the endpoint
    :raises LLMEndpointError: when neither a base URL nor a key is given or set
    """
    if not endpoint_is_configured(base_url, api_key):
        raise LLMEndpointError(NO_ENDPOINT_MESSAGE)
    if base_url:
        origin = "base_url (--base-url)"
    elif os.environ.get(BASE_URL_ENV):
        origin = f"${BASE_URL_ENV}"
    else:
        origin = f"the default, used when only ${API_KEY_ENV} is set"
    url = base_url or os.environ.get(BASE_URL_ENV) or OPENAI_BASE_URL
    return Endpoint(
        base_url=url.rstrip("/"), api_key=api_key or os.environ.get(API_KEY_ENV) or None, origin=origin
    )
