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

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from . import events as ev
from .exceptions import LocalProtocolError, RemoteProtocolError
from .interactions import Interaction
from .wire_fields import (
    MAX_INBOUND_BYTES,
    as_dict,
    fail,
    opt_float,
    opt_int,
    opt_str,
    props_dict,
    read_bool,
    read_timestamp,
    req_str,
)
from .wire_interactions import parse_interaction
from .wire_size import encoded_size, split_text

#: Daily's documented per-app-message limit (daily-js, React Native, REST).
DEFAULT_MAX_MESSAGE_BYTES = 4096

_ROLES = {"user": ev.ROLE_USER, "pal": ev.ROLE_PAL, "replica": ev.ROLE_PAL}


def _role(props: Mapping[str, Any], msg: dict, default: str | None = None) -> tuple[str, str]:
    wire = props.get("role", default)
    if wire is None:
        raise fail("missing_field", "properties.role is required", msg)
    if not isinstance(wire, str) or wire not in _ROLES:
        raise fail("bad_value", f"unknown role {wire!r:.40}", msg)
    return _ROLES[wire], wire


def _arguments(
    props: Mapping[str, Any], msg: dict
) -> tuple[dict[str, Any], str | None, str | None]:
    """Return ``(arguments, raw_string, error)``; never raises for bad argument JSON."""
    args = props.get("arguments")
    fn = props.get("function")
    if args is None and isinstance(fn, Mapping):
        args = fn.get("arguments")
    if args is None:
        return {}, None, None
    if isinstance(args, Mapping):
        return dict(args), None, None
    if isinstance(args, str):
        if not args.strip():
            return {}, args, None
        try:
            parsed = json.loads(args)
        except (ValueError, RecursionError) as e:
            return {}, args, f"arguments are not valid JSON ({e})"
        if isinstance(parsed, str):  # double-encoded arguments
            try:
                parsed = json.loads(parsed)
            except (ValueError, RecursionError):
                pass
        if isinstance(parsed, dict):
            return parsed, args, None
        return {}, args, f"arguments must be a JSON object, got {type(parsed).__name__}"
    return {}, None, f"arguments must be a JSON object or string, got {type(args).__name__}"


def _frames(props: Mapping[str, Any], msg: dict) -> tuple[ev.PerceptionFrame, ...]:
    frames = props.get("frames")
    if frames is None:
        return ()
    if not isinstance(frames, list):
        raise fail("wrong_type", "properties.frames must be a list", msg)
    out = []
    for f in frames:
        if isinstance(f, str):
            out.append(ev.PerceptionFrame(data=f))
        elif isinstance(f, Mapping) and isinstance(f.get("data"), str):
            mime = f.get("mime_type")
            out.append(
                ev.PerceptionFrame(
                    data=f["data"], mime_type=mime if isinstance(mime, str) else "image/jpeg"
                )
            )
        else:
            raise fail("wrong_type", "each frame must be a string or {data, mime_type}", msg)
    return tuple(out)


def _speaking(
    cls: type[ev.SpeakingEvent], props: dict, msg: dict, base: dict, role_default: str | None
) -> ev.Event:
    if role_default is None:
        role, wire = _role(props, msg)
    else:
        role, wire = _ROLES[role_default], role_default
    speaking = "started" in cls.EVENT_TYPES[0]
    return cls.from_wire(
        base,
        role=role,
        wire_role=wire,
        speaking=speaking,
        role_agnostic=role_default is None,
        interrupted=False if speaking else _flag(props, "interrupted", msg),
        duration=None if speaking else opt_float(props, "duration", msg),
    )


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
    inference_id = msg.get("inference_id", props.get("inference_id"))
    if inference_id is not None and type(inference_id) is not str:
        if isinstance(inference_id, int) and not isinstance(inference_id, bool):
            inference_id = str(inference_id)
        elif isinstance(inference_id, str):
            inference_id = str(inference_id)
        else:
            raise fail("wrong_type", "inference_id must be a string", msg)
    # The common shapes (str/int/float or absent) are taken as they are; anything else
    # goes through the checking helpers, which coerce or raise.
    message_type = msg.get("message_type")
    if message_type is not None and type(message_type) is not str:
        message_type = opt_str(msg, "message_type", msg)
    conversation_id = msg.get("conversation_id")
    if conversation_id is not None and type(conversation_id) is not str:
        conversation_id = opt_str(msg, "conversation_id", msg)
    seq = msg.get("seq")
    if seq is not None and type(seq) is not int:
        seq = opt_int(msg, "seq", msg)
    turn_idx = msg.get("turn_idx")
    if turn_idx is not None and type(turn_idx) is not int:
        turn_idx = opt_int(msg, "turn_idx", msg)
    timestamp = msg.get("timestamp")
    if timestamp is not None and (type(timestamp) is not float or not math.isfinite(timestamp)):
        timestamp = read_timestamp(msg, msg)
    base = {
        "event_type": event_type,
        "message_type": message_type,
        "conversation_id": conversation_id,
        "seq": seq,
        "turn_idx": turn_idx,
        "inference_id": inference_id,
        "timestamp": timestamp,
        "raw": msg,
    }
    model = ev.EVENT_TYPES.get(event_type)
    if model is None and "guardrail" in event_type:
        model = ev.GuardrailEvent
    if model is None:
        return ev.UnknownEvent.from_wire(base, properties=props)
    return _BUILDERS[model](model, props, msg, base)


