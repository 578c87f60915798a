"""The turn ledger's records: what one turn, one tool call and one speaking span were.

Plain slotted dataclasses, filled in by :class:`~.turns.TurnLedger` and handed to users in
``TavusTurnFrame`` and ``on_turn_completed``. Pure: no asyncio, no Pipecat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .. import events as ev

ToolCallStatus = Literal["pending", "success", "error", "timeout", "stale"]


@dataclass(slots=True)
class ToolCallRecord:
    """One tool call of a turn and its outcome.

    Attributes:
        name: The function name.
        tool_call_id: The id Tavus sent with the call, when it sent one.
        arguments: The parsed arguments.
        seq: The ``seq`` of the ``tool_call`` event, when sent.
        started_at: When the call was received (our monotonic clock, seconds).
        finished_at: When the result was recorded (our monotonic clock, seconds).
        status: ``"pending"`` until a result is recorded, then ``"success"``, ``"error"``,
            ``"timeout"`` or ``"stale"`` (the result came after the turn was superseded).
        result: The handler's result, when there is one.
        error: Why the call failed, when it failed.
        delivery: How the result went back to Tavus (e.g. ``"tool_result"``), when known.
    """

    name: str
    tool_call_id: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    status: ToolCallStatus = "pending"
    result: Any = None
    error: str | None = None
    delivery: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from call to result on our clock, or ``None`` while either is unknown."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(slots=True)
class SpeakingSpan:
    """One speaking span of the replica or the user.

    Attributes:
        role: ``"pal"`` (the replica) or ``"user"``.
        inference_id: The ``inference_id`` of the started event (else of the stopped one).
        started_ts: Tavus ``timestamp`` of the start, when sent (``None`` also for a stop that
            had no start).
        stopped_ts: Tavus ``timestamp`` of the stop, when sent; ``None`` while open.
        duration: Seconds spoken: as sent on the stopped event, else computed from the two
            timestamps when both are known, else ``None``.
        interrupted: True when the span was cut off.
        open: True until a stop is seen.
    """

    role: ev.Role
    inference_id: str | None = None
    started_ts: float | None = None
    stopped_ts: float | None = None
    duration: float | None = None
    interrupted: bool = False
    open: bool = True


@dataclass(slots=True)
class TurnRecord:
    """Everything the ledger knows about one turn.

    Attributes:
        turn_idx: The Tavus ``turn_idx`` (or the ledger's own number, see the module doc).
        user_text: The user's utterance(s) in this turn, joined with a space.
        user_injected: True when the user text came from our own ``respond``.
        user_audio_analysis: Raven tone/emotion analysis of the user's utterance, when sent.
        replica_intended_text: The replica's full intended reply (``conversation.utterance``),
            replies of several inferences joined with a space.
        replica_spoken_text: What the replica actually said: per inference, the final
            streaming snapshot (else the latest), joined with a space.
        replica_interrupted: True when the replica was cut off in this turn.
        tool_calls: The turn's tool calls, in the order received.
        spans: The turn's speaking spans (replica and user), in the order started.
        user_stopped_ts: Tavus ``timestamp`` of the user's last stop in this turn.
        replica_started_ts: Tavus ``timestamp`` of the replica's first start in this turn.
        response_latency_s: ``replica_started_ts - user_stopped_ts`` when both are known.
        first_seq: The lowest ``seq`` of the turn's events, when any had one.
        last_seq: The highest ``seq`` of the turn's events, when any had one.
        event_count: How many events the ledger attributed to this turn.
        completed: True once the ledger reported the turn complete.
    """

    turn_idx: int
    user_text: str | None = None
    user_injected: bool = False
    user_audio_analysis: str | None = None
    replica_intended_text: str | None = None
    replica_spoken_text: str | None = None
    replica_interrupted: bool = False
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    spans: list[SpeakingSpan] = field(default_factory=list)
    user_stopped_ts: float | None = None
    replica_started_ts: float | None = None
    response_latency_s: float | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    event_count: int = 0
    completed: bool = False

    @property
    def pending_tool_calls(self) -> list[ToolCallRecord]:
        """The tool calls of this turn still waiting for a result."""
        return [c for c in self.tool_calls if c.status == "pending"]

    def summary(self) -> dict[str, Any]:
        """Return what is derived from event content (and tool outcomes) only.

        Two runs of the same conversation, one clean and one with re-ordered or duplicated
        delivery, give equal summaries: arrival times, our own clock and ``event_count`` are
        left out.

        Returns:
            A dict of plain values (lists of dicts for tool calls and spans).
        """
        return {
            "turn_idx": self.turn_idx,
            "user_text": self.user_text,
            "user_injected": self.user_injected,
            "user_audio_analysis": self.user_audio_analysis,
            "replica_intended_text": self.replica_intended_text,
            "replica_spoken_text": self.replica_spoken_text,
            "replica_interrupted": self.replica_interrupted,
            "tool_calls": [
                {
                    "name": c.name,
                    "tool_call_id": c.tool_call_id,
                    "arguments": c.arguments,
                    "seq": c.seq,
                    "status": c.status,
                    "result": c.result,
                    "error": c.error,
                    "delivery": c.delivery,
                }
                for c in self.tool_calls
            ],
            "spans": [
                {
                    "role": s.role,
                    "inference_id": s.inference_id,
                    "started_ts": s.started_ts,
                    "stopped_ts": s.stopped_ts,
                    "duration": s.duration,
                    "interrupted": s.interrupted,
                }
                for s in self.spans
            ],
            "user_stopped_ts": self.user_stopped_ts,
            "replica_started_ts": self.replica_started_ts,
            "response_latency_s": self.response_latency_s,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "completed": self.completed,
        }


def has_pending(calls: list[ToolCallRecord]) -> bool:
    """Tell whether any of ``calls`` still waits for its result."""
    for call in calls:
        if call.status == "pending":
            return True
    return False


def same_call(a: ToolCallRecord, b: ToolCallRecord) -> bool:
    """Tell whether two records describe the same call (same id, else same ``seq``)."""
    if a.tool_call_id is not None and a.tool_call_id == b.tool_call_id:
        return True
    if a.seq is not None and a.seq == b.seq:
        return True
    # Old deployments send neither seq nor id, and the core names such calls itself:
    # its record matches the first still-pending call of that name that has no id yet.
    return (
        a.seq is None
        and b.seq is None
        and a.name == b.name
        and a.status == "pending"
        and (a.tool_call_id is None) != (b.tool_call_id is None)
    )


def find_call(calls: list[ToolCallRecord], id_or_name: str) -> ToolCallRecord | None:
    """Find a call by ``tool_call_id``, else the first pending call with that name."""
    for call in calls:
        if call.tool_call_id is not None and call.tool_call_id == id_or_name:
            return call
    for call in calls:
        if call.status == "pending" and call.name == id_or_name:
            return call
    return None


__all__ = [
    "SpeakingSpan",
    "ToolCallRecord",
    "ToolCallStatus",
    "TurnRecord",
    "find_call",
    "has_pending",
    "same_call",
]
