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

Secrets never reach the file: :func:`redact_line` masks the values of secret-named keys
(``api_key``, ``token``, ...), token query parameters of URLs, and any secret value the
writer was given (the REST client's API key).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from .. import interactions as ix
from ..exceptions import UsageError
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

_KEY_RE = re.compile(
    r'"(' + "|".join(re.escape(k) for k in SECRET_KEYS) + r')"(\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_URL_TOKEN_RE = re.compile(r"([?&](?:t|token|api_key)=)[^&\"\s\\]+", re.IGNORECASE)
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


def redact_line(line: str, secrets: Iterable[str] = ()) -> str:
    """Mask every secret in one encoded JSON line.

    Args:
        line: The encoded line.
        secrets: Literal values to mask wherever they appear (e.g. the API key).

    Returns:
        The line with secret-named keys' string values, URL token parameters and the given
        values replaced by :data:`MASK`.
    """
    for secret in secrets:
        if secret and secret in line:
            line = line.replace(secret, MASK)
    # Every secret key name contains one of these: most lines hold none, and substring
    # tests of the lowered line cost a tenth of the regular expression.
    low = line.lower()
    if "key" in low or "token" in low or "secret" in low or "passw" in low or "authoriz" in low:
        line = _KEY_RE.sub(lambda m: f'"{m.group(1)}"{m.group(2)}"{MASK}"', line)
    if "t=" in low or "api_key=" in low:
        line = _URL_TOKEN_RE.sub(lambda m: m.group(1) + MASK, line)
    return line


def dumps(record: dict[str, Any]) -> str:
    """Encode one record as a JSON line (no newline), not redacted yet.

    Values JSON cannot hold (a tool's result object) are written as their ``repr``.
    """
    try:
        return _ENCODE(record)
    except RecursionError:
        return _ENCODE_SAFE(record)  # raises ValueError("Circular reference detected")


def encode(record: dict[str, Any], secrets: Iterable[str] = ()) -> str:
    """Encode one record as a redacted JSON line (no newline).

    :func:`redact_line` also works on many lines at once (a JSON line holds no raw
    newline, and no pattern crosses one): the recorder redacts a whole batch in one pass.
    """
    return redact_line(dumps(record), secrets)


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
    "SECRET_KEYS",
    "Recording",
    "Step",
    "bytes_arg",
    "dumps",
    "encode",
    "interaction_arg",
    "interaction_from_arg",
    "message_arg",
    "message_from_record",
    "parse",
    "redact_line",
    "summarize",
]
