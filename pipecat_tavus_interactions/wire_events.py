"""Build inbound event models from decoded Tavus messages, one builder per model.

:func:`~pipecat_tavus_interactions.protocol.parse_message` reads the envelope and hands the
rest to the builder of the ``event_type``'s model (:data:`BUILDERS`). Builders read each
field with the checking helpers of :mod:`.wire_fields`. A bad *optional* field drops that
field (named in the event's ``dropped_fields``), not the event: only an unreadable envelope,
a missing ``event_type`` or a missing required field drops a message (DESIGN "field-level
drift"). No asyncio, aiohttp or pipecat imports here (a test checks it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from . import events as ev
from .exceptions import RemoteProtocolError
from .wire_fields import (
    MAX_INBOUND_BYTES,
    fail,
    opt_int,
    read_bool,
    req_str,
)

_ROLES = {"user": ev.ROLE_USER, "pal": ev.ROLE_PAL, "replica": ev.ROLE_PAL}

#: Ids longer than this are not ids: the field is dropped (it would be kept in memory).
MAX_ID_CHARS = 256


def drop(base: dict, name: str) -> None:
    """Record that the optional field ``name`` was unreadable and left out of the event."""
    base["dropped_fields"] = (*base.get("dropped_fields", ()), name)


def soft(base: dict, name: str, read: Callable[[], Any], default: Any = None) -> Any:
    """Read an optional field; on a bad value drop the field (recorded), not the event."""
    try:
        return read()
    except RemoteProtocolError:
        drop(base, name)
        return default


def _role(props: Mapping[str, Any], msg: dict, base: dict) -> tuple[str, str] | None:
    """Return ``(role, wire role)``; ``None`` (the field dropped) when absent or unknown."""
    wire = props.get("role")
    role = _ROLES.get(wire) if isinstance(wire, str) else None
    if role is None:
        drop(base, "role")
        return None
    return role, wire


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
    speaking = "started" in cls.EVENT_TYPES[0]
    interrupted = False
    duration = None
    if not speaking:
        interrupted = props.get("interrupted", False)
        if type(interrupted) is not bool:
            interrupted = _flag(props, "interrupted", msg, base)
        duration = props.get("duration")
        if duration is not None and not (
            type(duration) is float and 0.0 <= duration <= _MAX_DURATION_S
        ):
            duration = _duration(props, msg, base)
    if role_default is not None:  # the event type says whose state changed
        role, wire = _ROLES[role_default], role_default
    else:
        roles = _role(props, msg, base)
        if roles is not None:
            role, wire = roles
        elif not speaking and ("interrupted" in props or "duration" in props):
            role, wire = ev.ROLE_PAL, ""  # only the replica's stops carry these
        else:
            role, wire = None, ""  # the conversation core resolves it from its own state
    return cls.from_wire(
        base,
        role=role,
        wire_role=wire,
        speaking=speaking,
        role_agnostic=role_default is None,
        interrupted=interrupted,
        duration=duration,
    )


#: A spoken span longer than a day is not a duration.
_MAX_DURATION_S = 86_400.0


def _duration(props: Mapping[str, Any], msg: dict, base: dict) -> float | None:
    value = props.get("duration")
    if value is None:
        return None
    if isinstance(value, str):  # "1.5": a number sent as text
        try:
            value = float(value)
        except ValueError:
            value = None
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0.0 <= value <= _MAX_DURATION_S
    ):
        return float(value)
    drop(base, "duration")
    return None


def read_id(value: Any, msg: dict) -> str:
    """An id field: a string (an integer is taken as its text), at most MAX_ID_CHARS long."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise fail("wrong_type", "an id must be a string", msg)
    if len(value) > MAX_ID_CHARS:
        raise fail("too_large", f"an id of {len(value)} characters", msg)
    return value


def _utterance(model, props, msg, base):
    wire = props.get("role")
    role = _ROLES.get(wire) if type(wire) is str else None
    if role is None:  # whose words they are is unknown: surfaced, not acted on
        drop(base, "role")
        return ev.UnknownEvent.from_wire(base, properties=props)
    speech = props.get("speech")
    if type(speech) is not str or len(speech) > MAX_INBOUND_BYTES:
        speech = _speech(props, msg, base)
    cut = props.get("interrupted", False)
    if type(cut) is not bool:
        cut = _flag(props, "interrupted", msg, base)
    extra = {}
    for key in _UTTERANCE_TEXTS:
        value = props.get(key)
        if value is not None:
            extra[key] = _opt_text(props, key, msg, base)
    return model.from_wire(base, role=role, wire_role=wire, speech=speech, interrupted=cut, **extra)


_UTTERANCE_TEXTS = ("user_audio_analysis", "user_visual_analysis", "visual_context")


def _opt_text(props: Mapping[str, Any], key: str, msg: dict, base: dict) -> str | None:
    value = props.get(key)
    if value is None or (type(value) is str and len(value) <= MAX_INBOUND_BYTES):
        return value
    drop(base, key)
    return None


