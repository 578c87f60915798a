"""Replaying a recording into a fresh conversation core, and checking it against the recording.

A recording (:mod:`.recording`) holds every call a driver made on the core, with its time.
:class:`Replayer` makes the same calls, at the same times, on a fresh
:class:`~.connection.TavusConnection` built from the recorded configuration, and compares
what this version returns with what the recorded version returned: the effect summaries and
the messages sent, in order. The first difference names the call (its line in the file),
the message and the field.

Ids the core makes up (the ``inference_id`` of an echo or a ``respond``) are random UUIDs, so
they are compared up to renaming: a recorded id must always pair with the same replayed id,
and no two recorded ids with one replayed id.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import TavusInteractionsError
from ..params import TavusInteractionsParams
from .connection import TavusConnection
from .recording import (
    Recording,
    Step,
    interaction_from_arg,
    message_from_record,
    summarize,
)
from .turns import TurnLedger

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

#: Settings that describe the recording itself, not the conversation (not replayed).
_NOT_REPLAYED = frozenset({"record_path", "record_max_queue"})


def params_from_header(header: dict[str, Any]) -> TavusInteractionsParams:
    """The configuration a recording was made with (settings this version lacks are left out)."""
    known = TavusInteractionsParams.model_fields
    values = {
        k: v for k, v in header.get("params", {}).items() if k in known and k not in _NOT_REPLAYED
    }
    return TavusInteractionsParams(**values)


def _decode(value: str) -> bytes:
    return base64.b64decode(value)


def _calls(conn: TavusConnection, a: dict[str, Any], now: float) -> dict[str, Callable]:
    return {
        "set_conversation_id": lambda: conn.set_conversation_id(a["conversation_id"]),
        "set_replica_participant": lambda: conn.set_replica_participant(a["participant_id"]),
        "participant_joined": lambda: conn.participant_joined(a["participant"], now=now),
        "participant_left": lambda: conn.participant_left(a["participant_id"], now=now),
        "start": lambda: conn.start(now=now),
        "send": lambda: conn.send(
            interaction_from_arg(a["interaction"]), now=now, urgent=a.get("urgent")
        ),
        "send_reported": lambda: conn.send_reported(
            interaction_from_arg(a["interaction"]), now=now
        ),
        "echo_text_start": lambda: conn.echo_text_start(now=now),
        "echo_text_add": lambda: conn.echo_text_add(a["text"], now=now),
        "echo_text_end": lambda: conn.echo_text_end(now=now),
        "echo_audio": lambda: conn.echo_audio(
            _decode(a["pcm"]), context_id=a.get("context_id"), now=now
        ),
        "echo_audio_close": lambda: conn.echo_audio_close(
            now=now, tail=_decode(a.get("tail", "")), context_id=a.get("context_id")
        ),
        "interrupt": lambda: conn.interrupt(now=now, force=bool(a.get("force"))),
        "tool_finished": lambda: conn.tool_finished(
            a["call_id"], now=now, **{k: v for k, v in a.items() if k != "call_id"}
        ),
        "tick": lambda: conn.tick(now=now),
        "finish": lambda: conn.finish(now=now),
        "finish_output": lambda: conn.finish_output(now=now),
        "cancel": conn.cancel,
    }


def apply_step(conn: TavusConnection, step: Step) -> tuple[list, str | None]:
    """Make one recorded call on ``conn``.

    Returns:
        The effects, and the error text when the call raised (as the recorder writes it).
    """
    record = step.record
    now = step.t
    try:
        if record.get("k") == "in":
            message = message_from_record(record)
            return conn.receive(message, sender_id=record.get("from"), now=now) or [], None
        call = _calls(conn, record.get("args") or {}, now).get(step.name)
        if call is None:
            return [], f"unknown call {step.name!r}"
        result = call()
    except TavusInteractionsError as e:
        return [], f"{type(e).__name__}: {e}"
    return (result if isinstance(result, list) else []), None


class _Ids:
    """A bijection between recorded and replayed made-up ids."""

    def __init__(self) -> None:
        self.forward: dict[str, str] = {}
        self.backward: dict[str, str] = {}

    def pair(self, recorded: str, replayed: str) -> bool:
        known = self.forward.get(recorded)
        if known is not None:
            return known == replayed
        if self.backward.get(replayed, recorded) != recorded:
            return False
        self.forward[recorded] = replayed
        self.backward[replayed] = recorded
        return True


def _diff(recorded: Any, replayed: Any, ids: _Ids, path: str) -> str | None:
    """The path of the first difference, or ``None``."""
    if isinstance(recorded, str) and isinstance(replayed, str):
        if _UUID.match(recorded) and _UUID.match(replayed):
            return None if ids.pair(recorded, replayed) else path
        return None if recorded == replayed else path
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        for key in sorted(set(recorded) | set(replayed)):
            if key not in recorded or key not in replayed:
                return f"{path}.{key}"
            found = _diff(recorded[key], replayed[key], ids, f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(recorded, list) and isinstance(replayed, list):
        for i, (a, b) in enumerate(zip(recorded, replayed, strict=False)):
            found = _diff(a, b, ids, f"{path}[{i}]")
            if found is not None:
                return found
        if len(recorded) == len(replayed):
            return None
        return f"{path}[{min(len(recorded), len(replayed))}]"
    return None if recorded == replayed else path


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


@dataclass(slots=True)
class Difference:
    """The first place where this version differs from the recording.

    Attributes:
        step: The recorded call.
        what: ``"effects"``, ``"message"``, ``"messages"`` or ``"error"``.
        path: Where in it (e.g. ``message 1 .properties.text``).
        recorded: What the recording holds there.
        replayed: What this version gave.
    """

    step: Step
    what: str
    path: str
    recorded: Any
    replayed: Any

    def describe(self) -> str:
        """One paragraph naming the call, the message and both values."""
        verb = "differ" if self.what.endswith("s") else "differs"
        return (
            f"line {self.step.line}: {self.step.name} at t={self.step.t:.3f}: the {self.what} "
            f"{verb} at {self.path}\n  recorded: {_short(self.recorded)}\n"
            f"  replayed: {_short(self.replayed)}"
        )


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare_step(step: Step, effects: list, error: str | None, ids: _Ids) -> Difference | None:
    """Compare one replayed call with its recording; return the first difference."""
    record = step.record
    if record.get("error") != error:
        return Difference(step, "error", "error", record.get("error"), error)
    summaries, outs = summarize(effects)
    summaries = _plain(summaries)
    recorded_fx = record.get("fx", [])
    where = _diff(recorded_fx, summaries, ids, "effects")
    if where is not None:
        return Difference(step, "effects", where, recorded_fx, summaries)
    for i, (a, b) in enumerate(zip(step.outs, outs, strict=False)):
        b = _plain({k: v for k, v in b.items() if k != "k"})
        a = {k: v for k, v in a.items() if k not in ("k", "t")}
        where = _diff(a, b, ids, f"message {i + 1} (event_type {_event_type(a)})")
        if where is not None:
            return Difference(step, "message", where, a.get("msg"), b.get("msg"))
    if len(step.outs) != len(outs):
        rec = [_event_type(o) for o in step.outs]
        rep = [_event_type(o) for o in outs]
        return Difference(step, "messages", "the number of messages sent", rec, rep)
    return None


def _event_type(out: dict[str, Any]) -> str | None:
    msg = out.get("msg")
    return msg.get("event_type") if isinstance(msg, dict) else None


@dataclass(slots=True)
class Replayed:
    """One replayed call.

    Attributes:
        step: The recorded call.
        effects: What this version returned.
        error: The error text, when the call raised.
    """

    step: Step
    effects: list
    error: str | None = None


@dataclass(slots=True)
class ReplayResult:
    """What a replay gave.

    Attributes:
        ledger: The core's turn ledger at the end.
        steps: How many calls were replayed.
        differences: Every call that differed (the first is the one to read).
        stats: The core's counters at the end.
    """

    ledger: TurnLedger
    steps: int = 0
    differences: list[Difference] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


class Replayer:
    """Replays a recording into a fresh :class:`TavusConnection` (see the module doc)."""

    def __init__(self, recording: Recording):
        """Build the core the recording was made with.

        Args:
            recording: The parsed recording.
        """
        self.recording = recording
        header = recording.header
        self.connection = TavusConnection(params_from_header(header), now=float(header["t"]))

    def steps(self) -> Iterator[Replayed]:
        """Make each recorded call in turn (as fast as possible: time is the recorded one)."""
        conn = self.connection
        for step in self.recording.steps:
            effects, error = apply_step(conn, step)
            yield Replayed(step, effects, error)

    def run(self, *, check: bool = True, on_step: Callable[[Replayed], Any] | None = None):
        """Replay every call; compare each with the recording when ``check``.

        Args:
            check: Collect the differences.
            on_step: Called with each replayed call (the timeline listens here).

        Returns:
            A :class:`ReplayResult`.
        """
        ids = _Ids()
        result = ReplayResult(self.connection.ledger)
        for replayed in self.steps():
            result.steps += 1
            if on_step is not None:
                on_step(replayed)
            if check:
                diff = compare_step(replayed.step, replayed.effects, replayed.error, ids)
                if diff is not None:
                    result.differences.append(diff)
        result.stats = dict(self.connection.stats)
        return result


__all__ = [
    "Difference",
    "ReplayResult",
    "Replayed",
    "Replayer",
    "apply_step",
    "compare_step",
    "params_from_header",
]
