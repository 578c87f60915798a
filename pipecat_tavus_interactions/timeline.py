"""A recording as a turn timeline a person can read: one row per turn, on one time axis.

:func:`build_timeline` replays a recording (:mod:`.core.replay`) and collects, on the
recording's own clock (seconds from its start): the user's and the replica's speaking spans,
what each said (the replica's intended reply against what it really said, and where it was
cut), tool calls with their durations and how the result was delivered, interruptions (from
Tavus or local), the messages sent, protocol errors, and latencies. :func:`render_text` draws
it for a terminal; :mod:`.timeline_html` draws the same as a self-contained HTML page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import events as ev
from .core import effects as fx
from .core.recording import Recording
from .core.records import TurnRecord
from .core.replay import Replayed, Replayer
from .core.turns import TurnLedger


@dataclass(slots=True)
class Span:
    """A stretch of time on the axis (seconds from the recording's start).

    Attributes:
        start: When it began.
        end: When it ended (``None``: still open at the end of the recording).
        cut: True when it was cut off (an interrupted replica span).
    """

    start: float
    end: float | None = None
    cut: bool = False


@dataclass(slots=True)
class ToolRow:
    """One tool call.

    Attributes:
        call_id: The call's id.
        name: The function.
        arguments: Its arguments.
        span: From the call to its outcome.
        status: ``pending``, ``success``, ``error``, ``timeout`` or ``stale``.
        delivery: How the result went back to Tavus.
        result: The result (or the error text).
    """

    call_id: str
    name: str
    arguments: dict[str, Any]
    span: Span
    status: str = "pending"
    delivery: str | None = None
    result: Any = None


@dataclass(slots=True)
class TurnRow:
    """One turn of the timeline.

    Attributes:
        turn_idx: The turn.
        record: The ledger's record of it (texts, tools, latency on Tavus's clock).
        user: The user's speaking spans.
        replica: The replica's speaking spans.
        tools: The tool calls.
        interruptions: ``(time, who)``: ``"user"`` (Tavus reported a barge-in) or
            ``"local"`` (an interruption in the pipeline sent ``conversation.interrupt``).
        sent: ``(time, event_type)`` of each message sent in this turn.
    """

    turn_idx: int
    record: TurnRecord | None = None
    user: list[Span] = field(default_factory=list)
    replica: list[Span] = field(default_factory=list)
    tools: list[ToolRow] = field(default_factory=list)
    interruptions: list[tuple[float, str]] = field(default_factory=list)
    sent: list[tuple[float, str]] = field(default_factory=list)

    @property
    def start(self) -> float | None:
        """When the turn's first span, tool or message began."""
        times = [s.start for s in (*self.user, *self.replica)]
        times += [t.span.start for t in self.tools] + [t for t, _ in self.sent]
        return min(times) if times else None

    @property
    def latency_s(self) -> float | None:
        """From the user's last stop to the replica's first start after it (our clock)."""
        stops = [s.end for s in self.user if s.end is not None]
        if not stops:
            return None
        starts = [s.start for s in self.replica if s.start >= stops[-1]]
        return starts[0] - stops[-1] if starts else None


@dataclass(slots=True)
class Timeline:
    """A whole conversation.

    Attributes:
        conversation_id: The conversation.
        mode: The recorded ``mode``.
        duration: Seconds from the first to the last record.
        rows: The turns, in order.
        errors: ``(time, reason)`` of each dropped message.
        dropped: Lines the recorder lost to a full queue.
    """

    conversation_id: str | None
    mode: str
    duration: float
    rows: list[TurnRow]
    errors: list[tuple[float, str]] = field(default_factory=list)
    dropped: int = 0

    def summary(self) -> str:
        """One line: duration, turns, tools, interruptions, errors."""
        tools = sum(len(r.tools) for r in self.rows)
        cuts = sum(len(r.interruptions) for r in self.rows)
        return (
            f"conversation {self.conversation_id} ({self.mode}): {self.duration:.1f} s, "
            f"{len(self.rows)} turns, {tools} tool call(s), {cuts} interruption(s), "
            f"{len(self.errors)} protocol error(s)"
        )


