"""Reading actions out of an LLM's free-text reply: one action (step mode) or an action list (plan mode)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from minigrid.core.actions import Actions

from sb3_llmae.experts.llm.observation_text import ACTION_NAMES

_TURN_LEFT_PHRASES = ("turn left", "rotate left")
_TURN_RIGHT_PHRASES = ("turn right", "rotate right")
_FORWARD_PHRASES = ("move forward", "go forward", "step forward", "walk forward", "move ahead", "go straight")
# Every way of naming an action that a reply may use, after normalisation (lower case,
# "_" and "-" between words read as spaces).
ACTION_SYNONYMS: dict[str, int] = {
    **{name: action for action, name in ACTION_NAMES.items()},
    **dict.fromkeys(_TURN_LEFT_PHRASES, int(Actions.left)),
    **dict.fromkeys(_TURN_RIGHT_PHRASES, int(Actions.right)),
    **dict.fromkeys(("forwards", *_FORWARD_PHRASES), int(Actions.forward)),
    **dict.fromkeys(("pick up", "grab", "take"), int(Actions.pickup)),
    "put down": int(Actions.drop),
    **dict.fromkeys(("open", "close", "unlock"), int(Actions.toggle)),
    "finish": int(Actions.done),
}
# The names that reasoning text uses for other things ("the key is 2 steps forward", "the door
# is open", "once done") count as an action only where the reply names an answer explicitly.
FREE_TEXT_ACTION_PHRASES: tuple[str, ...] = (
    *_TURN_LEFT_PHRASES,
    *_TURN_RIGHT_PHRASES,
    *_FORWARD_PHRASES,
    "pick up",
    "pickup",
    "drop",
    "toggle",
    "unlock",
)

_NEGATION = re.compile(
    r"\b(?:not|no|never|don'?t|do not|cannot|can'?t|won'?t|avoid|instead of|rather than)\b"
)
# Only the last few words since the last clause boundary can negate a mention: in "I cannot
# go forward, so I turn left" the "cannot" is not about "turn left".
_NEGATION_REACH = 3
_CLAUSE_BOUNDARY = re.compile(r"[.,;:!?\n]|\b(?:so|then|but|and|therefore|thus)\b")
_ANSWER_MARKER = re.compile(r"\b(?:action|answer)\b\W{0,3}?[:=]\s*(.*)", re.IGNORECASE)
# An answer marker that starts its line ("Action: 2", "**Action:**", "Final answer: drop") is the
# answer; one inside a sentence ("the next action: turn left? No, ...") only where no line starts so.
_LINE_START_PREFIX = re.compile(r"[ \t*_`>#-]*(?:final\s+)?", re.IGNORECASE)
# Where a model that does not stop by itself goes on with turns it invents: an end-of-turn or
# start-of-turn token written as text (ChatML, Gemma, Llama 3, Phi, Mistral, sentencepiece), or a
# new conversation role at the start of a line. Only the reply before the first one is read.
END_OF_TURN_MARKERS: tuple[str, ...] = (
    "<|im_end|>",
    "<|im_start|>",
    "<end_of_turn>",
    "<start_of_turn>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end|>",
    "<|user|>",
    "<|endoftext|>",
    "</s>",
    "[INST]",
)
_INVENTED_TURN = re.compile(
    "|".join(re.escape(marker) for marker in END_OF_TURN_MARKERS)
    + r"|\n[ \t]*(?:user|assistant|system|human)[ \t]*(?::|\n)",
    re.IGNORECASE,
)
_PLAN_MARKER = re.compile(r"\b(?:actions|plan)\b\W{0,3}?[:=]", re.IGNORECASE)
_LIST_ITEM_PREFIX = re.compile(r"^\s*(?:\d+\s*[.)]|[-*\u2022])\s+")
_LIST_SEPARATORS = re.compile(r",|;|->|\u2192|\n")
_LEADING_NUMBER = re.compile(r"(\d+)(?!\.?\d)")
_TRIM_CHARACTERS = " \t\r\n*`'\"[]()<>{}.!:"
# How far before a mention a negation is looked for: far more than _NEGATION_REACH words, and a bound
# that keeps parsing linear in the length of a reply.
_NEGATION_WINDOW_CHARS = 200
# JSON objects are looked for where a key starts ('{"'); the first ones only, so that a reply full of
# braces cannot make parsing quadratic.
_JSON_OBJECT_START = re.compile(r'\{\s*"')
_MAX_JSON_CANDIDATES = 64


def _normalize(text: str) -> str:
    text = text.lower().replace("_", " ")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    return re.sub(r"\s+", " ", text).strip(_TRIM_CHARACTERS)


def _phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    # Longest first, so that "turn left" is one mention, not "left" preceded by "turn".
    alternatives = "|".join(re.escape(phrase) for phrase in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b")


_ANY_ACTION_PHRASE = _phrase_pattern(tuple(ACTION_SYNONYMS))
_FREE_TEXT_ACTION_PHRASE = _phrase_pattern(FREE_TEXT_ACTION_PHRASES)


def _is_negated(text: str, start: int) -> bool:
    """
    :return: whether one of the few words before ``start``, in the same clause, is a negation
    """
    window_start = max(0, start - _NEGATION_WINDOW_CHARS)
    clause_start = window_start
    for boundary in _CLAUSE_BOUNDARY.finditer(text, window_start, start):
        clause_start = boundary.end()
    # "I won't turn left" is negated, "rather than go forward I turn right" is not (for right).
    preceding_words = text[clause_start:start].split()[-_NEGATION_REACH:]
    return _NEGATION.search(" ".join(preceding_words)) is not None


def _mentioned_actions(text: str, pattern: re.Pattern[str]) -> list[int]:
    """
    :return: the actions that ``text`` names with ``pattern``, in order, leaving out negated ones
    """
    return [
        ACTION_SYNONYMS[match.group()]
        for match in pattern.finditer(text)
        if not _is_negated(text, match.start())
    ]


def _leading_action(value: str) -> int | None:
    """
    :return: the action a list item or answer starts with (a number or a name), ``None`` if
        it starts with neither or with an out-of-range number
    """
    text = _normalize(value)
    number = _LEADING_NUMBER.match(text)
    if number:
        action = int(number.group(1))
        return action if action in ACTION_NAMES else None
    match = _ANY_ACTION_PHRASE.match(text)
    return ACTION_SYNONYMS[match.group()] if match else None


def _answer_value_action(value: object) -> int | None:
    """
    :return: the action of an explicit answer (after ``Action:`` or as a JSON value)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in ACTION_NAMES else None
    if not isinstance(value, str):
        return None
    text = _normalize(value)
    if _LEADING_NUMBER.match(text):
        # An out-of-range number is a wrong answer, not a cue to look for a name further on.
        return _leading_action(text)
    # "Action: I will turn left, then go forward": any name counts, the first is the action now.
    mentioned = _mentioned_actions(text, _ANY_ACTION_PHRASE)
    return mentioned[0] if mentioned else None


