"""``TavusInteractionsInput``: replica events in, Pipecat frames and ``on_*`` events out.

Placed right after ``transport.input()``. For every ``InputTransportMessageFrame``:

1. Non-Tavus app messages pass through untouched.
2. Tavus messages from anyone but the replica participant, or for another conversation,
   are dropped, counted, logged once per sender and reported through
   ``on_protocol_error`` (a browser in the room must not be able to fake a tool call).
3. The rest is parsed (:func:`~pipecat_tavus_interactions.protocol.parse_message`);
   malformed input is dropped, counted, logged (rate-limited) and reported, never raised.
4. Events go through the ``seq`` re-ordering and de-duplication window
   (:class:`~pipecat_tavus_interactions.ordering.EventOrderer`) and the turn ledger, then
   are mapped to frames as DESIGN.md section 4 lists.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    EndWorkerFrame,
    Frame,
    InputTransportMessageFrame,
    InterimTranscriptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.time import time_now_iso8601

from . import events as ev
from .exceptions import RemoteProtocolError
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
from .ordering import EventOrderer
from .protocol import parse_message

if TYPE_CHECKING:
    from .session import TavusInteractions
    from .turns import TurnRecord

_TAVUS_MESSAGE_TYPES = ("conversation", "system")


def _looks_like_tavus(message: Any) -> bool:
    if isinstance(message, dict):
        event_type = message.get("event_type")
        if isinstance(event_type, str):
            return message.get("message_type") in _TAVUS_MESSAGE_TYPES or event_type.startswith(
                ("conversation.", "system.")
            )
        return message.get("message_type") in _TAVUS_MESSAGE_TYPES
    if isinstance(message, str | bytes):
        return (
            b'"event_type"' in message
            if isinstance(message, bytes)
            else ('"event_type"' in message or '\\"event_type\\"' in message)
        )
    return False


class TavusInteractionsInput(FrameProcessor):
    """Translates Tavus replica events into Pipecat frames.

    Create it with ``tavus.input()``; see
    :class:`~pipecat_tavus_interactions.TavusInteractions` for the event handlers.
    """

    def __init__(self, *, tavus: TavusInteractions, name: str | None = None, **kwargs):
        """Create the processor.

        Args:
            tavus: The facade that owns the shared state.
            name: Optional processor name.
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(name=name, **kwargs)
        self._tavus = tavus
        params = tavus.params
        self._orderer = EventOrderer(window_s=params.reorder_window_ms / 1000.0)
        self._lock = asyncio.Lock()
        self._poll_task: asyncio.Task | None = None
        self._ticker_task: asyncio.Task | None = None
        # One ticker task for the processor's life; it runs only while the replica speaks.
        self._speaking = asyncio.Event()
        self._watchdog_task: asyncio.Task | None = None
        self._last_replica_message: float | None = None
        # Heartbeats are undocumented; only deployments that send them are watched.
        self._heartbeats_seen = False
        self._user_speaking = False
        self._pending_user_stop = False
        self._interrupt_reported: tuple[int | None, str | None] | None = None
        self._warned_senders: set[str | None] = set()
        self._error_logs: Counter[str] = Counter()
        self._event_frames = params.emit_event_frames
        full = params.mode == "full"
        self._user_frames = (
            params.user_turn_frames if (full or params.user_turn_frames_in_echo) else "none"
        )

    @property
    def orderer(self) -> EventOrderer:
        """The ``seq`` re-ordering window (its ``stats`` count gaps and duplicates)."""
        return self._orderer

    # --- frame handling --------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Consume Tavus messages, translate them, and forward everything else."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputTransportMessageFrame):
            if not await self._handle_message(frame, direction):
                await self.push_frame(frame, direction)
            return
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._tavus.params.heartbeat_timeout_s is not None:
                self._watchdog_task = self.create_task(self._watchdog(), "heartbeat-watchdog")
            return
        if isinstance(frame, EndFrame):
            await self._finish()
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, CancelFrame):
            await self._stop_tasks()
            await self.push_frame(frame, direction)
            return
        await self.push_frame(frame, direction)

    async def cleanup(self):
        """Stop timers and running tool handlers."""
        await self._stop_tasks()
        await self._tavus.tools.cancel_all()
        await super().cleanup()

    async def _stop_tasks(self):
        for attr in ("_poll_task", "_ticker_task", "_watchdog_task"):
            task = getattr(self, attr)
            if task is not None and task is not asyncio.current_task():
                await self.cancel_task(task)
            setattr(self, attr, None)

    async def _finish(self):
        """At the end of the pipeline: release held events and complete the open turn."""
        async with self._lock:
            for event in self._orderer.flush():
                await self._dispatch(event)
            await self._emit_completed_turns(self._tavus.ledger.flush(self._tavus.clock()))
        await self._stop_tasks()

    # --- inbound messages ------------------------------------------------------------

    async def _handle_message(self, frame: InputTransportMessageFrame, direction) -> bool:
        """Return True when the message was a Tavus message (consumed)."""
        tavus = self._tavus
        message = frame.message
        sender = getattr(frame, "participant_id", None)
        if sender is None or sender != tavus._replica_participant_id:
            if not _looks_like_tavus(message):
                return False
            if direction == FrameDirection.UPSTREAM:
                return True
            if not tavus.is_trusted_sender(sender):
                await self._drop_foreign(sender, message)
                return True
        elif direction == FrameDirection.UPSTREAM:
            return True  # Daily broadcasts both ways; we act on the downstream copy only.
        now = tavus._clock()
        self._last_replica_message = now
        try:
            event = parse_message(message)
        except RemoteProtocolError as e:
            await self._report(e)
            return True
        cid = event.conversation_id
        if cid is not None and cid != tavus._conversation_id and tavus._conversation_id:
            await self._report(
                RemoteProtocolError(
                    "other_conversation", f"conversation_id {cid!r} is not ours", message
                )
            )
            return True
        released = self._orderer.push(event, now)
        if released:
            # acquire/release rather than ``async with``: two coroutine calls fewer on the
            # path every message takes.
            await self._lock.acquire()
            try:
                for event in released:
                    await self._dispatch(event)
            finally:
                self._lock.release()
        if self._orderer.pending:
            self._schedule_poll()
        return True

    async def _drop_foreign(self, sender: str | None, message: Any) -> None:
        tavus = self._tavus
        if sender not in self._warned_senders and len(self._warned_senders) < 256:
            self._warned_senders.add(sender)
            if tavus.replica_participant_id is None:
                logger.warning(
                    f"{self}: dropping Tavus messages from {sender}: the replica participant "
                    "is not known yet (call tavus.attach_transport(transport), or set "
                    "replica_participant_id or trust_any_sender in the params)"
                )
            else:
                logger.warning(
                    f"{self}: dropping Tavus messages from {sender}, who is not the replica"
                )
        await self._report(
            RemoteProtocolError("foreign_sender", f"sender {sender!r} is not the replica", message),
            log=False,
        )

    async def _report(self, error: RemoteProtocolError, *, log: bool = True) -> None:
        count = self._error_logs[error.reason] = self._error_logs[error.reason] + 1
        if log and (count <= 5 or count % 100 == 0):
            logger.warning(f"{self}: dropped a message ({error}); {count} so far for this reason")
        await self._tavus._report_protocol_error(error)

    def _schedule_poll(self) -> None:
        # One timer task at a time: held gaps only ever push the deadline later, so a
        # running timer wakes early enough and re-arms itself (no task per message).
        if self._poll_task is None and self._orderer.next_deadline() is not None:
            self._poll_task = self.create_task(self._poll_loop(), "reorder-poll")

    async def _poll_loop(self) -> None:
        try:
            while (deadline := self._orderer.next_deadline()) is not None:
                # At least 1 ms, so a clock that stands still cannot make this spin.
                await asyncio.sleep(max(0.001, deadline - self._tavus.clock()))
                async with self._lock:
                    for released in self._orderer.poll(self._tavus.clock()):
                        await self._dispatch(released)
        finally:
            self._poll_task = None

    async def _watchdog(self) -> None:
        timeout = self._tavus.params.heartbeat_timeout_s
        while True:
            await asyncio.sleep(timeout / 4)
            last = self._last_replica_message
            if (
                self._tavus.replica_ready
                and self._heartbeats_seen
                and last is not None
                and self._tavus.clock() - last > timeout
            ):
                await self._replica_stopped_speaking_locally()
                await self._tavus._on_replica_gone("heartbeat_lost")

    # --- mapping ---------------------------------------------------------------------

    async def _dispatch(self, event: ev.Event) -> None:
        # Accepted events are counted by the orderer (``orderer.stats["released"]``).
        tavus = self._tavus
        completed = tavus.ledger.observe(event, tavus._clock())
        if self._event_frames and type(event) is not ev.UnknownEvent:
            await self.push_frame(TavusEventFrame(event=event))
        if tavus._has_handlers("on_event"):
            await tavus._call_event_handler("on_event", event)
        kind = type(event)
        # Replica snapshots before the final one are two thirds of the traffic and map to
        # no frame (the ledger above keeps them): skip the handler call for them.
        if kind is not ev.UtteranceStreamingEvent or event.final or event.role == ev.ROLE_USER:
            handler = _HANDLERS.get(kind)
            if handler is not None:
                await handler(self, event)
        if completed:
            await self._emit_completed_turns(completed)

    async def _emit_completed_turns(self, turns: list[TurnRecord]) -> None:
        for turn in turns:
            await self.push_frame(TavusTurnFrame(turn=turn))
            await self._tavus._call_event_handler("on_turn_completed", turn)

    async def _on_unknown(self, event: ev.UnknownEvent) -> None:
        self._tavus.stats["unknown_events"] += 1
        logger.debug(f"{self}: unknown event {event.event_type}")
        await self.push_frame(TavusEventFrame(event=event))

    async def _on_joined(self, event: ev.Event) -> None:
        await self._tavus._on_replica_joined(event)

    async def _on_shutdown(self, event: ev.ShutdownEvent) -> None:
        logger.info(f"{self}: Tavus is shutting the conversation down ({event.reason})")
        self._tavus._shutting_down = True
        await self._replica_stopped_speaking_locally()
        await self._tavus._call_event_handler("on_shutdown", event)
        if self._tavus.params.end_on_shutdown:
            await self.push_frame(EndWorkerFrame(reason=event.reason), FrameDirection.UPSTREAM)

    async def _on_utterance(self, event: ev.UtteranceEvent) -> None:
        tavus = self._tavus
        if event.role == ev.ROLE_USER:
            injected = tavus._take_injected(event.speech)
            if injected and event.turn_idx is not None:
                tavus.ledger.mark_injected(event.turn_idx)
            if tavus.params.emit_transcriptions and not injected:
                await self.push_frame(
                    TranscriptionFrame(
                        text=event.speech,
                        user_id="user",
                        timestamp=time_now_iso8601(),
                        result=event,
                        finalized=True,
                    )
                )
            if self._pending_user_stop:
                self._pending_user_stop = False
                await self.push_frame(ProposedUserStoppedSpeakingFrame())
            frame = TavusUtteranceFrame(
                role=ev.ROLE_USER,
                text=event.speech,
                turn_idx=event.turn_idx,
                injected=injected,
                event=event,
            )
        else:
            frame = TavusUtteranceFrame(
                role=ev.ROLE_PAL, text=event.speech, turn_idx=event.turn_idx, event=event
            )
        await self.push_frame(frame)
        if tavus._has_handlers("on_utterance"):
            await tavus._call_event_handler("on_utterance", frame)

    async def _on_streaming(self, event: ev.UtteranceStreamingEvent) -> None:
        tavus = self._tavus
        if event.role == ev.ROLE_USER:
            if not event.final and tavus.params.emit_transcriptions:
                await self.push_frame(
                    InterimTranscriptionFrame(
                        text=event.speech,
                        user_id=event.participant_id or "user",
                        timestamp=time_now_iso8601(),
                        result=event,
                    )
                )
            return
        if event.final:
            frame = TavusUtteranceFrame(
                role=ev.ROLE_PAL,
                text=event.speech,
                turn_idx=event.turn_idx,
                spoken=True,
                interrupted=event.is_interrupted,
                event=event,
            )
            await self.push_frame(frame)
            await tavus._call_event_handler("on_utterance", frame)
            if event.is_interrupted:
                await self._replica_interrupted(event)

    async def _on_speaking(self, event: ev.SpeakingEvent) -> None:
        if event.role == ev.ROLE_USER:
            await self._user_speaking_changed(event.speaking)
            return
        tavus = self._tavus
        if event.speaking:
            if not tavus._replica_speaking:
                tavus._replica_speaking = True
                self._interrupt_reported = None
                if tavus.params.emit_bot_speaking:
                    await self.push_frame(BotStartedSpeakingFrame())
                    if self._ticker_task is None:
                        self._ticker_task = self.create_task(self._tick(), "bot-speaking")
                    self._speaking.set()
            return
        await self._replica_stopped_speaking_locally()
        if event.interrupted:
            await self._replica_interrupted(event)

    async def _replica_stopped_speaking_locally(self) -> None:
        tavus = self._tavus
        if not tavus._replica_speaking:
            return
        tavus._replica_speaking = False
        self._speaking.clear()
        if tavus.params.emit_bot_speaking:
            await self.push_frame(BotStoppedSpeakingFrame())

    async def _tick(self) -> None:
        interval = self._tavus.params.bot_speaking_interval_s
        while True:
            await self._speaking.wait()
            await asyncio.sleep(interval)
            if self._speaking.is_set():
                await self.push_frame(BotSpeakingFrame())

    async def _user_speaking_changed(self, speaking: bool) -> None:
        if speaking == self._user_speaking:
            return
        self._user_speaking = speaking
        mode = self._user_frames
        if mode == "speaking":
            await self.push_frame(
                UserStartedSpeakingFrame() if speaking else UserStoppedSpeakingFrame()
            )
        elif mode == "proposed":
            if speaking:
                await self.push_frame(ProposedUserStartedSpeakingFrame())
            else:
                # Must follow the final transcription, which Tavus sends after the stop.
                self._pending_user_stop = True

    async def _replica_interrupted(self, event: ev.Event) -> None:
        key = (event.turn_idx, event.inference_id)
        if self._interrupt_reported is not None and (
            self._interrupt_reported == key or event.inference_id is None
        ):
            return  # one interruption, reported by several events
        self._interrupt_reported = key
        tavus = self._tavus
        tavus.stats["replica_interrupted"] += 1
        await self.push_frame(
            TavusReplicaInterruptedFrame(
                turn_idx=event.turn_idx, inference_id=event.inference_id, event=event
            )
        )
        if tavus.params.interrupt_pipeline_on_barge_in:
            if tavus._output is not None:
                tavus._note_remote_interruption()
            await self.broadcast_interruption()

    async def _on_legacy_interrupted(self, event: ev.ReplicaInterruptedEvent) -> None:
        await self._replica_stopped_speaking_locally()
        await self._replica_interrupted(event)

    async def _on_tool_call(self, event: ev.ToolCallEvent) -> None:
        tavus = self._tavus
        await self.push_frame(TavusToolCallFrame(event=event))
        await tavus._call_event_handler("on_tool_call", event)
        await tavus.tools.handle_call(event, self)

    async def _on_analysis(self, event: ev.PerceptionAnalysisEvent) -> None:
        await self.push_frame(TavusPerceptionAnalysisFrame(analysis=event.analysis, event=event))

    async def _on_objective(self, event: ev.ObjectiveEvent) -> None:
        await self.push_frame(
            TavusObjectiveFrame(
                status=event.status,
                objective_name=event.objective_name,
                output_variables=dict(event.output_variables),
                event=event,
            )
        )

    async def _on_guardrail(self, event: ev.GuardrailEvent) -> None:
        await self.push_frame(
            TavusGuardrailFrame(guardrail=event.guardrail, reason=event.reason, event=event)
        )

    async def _on_present(self, event: ev.ReplicaPresentEvent) -> None:
        self._heartbeats_seen = True
        tavus = self._tavus
        if not tavus.replica_ready and not tavus._shutting_down and not tavus._left_room:
            # The first heartbeat also says the replica is there (reference 13.8).
            await tavus._on_replica_joined(event)