class _Collector:
    """Collects a timeline from replayed calls."""

    def __init__(self, t0: float, ledger: TurnLedger):
        self.t0 = t0
        self.ledger = ledger
        self.end = 0.0
        self.rows: dict[int, TurnRow] = {}
        self.tools: dict[str, ToolRow] = {}
        self.errors: list[tuple[float, str]] = []

    def row(self, turn_idx: int | None) -> TurnRow:
        # The ledger decides which turn an event belongs to (it ignores an absurd turn_idx):
        # an index it does not know, or none, means its current turn.
        ledger = self.ledger
        if turn_idx is None or ledger.get(turn_idx) is None:
            turn_idx = ledger.current_turn_idx or 0
        row = self.rows.get(turn_idx)
        if row is None:
            row = self.rows[turn_idx] = TurnRow(turn_idx)
        return row

    def __call__(self, replayed: Replayed) -> None:
        t = replayed.step.t - self.t0
        self.end = max(self.end, t)
        if replayed.step.name == "interrupt" and any(
            isinstance(e, fx.Transmit) for e in replayed.effects
        ):
            self.row(None).interruptions.append((t, "local"))
        if replayed.step.name == "tool_finished":
            tool = self.tools.get(str(replayed.step.record.get("args", {}).get("call_id")))
            if tool is not None:
                tool.span.end = t
        for effect in replayed.effects:
            self.effect(effect, t)

    def effect(self, effect: Any, t: float) -> None:
        kind = effect.__class__
        if kind is fx.EventAccepted and isinstance(effect.event, ev.SpeakingEvent):
            self.speaking(effect.event, t)
        elif kind is fx.RunTool:
            call = effect.call
            tool = ToolRow(call.call_id, call.name, dict(call.arguments), Span(t))
            self.tools[call.call_id] = tool
            self.row(call.turn_idx).tools.append(tool)
        elif kind is fx.ReplicaInterrupted:
            self.row(effect.turn_idx).interruptions.append((t, "user"))
        elif kind is fx.Transmit:
            self.row(None).sent.append((t, str(effect.message.get("event_type"))))
        elif kind is fx.TurnCompleted:
            self.completed(effect.turn)
        elif kind is fx.ProtocolErrorReported:
            self.errors.append((t, effect.error.reason))

    def speaking(self, event: ev.SpeakingEvent, t: float) -> None:
        row = self.row(event.turn_idx)
        spans = row.user if event.role == ev.ROLE_USER else row.replica
        if event.speaking:
            if not spans or spans[-1].end is not None:
                spans.append(Span(t))
        elif spans and spans[-1].end is None:
            spans[-1].end = t
            spans[-1].cut = bool(getattr(event, "interrupted", False))

    def completed(self, turn: TurnRecord) -> None:
        row = self.row(turn.turn_idx)
        row.record = turn
        for record in turn.tool_calls:
            for tool in row.tools:
                if record.tool_call_id == tool.call_id or (
                    record.tool_call_id is None and record.name == tool.name
                ):
                    tool.status = record.status
                    tool.delivery = record.delivery
                    tool.result = record.error if record.error else record.result


def build_timeline(recording: Recording) -> Timeline:
    """Replay ``recording`` and collect its timeline.

    Args:
        recording: The parsed recording.

    Returns:
        The timeline; turns the ledger still held open at the end are included.
    """
    replayer = Replayer(recording)
    collect = _Collector(float(recording.header.get("t", 0.0)), replayer.connection.ledger)
    replayer.run(check=False, on_step=collect)
    for turn in replayer.connection.ledger.turns:
        if turn.turn_idx in collect.rows and collect.rows[turn.turn_idx].record is None:
            collect.completed(turn)
    rows = [collect.rows[i] for i in sorted(collect.rows)]
    rows = [r for r in rows if r.record is not None or r.user or r.replica or r.tools]
    params = recording.header.get("params", {})
    return Timeline(
        conversation_id=params.get("conversation_id"),
        mode=str(params.get("mode", "full")),
        duration=collect.end,
        rows=rows,
        errors=collect.errors,
        dropped=recording.dropped,
    )


def cut_point(intended: str | None, spoken: str | None) -> tuple[str, str]:
    """Split the intended reply into what was said and what was cut.

    Returns:
        ``(said, cut)``: ``cut`` is empty when the replica said everything (or when the
        spoken text is not a prefix of the intended one, word by word).
    """
    if not intended:
        return spoken or "", ""
    if spoken is None:
        return "", intended
    said = spoken.split()
    words = intended.split()
    n = 0
    while n < min(len(said), len(words)) and said[n].strip(".,!?") == words[n].strip(".,!?"):
        n += 1
    if n < len(said):
        return spoken, ""
    return spoken, " ".join(words[n:])


