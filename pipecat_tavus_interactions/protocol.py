"""Parse inbound Tavus messages and build outbound ones; message size accounting.

This module is the wire boundary of the pure protocol core:

- :func:`parse_message` turns whatever the transport delivered (a dict, a JSON string, a
  JSON string inside a JSON string, bytes) into a typed :class:`events.Event`. Malformed
  input raises :class:`RemoteProtocolError` (a ``ValueError``) with a short ``reason``;
  nothing else escapes. An unknown ``event_type`` is not an error: it gives
  :class:`events.UnknownEvent`.
- :func:`build_message` turns an :class:`interactions.Interaction` into the wire dict and
  checks it against a size cap.
- :func:`encoded_size` and :func:`split_text` do the size accounting that keeps every
  message under Daily's documented 4 KB app-message limit.

No asyncio, aiohttp or pipecat imports here (a test checks it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from . import events as ev
from .exceptions import LocalProtocolError, RemoteProtocolError
from .interactions import Interaction

#: Daily's documented per-app-message limit (daily-js, React Native, REST).
DEFAULT_MAX_MESSAGE_BYTES = 4096

#: Messages longer than this are refused before parsing (a flood guard).
MAX_INBOUND_BYTES = 256 * 1024

_INT_TEXT = re.compile(r"\s*-?[0-9]+\s*")

_ROLES = {"user": ev.ROLE_USER, "pal": ev.ROLE_PAL, "replica": ev.ROLE_PAL}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _fail(reason: str, detail: str, raw: object) -> RemoteProtocolError:
    return RemoteProtocolError(reason, detail, raw)


def _load_json(text: str, raw: object) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise _fail("bad_json", f"not valid JSON ({e})", raw) from None


def _as_dict(obj: object) -> dict[str, Any]:
    raw = obj
    if isinstance(obj, bytes | bytearray | memoryview):
        if len(obj) > MAX_INBOUND_BYTES:
            raise _fail("too_large", f"{len(obj)} bytes, over {MAX_INBOUND_BYTES}", None)
        try:
            obj = bytes(obj).decode("utf-8")
        except UnicodeDecodeError as e:
            raise _fail("bad_encoding", f"not UTF-8 ({e.reason})", raw) from None
    if isinstance(obj, str):
        if len(obj) > MAX_INBOUND_BYTES:
            raise _fail("too_large", f"{len(obj)} characters, over {MAX_INBOUND_BYTES}", None)
        obj = _load_json(obj, raw)
        if isinstance(obj, str):  # a JSON object serialised twice
            obj = _load_json(obj, raw)
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, Mapping):
        return dict(obj)
    raise _fail("not_an_object", f"expected a JSON object, got {type(obj).__name__}", raw)


def _opt_str(d: Mapping[str, Any], key: str, msg: dict) -> str | None:
    v = d.get(key)
    if v is None or isinstance(v, str):
        return v
    raise _fail("wrong_type", f"{key} must be a string, got {type(v).__name__}", msg)


def _req_str(d: Mapping[str, Any], keys: tuple[str, ...], msg: dict) -> str:
    for key in keys:
        v = d.get(key)
        if v is not None:
            if isinstance(v, str):
                return v
            raise _fail("wrong_type", f"{key} must be a string, got {type(v).__name__}", msg)
    raise _fail("missing_field", f"properties.{keys[0]} is required", msg)


def _opt_int(d: Mapping[str, Any], key: str, msg: dict) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise _fail("wrong_type", f"{key} must be an integer, got bool", msg)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    # str.isdigit() also accepts characters int() refuses ("²"), and lstrip("-") let "--5"
    # through; only plain ASCII decimal integers count.
    if isinstance(v, str) and _INT_TEXT.fullmatch(v):
        return int(v)
    raise _fail("wrong_type", f"{key} must be an integer, got {v!r:.40}", msg)


def _opt_float(d: Mapping[str, Any], key: str, msg: dict) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise _fail("wrong_type", f"{key} must be a number, got bool", msg)
    if isinstance(v, int | float):
        if not math.isfinite(v):
            raise _fail("wrong_type", f"{key} must be finite", msg)
        return float(v)
    raise _fail("wrong_type", f"{key} must be a number, got {type(v).__name__}", msg)


def _timestamp(d: Mapping[str, Any], msg: dict) -> float | None:
    v = d.get("timestamp")
    if isinstance(v, str):  # webhooks and exports stamp ISO-8601 strings
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise _fail("wrong_type", f"timestamp is not ISO-8601: {v!r:.40}", msg) from None
    return _opt_float(d, "timestamp", msg)


def _bool(d: Mapping[str, Any], key: str, msg: dict) -> bool:
    v = d.get(key)
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise _fail("wrong_type", f"{key} must be a boolean, got {v!r:.40}", msg)


def _role(props: Mapping[str, Any], msg: dict, default: str | None = None) -> tuple[str, str]:
    wire = props.get("role", default)
    if wire is None:
        raise _fail("missing_field", "properties.role is required", msg)
    if not isinstance(wire, str) or wire not in _ROLES:
        raise _fail("bad_value", f"unknown role {wire!r:.40}", msg)
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
        raise _fail("wrong_type", "properties.frames must be a list", msg)
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
            raise _fail("wrong_type", "each frame must be a string or {data, mime_type}", msg)
    return tuple(out)


def _props_dict(msg: dict) -> dict[str, Any]:
    props = msg.get("properties")
    if props is None:
        return {}
    if isinstance(props, dict):
        return props
    raise _fail("wrong_type", f"properties must be an object, got {type(props).__name__}", msg)


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
        duration=None if speaking else _opt_float(props, "duration", msg),
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
        raise _fail("invalid", f"{type(e).__name__}: {e}", obj) from None


def _parse(obj: object) -> ev.Event:
    msg = obj if type(obj) is dict else _as_dict(obj)
    if "event_type" not in msg and isinstance(msg.get("data"), dict) and "eventType" in msg:
        msg = msg["data"]
    event_type = msg.get("event_type")
    if event_type is None:
        raise _fail("missing_field", "event_type is required", msg)
    if not isinstance(event_type, str) or not event_type:
        raise _fail("wrong_type", "event_type must be a non-empty string", msg)
    props = msg.get("properties")
    if type(props) is not dict:
        props = _props_dict(msg)
    inference_id = msg.get("inference_id", props.get("inference_id"))
    if inference_id is not None and type(inference_id) is not str:
        if isinstance(inference_id, int) and not isinstance(inference_id, bool):
            inference_id = str(inference_id)
        elif isinstance(inference_id, str):
            inference_id = str(inference_id)
        else:
            raise _fail("wrong_type", "inference_id must be a string", msg)
    # The common shapes (str/int/float or absent) are taken as they are; anything else
    # goes through the checking helpers, which coerce or raise.
    message_type = msg.get("message_type")
    if message_type is not None and type(message_type) is not str:
        message_type = _opt_str(msg, "message_type", msg)
    conversation_id = msg.get("conversation_id")
    if conversation_id is not None and type(conversation_id) is not str:
        conversation_id = _opt_str(msg, "conversation_id", msg)
    seq = msg.get("seq")
    if seq is not None and type(seq) is not int:
        seq = _opt_int(msg, "seq", msg)
    turn_idx = msg.get("turn_idx")
    if turn_idx is not None and type(turn_idx) is not int:
        turn_idx = _opt_int(msg, "turn_idx", msg)
    timestamp = msg.get("timestamp")
    if timestamp is not None and (type(timestamp) is not float or not math.isfinite(timestamp)):
        timestamp = _timestamp(msg, msg)
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
        user_audio_analysis=_opt_str(props, "user_audio_analysis", msg),
        user_visual_analysis=_opt_str(props, "user_visual_analysis", msg),
        visual_context=_opt_str(props, "visual_context", msg),
    )


def _speech(props: Mapping[str, Any], msg: dict) -> str:
    speech = props.get("speech")
    return speech if type(speech) is str else _req_str(props, ("speech", "text", "content"), msg)


def _flag(props: Mapping[str, Any], key: str, msg: dict) -> bool:
    value = props.get(key)
    return value if type(value) is bool else _bool(props, key, msg)


def _streaming(model, props, msg, base):
    # The most frequent event on the wire (every snapshot, twice): real booleans, ints and
    # strings are taken as they are; anything else goes through the checking helpers.
    role, wire = _role(props, msg)
    index = props.get("content_index")
    if index is not None and type(index) is not int:
        index = _opt_int(props, "content_index", msg)
    pid, pname = props.get("participant_id"), props.get("participant_name")
    if pid is not None or pname is not None:
        pid = _opt_str(props, "participant_id", msg)
        pname = _opt_str(props, "participant_name", msg)
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
        raise _fail("missing_field", "properties.name is required", msg)
    if not isinstance(name, str) or not name:
        raise _fail("wrong_type", "properties.name must be a non-empty string", msg)
    arguments, raw_args, error = _arguments(props, msg)
    call_id = props.get("tool_call_id", msg.get("tool_call_id"))
    if call_id is None and fn:
        # OpenAI's shape puts the id beside "function"; some clients nest it inside.
        call_id = props.get("id", fn.get("id"))
    if call_id is not None and not isinstance(call_id, str):
        raise _fail("wrong_type", "tool_call_id must be a string", msg)
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
        modality=_opt_str(props, "modality", msg),
        frames=_frames(props, msg),
    )


def _analysis(model, props, msg, base):
    return model.from_wire(base, analysis=_req_str(props, ("analysis",), msg))


def _objective(model, props, msg, base):
    name = props.get("objective_name", props.get("name"))
    variables = props.get("output_variables")
    if variables is not None and not isinstance(variables, dict):
        raise _fail("wrong_type", "output_variables must be an object", msg)
    return model.from_wire(
        base,
        objective_name=name if isinstance(name, str) else None,
        output_variables=variables or {},
        properties=props,
    )


def _guardrail(model, props, msg, base):
    return model.from_wire(
        base,
        guardrail=_opt_str(props, "guardrail", msg),
        guardrail_uuid=_opt_str(props, "guardrail_uuid", msg),
        reason=_opt_str(props, "reason", msg),
    )


def _joined(model, props, msg, base):
    return model.from_wire(base, replica_id=_opt_str(props, "replica_id", msg))


def _present(model, props, msg, base):
    return model.from_wire(base, attempt=_opt_int(props, "attempt", msg))


def _shutdown(model, props, msg, base):
    reason = props.get("shutdown_reason", props.get("reason", msg.get("reason")))
    if reason is not None and not isinstance(reason, str):
        raise _fail("wrong_type", "shutdown reason must be a string", msg)
    return model.from_wire(base, reason=reason, replica_id=_opt_str(props, "replica_id", msg))


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


def encoded_size(message: Mapping[str, Any]) -> int:
    """Return the size in bytes of ``message`` as compact UTF-8 JSON (its wire size).

    Args:
        message: A JSON-serialisable message.

    Returns:
        The number of bytes of its compact JSON encoding.
    """
    return len(_dumps(message).encode("utf-8"))


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
    tokens: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch.isspace() and (i + 1 == len(text) or not text[i + 1].isspace()):
            tokens.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        tokens.append(text[start:])
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for token in tokens:
        size = _json_len(token)
        if size > budget:
            if current:
                pieces.append("".join(current))
                current, used = [], 0
            chunk, chunk_used = [], 0
            for ch in token:
                ch_size = _json_len(ch)
                if ch_size > budget:
                    raise LocalProtocolError(
                        f"{ch!r} needs {ch_size} bytes on the wire, more than the {budget} "
                        f"bytes left under the {max_bytes}-byte cap; raise the cap"
                    )
                if chunk_used + ch_size > budget:
                    pieces.append("".join(chunk))
                    chunk, chunk_used = [], 0
                chunk.append(ch)
                chunk_used += ch_size
            current, used = chunk, chunk_used
            continue
        if used + size > budget:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(token)
        used += size
    if current:
        pieces.append("".join(current))
    return pieces


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


def parse_interaction(obj: str | bytes | Mapping[str, Any]) -> Interaction:
    """Parse an outbound interaction message back into its model (the replica's view).

    The simulator uses this to understand what the bot sent; tests use it to assert on
    wire messages.

    Args:
        obj: The wire message (mapping, JSON string or bytes).

    Returns:
        The interaction model.

    Raises:
        RemoteProtocolError: Not an interaction message, or its fields are malformed.
    """
    import base64
    import binascii

    from . import interactions as ix

    msg = _as_dict(obj)
    event_type = msg.get("event_type")
    props = _props_dict(msg)
    try:
        if event_type == ix.Echo.EVENT_TYPE:
            done = _bool(props, "done", msg) if "done" in props else False
            common = {
                "inference_id": _opt_str(props, "inference_id", msg),
                "done": done,
            }
            if props.get("modality") == "audio":
                try:
                    audio = base64.b64decode(_req_str(props, ("audio",), msg), validate=True)
                except binascii.Error as e:
                    raise _fail("bad_value", f"audio is not base64 ({e})", msg) from None
                return ix.Echo(
                    audio=audio, sample_rate=_opt_int(props, "sample_rate", msg), **common
                )
            if props.get("modality") != "text":
                raise _fail("bad_value", "echo modality must be 'text' or 'audio'", msg)
            return ix.Echo(text=_req_str(props, ("text",), msg), **common)
        if event_type == ix.Respond.EVENT_TYPE:
            return ix.Respond(_req_str(props, ("text",), msg))
        if event_type == ix.Interrupt.EVENT_TYPE:
            return ix.Interrupt()
        if event_type == ix.OverwriteLLMContext.EVENT_TYPE:
            return ix.OverwriteLLMContext(_req_str(props, ("context",), msg))
        if event_type == ix.AppendLLMContext.EVENT_TYPE:
            return ix.AppendLLMContext(
                _req_str(props, ("context",), msg), _opt_str(props, "job_status", msg)
            )
        if event_type == ix.Sensitivity.EVENT_TYPE:
            return ix.Sensitivity(
                participant_pause_sensitivity=props.get("participant_pause_sensitivity"),
                participant_interrupt_sensitivity=props.get("participant_interrupt_sensitivity"),
            )
        if event_type == ix.ToolResult.EVENT_TYPE:
            return ix.ToolResult(
                _req_str(props, ("tool_call_id",), msg),
                props.get("output"),
                props.get("status", "success"),
            )
        if event_type == ix.ObjectiveConfirm.EVENT_TYPE:
            extra = {k: v for k, v in props.items() if k != "objective_name"}
            return ix.ObjectiveConfirm(_req_str(props, ("objective_name",), msg), extra)
    except LocalProtocolError as e:
        raise _fail("bad_value", str(e), msg) from None
    raise _fail("bad_value", f"not an interaction: {event_type!r:.60}", msg)


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
