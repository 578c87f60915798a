"""Message size accounting: the wire size of a message, and text split to fit a cap.

This module owns the arithmetic that keeps every outbound message under Daily's documented
4 KB app-message limit: :func:`encoded_size` measures a message as compact UTF-8 JSON, and
:func:`split_text` cuts text into pieces whose built messages each fit, accounting JSON
escaping exactly. :mod:`.protocol` re-exports both.

Text is only ever cut between grapheme clusters (what a reader sees as one character): a
combining accent stays on its letter, and an emoji ZWJ sequence, a flag, a skin tone or a
keycap stays whole, because half of one is spoken or rendered as garbage. The boundaries
come from a small approximation of Unicode's extended grapheme cluster rules
(:func:`grapheme_clusters`): combining marks, ZWJ sequences, variation selectors, emoji
modifiers and tags, regional-indicator pairs, CR LF and Hangul jamo sequences. That covers
what LLM and TTS text carries, without a dependency for one rarely taken path.

No asyncio, aiohttp or pipecat imports here (a test checks it).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from .exceptions import LocalProtocolError

__all__ = ["encoded_size", "grapheme_clusters", "split_text"]

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
        if ch.isspace() and (
            i + 1 == len(text) or not (text[i + 1].isspace() or _extends(text[i + 1]))
        ):
            tokens.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        tokens.append(text[start:])
    return tokens


def _cut_word(token: str, budget: int, max_bytes: int) -> tuple[list[str], list[str], int]:
    """Cut a word over ``budget`` between grapheme clusters.

    Returns the full pieces, then the characters of the last, still open piece and their
    wire size (later tokens may join it).
    """
    full: list[str] = []
    chunk: list[str] = []
    chunk_used = 0
    for ch in _units(token, budget):
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


def _units(token: str, budget: int) -> list[str]:
    """The grapheme clusters of ``token``; one over ``budget`` (a mark pile) by characters."""
    out: list[str] = []
    for cluster in grapheme_clusters(token):
        if len(cluster) > 1 and _json_len(cluster) > budget:
            out.extend(cluster)
        else:
            out.append(cluster)
    return out


_ZWJ = "\u200d"
_L, _V, _T, _LV, _LVT, _RI, _OTHER = range(7)


def _extends(ch: str) -> bool:
    """Tell whether ``ch`` attaches to the character before it (Extend or SpacingMark)."""
    cp = ord(ch)
    if cp < 0x300:
        return False
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or ch == _ZWJ
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
    )


def _kind(ch: str) -> int:
    cp = ord(ch)
    if cp < 0x1100:
        return _OTHER
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    return _OTHER


# Hangul syllable sequences: which jamo kind may follow which (Unicode UAX #29, GB6-GB8).
_HANGUL_NEXT = {
    _L: (_L, _V, _LV, _LVT),
    _LV: (_V, _T),
    _V: (_V, _T),
    _LVT: (_T,),
    _T: (_T,),
}


def _joins(prev: str, prev_kind: int, ch: str, kind: int, ri_run: int) -> bool:
    """Tell whether ``ch`` continues the cluster that ends with ``prev``."""
    if prev == "\r":
        return ch == "\n"
    if _extends(ch):
        return True
    if prev == _ZWJ:
        return True  # an emoji ZWJ sequence (GB11, without checking both sides are emoji)
    if kind == _RI and prev_kind == _RI:
        return ri_run % 2 == 1  # regional indicators pair up into flags
    return kind in _HANGUL_NEXT.get(prev_kind, ())


def grapheme_clusters(text: str) -> list[str]:
    """Split ``text`` into grapheme clusters (an approximation of Unicode's rules).

    Args:
        text: Any text.

    Returns:
        The clusters in order; joined they give back ``text``.
    """
    out: list[str] = []
    start = 0
    prev = ""
    prev_kind = _OTHER
    ri_run = 0  # regional indicators in a row so far
    for i, ch in enumerate(text):
        kind = _kind(ch)
        if i and not _joins(prev, prev_kind, ch, kind, ri_run):
            out.append(text[start:i])
            start = i
        ri_run = ri_run + 1 if kind == _RI else 0
        if not _extends(ch) or i == start:
            prev_kind = kind
        prev = ch
    if start < len(text):
        out.append(text[start:])
    return out