def _speech(props: Mapping[str, Any], msg: dict, base: dict) -> str:
    speech = props.get("speech")
    if type(speech) is not str:
        speech = soft(base, "speech", lambda: req_str(props, _SPEECH_KEYS, msg), "")
    if len(speech) > MAX_INBOUND_BYTES:  # a dict message skips the byte-size check
        raise fail("too_large", f"speech of {len(speech)} characters", msg)
    return speech


_SPEECH_KEYS = ("speech", "text", "content")

#: Models whose whole decoded content is held to the size limit (they keep it: a tool
#: call's arguments stay in the ledger). The others check the text and ids they keep.
WALKED = frozenset((ev.ToolCallEvent, ev.PerceptionToolCallEvent))


def _flag(props: Mapping[str, Any], key: str, msg: dict, base: dict) -> bool:
    value = props.get(key)
    if type(value) is bool:
        return value
    if value is None:
        return False
    return soft(base, key, lambda: read_bool(props, key, msg), False)


def _streaming(model, props, msg, base):
    # The most frequent event on the wire (every snapshot, twice): real booleans, ints and
    # strings are taken as they are, inline; anything else goes through the helpers.
    wire = props.get("role")
    role = _ROLES.get(wire) if type(wire) is str else None
    if role is None:
        drop(base, "role")
        return ev.UnknownEvent.from_wire(base, properties=props)
    index = props.get("content_index")
    if index is not None and type(index) is not int:
        index = soft(base, "content_index", lambda: opt_int(props, "content_index", msg))
    pid, pname = props.get("participant_id"), props.get("participant_name")
    if pid is not None and (type(pid) is not str or len(pid) > MAX_ID_CHARS):
        pid = soft(base, "participant_id", lambda: read_id(pid, msg))
    if pname is not None and (type(pname) is not str or len(pname) > MAX_INBOUND_BYTES):
        pname = _opt_text(props, "participant_name", msg, base)
    speech = props.get("speech")
    if type(speech) is not str or len(speech) > MAX_INBOUND_BYTES:
        speech = _speech(props, msg, base)
    final = props.get("final", False)
    if type(final) is not bool:
        final = _flag(props, "final", msg, base)
    cut = props.get("is_interrupted", False)
    if type(cut) is not bool:
        cut = _flag(props, "is_interrupted", msg, base)
    return model.from_wire(
        base,
        role=role,
        wire_role=wire,
        speech=speech,
        content_index=index,
        final=final,
        is_interrupted=cut,
        participant_id=pid,
        participant_name=pname,
    )


def _tool_fields(props, msg, base) -> dict[str, Any]:
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
    if call_id is not None and (type(call_id) is not str or len(call_id) > MAX_ID_CHARS):
        # Without its id the result still goes back, as context (the delivery policy).
        call_id = soft(base, "tool_call_id", lambda: read_id(call_id, msg))
    return {
        "name": name,
        "arguments": arguments,
        "arguments_raw": raw_args,
        "arguments_error": error,
        "tool_call_id": call_id,
    }


def _tool_call(model, props, msg, base):
    return model.from_wire(base, **_tool_fields(props, msg, base))


def _perception_tool_call(model, props, msg, base):
    return model.from_wire(
        base,
        **_tool_fields(props, msg, base),
        modality=_opt_text(props, "modality", msg, base),
        frames=soft(base, "frames", lambda: _frames(props, msg), ()),
    )


def _analysis(model, props, msg, base):
    return model.from_wire(base, analysis=req_str(props, ("analysis",), msg))


def _objective(model, props, msg, base):
    name = props.get("objective_name", props.get("name"))
    variables = props.get("output_variables")
    if variables is not None and not isinstance(variables, dict):
        drop(base, "output_variables")
        variables = None
    return model.from_wire(
        base,
        objective_name=name if isinstance(name, str) else None,
        output_variables=variables or {},
        properties=props,
    )


def _guardrail(model, props, msg, base):
    return model.from_wire(
        base,
        guardrail=_opt_text(props, "guardrail", msg, base),
        guardrail_uuid=_opt_text(props, "guardrail_uuid", msg, base),
        reason=_opt_text(props, "reason", msg, base),
    )


def _joined(model, props, msg, base):
    return model.from_wire(base, replica_id=_opt_text(props, "replica_id", msg, base))


def _present(model, props, msg, base):
    attempt = props.get("attempt")
    if attempt is not None and type(attempt) is not int:
        attempt = soft(base, "attempt", lambda: opt_int(props, "attempt", msg))
    return model.from_wire(base, attempt=attempt)


def _shutdown(model, props, msg, base):
    reason = props.get("shutdown_reason", props.get("reason", msg.get("reason")))
    if reason is not None and not isinstance(reason, str):
        drop(base, "reason")  # a shutdown is never lost to its reason's shape
        reason = None
    replica_id = _opt_text(props, "replica_id", msg, base)
    return model.from_wire(base, reason=reason, replica_id=replica_id)


def _plain(model, props, msg, base):
    return model.from_wire(base)


def _speaking_builder(role_default: str | None) -> Callable[..., ev.Event]:
    def build(model, props, msg, base):
        return _speaking(model, props, msg, base, role_default)

    return build


BUILDERS: dict[type[ev.Event], Callable[..., ev.Event]] = {
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


__all__ = ["BUILDERS", "MAX_ID_CHARS", "WALKED", "drop", "read_id", "soft"]
