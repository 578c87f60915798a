"""The flight recorder's format: one JSON object per line, pure (no clock, no I/O).

A recording is every call a driver made on a
:class:`~pipecat_tavus_interactions.core.connection.TavusConnection` (its inputs, with the
``now`` it passed), what each call returned (effect summaries), and every message that left
(``out`` lines, right after the call that sent them). Because the core is deterministic
given its inputs, a recording replays into a fresh core and must give the same effects and
the same messages (:mod:`.replay`).

Lines (``k`` is the kind; ``t`` the driver's monotonic time, ``w`` wall-clock epoch seconds):

- ``header``: ``format``, ``version``, ``params`` (the configuration), ``t``, ``w``.
- ``in``: a wire message from the transport: ``from`` (the sender), ``msg`` (as it travelled:
  an object, or ``msg_text``/``msg_b64`` for a string or bytes), ``fx`` (effect summaries).
- ``call``: any other core call (an app send, echo, a local interrupt, a tool outcome, a
  participant change, a clock tick): ``name``, ``args``, ``fx`` (or ``error`` if it raised).
- ``out``: a message put on the wire: ``msg``, ``urgent``, ``to`` (``null``: broadcast).
- ``end``: the recording closed: ``dropped`` (lines lost to a full queue), ``stats``.

Secrets never reach the file: :func:`redact_bytes` masks the values of secret-named keys
(``api_key``, ``token``, ...), token query parameters of URLs, and any secret value the
writer was given (the REST client's API key, and any prefix of it of 8+ characters).

Encoding: an ``in`` record holds wire values (what a JSON parser gave the transport), so
:func:`record_bytes` encodes it with pydantic-core's JSON serializer (UTF-8, about four times
faster than :mod:`json`); every other record goes through :mod:`json` (``ensure_ascii``,
values it cannot hold, such as a tool's result object, written as their ``repr``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from pydantic_core import to_json

from .. import interactions as ix
from ..exceptions import UsageError
from ..redaction import MIN_SECRET_PREFIX, mask_key_prefixes
from . import effects as fx

#: Version of the line format.
FORMAT = 1

#: What a masked secret becomes.
MASK = "***"

#: Keys whose string values are always masked (compared case-insensitively).
SECRET_KEYS = (
    "api_key",
    "apikey",
    "x-api-key",
    "authorization",
    "token",
    "meeting_token",
    "access_token",
    "refresh_token",
    "secret",
    "client_secret",
    "password",
)

_NAMES = "|".join(re.escape(k) for k in SECRET_KEYS).encode("ascii")
# A secret-named key's string value: in the line's JSON (``"token":"v"``), or in JSON text
# held by a string of it (a verbatim text message, a field holding JSON), where every quote
# and backslash of the inner JSON is escaped (``\"token\":\"v\"``; inside the value, ``\\\"``
# is an escaped quote and ``\\\\`` an escaped backslash). Inner JSON cut short (a value that
# never closes) is masked to the end of the string that holds it.
_KEY_RE_B = re.compile(
    rb'"(' + _NAMES + rb')"(\s*:\s*)"(?:[^"\\]|\\.)*"'
    rb'|\\"(' + _NAMES + rb')\\"(\s*:\s*)\\"'
    rb'(?:(?:[^"\\]|\\\\(?:\\["\\]|[^"\\])|\\[^"\\])*(\\")|(?:[^"\\]|\\.)*)',
    re.IGNORECASE,
)
_URL_TOKEN_RE_B = re.compile(rb"([?&](?:t|token|api_key)=)[^&\"\s\\]+", re.IGNORECASE)
# Wire messages cannot be circular: skip the check, and fall back to a checking encoder
# for the rare record that fails (a tool result that refers to itself). The C encoder is
# built once (``json.dumps`` builds one per call, a fifth of the cost of a small record).
_ENCODE_SAFE = json.JSONEncoder(separators=(",", ":"), default=repr).encode
if c_make_encoder is not None:
    _C_ENCODE = c_make_encoder(
        None, repr, encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def _ENCODE(record: Any) -> str:  # noqa: N802 - a constant-like alias
        return "".join(_C_ENCODE(record, 0))

else:  # pragma: no cover - Pythons without the C accelerator
    _ENCODE = json.JSONEncoder(separators=(",", ":"), default=repr, check_circular=False).encode


_MASK_B = MASK.encode("ascii")


def _mask_key(data: bytes, low: bytes, key: bytes) -> bytes:
    """Mask ``key`` (lowered) and each prefix of it of 8+ bytes, ASCII case folded.

    ``low`` is ``data.lower()`` (ASCII only, so its offsets are those of ``data``). A key
    that is not ASCII is masked only whole and exact, so a cut never splits a character.
    """
    if not key.isascii():
        return data.replace(key, _MASK_B)
    return mask_key_prefixes(data, low, key, _MASK_B)


def _sub_key(m: re.Match[bytes]) -> bytes:
    if m.group(1) is not None:
        return b'"' + m.group(1) + b'"' + m.group(2) + b'"' + _MASK_B + b'"'
    end = b'\\"' if m.group(5) else b""  # else: the holding string's own quote follows
    return b'\\"' + m.group(3) + b'\\"' + m.group(4) + b'\\"' + _MASK_B + end


def _sub_url(m: re.Match[bytes]) -> bytes:
    return m.group(1) + _MASK_B


def redact_bytes(data: bytes, secrets: Iterable[bytes] = ()) -> bytes:
    """Mask every secret in encoded JSON lines (UTF-8).

    JSON lines hold no raw newline and no pattern crosses one, so a whole batch of lines is
    redacted in one call.

    Args:
        data: One or more encoded lines.
        secrets: Values masked wherever they appear, with any prefix of them of 8+ bytes,
            ASCII letters in either case (e.g. the API key).

    Returns:
        The lines with secret-named keys' string values, URL token parameters and the given
        values (and their prefixes) replaced by :data:`MASK`.
    """
    low = data.lower()  # ASCII letters only: every offset stays put
    for secret in secrets:
        if secret:
            masked = _mask_key(data, low, secret.lower())
            if masked is not data:
                data, low = masked, masked.lower()
    # Every secret key name contains one of these: most batches hold none, and a substring
    # test costs a tenth of the regular expression.
    if (
        b"key" in low
        or b"token" in low
        or b"secret" in low
        or b"passw" in low
        or b"authoriz" in low
    ):
        data = _KEY_RE_B.sub(_sub_key, data)
    if b"=" in data and (b"t=" in low or b"api_key=" in low):
        data = _URL_TOKEN_RE_B.sub(_sub_url, data)
    return data


def escape_line_separators(data: bytes) -> bytes:
    """Escape U+0085, U+2028 and U+2029 in encoded JSON lines (``splitlines`` ends lines there).

    pydantic-core writes them raw (valid JSON); escaped, a reader that splits the text with
    ``splitlines`` still sees one record per line. In JSON they occur only inside strings.
    """
    if b"\xe2" in data:
        data = data.replace(b"\xe2\x80\xa8", rb"\u2028").replace(b"\xe2\x80\xa9", rb"\u2029")
    if b"\xc2" in data:
        data = data.replace(b"\xc2\x85", rb"\u0085")
    return data


def redact_line(line: str, secrets: Iterable[str] = ()) -> str:
    """Mask every secret in one encoded JSON line (:func:`redact_bytes` on text).

    Args:
        line: The encoded line (or several, joined by newlines).
        secrets: Values masked wherever they appear (e.g. the API key).

    Returns:
        The line with secret-named keys' string values, URL token parameters and the given
        values (and their prefixes of 8+ characters) replaced by :data:`MASK`.
    """
    keys = [s.encode("utf-8", "surrogatepass") for s in secrets]
    data = redact_bytes(line.encode("utf-8", "surrogatepass"), keys)
    return data.decode("utf-8", "surrogatepass")


def dumps(record: dict[str, Any]) -> str:
    """Encode one record as a JSON line (no newline), not redacted yet.

    Values JSON cannot hold (a tool's result object) are written as their ``repr``.
    """
    try:
        return _ENCODE(record)
    except RecursionError:
        return _ENCODE_SAFE(record)  # raises ValueError("Circular reference detected")


def record_bytes(record: dict[str, Any]) -> bytes:
    """Encode one record as a UTF-8 JSON line (no newline), not redacted yet.

    An ``in`` record holds wire values (what the transport's JSON parser gave it) and plain
    summaries, so pydantic-core's serializer writes what :func:`dumps` would, four times
    faster. Every other record, an ``in`` record with a ``turn`` summary (it holds tool
    results, any object: :func:`dumps` writes those as their ``repr``, as the replay
    compares them) and one pydantic-core refuses (a lone surrogate) go through :func:`dumps`.

    Raises:
        ValueError: The record refers to itself.
    """
    if record.get("k") == "in":
        for summary in record.get("fx", ()):
            if summary[0] == "turn":
                break
        else:
            try:
                return to_json(record)
            except ValueError:  # pydantic-core's serialization error
                pass
    return dumps(record).encode("utf-8")  # ASCII: ensure_ascii escapes every other character


def encode(record: dict[str, Any], secrets: Iterable[str] = ()) -> str:
    """Encode one record as a redacted JSON line (no newline).

    :func:`redact_bytes` also works on many lines at once (a JSON line holds no raw
    newline, and no pattern crosses one): the recorder redacts a whole batch in one pass.
    """
    keys = [s.encode("utf-8", "surrogatepass") for s in secrets]
    return escape_line_separators(redact_bytes(record_bytes(record), keys)).decode("utf-8")


# --- effect summaries --------------------------------------------------------------------


def _accepted(e: fx.EventAccepted) -> tuple:
    return ("accepted", e.event.event_type, e.event.seq)


def _utterance(e: fx.Utterance) -> tuple:
    return ("utterance", e.role, e.text, e.turn_idx, e.spoken, e.interrupted, e.injected)


def _run_tool(e: fx.RunTool) -> tuple:
    c = e.call
    return ("run_tool", c.call_id, c.name, c.arguments, c.turn_idx, c.perception, c.error)


def _send_failed(e: fx.SendFailed) -> tuple:
    return ("send_failed", e.interaction.EVENT_TYPE, str(e.error), e.report)


_SUMMARIES: dict[type, Any] = {
    fx.EventAccepted: _accepted,
    fx.UserTranscript: lambda e: ("transcript", e.text, e.final),
    fx.Utterance: _utterance,
    fx.ReplicaSpeaking: lambda e: ("speaking", e.speaking),
    fx.ReplicaSpeakingTick: lambda e: ("speaking_tick",),
    fx.UserTurn: lambda e: ("user_turn", e.speaking),
    fx.ReplicaInterrupted: lambda e: ("interrupted", e.turn_idx, e.inference_id, e.broadcast),
    fx.RunTool: _run_tool,
    fx.TurnCompleted: lambda e: ("turn", e.turn.summary()),
    fx.ReplicaJoined: lambda e: ("joined",),
    fx.ReplicaLeft: lambda e: ("left", e.reason, e.expected),
    fx.Shutdown: lambda e: ("shutdown", e.end_pipeline),
    fx.ProtocolErrorReported: lambda e: ("protocol_error", e.error.reason, e.count),
    fx.Transmit: lambda e: ("transmit",),
    fx.SendFailed: _send_failed,
}


def summarize(effects: list) -> tuple[list, list[dict[str, Any]]]:
    """Summarize a core call's effects for a recording.

    Args:
        effects: What the call returned.

    Returns:
        The summaries (tuples of plain values, in order; a ``Transmit`` is
        ``("transmit",)``) and the
        ``out`` records of the messages it sent, in order.
    """
    summaries = []
    outs = []
    table = _SUMMARIES
    transmit = fx.Transmit
    for effect in effects:
        kind = effect.__class__
        summary = table.get(kind)
        # An effect this module does not know yet (added to the core later) is recorded by
        # name rather than breaking the pipeline; a test keeps the table complete.
        summaries.append((kind.__name__,) if summary is None else summary(effect))
        if kind is transmit:
            outs.append(
                {"k": "out", "msg": effect.message, "urgent": effect.urgent,
                 "to": effect.participant_id}
            )  # fmt: skip
    return summaries, outs


# --- call arguments ----------------------------------------------------------------------


def bytes_arg(data: bytes | memoryview) -> str:
    """Encode audio for a call's ``args`` (base64)."""
    return base64.b64encode(data).decode("ascii")


def interaction_arg(interaction: Any) -> dict[str, Any]:
    """Encode an interaction for a call's ``args`` (its class and fields).

    Anything that is not an interaction (a misuse the core refuses) is kept as it is when
    JSON holds it (so a replay hands the core the same thing), else as its ``repr``.
    """
    if not isinstance(interaction, ix.Interaction) or not is_dataclass(interaction):
        plain = interaction is None or isinstance(interaction, str | int | float | bool)
        return {"invalid": interaction if plain else repr(interaction)}
    values = {}
    for f in fields(interaction):
        value = getattr(interaction, f.name)
        if isinstance(value, bytes | bytearray | memoryview):
            value = {"b64": bytes_arg(value)}
        values[f.name] = value
    return {"type": type(interaction).__name__, "fields": values}


def interaction_from_arg(arg: dict[str, Any]) -> Any:
    """Rebuild an interaction encoded by :func:`interaction_arg` (a misuse as recorded).

    Raises:
        UsageError: The recording holds something that is not a known interaction.
    """
    if "invalid" in arg:
        return arg["invalid"]
    cls = getattr(ix, str(arg.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, ix.Interaction)):
        raise UsageError(f"the recording holds an interaction that cannot be rebuilt: {arg!r}")
    values = {}
    for name, value in arg.get("fields", {}).items():
        if isinstance(value, dict) and set(value) == {"b64"}:
            value = base64.b64decode(value["b64"])
        values[name] = value
    return cls(**values)


def message_arg(message: Any) -> dict[str, Any]:
    """Encode a received message under the key its type needs (``msg``, text or bytes)."""
    if isinstance(message, bytes | bytearray | memoryview):
        return {"msg_b64": bytes_arg(message)}
    if isinstance(message, str):
        return {"msg_text": message}
    return {"msg": message}


def message_from_record(record: dict[str, Any]) -> Any:
    """The received message of an ``in`` record, as its original type."""
    if "msg_b64" in record:
        return base64.b64decode(record["msg_b64"])
    if "msg_text" in record:
        return record["msg_text"]
    return record.get("msg")


# --- reading -----------------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    """One recorded core call and the messages it sent.

    Attributes:
        record: The ``in`` or ``call`` record.
        outs: The ``out`` records that followed it.
        line: Its line number in the file (1-based).
    """

    record: dict[str, Any]
    outs: list[dict[str, Any]] = field(default_factory=list)
    line: int = 0

    @property
    def t(self) -> float:
        """The call's monotonic time."""
        return float(self.record.get("t", 0.0))

    @property
    def name(self) -> str:
        """``"receive"`` for an ``in`` record, else the call's name."""
        return "receive" if self.record.get("k") == "in" else str(self.record.get("name"))


@dataclass(slots=True)
class Recording:
    """A parsed recording.

    Attributes:
        header: The ``header`` record.
        steps: The calls, in order.
        end: The ``end`` record (``None`` when the process stopped before closing it).
        bad_lines: Line numbers that were not JSON objects (a line cut by a crash).
    """

    header: dict[str, Any]
    steps: list[Step]
    end: dict[str, Any] | None = None
    bad_lines: list[int] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        """Lines the recorder dropped because its queue was full."""
        return int((self.end or {}).get("dropped", 0))


def _lines(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | None]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        yield number, record if isinstance(record, dict) else None


def parse(lines: Iterable[str]) -> Recording:
    """Parse the lines of a recording.

    Raises:
        UsageError: There is no header line (this is not a recording).
    """
    header: dict[str, Any] | None = None
    steps: list[Step] = []
    end = None
    bad: list[int] = []
    for number, record in _lines(lines):
        kind = None if record is None else record.get("k")
        if record is None:
            bad.append(number)
        elif kind == "header" and header is None:
            header = record
        elif kind in ("in", "call"):
            steps.append(Step(record, [], number))
        elif kind == "out" and steps:
            steps[-1].outs.append(record)
        elif kind == "end":
            end = record
        else:
            bad.append(number)
    if header is None:
        raise UsageError("not a recording: no header line (record with record_path=...)")
    return Recording(header, steps, end, bad)


__all__ = [
    "FORMAT",
    "MASK",
    "MIN_SECRET_PREFIX",
    "SECRET_KEYS",
    "Recording",
    "Step",
    "bytes_arg",
    "dumps",
    "encode",
    "escape_line_separators",
    "interaction_arg",
    "interaction_from_arg",
    "message_arg",
    "message_from_record",
    "parse",
    "record_bytes",
    "redact_bytes",
    "redact_line",
    "summarize",
]
