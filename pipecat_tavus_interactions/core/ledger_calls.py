"""The turn ledger's tool-call book: each turn's calls, indexed, and their outcomes.

:class:`ToolCallBook` is mixed into :class:`~.turns.TurnLedger` (it keeps its state in the
ledger's per-turn scratch). Calls are indexed by ``tool_call_id`` and by ``seq``, and each
turn counts its pending calls, so recording a call or a result costs the same however many
calls the turn already has. Pure: no asyncio, no pipecat.
"""

from __future__ import annotations

from typing import Any

from .. import events as ev
from .records import ToolCallRecord, ToolCallStatus, TurnRecord, find_call, same_call

#: Tool calls a turn record keeps; calls past it are run and answered but not recorded.
MAX_TURN_TOOL_CALLS = 1_000


class ToolCallBook:
    """The tool-call methods of :class:`~.turns.TurnLedger` (a mixin)."""

    # State and helpers of TurnLedger: _records, _st() (the per-turn scratch), _turn(),
    # _complete().
    _records: dict[int, TurnRecord]
    #: How many tool calls were not recorded because their turn held MAX_TURN_TOOL_CALLS.
    tool_calls_unrecorded = 0

    def _on_tool_call(self, event: ev.ToolCallEvent, record: TurnRecord, now: float) -> None:
        call = ToolCallRecord(
            name=event.name,
            tool_call_id=event.tool_call_id,
            arguments=dict(event.arguments),
            seq=event.seq,
            started_at=now,
        )
        # Tool-call bookkeeping may have recorded this call already (with its own id for it).
        if self._same_call(record, call) is None:
            if len(record.tool_calls) >= MAX_TURN_TOOL_CALLS:
                self.tool_calls_unrecorded += 1
            self._add_call(record, call)

    def _same_call(self, turn: TurnRecord, call: ToolCallRecord) -> int | None:
        """The index of the call in ``turn`` that ``call`` describes too, or ``None``."""
        scratch = self._st(turn)
        if call.tool_call_id is not None:
            i = scratch.call_ids.get(call.tool_call_id)
            if i is not None:
                return i
        if call.seq is not None:
            return scratch.call_seqs.get(call.seq)
        if len(scratch.call_seqs) < len(turn.tool_calls):
            # Old deployments send neither seq nor id: match by name (see same_call). Only
            # they scan, and only while the turn holds such calls.
            for i, existing in enumerate(turn.tool_calls):
                if same_call(existing, call):
                    return i
        return None

    def _add_call(self, turn: TurnRecord, call: ToolCallRecord, at: int | None = None) -> None:
        """Append ``call`` to ``turn`` (or put it in place of the call at ``at``), indexed."""
        scratch = self._st(turn)
        calls = turn.tool_calls
        if at is None:
            at = len(calls)
            if at >= MAX_TURN_TOOL_CALLS:  # still run and answered, only not kept here
                return
            calls.append(call)
        else:
            scratch.pending -= calls[at].status == "pending"
            calls[at] = call
        scratch.pending += call.status == "pending"
        if call.tool_call_id is not None:
            scratch.call_ids[call.tool_call_id] = at
        if call.seq is not None:
            scratch.call_seqs[call.seq] = at

    def record_tool_call(self, turn_idx: int | None, record: ToolCallRecord) -> None:
        """Add a tool call to a turn, or replace the one with the same id (or ``seq``).

        The ledger already records calls it observes as ``tool_call`` events; the tool
        bridge calls this to put in its own view (its start time, delivery).

        Args:
            turn_idx: The turn, or ``None`` for the current one.
            record: The call.
        """
        turn = self._turn(turn_idx)
        if turn is None:
            return
        i = self._same_call(turn, record)
        if i is not None and record.started_at is None:
            record.started_at = turn.tool_calls[i].started_at
        self._add_call(turn, record, i)

    def record_tool_result(
        self,
        turn_idx: int | None,
        tool_call_id_or_name: str,
        *,
        status: ToolCallStatus,
        result: Any = None,
        error: str | None = None,
        finished_at: float | None = None,
        delivery: str | None = None,
    ) -> list[TurnRecord]:
        """Record the outcome of a tool call; this may complete its turn.

        The call is found by ``tool_call_id`` first, then as the first pending call with that
        name. With ``turn_idx=None`` every kept turn is searched, newest first.

        Args:
            turn_idx: The turn of the call, or ``None`` when unknown.
            tool_call_id_or_name: The call's ``tool_call_id``, or its name for calls without.
            status: ``"success"``, ``"error"``, ``"timeout"`` or ``"stale"``.
            result: The handler's result.
            error: Why it failed.
            finished_at: When the result was recorded (our monotonic clock).
            delivery: How the result went back to Tavus.

        Returns:
            The turn it completed (a one-element list), or an empty list.
        """
        if turn_idx is None:
            candidates = sorted(self._records.values(), key=lambda r: -r.turn_idx)
        else:
            turn = self._records.get(turn_idx)
            candidates = [] if turn is None else [turn]
        for turn in candidates:
            scratch = self._st(turn)
            i = scratch.call_ids.get(tool_call_id_or_name)
            call = turn.tool_calls[i] if i is not None else None
            if call is None:
                call = find_call(turn.tool_calls, tool_call_id_or_name)  # by name (no id)
            if call is None:
                continue
            scratch.pending += (status == "pending") - (call.status == "pending")
            call.status = status
            call.result = result
            call.error = error
            call.finished_at = finished_at
            call.delivery = delivery
            done: list[TurnRecord] = []
            if not turn.completed and scratch.reply_stopped and not scratch.pending:
                self._complete(turn, done)
            return done
        return []


__all__ = ["MAX_TURN_TOOL_CALLS", "ToolCallBook"]