def _utterance(model, props, msg, base):
    role, wire = _role(props, msg)
    return model.from_wire(
        base,
        role=role,
        wire_role=wire,
        speech=_speech(props, msg),
        user_audio_analysis=opt_str(props, "user_audio_analysis", msg),
        user_visual_analysis=opt_str(props, "user_visual_analysis", msg),
        visual_context=opt_str(props, "visual_context", msg),
    )


def _speech(props: Mapping[str, Any], msg: dict) -> str:
    speech = props.get("speech")
    return speech if type(speech) is str else req_str(props, ("speech", "text", "content"), msg)


def _flag(props: Mapping[str, Any], key: str, msg: dict) -> bool:
    value = props.get(key)
    return value if type(value) is bool else read_bool(props, key, msg)


def _streaming(model, props, msg, base):
    # The most frequent event on the wire (every snapshot, twice): real booleans, ints and
    # strings are taken as they are; anything else goes through the checking helpers.
    role, wire = _role(props, msg)
    index = props.get("content_index")
    if index is not None and type(index) is not int:
        index = opt_int(props, "content_index", msg)
    pid, pname = props.get("participant_id"), props.get("participant_name")
    if pid is not None or pname is not None:
        pid = opt_str(props, "participant_id", msg)
        pname = opt_str(props, "participant_name", msg)
    return model.from_wire(
        base,
        role=role,
        wire_role=wire,
        speech=_speech(props, msg),
        content_index=index,
        final=_flag(props, "final", msg),
        is_interrupted=_flag(props, "is_interrupted", msg),
        participant_id=pid,
        participant_name=pname,
    )


def _tool_fields(props, msg) -> dict[str, Any]:
    fn = props.get("function") if isinstance(props.get("function"), Mapping) else {}
    name = props.get("name", props.get("tool_name", fn.get("name")))
    if name is None:
        raise fail("missing_field", "properties.name is required", msg)
    if not isinstance(name, str) or not name:
        raise fail("wrong_type", "properties.name must be a non-empty string", msg)
    arguments, raw_args, error = _arguments(props, msg)
    call_id = props.get("tool_call_id", msg.get("tool_call_id"))
    if call_id is None and fn:
        # OpenAI's shape puts the id beside "function"; some clients nest it inside.
        call_id = props.get("id", fn.get("id"))
    if call_id is not None and not isinstance(call_id, str):
        raise fail("wrong_type", "tool_call_id must be a string", msg)
    return {
        "name": name,
        "arguments": arguments,
        "arguments_raw": raw_args,
        "arguments_error": error,
        "tool_call_id": call_id,
    }


def _tool_call(model, props, msg, base):
    return model.from_wire(base, **_tool_fields(props, msg))


def _perception_tool_call(model, props, msg, base):
    return model.from_wire(
        base,
        **_tool_fields(props, msg),
        modality=opt_str(props, "modality", msg),
        frames=_frames(props, msg),
    )


def _analysis(model, props, msg, base):
    return model.from_wire(base, analysis=req_str(props, ("analysis",), msg))


def _objective(model, props, msg, base):
    name = props.get("objective_name", props.get("name"))
    variables = props.get("output_variables")
    if variables is not None and not isinstance(variables, dict):
        raise fail("wrong_type", "output_variables must be an object", msg)
    return model.from_wire(
        base,
        objective_name=name if isinstance(name, str) else None,
        output_variables=variables or {},
        properties=props,
    )


def _guardrail(model, props, msg, base):
    return model.from_wire(
        base,
        guardrail=opt_str(props, "guardrail", msg),
        guardrail_uuid=opt_str(props, "guardrail_uuid", msg),
        reason=opt_str(props, "reason", msg),
    )


def _joined(model, props, msg, base):
    return model.from_wire(base, replica_id=opt_str(props, "replica_id", msg))


def _present(model, props, msg, base):
    return model.from_wire(base, attempt=opt_int(props, "attempt", msg))


def _shutdown(model, props, msg, base):
    reason = props.get("shutdown_reason", props.get("reason", msg.get("reason")))
    if reason is not None and not isinstance(reason, str):
        raise fail("wrong_type", "shutdown reason must be a string", msg)
    return model.from_wire(base, reason=reason, replica_id=opt_str(props, "replica_id", msg))


def _plain(model, props, msg, base):
    return model.from_wire(base)


def _speaking_builder(role_default: str | None) -> Callable[..., ev.Event]:
    def build(model, props, msg, base):
        return _speaking(model, props, msg, base, role_default)

    return build


_BUILDERS: dict[type[ev.Event], Callable[..., ev.Event]] = {
    ev.UtteranceEvent: _utterance,
    ev.UtteranceStreamingEvent: _streaming,
    ev.StartedSpeakingEvent: _speaking_builder(None),
    ev.StoppedSpeakingEvent: _speaking_builder(None),
    ev.ReplicaStartedSpeakingEvent: _speaking_builder("replica"),
    ev.ReplicaStoppedSpeakingEvent: _speaking_builder("replica"),
    ev.UserStartedSpeakingEvent: _speaking_builder("user"),
    ev.UserStoppedSpeakingEvent: _speaking_builder("user"),
    ev.ReplicaInterruptedEvent: _plain,
    ev.ToolCallEvent: _tool_call,
    ev.PerceptionToolCallEvent: _perception_tool_call,
    ev.PerceptionAnalysisEvent: _analysis,
    ev.ObjectiveActivatedEvent: _objective,
    ev.ObjectiveCompletedEvent: _objective,
    ev.ObjectivePendingEvent: _objective,
    ev.GuardrailEvent: _guardrail,
    ev.ReplicaJoinedEvent: _joined,
    ev.ReplicaPresentEvent: _present,
    ev.ShutdownEvent: _shutdown,
}


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
