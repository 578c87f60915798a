"""Running tool handlers for the replica's tool calls, Pipecat's way.

The conversation core decides which calls to run and how their results go back
(:mod:`~pipecat_tavus_interactions.core.tools`); :class:`ToolRunner` runs them:

1. finds the handler (by name, else the catch-all registered with ``None``);
2. runs it as a task of the pipeline's task manager, with a deadline, passing a
   :class:`TavusFunctionCallParams` (a real ``FunctionCallParams`` plus ``turn_idx``,
   ``event``, ``modality``, ``frames``; ``pipeline_worker``, ``worker_runner`` and
   ``app_resources`` from the running worker), so a handler written for a Pipecat LLM's
   ``register_function`` works unchanged;
3. settles the call on the first ``result_callback``, a raise (error result) or the
   deadline (error result), whichever comes first;
4. reports the call with Pipecat's ``External*FunctionCall*`` frames, and the outcome to the
   core (:meth:`~pipecat_tavus_interactions.core.TavusConnection.tool_finished`), whose
   effects send the result.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.frames.frames import (
    ExternalFunctionCall,
    ExternalFunctionCallCancelFrame,
    ExternalFunctionCallInProgressFrame,
    ExternalFunctionCallResultFrame,
    ExternalFunctionCallsStartedFrame,
)

from ..exceptions import LocalProtocolError

if TYPE_CHECKING:
    from pipecat.processors.frame_processor import FrameProcessor

    from ..core.effects import ToolCall
    from .driver import Driver
    from .tool_params import TavusFunctionCallParams


@dataclass
class _Registration:
    handler: Callable[..., Any]
    timeout_s: float | None


class ToolRunner:
    """Runs tool handlers as pipeline tasks; owned by the facade.

    Use ``tavus.register_function(...)`` rather than this class directly.
    """

    def __init__(self, tavus: Driver):
        """Create the runner.

        Args:
            tavus: The facade whose core receives the outcomes.
        """
        self._tavus = tavus
        self._handlers: dict[str | None, _Registration] = {}
        self._perception_handlers: dict[str | None, _Registration] = {}
        self._tasks: set[asyncio.Task] = set()
        self._owner: FrameProcessor | None = None
        self._running = 0  # calls started and not settled

    def __repr__(self) -> str:
        return f"ToolRunner(functions={sorted(map(str, self._handlers))})"

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
            LocalProtocolError: ``handler`` is not callable, does not take exactly one
                argument (Pipecat's old six-argument handlers), or ``timeout_s`` is not
                positive.
        """
        if not callable(handler):
            raise LocalProtocolError(f"tool handler for {name!r} must be callable")
        _check_signature(name, handler)
        if timeout_s is not None and timeout_s <= 0:
            raise LocalProtocolError(f"timeout_s for {name!r} must be positive, got {timeout_s}")
        table = self._perception_handlers if perception else self._handlers
        table[name] = _Registration(handler, timeout_s)

    def _table(self, perception: bool) -> dict[str | None, _Registration]:
        return self._perception_handlers if perception else self._handlers

    def set_owner(self, processor: FrameProcessor) -> None:
        """Run tasks and push frames from ``processor`` (``tavus.input()``)."""
        self._owner = processor

    async def start(self, call: ToolCall) -> None:
        """Report the call with Pipecat's frames and start its handler (returns at once).

        Over ``max_concurrent_tools`` running calls, the call gets an error result at once.

        Args:
            call: The call the core accepted.
        """
        owner = self._owner
        assert owner is not None, "set_owner() is called when the facade is built"
        cap = self._tavus.params.max_concurrent_tools
        if self._running >= cap:
            error = f"{self._running} tool calls are running (max_concurrent_tools={cap})"
            logger.warning(f"{self._tavus}: tool {call.name} ({call.call_id}) refused: {error}")
            await self._finish(call, "error", None, error, reply=BUSY_TEXT)
            return
        await owner.push_frame(
            ExternalFunctionCallsStartedFrame(
                function_calls=[
                    ExternalFunctionCall(function_name=call.name, tool_call_id=call.call_id)
                ]
            )
        )
        await owner.push_frame(
            ExternalFunctionCallInProgressFrame(
                function_name=call.name, tool_call_id=call.call_id, arguments=call.arguments
            )
        )
        self._running += 1
        self._track(owner.create_task(self._run(call, owner), f"tool-{call.call_id}"))

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: ToolCall, owner: FrameProcessor) -> None:
        try:
            await self._run_call(call, owner)
        finally:
            self._running -= 1

    async def _run_call(self, call: ToolCall, owner: FrameProcessor) -> None:
        registration = self._lookup(call)
        timeout_s = self._tavus.params.tool_timeout_s
        if registration is not None and registration.timeout_s is not None:
            timeout_s = registration.timeout_s
        status, result, error, reply = "success", None, call.error, None
        if error is not None:
            status = "error"
        elif registration is None:
            status, error = "error", f"no handler registered for tool {call.name!r}"
        else:
            status, result, error, reply = await self._invoke(registration, call, timeout_s, owner)
        if error is not None:
            logger.warning(f"{self._tavus}: tool {call.name} ({call.call_id}) {status}: {error}")
        if status == "timeout":
            frame: Any = ExternalFunctionCallCancelFrame(
                function_name=call.name, tool_call_id=call.call_id
            )
        else:
            frame = ExternalFunctionCallResultFrame(
                function_name=call.name,
                tool_call_id=call.call_id,
                arguments=call.arguments,
                result=result if error is None else {"error": error},
            )
        await owner.push_frame(frame)
        await self._finish(call, status, result, error, reply=reply)

    async def _finish(
        self, call: ToolCall, status: str, result: Any, error: str | None, *, reply=None
    ) -> None:
        tavus = self._tavus
        effects = tavus.connection.tool_finished(
            call.call_id, status=status, result=result, error=error, reply=reply, now=tavus.clock()
        )
        await tavus.run(effects)

    def _lookup(self, call: ToolCall) -> _Registration | None:
        table = self._table(call.perception)
        return table.get(call.name) or table.get(None)

    async def _invoke(
        self,
        registration: _Registration,
        call: ToolCall,
        timeout_s: float,
        owner: FrameProcessor,
    ) -> tuple[str, Any, str | None, str | None]:
        """Run the handler: ``(status, result, error for the log and ledger, reply)``.

        ``reply`` is what the replica is told instead of ``error`` (``None``: the error).
        """
        settled: asyncio.Future = asyncio.get_running_loop().create_future()

        async def result_callback(result: Any, *, properties: Any = None) -> None:
            if properties is not None and getattr(properties, "is_final", True) is False:
                return  # intermediate results are not sent to Tavus
            if not settled.done():
                settled.set_result(result)
            else:
                logger.warning(f"{self._tavus}: result for {call.call_id} already delivered")

        params = _params_for(call, owner, result_callback)
        handler_task = owner.create_task(
            _call_handler(registration.handler, params), f"tool-handler-{call.call_id}"
        )
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
                # keep a reference so it is cancelled with the runner.
                self._track(handler_task)
            return "success", settled.result(), None, None
        if handler_task in done:
            return self._returned(call, handler_task.result(), params)
        handler_task.cancel()
        return "timeout", None, f"timed out after {timeout_s:g}s", None

    def _returned(self, call: ToolCall, value: Any, params: Any) -> tuple:
        """The outcome of a handler that returned (or raised) without ``result_callback``."""
        if isinstance(value, _Raised):
            exc = value.error
            trace = "".join(traceback.format_exception(exc)).rstrip()
            logger.warning(f"{self._tavus}: tool {call.name} ({call.call_id}) raised:\n{trace}")
            error = f"{type(exc).__name__}: {exc}"
            verbatim = self._tavus.params.tool_errors_verbatim
            return "error", None, error, (None if verbatim else FAILED_TEXT)
        if value is None or value is params:
            # Only a returned value is taken as the result: None (or the params handed in)
            # means the handler forgot result_callback.
            error = "the handler returned without calling params.result_callback(result)"
            return "error", None, error, FAILED_TEXT
        return "success", value, None, None

    async def cancel_all(self) -> None:
        """Cancel every running handler (at pipeline end), again if one ignores it."""
        tasks = [t for t in self._tasks if not t.done()]
        self._tasks.clear()
        for _ in range(3):  # a handler may swallow one cancellation; ask again, briefly
            if not tasks:
                return
            for task in tasks:
                task.cancel()
            _, pending = await asyncio.wait(tasks, timeout=0.3)
            tasks = list(pending)
        for task in tasks:
            logger.error(f"{self._tavus}: tool task {task.get_name()} ignores cancellation")


