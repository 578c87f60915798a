"""Carrying out the core's effects in Pipecat: frames, messages, handlers, tools, timers.

:class:`EffectRunner` is the loop every driver ends in. It translates each effect of
:mod:`~pipecat_tavus_interactions.core.effects` into Pipecat: inbound frames are pushed from
``tavus.input()`` (in the order the core returned them), messages from ``tavus.output()``,
``on_*`` handlers are called on the facade, tool calls go to the tool runner. It also runs
the core's one timer: after every run it arms a loop timer for
:meth:`~pipecat_tavus_interactions.core.TavusConnection.next_deadline`, and when that fires
it calls ``tick`` and carries out the result.

Effect lists run one at a time, in the order their core calls were made (a lock taken before
the first await, handed over in arrival order), so frames of one event are never interleaved
with another's. A list run
from inside another (a direct-mode processor downstream that calls ``tavus.send()`` while a
frame is pushed) runs inline instead of waiting for itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndWorkerFrame,
    InterimTranscriptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)

from .. import events as ev
from ..core import effects as fx
from .frames import (
    TavusEventFrame,
    TavusGuardrailFrame,
    TavusObjectiveFrame,
    TavusPerceptionAnalysisFrame,
    TavusReplicaInterruptedFrame,
    TavusToolCallFrame,
    TavusTurnFrame,
    TavusUtteranceFrame,
)
from .signals import PipecatSignals

if TYPE_CHECKING:
    from pipecat.processors.frame_processor import FrameProcessor

    from .driver import Driver
    from .input import TavusInteractionsInput
    from .output import TavusInteractionsOutput
    from .tool_runner import ToolRunner


def _event_frame(event: ev.Event) -> Any:
    """The frame of an event that maps to one whatever the state, or ``None``."""
    if isinstance(event, ev.ObjectiveEvent):
        return TavusObjectiveFrame(
            status=event.status,
            objective_name=event.objective_name,
            output_variables=dict(event.output_variables),
            event=event,
        )
    if isinstance(event, ev.PerceptionAnalysisEvent):
        return TavusPerceptionAnalysisFrame(analysis=event.analysis, event=event)
    if isinstance(event, ev.GuardrailEvent):
        return TavusGuardrailFrame(guardrail=event.guardrail, reason=event.reason, event=event)
    return None


_second = [-1, ""]  # the last whole second formatted by ``iso_now``, and its text


def iso_now() -> str:
    """Now in UTC as ISO 8601 to the millisecond, as Pipecat's ``time_now_iso8601`` gives it.

    The text of the current second is kept, so a transcript frame's timestamp costs a
    millisecond format instead of a timezone-aware ``datetime`` (about 1 us against 5).
    """
    now = time.time()
    whole = int(now)
    if whole != _second[0]:
        stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0], _second[1] = whole, stamp
    return f"{_second[1]}.{int((now - whole) * 1000):03d}+00:00"


_ACCEPTED = fx.EventAccepted

#: The event models that :meth:`EffectRunner._observed` maps.
_OBSERVED = frozenset(
    cls
    for cls in ev.EVENT_MODELS
    if issubclass(
        cls,
        ev.ToolCallEvent | ev.ObjectiveEvent | ev.PerceptionAnalysisEvent | ev.GuardrailEvent,
    )
)


#: Speaking events: Pipecat's observers and metrics need them (``signals.py``).
_SPEAKING = frozenset(cls for cls in ev.EVENT_MODELS if issubclass(cls, ev.SpeakingEvent))

#: The event models whose acceptance alone pushes a frame.
_MAPPED = _OBSERVED | _SPEAKING | {ev.UnknownEvent}


class EffectRunner:
    """Runs effect lists for one facade; owns the core's timer."""

    def __init__(self, tavus: Driver):
        """Create the runner; :meth:`attach` gives it the processors.

        Args:
            tavus: The facade (handlers, clock, core).
        """
        self._tavus = tavus
        self._conn = tavus.connection
        self._clock = tavus.clock
        params = tavus.params
        self._event_frames = params.emit_event_frames
        # The facade's live handler lists: checked on every event, without a call.
        self._on_event = tavus.handlers("on_event")
        self._on_utterance = tavus.handlers("on_utterance")
        self._proposed = params.user_turn_frames == "proposed"
        # A lock taken without a coroutine call when free (every message takes it).
        self._busy = False
        self._waiting: deque[asyncio.Future] = deque()
        self._running: asyncio.Task | None = None
        self._owner: FrameProcessor | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._timer_task: asyncio.Task | None = None
        # True while the armed timer matches the core's deadline as last asked.
        self._synced = False
        self._apply: dict[type, Any] = {}

    def attach(
        self,
        inbound: TavusInteractionsInput,
        outbound: TavusInteractionsOutput,
        tools: ToolRunner,
    ) -> None:
        """Give the runner the processors frames and messages are pushed from.

        Args:
            inbound: ``tavus.input()``: inbound frames, tool tasks.
            outbound: ``tavus.output()``: messages and send failures.
            tools: Runs tool handlers.
        """
        self._in = inbound
        self._signals = PipecatSignals(self._tavus, inbound)
        self._tools = tools
        tools.set_owner(inbound)
        self._apply = {
            fx.EventAccepted: self._accepted,
            fx.UserTranscript: self._transcript,
            fx.Utterance: self._utterance,
            fx.ReplicaSpeaking: self._speaking,
            fx.ReplicaSpeakingTick: self._tick,
            fx.UserTurn: self._user_turn,
            fx.ReplicaInterrupted: self._interrupted,
            fx.RunTool: self._run_tool,
            fx.TurnCompleted: self._turn,
            fx.ReplicaJoined: self._joined,
            fx.ReplicaLeft: self._left,
            fx.Shutdown: self._shutdown,
            fx.ProtocolErrorReported: self._protocol_error,
            fx.Transmit: outbound.transmit,
            fx.SendFailed: outbound.report_failure,
        }

    async def run(self, effects: list | None) -> None:
        """Carry out ``effects`` in order, then re-arm the timer for the next deadline.

        Lists run one after another, in the order of their core calls.

        Args:
            effects: What a core call returned (``None`` or empty: nothing to do).
        """
        if effects and not self._event_frames and not self._on_event:
            # Most accepted events (replica snapshots, heartbeats) map to nothing when no
            # event frames are wanted and nobody listens to on_event: drop them here.
            effects = [
                e for e in effects if e.__class__ is not _ACCEPTED or e.event.__class__ in _MAPPED
            ]
        if effects:
            task = asyncio.current_task()
            if self._running is task:
                await self._run_all(effects)  # from inside a list already running
            else:
                if self._busy:
                    await self._wait_turn()
                else:
                    self._busy = True
                self._running = task
                try:
                    apply = self._apply
                    for effect in effects:
                        await apply[effect.__class__](effect)
                finally:
                    self._running = None
                    self._hand_over()
        self.arm_timer()

    async def _wait_turn(self) -> None:
        """Wait for the lock, in arrival order; it is handed over, not released."""
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._hand_over()  # handed the lock, then cancelled: pass it on
            raise

    def _hand_over(self) -> None:
        waiting = self._waiting
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False

    async def _run_all(self, effects: list) -> None:
        apply = self._apply
        for effect in effects:
            await apply[effect.__class__](effect)

    # --- the timer ------------------------------------------------------------------------

    def set_task_owner(self, processor: FrameProcessor) -> None:
        """Use ``processor``'s task manager for timer and tool tasks (the first one wins)."""
        if self._owner is None:
            self._owner = processor
        self.arm_timer()

    def arm_timer(self) -> None:
        """Make sure the timer fires by the core's next deadline."""
        conn = self._conn
        if self._synced and not conn.deadline_moved:
            return  # nothing moved earlier: the armed timer (or none) is still right
        if self._owner is None:
            return
        deadline = conn.next_deadline()
        self._synced = True
        if deadline is None:
            return
        timer = self._timer
        if timer is not None:
            if self._timer_at <= deadline:
                return  # it fires early enough, and re-arms for the rest
            timer.cancel()
        self._timer_at = deadline
        # At least 1 ms, so a clock that stands still cannot make this spin.
        delay = max(0.001, deadline - self._clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._synced = False
        if self._owner is not None and self._timer_task is None:
            self._timer_task = self._owner.create_task(self._on_timer(), "tavus-timer")

    async def _on_timer(self) -> None:
        try:
            effects = self._conn.tick(now=self._clock())
            if effects:
                await self.run(effects)
        finally:
            self._timer_task = None
        self.arm_timer()

    def stop_timer(self) -> None:
        """Stop the timer (the pipeline ended)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._timer_task = self._timer_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._owner = None

    # --- inbound effects --------------------------------------------------------------------

    async def _accepted(self, effect: fx.EventAccepted) -> None:
        # Every accepted event passes here (two thirds are replica snapshots that map to
        # nothing): the common case is three cheap checks.
        event = effect.event
        kind = event.__class__
        if self._event_frames or kind is ev.UnknownEvent:
            if kind is ev.UnknownEvent:
                logger.debug(f"{self._in}: unknown event {event.event_type}")
            await self._in.push_frame(TavusEventFrame(event=event))
        if self._on_event:
            await self._tavus.emit("on_event", event)
        if kind in _OBSERVED:
            await self._observed(event)
        elif kind in _SPEAKING:
            await self._signals.speaking_event(event)

    async def _observed(self, event: ev.Event) -> None:
        """Events that map to a frame whatever the state: tool calls, perception, ..."""
        if isinstance(event, ev.ToolCallEvent):
            await self._in.push_frame(TavusToolCallFrame(event=event))
            await self._tavus.emit("on_tool_call", event)
            return
        frame = _event_frame(event)
        if frame is not None:
            await self._in.push_frame(frame)
            await self._signals.server_message(event)

    async def _transcript(self, effect: fx.UserTranscript) -> None:
        event = effect.event
        if effect.final:
            frame: Any = TranscriptionFrame(
                text=effect.text,
                user_id="user",
                timestamp=iso_now(),
                result=event,
                finalized=True,
            )
        else:
            frame = InterimTranscriptionFrame(
                text=effect.text,
                user_id=getattr(event, "participant_id", None) or "user",
                timestamp=iso_now(),
                result=event,
            )
        await self._in.push_frame(frame)

    async def _utterance(self, effect: fx.Utterance) -> None:
        frame = TavusUtteranceFrame(
            role=effect.role,
            text=effect.text,
            turn_idx=effect.turn_idx,
            spoken=effect.spoken,
            interrupted=effect.interrupted,
            injected=effect.injected,
            event=effect.event,
        )
        await self._in.push_frame(frame)
        if effect.spoken:
            await self._signals.spoken(effect.text)
        if self._on_utterance:
            await self._tavus.emit("on_utterance", frame)

    async def _speaking(self, effect: fx.ReplicaSpeaking) -> None:
        if effect.speaking:
            await self._signals.bot_started()  # the turn's TTFB goes first, as a service's
            await self._in.push_frame(BotStartedSpeakingFrame())
        else:
            await self._in.push_frame(BotStoppedSpeakingFrame())

    async def _tick(self, effect: fx.ReplicaSpeakingTick) -> None:
        await self._in.push_frame(BotSpeakingFrame())

    async def _user_turn(self, effect: fx.UserTurn) -> None:
        if self._proposed:
            cls: Any = (
                ProposedUserStartedSpeakingFrame
                if effect.speaking
                else ProposedUserStoppedSpeakingFrame
            )
        else:
            cls = UserStartedSpeakingFrame if effect.speaking else UserStoppedSpeakingFrame
        await self._in.push_frame(cls())

    async def _interrupted(self, effect: fx.ReplicaInterrupted) -> None:
        await self._in.push_frame(
            TavusReplicaInterruptedFrame(
                turn_idx=effect.turn_idx, inference_id=effect.inference_id, event=effect.event
            )
        )
        if effect.broadcast:
            await self._in.broadcast_interruption()

    async def _run_tool(self, effect: fx.RunTool) -> None:
        await self._tools.start(effect.call)

    async def _turn(self, effect: fx.TurnCompleted) -> None:
        await self._in.push_frame(TavusTurnFrame(turn=effect.turn))
        await self._tavus.emit("on_turn_completed", effect.turn)

    async def _joined(self, effect: fx.ReplicaJoined) -> None:
        logger.debug(f"{self._tavus}: replica joined")
        await self._tavus.emit("on_replica_joined", effect.event)

    async def _left(self, effect: fx.ReplicaLeft) -> None:
        if effect.expected:
            logger.debug(f"{self._tavus}: replica left ({effect.reason}) after system.shutdown")
        else:
            logger.warning(f"{self._tavus}: replica left ({effect.reason})")
        await self._tavus.emit("on_replica_left", effect.reason)

    async def _shutdown(self, effect: fx.Shutdown) -> None:
        reason = effect.event.reason
        logger.info(f"{self._tavus}: Tavus is shutting the conversation down ({reason})")
        await self._tavus.emit("on_shutdown", effect.event)
        if effect.end_pipeline:
            # Downstream: the frames already queued (the last turn's) reach the sink first.
            await self._in.push_frame(EndWorkerFrame(reason=reason))

    async def _protocol_error(self, effect: fx.ProtocolErrorReported) -> None:
        error = effect.error
        if effect.log:
            if error.reason == "foreign_sender":
                logger.warning(f"{self._in}: dropping Tavus messages: {error.detail}")
            else:
                logger.warning(
                    f"{self._in}: dropped a message ({error}); {effect.count} so far for "
                    "this reason"
                )
        await self._tavus.emit("on_protocol_error", error)


__all__ = ["EffectRunner"]