def _json_objects(text: str) -> list[tuple[int, dict[str, object]]]:
    """
    :return: every JSON object embedded in ``text``, with its start offset
    """
    decoder = json.JSONDecoder()
    objects: list[tuple[int, dict[str, object]]] = []
    resume_at = 0
    for candidate, match in enumerate(_JSON_OBJECT_START.finditer(text)):
        if candidate == _MAX_JSON_CANDIDATES:
            break
        if match.start() < resume_at:
            continue
        try:
            value, resume_at = decoder.raw_decode(text, match.start())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            objects.append((match.start(), value))
    return objects


def _starts_line(text: str, start: int) -> bool:
    """
    :return: whether only markup (and "final") stands between the start of its line and ``start``
    """
    line_start = text.rfind("\n", 0, start) + 1
    return _LINE_START_PREFIX.fullmatch(text, line_start, start) is not None


def first_turn(reply: str) -> str:
    """
    The part of a reply before the model starts inventing further turns.

    A model served without its chat template (or a base model) does not stop after its answer:
    it writes an end-of-turn token as text and goes on with made-up user and assistant turns,
    whose answers are not answers to the question asked.

    :param reply: the reply text
    :return: the reply up to the first end-of-turn marker (see ``END_OF_TURN_MARKERS``) or new
        ``user:`` / ``assistant:`` line, the whole reply if there is none
    """
    match = _INVENTED_TURN.search(reply)
    return reply[: match.start()] if match else reply