_HANDLERS = {
    ev.UnknownEvent: TavusInteractionsInput._on_unknown,
    ev.ReplicaJoinedEvent: TavusInteractionsInput._on_joined,
    ev.ReplicaPresentEvent: TavusInteractionsInput._on_present,
    ev.ShutdownEvent: TavusInteractionsInput._on_shutdown,
    ev.UtteranceEvent: TavusInteractionsInput._on_utterance,
    ev.UtteranceStreamingEvent: TavusInteractionsInput._on_streaming,
    ev.StartedSpeakingEvent: TavusInteractionsInput._on_speaking,
    ev.StoppedSpeakingEvent: TavusInteractionsInput._on_speaking,
    ev.ReplicaStartedSpeakingEvent: TavusInteractionsInput._on_speaking,
    ev.ReplicaStoppedSpeakingEvent: TavusInteractionsInput._on_speaking,
    ev.UserStartedSpeakingEvent: TavusInteractionsInput._on_speaking,
    ev.UserStoppedSpeakingEvent: TavusInteractionsInput._on_speaking,
    ev.ReplicaInterruptedEvent: TavusInteractionsInput._on_legacy_interrupted,
    ev.ToolCallEvent: TavusInteractionsInput._on_tool_call,
    ev.PerceptionToolCallEvent: TavusInteractionsInput._on_tool_call,
    ev.PerceptionAnalysisEvent: TavusInteractionsInput._on_analysis,
    ev.ObjectiveActivatedEvent: TavusInteractionsInput._on_objective,
    ev.ObjectiveCompletedEvent: TavusInteractionsInput._on_objective,
    ev.ObjectivePendingEvent: TavusInteractionsInput._on_objective,
    ev.GuardrailEvent: TavusInteractionsInput._on_guardrail,
}

__all__ = ["TavusInteractionsInput"]
