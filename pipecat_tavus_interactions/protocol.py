"""Parse inbound Tavus messages and build outbound ones; the protocol's public surface.

This module is the wire boundary of the pure protocol core:

- :func:`parse_message` turns whatever the transport delivered (a dict, a JSON string, a
  JSON string inside a JSON string, bytes) into a typed :class:`events.Event`. Malformed
  input raises :class:`RemoteProtocolError` (a ``ValueError``) with a short ``reason``;
  nothing else escapes. An unknown ``event_type`` is not an error: it gives
  :class:`events.UnknownEvent`. This module owns the per-event builders; the field readers
  they use live in :mod:`.wire_fields`.
- :func:`build_message` turns an :class:`interactions.Interaction` into the wire dict and
  checks it against a size cap; :func:`max_audio_bytes` sizes audio echo chunks.
- Re-exported for a single import path: :func:`encoded_size` and :func:`split_text` (size
  accounting that keeps every message under Daily's documented 4 KB app-message limit,
  from :mod:`.wire_size`), :func:`parse_interaction` (outbound messages read back, from
  :mod:`.wire_interactions`) and :data:`MAX_INBOUND_BYTES` (from :mod:`.wire_fields`).

No asyncio, aiohttp or pipecat imports here (a test checks it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import events as ev
from .exceptions import LocalProtocolError, RemoteProtocolError
from .interactions import Interaction
from .wire_events import BUILDERS, MAX_ID_CHARS, WALKED, read_id, soft
from .wire_fields import (
    MAX_INBOUND_BYTES,
    as_dict,
    content_over,
    fail,
    opt_int,
    opt_str,
    props_dict,
    read_timestamp,
)
from .wire_interactions import parse_interaction
from .wire_size import encoded_size, split_text

#: Daily's documented per-app-message limit (daily-js, React Native, REST).
DEFAULT_MAX_MESSAGE_BYTES = 4096


def parse_message(obj: str | bytes | Mapping[str, Any]) -> ev.Event:
    """Parse one inbound Tavus message into a typed event.

    Args:
        obj: The message as the transport delivered it: a mapping, a JSON string (also a
            JSON string that itself holds a JSON string), or UTF-8 bytes. The Developer
            Portal export wrapper ``{"eventType": ..., "data": {...}}`` is unwrapped.

    Returns:
        The event model for its ``event_type``, or :class:`events.UnknownEvent` for an
        ``event_type`` this version does not know.

    Raises:
        RemoteProtocolError: The input is malformed; ``reason`` says how (``bad_json``,
            ``not_an_object``, ``missing_field``, ``wrong_type``, ``bad_value``,
            ``bad_encoding``, ``too_large``).
    """
    try:
        return _parse(obj)
    except RemoteProtocolError:
        raise
    except Exception as e:  # defensive: nothing but RemoteProtocolError may escape
        raise fail("invalid", f"{type(e).__name__}: {e}", obj) from None


def _envelope_fix(base: dict[str, Any], msg: dict) -> None:
    """Coerce the envelope fields that can be read; drop (and name) the rest."""
    if base["message_type"] is not None and type(base["message_type"]) is not str:
        base["message_type"] = soft(base, "message_type", lambda: opt_str(msg, "message_type", msg))
    for key in ("seq", "turn_idx"):
        if base[key] is not None and type(base[key]) is not int:
            base[key] = soft(base, key, lambda key=key: opt_int(msg, key, msg))
    v = base["inference_id"]
    if v is not None and (type(v) is not str or len(v) > MAX_ID_CHARS):
        base["inference_id"] = soft(base, "inference_id", lambda: read_id(v, msg))
    v = base["timestamp"]
    if v is not None and (type(v) is not float or not math.isfinite(v)):
        base["timestamp"] = soft(base, "timestamp", lambda: read_timestamp(msg, msg))


def _parse(obj: object) -> ev.Event:
    msg = obj if type(obj) is dict else as_dict(obj)
    if "event_type" not in msg and isinstance(msg.get("data"), dict) and "eventType" in msg:
        msg = msg["data"]
    event_type = msg.get("event_type")
    if event_type is None:
        raise fail("missing_field", "event_type is required", msg)
    if not isinstance(event_type, str) or not event_type:
        raise fail("wrong_type", "event_type must be a non-empty string", msg)
    props = msg.get("properties")
    if type(props) is not dict:
        props = props_dict(msg)
    conversation_id = msg.get("conversation_id")
    if conversation_id is not None and type(conversation_id) is not str:
        conversation_id = opt_str(msg, "conversation_id", msg)  # routing: never guessed
    # The common shapes are taken as they are; anything else goes through the checking
    # helpers, which coerce, or drop the field (named in ``dropped_fields``).
    message_type = msg.get("message_type")
    seq = msg.get("seq")
    turn_idx = msg.get("turn_idx")
    inference_id = msg.get("inference_id", props.get("inference_id"))
    timestamp = msg.get("timestamp")
    base: dict[str, Any] = {
        "event_type": event_type,
        "message_type": message_type,
        "conversation_id": conversation_id,
        "seq": seq,
        "turn_idx": turn_idx,
        "inference_id": inference_id,
        "timestamp": timestamp,
        "raw": msg,
    }
    if not (
        (seq is None or type(seq) is int)
        and (turn_idx is None or type(turn_idx) is int)
        and (
            inference_id is None
            or (type(inference_id) is str and len(inference_id) <= MAX_ID_CHARS)
        )
        and (timestamp is None or (type(timestamp) is float and math.isfinite(timestamp)))
        and (message_type is None or type(message_type) is str)
    ):
        _envelope_fix(base, msg)
    model = ev.EVENT_TYPES.get(event_type)
    if model is None and "guardrail" in event_type:
        model = ev.GuardrailEvent
    if model in WALKED and content_over(msg, MAX_INBOUND_BYTES):
        # Already-decoded messages skip as_dict's byte check. Tool calls keep their
        # arguments in the ledger, so their whole content is held to the limit; the other
        # kinds check the text and ids they keep (speech, inference_id) instead.
        raise fail("too_large", f"message over {MAX_INBOUND_BYTES} bytes of content", msg)
    if model is None:
        return ev.UnknownEvent.from_wire(base, properties=props)
    return BUILDERS[model](model, props, msg, base)


# --- outbound ---------------------------------------------------------------------------


def build_message(
    interaction: Interaction, *, conversation_id: str, max_bytes: int | None = None
) -> dict[str, Any]:
    """Build the wire message for an interaction.

    Args:
        interaction: The interaction to send (already validated at construction).
        conversation_id: The conversation it is for.
        max_bytes: When given, the encoded message must not exceed this many bytes.

    Returns:
        The message dict: ``message_type``, ``event_type``, ``conversation_id`` and, except
        for ``conversation.interrupt``, ``properties``.

    Raises:
        LocalProtocolError: ``conversation_id`` is not set, ``interaction`` is not an
            interaction, or the message is over ``max_bytes``.
    """
    if not isinstance(interaction, Interaction):
        raise LocalProtocolError(
            f"build_message takes an Interaction (e.g. interactions.Respond('hi')), got "
            f"{type(interaction).__name__}"
        )
    if not isinstance(conversation_id, str) or not conversation_id:
        raise LocalProtocolError(
            "conversation_id is not set: pass TavusInteractionsParams(conversation_id=...) "
            "or call set_conversation_id() before sending interactions"
        )
    msg: dict[str, Any] = {
        "message_type": "conversation",
        "event_type": interaction.EVENT_TYPE,
        "conversation_id": conversation_id,
    }
    props = interaction.properties()
    if props is not None:
        msg["properties"] = props
    if max_bytes is not None:
        size = encoded_size(msg)
        if size > max_bytes:
            raise LocalProtocolError(
                f"{interaction.EVENT_TYPE} message is {size} bytes, over the {max_bytes}-byte "
                "cap; split it (protocol.split_text for text, shorter chunks for audio) or "
                "raise max_message_bytes if your transport allows larger messages"
            )
    return msg


def max_audio_bytes(
    *, conversation_id: str, sample_rate: int, inference_id: str, max_bytes: int
) -> int:
    """Return the most PCM bytes one audio echo message may carry under ``max_bytes``.

    The result is a whole number of 16-bit samples and accounts for base64 growth (4/3)
    and the envelope, measured on a real message with the same ids.

    Args:
        conversation_id: The conversation id the messages carry.
        sample_rate: The sample rate field they carry.
        inference_id: An inference id of the length used (UUID strings are 36 chars).
        max_bytes: The per-message cap.

    Returns:
        The largest even byte count whose message fits.

    Raises:
        LocalProtocolError: Not even one sample fits.
    """
    from .interactions import Echo

    probe = build_message(
        Echo(audio=b"", sample_rate=sample_rate, inference_id=inference_id, done=False),
        conversation_id=conversation_id,
    )
    budget_b64 = max_bytes - encoded_size(probe)  # done=false is the longer form
    n = (budget_b64 // 4) * 3
    n -= n % 2
    if n < 2:
        raise LocalProtocolError(
            f"an audio echo message cannot fit in {max_bytes} bytes; raise max_message_bytes"
        )
    return n


__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_INBOUND_BYTES",
    "build_message",
    "encoded_size",
    "max_audio_bytes",
    "parse_interaction",
    "parse_message",
    "split_text",
]