def parse_action(reply: str) -> int | None:
    """
    Read the action an LLM reply chooses.

    Only the first turn of the reply counts (see ``first_turn``). In it, the first explicit
    answer decides: an ``Action: <number or name>`` (or ``Answer:``) line, or a JSON object with
    an ``"action"`` key; a marker that starts its line wins over one inside a sentence. Without
    one, a reply that is only an action (``"2"``, ``"turn left"``) counts, and then the last
    action phrase of the text that is not negated ("I can't go forward, so I turn left" gives
    left).

    :param reply: the reply text
    :return: the action, or ``None`` if the reply names no valid one (including an explicit
        answer out of range, or not an action)
    """
    reply = first_turn(reply)
    # (inside a sentence, position, value): the first line-start answer sorts first.
    answers: list[tuple[bool, int, object]] = [
        (not _starts_line(reply, match.start()), match.start(), match.group(1))
        for match in _ANSWER_MARKER.finditer(reply)
    ]
    for position, json_object in _json_objects(reply):
        for key, value in json_object.items():
            if isinstance(key, str) and key.lower() == "action":
                answers.append((False, position, value))
    if answers:
        return _answer_value_action(min(answers, key=lambda answer: answer[:2])[2])

    text = _normalize(reply)
    if _LEADING_NUMBER.fullmatch(text) or text in ACTION_SYNONYMS:
        return _answer_value_action(text)
    mentioned = _mentioned_actions(text, _FREE_TEXT_ACTION_PHRASE)
    return mentioned[-1] if mentioned else None


def _parse_items(items: Sequence[str]) -> list[int] | None:
    """
    :return: the action of every non-empty item, ``None`` if any item is not an action or
        there is none
    """
    actions = []
    for item in items:
        item = _LIST_ITEM_PREFIX.sub("", item)
        if not _normalize(item):
            continue
        action = _leading_action(item)
        if action is None:
            return None
        actions.append(action)
    return actions or None


def _parse_list_block(lines: Sequence[str]) -> list[int] | None:
    """
    :return: the actions of the first run of bulleted or numbered lines, ``None`` if none
    """
    items: list[str] = []
    for line in lines:
        if _LIST_ITEM_PREFIX.match(line):
            items.append(line)
        elif items and line.strip():
            break
    return _parse_items(items) if items else None


def _parse_list_body(text: str) -> list[int] | None:
    """
    :return: the actions of the list that ``text`` starts with: bracketed, on the first line
        separated by commas or arrows, or as bulleted / numbered lines
    """
    body = text.lstrip(" \t*`")
    if body.startswith("["):
        end = body.find("]")
        return _parse_items(_LIST_SEPARATORS.split(body[1 : end if end != -1 else None]))
    first_line, _, rest = body.partition("\n")
    if first_line.strip():
        return _parse_items(_LIST_SEPARATORS.split(first_line))
    return _parse_list_block(rest.splitlines())


def parse_action_list(reply: str) -> list[int] | None:
    """
    Read the action list of a plan-mode reply.

    Only the first turn of the reply counts (see ``first_turn``). Reads the list after the
    first ``Actions:`` (or ``Plan:``, or a JSON ``"actions"`` key; one that starts its line
    first), which may be a JSON or bracketed list (``[forward, "left", 2]``), comma- or
    arrow-separated names on that line, or bulleted / numbered lines below it. Without such a
    marker, reads the first bracketed list, else the first bulleted / numbered list, else a
    reply that is only a comma-separated list.

    :param reply: the reply text
    :return: the actions in order, or ``None`` if there is no list or one of its items is not a
        valid action
    """
    reply = first_turn(reply)
    markers = sorted(
        _PLAN_MARKER.finditer(reply),
        key=lambda match: (not _starts_line(reply, match.start()), match.start()),
    )
    if markers:
        return _parse_list_body(reply[markers[0].end() :])
    bracketed = re.findall(r"\[([^\[\]]*)\]", reply)
    if bracketed:
        return _parse_items(_LIST_SEPARATORS.split(bracketed[0]))
    block = _parse_list_block(reply.splitlines())
    if block is not None:
        return block
    return _parse_items(_LIST_SEPARATORS.split(reply))