def _bar(spans: list[Span], duration: float, width: int, char: str) -> str:
    cells = [" "] * width
    scale = width / duration if duration > 0 else 0.0
    for span in spans:
        end = span.end if span.end is not None else duration
        a = min(width - 1, int(span.start * scale))
        b = max(a + 1, min(width, int(round(end * scale))))
        for i in range(a, b):
            cells[i] = char
        if span.cut:
            cells[b - 1] = "x"
    return "|" + "".join(cells) + "|"


def _s(span: Span) -> str:
    end = "open" if span.end is None else f"{span.end:6.2f}"
    return f"{span.start:6.2f}-{end}"


def render_text(timeline: Timeline, *, width: int = 48) -> str:
    """Render the timeline for a terminal (bars: ``u`` user, ``R`` replica, ``T`` tool).

    Args:
        timeline: The timeline.
        width: Width of the time bars in characters.
    """
    out = [timeline.summary()]
    if timeline.dropped:
        out.append(f"warning: the recorder dropped {timeline.dropped} line(s)")
    for row in timeline.rows:
        out += _row_text(row, timeline.duration, width)
    if timeline.errors:
        out += ["", "Dropped messages (protocol errors):"]
        out += [f"  {line}" for line in error_lines(timeline)]
    return "\n".join(out) + "\n"


def error_lines(timeline: Timeline) -> list[str]:
    """One line per reason: how many messages were dropped for it, first and last time."""
    by_reason: dict[str, list[float]] = {}
    for t, reason in timeline.errors:
        by_reason.setdefault(reason, []).append(t)
    return [
        f"{reason}: {len(times)} (at {times[0]:.2f} s"
        + (f" to {times[-1]:.2f} s)" if len(times) > 1 else ")")
        for reason, times in sorted(by_reason.items(), key=lambda kv: kv[1][0])
    ]


def _row_text(row: TurnRow, duration: float, width: int) -> list[str]:
    rec = row.record
    out = ["", f"Turn {row.turn_idx}"]
    if row.user:
        out.append(f"  user     {_bar(row.user, duration, width, 'u')} {_s(row.user[0])}")
    if row.replica:
        out.append(f"  replica  {_bar(row.replica, duration, width, 'R')} {_s(row.replica[0])}")
    if row.tools:
        out.append(f"  tools    {_bar([t.span for t in row.tools], duration, width, 'T')}")
    if rec is not None and rec.user_text:
        out.append(f"  {'respond' if rec.user_injected else 'user'} said: {rec.user_text}")
    for tool in row.tools:
        took = (
            ""
            if tool.span.end is None
            else f" in {(tool.span.end - tool.span.start) * 1000:.0f} ms"
        )
        args = json.dumps(tool.arguments, default=repr)
        out.append(
            f"  tool {tool.name}({args}) -> {tool.status}{took}, "
            f"delivered as {tool.delivery or '-'}: {tool.result!r}"
        )
    if rec is not None and (rec.replica_spoken_text or rec.replica_intended_text):
        said, cut = cut_point(rec.replica_intended_text, rec.replica_spoken_text)
        out.append(f"  replica said: {said}")
        if cut:
            out.append(f"  cut before:   {cut}")
    for t, who in row.interruptions:
        what = "the user barged in (Tavus)" if who == "user" else "local interruption sent"
        out.append(f"  interrupted at {t:.2f} s: {what}")
    if row.latency_s is not None:
        out.append(f"  latency: {row.latency_s * 1000:.0f} ms from user stop to replica start")
    if row.sent:
        kinds = ", ".join(f"{kind} @{t:.2f}" for t, kind in row.sent[:6])
        more = f" (+{len(row.sent) - 6})" if len(row.sent) > 6 else ""
        out.append(f"  sent: {kinds}{more}")
    return out


__all__ = [
    "Span",
    "Timeline",
    "ToolRow",
    "TurnRow",
    "build_timeline",
    "cut_point",
    "error_lines",
    "render_text",
]
