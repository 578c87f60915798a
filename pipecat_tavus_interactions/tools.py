"""The tool-call bridge: Tavus asks for a tool, a Pipecat-style handler runs, the result returns.

Tavus never runs tools itself. When the replica's LLM emits ``conversation.tool_call`` (or
Raven emits ``conversation.perception_tool_call``), the input processor hands the event to
:class:`ToolBridge`, which:

1. finds the handler (by name, else the catch-all registered with ``None``);
2. runs it as its own task with a deadline, passing a :class:`TavusFunctionCallParams`
   (a real ``FunctionCallParams`` plus ``turn_idx``, ``event``, ``modality``, ``frames``),
   so a handler written for a Pipecat LLM's ``register_function`` works unchanged;
3. settles the call on the first ``result_callback``, a raise (error result) or the
   deadline (error result), whichever comes first;
4. delivers the result by ``tool_result_delivery`` (see :meth:`ToolBridge.deliver`), as
   context only when the turn has been superseded meanwhile, so a late result is never
   spoken over a newer turn;
5. reports the call with Pipecat's ``External*FunctionCall*`` frames and records it in the
   turn ledger.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.frames.frames import (
    ExternalFunctionCall,
    ExternalFunctionCallCancelFrame,
    ExternalFunctionCallInProgressFrame,
    ExternalFunctionCallResultFrame,
    ExternalFunctionCallsStartedFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams

from . import events as ev
from . import interactions as ix
from .exceptions import LocalProtocolError
from .protocol import build_message, split_text
from .turns import ToolCallRecord

if TYPE_CHECKING:
    from pipecat.processors.frame_processor import FrameProcessor

    from .session import TavusInteractions


@dataclass
class TavusFunctionCallParams(FunctionCallParams):
    """``FunctionCallParams`` for a call that Tavus asked for.

    ``llm`` is ``None`` (no Pipecat LLM made the call) and ``context`` is an empty
    ``LLMContext``. The extra fields carry what Tavus sent.

    Parameters:
        turn_idx: The Tavus turn the call belongs to.
        event: The ``tool_call`` / ``perception_tool_call`` event.
        modality: ``"vision"`` or ``"audio"`` for perception calls.
        frames: Images attached to a vision perception call.
    """

    turn_idx: int | None = None
    event: ev.ToolCallEvent | None = None
    modality: str | None = None
    frames: tuple[ev.PerceptionFrame, ...] = field(default_factory=tuple)


@dataclass
class _Registration:
    handler: Callable[..., Any]
    timeout_s: float | None


def _render(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)


class ToolBridge:
    """Runs tool handlers for Tavus tool calls and sends their results back.

    Owned by :class:`~pipecat_tavus_interactions.TavusInteractions`; use
    ``tavus.register_function(...)`` rather than this class directly.
    """

    def __init__(self, tavus: TavusInteractions):
        """Create the bridge.

        Args:
            tavus: The facade whose params, ledger and output it uses.
        """
        self._tavus = tavus
        self._handlers: dict[str | None, _Registration] = {}
        self._perception_handlers: dict[str | None, _Registration] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._next_id = 0

    def __repr__(self) -> str:
        return f"ToolBridge(functions={sorted(map(str, self._handlers))})"

    def register(
        self,
        name: str | None,
        handler: Callable[..., Any],
        *,
        timeout_s: float | None = None,
        perception: bool = False,
    ) -> None:
        """Register a handler.

        Args:
            name: The function name, or ``None`` for a catch-all.
            handler: ``async def handler(params)`` calling ``params.result_callback``.
            timeout_s: Deadline for this handler (default ``params.tool_timeout_s``).
            perception: Register for ``perception_tool_call`` instead of ``tool_call``.

        Raises:
            LocalProtocolError: ``handler`` is not callable or ``timeout_s`` is not positive.
        """
        if not callable(handler):
            raise LocalProtocolError(f"tool handler for {name!r} must be callable")
        if timeout_s is not None and timeout_s <= 0:
            raise LocalProtocolError(f"timeout_s for {name!r} must be positive, got {timeout_s}")
        table = self._perception_handlers if perception else self._handlers
        table[name] = _Registration(handler, timeout_s)

    def has_handler(self, event: ev.ToolCallEvent) -> bool:
        """Tell whether a handler (or a catch-all) exists for ``event``."""
        table = self._table(event)
        return event.name in table or None in table

    def _table(self, event: ev.ToolCallEvent) -> dict[str | None, _Registration]:
        if isinstance(event, ev.PerceptionToolCallEvent):
            return self._perception_handlers
        return self._handlers

    def _is_repeat(self, event: ev.ToolCallEvent) -> bool:
        # Legacy inline tools have no id and may be delivered twice: key on content.
        key = event.tool_call_id or f"{event.turn_idx}|{event.name}|{event.arguments_raw}"
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > 1024:
            self._seen.popitem(last=False)
        return False

    async def handle_call(self, event: ev.ToolCallEvent, processor: FrameProcessor) -> None:
        """Start running the handler for a tool call (returns at once).

        Args:
            event: The tool call event (already checked to come from the replica).
            processor: The input processor: frames are pushed from it and the task is
                created on it.
        """
        tavus = self._tavus
        if self._is_repeat(event):
            tavus.stats["tool_call_repeats"] += 1
            return
        call_id = event.tool_call_id
        if call_id is None:
            self._next_id += 1
            call_id = f"tavus-call-{self._next_id}"
        record = ToolCallRecord(
            name=event.name,
            tool_call_id=call_id,
            arguments=dict(event.arguments),
            seq=event.seq,
            started_at=tavus.clock(),
        )
        tavus.ledger.record_tool_call(event.turn_idx, record)
        await processor.push_frame(
            ExternalFunctionCallsStartedFrame(
                function_calls=[
                    ExternalFunctionCall(function_name=event.name, tool_call_id=call_id)
                ]
            )
        )
        await processor.push_frame(
            ExternalFunctionCallInProgressFrame(
                function_name=event.name, tool_call_id=call_id, arguments=dict(event.arguments)
            )
        )
        task = processor.create_task(self._run(event, call_id, processor), f"tool-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: ev.ToolCallEvent, call_id: str, processor: FrameProcessor):
        tavus = self._tavus
        table = self._table(event)
        registration = table.get(event.name) or table.get(None)
        timeout_s = tavus.params.tool_timeout_s
        if registration is not None and registration.timeout_s is not None:
            timeout_s = registration.timeout_s
        status, result, error = "success", None, None
        if event.arguments_error is not None:
            status, error = "error", f"invalid arguments for {event.name}: {event.arguments_error}"
        elif registration is None:
            status, error = "error", f"no handler registered for tool {event.name!r}"
        else:
            status, result, error = await self._invoke(
                registration, event, call_id, timeout_s, processor
            )
        if error is not None:
            logger.warning(f"{tavus}: tool {event.name} ({call_id}) {status}: {error}")
        if status == "timeout":
            await processor.push_frame(
                ExternalFunctionCallCancelFrame(function_name=event.name, tool_call_id=call_id)
            )
        else:
            await processor.push_frame(
                ExternalFunctionCallResultFrame(
                    function_name=event.name,
                    tool_call_id=call_id,
                    arguments=dict(event.arguments),
                    result=result if error is None else {"error": error},
                )
            )
        delivery = await self.deliver(event, status=status, result=result, error=error)
        completed = tavus.ledger.record_tool_result(
            event.turn_idx,
            call_id,
            status=status,
            result=result,
            error=error,
            finished_at=tavus.clock(),
            delivery=delivery,
        )
        await tavus.input()._emit_completed_turns(completed)

    async def _invoke(
        self,
        registration: _Registration,
        event: ev.ToolCallEvent,
        call_id: str,
        timeout_s: float,
        processor: FrameProcessor,
    ) -> tuple[str, Any, str | None]:
        loop = asyncio.get_running_loop()
        settled: asyncio.Future = loop.create_future()

        async def result_callback(result: Any, *, properties: Any = None) -> None:
            if properties is not None and getattr(properties, "is_final", True) is False:
                return  # intermediate results are not sent to Tavus
            if not settled.done():
                settled.set_result(result)
            else:
                logger.warning(f"{self._tavus}: result for {call_id} already delivered; ignored")

        params = TavusFunctionCallParams(
            function_name=event.name,
            tool_call_id=call_id,
            arguments=dict(event.arguments),
            llm=None,
            pipeline_worker=getattr(processor, "pipeline_worker", None),
            context=LLMContext(),
            result_callback=result_callback,
            app_resources=getattr(
                getattr(processor, "pipeline_worker", None), "app_resources", None
            ),
            turn_idx=event.turn_idx,
            event=event,
            modality=getattr(event, "modality", None),
            frames=getattr(event, "frames", ()),
        )
        handler_task = asyncio.ensure_future(self._call_handler(registration.handler, params))
        try:
            done, _ = await asyncio.wait(
                {settled, handler_task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            handler_task.cancel()
            raise
        if settled.done():
            if not handler_task.done():
                # The handler delivered its result and keeps running (Pipecat allows it);
                # keep a reference so it is cancelled with the bridge.
                self._tasks.add(handler_task)
                handler_task.add_done_callback(self._tasks.discard)
            return "success", settled.result(), None
        if handler_task in done:
            exc = handler_task.exception()
            if exc is not None:
                return "error", None, f"{type(exc).__name__}: {exc}"
            if settled.done():
                return "success", settled.result(), None
            # Returned without calling result_callback: its return value is the result.
            return "success", handler_task.result(), None
        handler_task.cancel()
        return "timeout", None, f"timed out after {timeout_s:g}s"

    @staticmethod
    async def _call_handler(handler: Callable[..., Any], params: TavusFunctionCallParams) -> Any:
        value = handler(params)
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        return value

    def _is_stale(self, event: ev.ToolCallEvent) -> bool:
        if event.turn_idx is None:
            return False
        ledger = self._tavus.ledger
        current = ledger.current_turn_idx
        if current is not None and current > event.turn_idx:
            return True
        record = ledger.get(event.turn_idx)
        return bool(record is not None and record.replica_interrupted)

    async def deliver(
        self, event: ev.ToolCallEvent, *, status: str, result: Any, error: str | None
    ) -> str:
        """Send a settled call's result back to Tavus by the delivery policy.

        Policies (``tool_result_delivery``): ``auto`` sends ``conversation.tool_result``
        when the call has a ``tool_call_id``, else ``append_llm_context`` then
        ``respond``; ``tool_result``, ``append``, ``append_and_respond``, ``echo``,
        ``respond`` and ``none`` do what they say. A result for a superseded turn (a newer
        user turn, or the replica was interrupted) is appended as context only. A result
        too large for one message is appended in pieces (with ``tool_result`` carrying a
        short note).

        Args:
            event: The call.
            status: ``"success"``, ``"error"`` or ``"timeout"``.
            result: The handler's result.
            error: The error text for failed calls.

        Returns:
            The delivery that was used (recorded in the turn ledger).
        """
        tavus = self._tavus
        policy = tavus.params.tool_result_delivery
        failed = error is not None
        text = f"error: {error}" if failed else _render(result)
        context = f"Result of tool {event.name}: {text}"
        if policy == "none":
            return "none"
        if isinstance(event, ev.PerceptionToolCallEvent) and policy == "auto":
            # Perception tools default to fire-and-forget: answer only when Tavus can pair it.
            policy = "tool_result" if event.tool_call_id else "append"
        if self._is_stale(event):
            tavus.stats["tool_results_stale"] += 1
            await self._append(context)
            return "stale_append"
        if policy == "auto":
            policy = "tool_result" if event.tool_call_id else "append_and_respond"
        if policy == "tool_result" and not event.tool_call_id:
            logger.warning(
                f"{tavus}: tool {event.name} has no tool_call_id; appending its result instead"
            )
            policy = "append_and_respond"
        if policy == "tool_result":
            output = error if failed else result
            interaction = ix.ToolResult(
                event.tool_call_id, output, "error" if failed else "success"
            )
            if self._fits(interaction):
                await tavus.send(interaction)
                return "tool_result"
            await self._append(context)
            await tavus.send(
                ix.ToolResult(
                    event.tool_call_id,
                    "The full result was appended to the conversation context.",
                    "error" if failed else "success",
                )
            )
            return "tool_result_appended"
        if policy in ("append", "append_and_respond"):
            await self._append(context)
            if policy == "append_and_respond":
                await tavus.send(ix.Respond(tavus.params.tool_respond_text.format(name=event.name)))
            return policy
        if policy == "echo":
            if failed:
                await self._append(context)
                return "append"
            for piece in self._pieces(text, lambda t: ix.Echo(text=t or " ")):
                await tavus.send(ix.Echo(text=piece))
            return "echo"
        # respond: the result goes back as if the user said it.
        respond = f"{event.name} returned: {text}"
        if not self._fits(ix.Respond(respond)):
            await self._append(context)
            respond = tavus.params.tool_respond_text.format(name=event.name)
        await tavus.send(ix.Respond(respond))
        return "respond"

    def _fits(self, interaction: ix.Interaction) -> bool:
        tavus = self._tavus
        try:
            build_message(
                interaction,
                conversation_id=tavus.conversation_id or "c",
                max_bytes=tavus.params.max_message_bytes,
            )
        except LocalProtocolError:
            return False
        return True

    def _pieces(self, text: str, make: Callable[[str], ix.Interaction]) -> list[str]:
        tavus = self._tavus
        return split_text(
            text,
            build=lambda t: build_message(make(t), conversation_id=tavus.conversation_id or "c"),
            max_bytes=tavus.params.max_message_bytes,
        )

    async def _append(self, context: str) -> None:
        for piece in self._pieces(context, lambda t: ix.AppendLLMContext(t or " ")):
            await self._tavus.send(ix.AppendLLMContext(piece))

    async def cancel_all(self) -> None:
        """Cancel every running handler (at pipeline end)."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()


__all__ = ["TavusFunctionCallParams", "ToolBridge"]
