"""Constrained answers: a ``response_format`` JSON schema whose ``action`` is one of the action names.

Servers that honour it (OpenAI, llama.cpp, vLLM, Ollama) can only answer with such an object, so
a reply without a valid action cannot happen; one that still has none (a server that ignored the
schema) is an invalid reply as in free-text mode.
"""

from __future__ import annotations

import json
from typing import Any

from sb3_llmae.experts.llm.observation_text import ACTION_NAMES

JSON_ANSWER_PROMPT = 'Answer with a JSON object {"action": "<action name>"}.'
_ACTION_OF_NAME = {name: action for action, name in ACTION_NAMES.items()}


def action_response_format() -> dict[str, Any]:
    """
    :return: the ``response_format`` of a chat request whose reply must be ``{"action": <name>}``
    """
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "minigrid_action",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"action": {"type": "string", "enum": list(ACTION_NAMES.values())}},
                "required": ["action"],
                "additionalProperties": False,
            },
        },
    }


def parse_json_action(reply: str) -> int | None:
    """
    Read a reply constrained by ``action_response_format``.

    :param reply: the reply text
    :return: the action, ``None`` if the reply is not such an object
    """
    try:
        value = json.loads(reply)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    name = value.get("action")
    return _ACTION_OF_NAME.get(name) if isinstance(name, str) else None
