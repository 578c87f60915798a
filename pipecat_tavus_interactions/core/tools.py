"""Tool calls: which calls to run, and how each result goes back to the replica.

Tavus never runs tools itself. When the replica's LLM emits ``conversation.tool_call`` (or
Raven emits ``conversation.perception_tool_call``), :class:`ToolCalls` decides whether it is
a new call (Tavus may deliver a call twice), gives calls without a ``tool_call_id`` an id of
their own, and records them in the turn ledger. The driver runs the handler; when it reports
the outcome, :meth:`ToolCalls.plan_delivery` turns it into the interactions to send, by the
``tool_result_delivery`` policy:

- ``auto``: ``conversation.tool_result`` when the call has a ``tool_call_id``, else
  ``append_llm_context`` followed by ``respond`` (perception calls: ``tool_result`` or a
  plain append);
- ``tool_result``, ``append``, ``append_and_respond``, ``echo``, ``respond``, ``none``.

A result for a turn that has been superseded (a newer user turn, or the replica was
interrupted) is appended as context only, never spoken over the newer turn. A result too
large for one message is appended in pieces (a ``tool_result`` then carries a short note).
Pure: no asyncio or Pipecat.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .. import events as ev
from .. import interactions as ix
from ..exceptions import TavusInteractionsError
from ..params import TavusInteractionsParams
from .effects import SendFailed, ToolCall, TurnCompleted
from .records import ToolCallRecord
from .sender import Sender
from .turns import TurnLedger

#: What the replica is told when a handler's result cannot be sent as it is.
UNSENDABLE_TEXT = "the tool's result could not be sent"
#: What building a result's messages raises when the result cannot go on the wire.
UNSENDABLE = (TavusInteractionsError, TypeError, ValueError, RecursionError)

#: The note a ``tool_result`` carries when the full result was appended as context.
APPENDED_NOTE = "The full result was appended to the conversation context."


def render_result(result: Any) -> str:
    """Render a handler's result as text for the replica's context.

    Args:
        result: Any value; strings are kept, the rest is JSON (``str()`` where it is not).
    """
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr_limited(result)


def repr_limited(value: Any, limit: int = 2000) -> str:
    """``str(value)`` cut to ``limit`` characters (``"?"`` when even that fails)."""
    try:
        return str(value)[:limit]
    except Exception:  # a result whose __str__ raises or recurses
        return "?"


class ToolCalls:
    """Tool-call bookkeeping and the result delivery policy of one conversation."""

    def __init__(self, params: TavusInteractionsParams, ledger: TurnLedger):
        """Create the bookkeeping.

        Args:
            params: The configuration (``tool_result_delivery``, ``tool_respond_text``).
            ledger: The turn ledger the calls are recorded in.
        """
        self._params = params
        self._ledger = ledger
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._calls: dict[str, ToolCall] = {}
        self._next_id = 0

    @property
    def pending(self) -> int:
        """How many calls are running (started, outcome not reported yet)."""
        return len(self._calls)

    def accept(self, event: ev.ToolCallEvent, now: float) -> ToolCall | None:
        """Record a new call and return it, or ``None`` for a call already seen.

        Args:
            event: The tool call event (already checked to come from the replica).
            now: The current time.
        """
        # Legacy inline tools have no id and may be delivered twice: key on content.
        key = event.tool_call_id or f"{event.turn_idx}|{event.name}|{event.arguments_raw}"
        if key in self._seen:
            return None
        self._seen[key] = None
        if len(self._seen) > 1024:
            self._seen.popitem(last=False)
        call_id = event.tool_call_id
        if call_id is None:
            self._next_id += 1
            call_id = f"tavus-call-{self._next_id}"
        error = None
        if event.arguments_error is not None:
            error = f"invalid arguments for {event.name}: {event.arguments_error}"
        call = ToolCall(
            call_id=call_id,
            name=event.name,
            arguments=dict(event.arguments),
            # The turn the ledger put the call in (an absurd turn_idx is not a turn).
            turn_idx=self._ledger.last_turn_idx,
            event=event,
            perception=isinstance(event, ev.PerceptionToolCallEvent),
            error=error,
        )
        self._calls[call_id] = call
        record = ToolCallRecord(
            name=event.name,
            tool_call_id=call_id,
            arguments=dict(event.arguments),
            seq=event.seq,
            started_at=now,
        )
        self._ledger.record_tool_call(call.turn_idx, record)
        return call

    def settle(
        self,
        call_id: str,
        *,
        status: str,
        now: float,
        sender: Sender,
        result: Any = None,
        error: str | None = None,
        reply: str | None = None,
    ) -> list:
        """A handler settled: send its outcome by the policy and record it in the ledger.

        Args:
            call_id: The call's id (a call settles once; later outcomes are ignored).
            status: ``"success"``, ``"error"`` or ``"timeout"``.
            result: The handler's result.
            error: The error text for failed calls (kept in the ledger).
            now: The current time.
            sender: Sends the result's interactions.
            reply: What the replica hears for a failed call instead of ``error``.

        Returns:
            The effects: the messages (or their failures), and the turn it completed.
        """
        call = self._calls.pop(call_id, None)
        if call is None:
            return []
        failed = error is not None
        try:
            output = (reply if reply is not None else error) if failed else result
            delivery, interactions = self.plan_delivery(
                call, failed=failed, output=output, fits=sender.fits
            )
            for interaction in interactions:
                sender.check(interaction)
        except UNSENDABLE as e:
            # The result cannot go on the wire as it is (not JSON, circular, too deep, a
            # lone surrogate): the call is still answered exactly once, with an error.
            status, result, error = "error", None, f"{UNSENDABLE_TEXT} ({type(e).__name__})"
            sender.stats["tool_results_unsendable"] += 1
            delivery, interactions = self.plan_delivery(
                call, failed=True, output=UNSENDABLE_TEXT, fits=sender.fits
            )
        if delivery == "stale_append":
            sender.stats["tool_results_stale"] += 1
        out: list = []
        for interaction in interactions:
            out += sender.send_reported(interaction, now)
        completed = self._ledger.record_tool_result(
            call.turn_idx,
            call_id,
            status=status,
            result=result,
            error=error,
            finished_at=now,
            delivery="not_sent" if any(type(e) is SendFailed for e in out) else delivery,
        )
        out += [TurnCompleted(turn) for turn in completed]
        return out

    def is_stale(self, call: ToolCall) -> bool:
        """Tell whether the call's turn was superseded or its reply interrupted.

        Superseded means a later turn started in the conversation's own order (the
        ledger's current turn is another one), whatever the raw ``turn_idx`` numbers are.
        """
        if call.turn_idx is None:
            return False
        ledger = self._ledger
        current = ledger.current_turn_idx
        if current is not None and current != call.turn_idx:
            return True
        record = ledger.get(call.turn_idx)
        return bool(record is not None and record.replica_interrupted)

    def plan_delivery(
        self,
        call: ToolCall,
        *,
        failed: bool,
        output: Any,
        fits: Callable[[ix.Interaction], bool],
    ) -> tuple[str, list[ix.Interaction]]:
        """Choose how a settled call's outcome goes back, and the interactions to send.

        Args:
            call: The call.
            failed: True when ``output`` is an error text.
            output: The result, or the error text.
            fits: Tells whether an interaction fits in one message.

        Returns:
            The delivery used (recorded in the ledger) and the interactions, in send order.
            Long appends and echoes are split by the sender, not here.
        """
        policy = self._params.tool_result_delivery
        text = f"error: {output}" if failed else render_result(output)
        context = ix.AppendLLMContext(f"Result of tool {call.name}: {text}")
        if policy == "none":
            return "none", []
        event_id = call.event.tool_call_id
        if call.perception and policy == "auto":
            # Perception tools default to fire-and-forget: answer only when Tavus can pair it.
            policy = "tool_result" if event_id else "append"
        if self.is_stale(call):
            return "stale_append", [context]
        if policy == "auto" or (policy == "tool_result" and not event_id):
            policy = "tool_result" if event_id else "append_and_respond"
        status = "error" if failed else "success"
        if policy == "tool_result":
            result = ix.ToolResult(event_id, output, status)
            if fits(result):
                return "tool_result", [result]
            return "tool_result_appended", [context, ix.ToolResult(event_id, APPENDED_NOTE, status)]
        respond_text = self._params.tool_respond_text.format(name=call.name)
        if policy == "append":
            return "append", [context]
        if policy == "append_and_respond":
            return policy, [context, ix.Respond(respond_text)]
        if policy == "echo":
            if failed or not text.strip():
                return "append", [context]
            # One echo: the sender splits it under one inference_id, done on the last piece.
            return "echo", [ix.Echo(text=text)]
        # respond: the result goes back as if the user said it.
        respond = ix.Respond(f"{call.name} returned: {text}")
        if fits(respond):
            return "respond", [respond]
        return "respond", [context, ix.Respond(respond_text)]


__all__ = [
    "APPENDED_NOTE",
    "UNSENDABLE",
    "UNSENDABLE_TEXT",
    "ToolCalls",
    "render_result",
    "repr_limited",
]