def _params_for(call: ToolCall, owner: FrameProcessor, callback: Any) -> TavusFunctionCallParams:
    # Imported at the first tool call: Pipecat's LLM service stack (aiohttp, the adapters)
    # is a third of the package's import time and a bot without tools never needs it.
    from pipecat.processors.aggregators.llm_context import LLMContext

    from .tool_params import TavusFunctionCallParams

    try:
        worker = owner.pipeline_worker
    except Exception:  # not set up by a worker (a bare processor in a test)
        worker = None
    return TavusFunctionCallParams(
        function_name=call.name,
        tool_call_id=call.call_id,
        arguments=call.arguments,
        llm=None,
        pipeline_worker=worker,
        context=LLMContext(),
        result_callback=callback,
        app_resources=getattr(worker, "app_resources", None),
        worker_runner=getattr(worker, "worker_runner", None),
        turn_idx=call.turn_idx,
        event=call.event,
        modality=getattr(call.event, "modality", None),
        frames=getattr(call.event, "frames", ()),
    )


#: What the replica is told when a handler fails (its exception stays in the log and ledger).
FAILED_TEXT = "the tool failed"
#: What the replica is told when a call is refused over ``max_concurrent_tools``.
BUSY_TEXT = "the tool is busy; try again"


def _check_signature(name: str | None, handler: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to check
    try:
        signature.bind(object())
    except TypeError:
        raise LocalProtocolError(
            f"tool handler for {name!r} must take one argument, "
            f"async def handler(params: FunctionCallParams), got {name or 'handler'}{signature}; "
            "Pipecat's old (function_name, tool_call_id, args, llm, context, result_callback) "
            "handlers need porting to params.arguments and params.result_callback"
        ) from None


@dataclass
class _Raised:
    """A handler's exception, returned rather than raised: the runner reports it once."""

    error: BaseException


async def _call_handler(handler: Callable[..., Any], params: TavusFunctionCallParams) -> Any:
    try:
        value = handler(params)
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
    except asyncio.CancelledError as e:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # cancelled from outside (the deadline, the pipeline's end): let it go
        return _Raised(e)  # the handler raised CancelledError itself: an error outcome
    except Exception as e:
        return _Raised(e)
    return value


__all__ = ["ToolRunner"]
