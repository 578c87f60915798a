"""Message size accounting: the wire size of a message, and text split to fit a cap.

This module owns the arithmetic that keeps every outbound message under Daily's documented
4 KB app-message limit: :func:`encoded_size` measures a message as compact UTF-8 JSON, and
:func:`split_text` cuts text into pieces whose built messages each fit, accounting JSON
escaping exactly. :mod:`.protocol` re-exports both.

No asyncio, aiohttp or pipecat imports here (a test checks it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .exceptions import LocalProtocolError

__all__ = ["encoded_size", "split_text"]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encoded_size(message: Mapping[str, Any]) -> int:
    """Return the size in bytes of ``message`` as compact UTF-8 JSON (its wire size).

    Args:
        message: A JSON-serialisable message.

    Returns:
        The number of bytes of its compact JSON encoding.
    """
    return len(_dumps(message).encode("utf-8"))


def _json_len(text: str) -> int:
    return len(_dumps(text).encode("utf-8")) - 2


def split_text(
    text: str, *, build: Callable[[str], Mapping[str, Any]], max_bytes: int
) -> list[str]:
    """Split ``text`` into pieces whose built messages each fit in ``max_bytes``.

    Pieces break after whitespace where possible; a single word longer
    than the budget is cut by characters. JSON escaping is accounted exactly.

    Args:
        text: The text to split.
        build: Builds the wire message for one piece (e.g. an append-context message).
        max_bytes: The cap for each built message.

    Returns:
        The pieces, in order; joined they give back ``text``.

    Raises:
        LocalProtocolError: The message envelope alone does not fit in ``max_bytes``, or
            leaves too little room for one character of ``text``.
    """
    # Measure the envelope on a one-character probe: builders such as Respond and
    # AppendLLMContext refuse empty text.
    budget = max_bytes - (encoded_size(build("x")) - 1)
    if budget <= 0:
        raise LocalProtocolError(
            f"the message envelope alone is over the {max_bytes}-byte cap; raise the cap"
        )
    if _json_len(text) <= budget:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for token in _tokens(text):
        size = _json_len(token)
        if size > budget:
            if current:
                pieces.append("".join(current))
            full, current, used = _cut_word(token, budget, max_bytes)
            pieces.extend(full)
            continue
        if used + size > budget:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(token)
        used += size
    if current:
        pieces.append("".join(current))
    return pieces


def _tokens(text: str) -> list[str]:
    """Split ``text`` after each run of whitespace; joined, the tokens give ``text``."""
    tokens: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch.isspace() and (i + 1 == len(text) or not text[i + 1].isspace()):
            tokens.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        tokens.append(text[start:])
    return tokens


def _cut_word(token: str, budget: int, max_bytes: int) -> tuple[list[str], list[str], int]:
    """Cut a word over ``budget`` by characters.

    Returns the full pieces, then the characters of the last, still open piece and their
    wire size (later tokens may join it).
    """
    full: list[str] = []
    chunk: list[str] = []
    chunk_used = 0
    for ch in token:
        ch_size = _json_len(ch)
        if ch_size > budget:
            raise LocalProtocolError(
                f"{ch!r} needs {ch_size} bytes on the wire, more than the {budget} "
                f"bytes left under the {max_bytes}-byte cap; raise the cap"
            )
        if chunk_used + ch_size > budget:
            full.append("".join(chunk))
            chunk, chunk_used = [], 0
        chunk.append(ch)
        chunk_used += ch_size
    return full, chunk, chunk_used
