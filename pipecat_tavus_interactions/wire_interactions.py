"""Read outbound interaction messages back into their models (the replica's side of the wire).

This module owns :func:`parse_interaction`, the inverse of
:func:`~pipecat_tavus_interactions.protocol.build_message`: the simulated replica uses it to
understand what the bot sent, and tests use it to assert on wire messages.
:mod:`.protocol` re-exports it.

No asyncio, aiohttp or pipecat imports here (a test checks it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from . import interactions as ix
from .exceptions import LocalProtocolError
from .wire_fields import as_dict, fail, opt_int, opt_str, props_dict, read_bool, req_str

__all__ = ["parse_interaction"]


def parse_interaction(obj: str | bytes | Mapping[str, Any]) -> ix.Interaction:
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
    msg = as_dict(obj)
    event_type = msg.get("event_type")
    props = props_dict(msg)
    read = _READERS.get(event_type) if isinstance(event_type, str) else None
    if read is None:
        raise fail("bad_value", f"not an interaction: {event_type!r:.60}", msg)
    try:
        return read(props, msg)
    except LocalProtocolError as e:  # the model refused the values
        raise fail("bad_value", str(e), msg) from None


def _echo(props: dict[str, Any], msg: dict) -> ix.Echo:
    done = read_bool(props, "done", msg) if "done" in props else False
    common = {
        "inference_id": opt_str(props, "inference_id", msg),
        "done": done,
    }
    if props.get("modality") == "audio":
        try:
            audio = base64.b64decode(req_str(props, ("audio",), msg), validate=True)
        except binascii.Error as e:
            raise fail("bad_value", f"audio is not base64 ({e})", msg) from None
        return ix.Echo(audio=audio, sample_rate=opt_int(props, "sample_rate", msg), **common)
    if props.get("modality") != "text":
        raise fail("bad_value", "echo modality must be 'text' or 'audio'", msg)
    return ix.Echo(text=req_str(props, ("text",), msg), **common)


def _respond(props: dict[str, Any], msg: dict) -> ix.Respond:
    return ix.Respond(req_str(props, ("text",), msg))


def _interrupt(props: dict[str, Any], msg: dict) -> ix.Interrupt:
    return ix.Interrupt()


def _overwrite(props: dict[str, Any], msg: dict) -> ix.OverwriteLLMContext:
    return ix.OverwriteLLMContext(req_str(props, ("context",), msg))


def _append(props: dict[str, Any], msg: dict) -> ix.AppendLLMContext:
    return ix.AppendLLMContext(req_str(props, ("context",), msg), opt_str(props, "job_status", msg))


def _sensitivity(props: dict[str, Any], msg: dict) -> ix.Sensitivity:
    return ix.Sensitivity(
        participant_pause_sensitivity=props.get("participant_pause_sensitivity"),
        participant_interrupt_sensitivity=props.get("participant_interrupt_sensitivity"),
    )


def _tool_result(props: dict[str, Any], msg: dict) -> ix.ToolResult:
    return ix.ToolResult(
        req_str(props, ("tool_call_id",), msg),
        props.get("output"),
        props.get("status", "success"),
    )


def _objective_confirm(props: dict[str, Any], msg: dict) -> ix.ObjectiveConfirm:
    extra = {k: v for k, v in props.items() if k != "objective_name"}
    return ix.ObjectiveConfirm(req_str(props, ("objective_name",), msg), extra)


#: ``event_type`` -> the reader of that interaction's properties.
_READERS: dict[str, Callable[[dict[str, Any], dict], ix.Interaction]] = {
    ix.Echo.EVENT_TYPE: _echo,
    ix.Respond.EVENT_TYPE: _respond,
    ix.Interrupt.EVENT_TYPE: _interrupt,
    ix.OverwriteLLMContext.EVENT_TYPE: _overwrite,
    ix.AppendLLMContext.EVENT_TYPE: _append,
    ix.Sensitivity.EVENT_TYPE: _sensitivity,
    ix.ToolResult.EVENT_TYPE: _tool_result,
    ix.ObjectiveConfirm.EVENT_TYPE: _objective_confirm,
}
