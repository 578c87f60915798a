"""Decode raw inbound wire input and read its fields, checking each one's type.

This module owns the field-level reading that :mod:`.protocol` (inbound events) and
:mod:`.wire_interactions` (outbound interactions read back) share:

- :func:`as_dict` turns what a transport delivered (a mapping, a JSON string, a JSON string
  inside a JSON string, UTF-8 bytes) into a dict, refusing anything over
  :data:`MAX_INBOUND_BYTES` before parsing.
- The readers (:func:`opt_str`, :func:`req_str`, :func:`opt_int`, :func:`opt_float`,
  :func:`read_timestamp`, :func:`read_bool`, :func:`props_dict`) take one field, coerce the
  shapes Tavus is known to send, and otherwise raise :class:`RemoteProtocolError` with a short
  ``reason`` (built by :func:`fail`).

No asyncio, aiohttp or pipecat imports here (a test checks it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .exceptions import RemoteProtocolError

__all__ = [
    "MAX_INBOUND_BYTES",
    "as_dict",
    "content_over",
    "fail",
    "opt_float",
    "opt_int",
    "opt_str",
    "props_dict",
    "read_bool",
    "read_timestamp",
    "req_str",
]

#: Messages longer than this are refused before parsing (a flood guard).
MAX_INBOUND_BYTES = 256 * 1024

_INT_TEXT = re.compile(r"\s*-?[0-9]+\s*")


def fail(reason: str, detail: str, raw: object) -> RemoteProtocolError:
    """Return (not raise) the error for a malformed message.

    Args:
        reason: The short machine-readable reason (``bad_json``, ``wrong_type``, ...).
        detail: What exactly is wrong, for people.
        raw: The message as received (or as far as it was decoded).

    Returns:
        The error to raise.
    """
    return RemoteProtocolError(reason, detail, raw)


def _load_json(text: str, raw: object) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise fail("bad_json", f"not valid JSON ({e})", raw) from None


def as_dict(obj: object) -> dict[str, Any]:
    """Decode a message as delivered into a dict.

    Args:
        obj: A mapping, a JSON string (also one holding a JSON string), or UTF-8 bytes.

    Returns:
        The message object (the same dict when ``obj`` already is one).

    Raises:
        RemoteProtocolError: Too large, not UTF-8, not JSON, or not a JSON object.
    """
    raw = obj
    if isinstance(obj, bytes | bytearray | memoryview):
        if len(obj) > MAX_INBOUND_BYTES:
            raise fail("too_large", f"{len(obj)} bytes, over {MAX_INBOUND_BYTES}", None)
        try:
            obj = bytes(obj).decode("utf-8")
        except UnicodeDecodeError as e:
            raise fail("bad_encoding", f"not UTF-8 ({e.reason})", raw) from None
    if isinstance(obj, str):
        if len(obj) > MAX_INBOUND_BYTES:
            raise fail("too_large", f"{len(obj)} characters, over {MAX_INBOUND_BYTES}", None)
        obj = _load_json(obj, raw)
        if isinstance(obj, str):  # a JSON object serialised twice
            obj = _load_json(obj, raw)
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, Mapping):
        return dict(obj)
    raise fail("not_an_object", f"expected a JSON object, got {type(obj).__name__}", raw)


def content_over(obj: object, limit: int) -> bool:
    """Tell whether a decoded message holds more than ``limit`` bytes' worth of content.

    Messages that arrive already decoded (a transport hands over dicts) skip the byte check
    of :func:`as_dict`; this walks them instead: strings count their length, containers 8
    per entry, other values 8. It stops as soon as the limit is passed. Depth is bounded
    by the walk's own stack, never by recursion.

    Args:
        obj: The decoded message (or any JSON-shaped value).
        limit: The budget, e.g. :data:`MAX_INBOUND_BYTES`.
    """
    budget = limit
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            budget -= len(o)
        elif isinstance(o, Mapping):
            budget -= 8 * len(o)
            for k, v in o.items():
                budget -= len(k) if isinstance(k, str) else 8
                stack.append(v)
        elif isinstance(o, list | tuple):
            budget -= 8 * len(o)
            stack.extend(o)
        else:
            budget -= 8
        if budget < 0:
            return True
    return False


def props_dict(msg: dict) -> dict[str, Any]:
    """Return the message's ``properties`` object (empty when absent).

    Args:
        msg: The decoded message.

    Returns:
        The properties.

    Raises:
        RemoteProtocolError: ``properties`` is not an object.
    """
    props = msg.get("properties")
    if props is None:
        return {}
    if isinstance(props, dict):
        return props
    raise fail("wrong_type", f"properties must be an object, got {type(props).__name__}", msg)


def opt_str(d: Mapping[str, Any], key: str, msg: dict) -> str | None:
    """Read an optional string field.

    Args:
        d: The object holding the field.
        key: The field name.
        msg: The whole message, carried by the error.

    Returns:
        The string, or ``None`` when absent.

    Raises:
        RemoteProtocolError: The field is not a string.
    """
    v = d.get(key)
    if v is None or isinstance(v, str):
        return v
    raise fail("wrong_type", f"{key} must be a string, got {type(v).__name__}", msg)


def req_str(d: Mapping[str, Any], keys: tuple[str, ...], msg: dict) -> str:
    """Read a required string field, under the first of ``keys`` that is present.

    Args:
        d: The object holding the field.
        keys: The accepted names, preferred first.
        msg: The whole message, carried by the error.

    Returns:
        The string.

    Raises:
        RemoteProtocolError: No name is present, or the first present is not a string.
    """
    for key in keys:
        v = d.get(key)
        if v is not None:
            if isinstance(v, str):
                return v
            raise fail("wrong_type", f"{key} must be a string, got {type(v).__name__}", msg)
    raise fail("missing_field", f"properties.{keys[0]} is required", msg)


def opt_int(d: Mapping[str, Any], key: str, msg: dict) -> int | None:
    """Read an optional integer field (a whole float or a decimal string counts too).

    Args:
        d: The object holding the field.
        key: The field name.
        msg: The whole message, carried by the error.

    Returns:
        The integer, or ``None`` when absent.

    Raises:
        RemoteProtocolError: The field is a bool or not an integer.
    """
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise fail("wrong_type", f"{key} must be an integer, got bool", msg)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    # str.isdigit() also accepts characters int() refuses ("²"), and lstrip("-") let "--5"
    # through; only plain ASCII decimal integers count.
    if isinstance(v, str) and _INT_TEXT.fullmatch(v):
        return int(v)
    raise fail("wrong_type", f"{key} must be an integer, got {v!r:.40}", msg)


def opt_float(d: Mapping[str, Any], key: str, msg: dict) -> float | None:
    """Read an optional finite number field.

    Args:
        d: The object holding the field.
        key: The field name.
        msg: The whole message, carried by the error.

    Returns:
        The number as a float, or ``None`` when absent.

    Raises:
        RemoteProtocolError: The field is a bool, not a number, or not finite.
    """
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise fail("wrong_type", f"{key} must be a number, got bool", msg)
    if isinstance(v, int | float):
        if not math.isfinite(v):
            raise fail("wrong_type", f"{key} must be finite", msg)
        return float(v)
    raise fail("wrong_type", f"{key} must be a number, got {type(v).__name__}", msg)


def read_timestamp(d: Mapping[str, Any], msg: dict) -> float | None:
    """Read the ``timestamp`` field: epoch seconds, or an ISO-8601 string.

    Args:
        d: The object holding the field.
        msg: The whole message, carried by the error.

    Returns:
        Epoch seconds, or ``None`` when absent.

    Raises:
        RemoteProtocolError: Neither a finite number nor an ISO-8601 string.
    """
    v = d.get("timestamp")
    if isinstance(v, str):  # webhooks and exports stamp ISO-8601 strings
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise fail("wrong_type", f"timestamp is not ISO-8601: {v!r:.40}", msg) from None
    return opt_float(d, "timestamp", msg)


def read_bool(d: Mapping[str, Any], key: str, msg: dict) -> bool:
    """Read a boolean field (``"true"``/``"false"`` and 0/1 count too).

    Args:
        d: The object holding the field.
        key: The field name.
        msg: The whole message, carried by the error.

    Returns:
        The boolean, ``False`` when absent.

    Raises:
        RemoteProtocolError: The field is not a boolean.
    """
    v = d.get(key)
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise fail("wrong_type", f"{key} must be a boolean, got {v!r:.40}", msg)
