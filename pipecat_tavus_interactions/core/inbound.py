"""The conversation core's inbound event handlers: what each accepted event changes.

:class:`InboundHandlers` is mixed into :class:`~.connection.TavusConnection`; it holds no
state of its own (everything lives on the connection) and exists so each module stays small
enough to read whole. ``_dispatch`` takes one ordered, de-duplicated event, updates the
ledger, and appends the effects to ``out``. Pure: no asyncio, no pipecat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..exceptions import RemoteProtocolError
from . import effects as fx

if TYPE_CHECKING:
    from collections import Counter

    from ..params import TavusInteractionsParams
    from .sender import Sender
    from .tools import ToolCalls
    from .turns import TurnLedger


class InboundHandlers:
    """The per-event handlers of :class:`~.connection.TavusConnection` (a mixin)."""

    params: TavusInteractionsParams
    stats: Counter[str]
    ledger: TurnLedger
    sender: Sender
    tools: ToolCalls
    speaking: bool
    _user_speaking: bool

    def _kept_with_dropped_fields(self, event: ev.Event, message: Any, out: list):
        """Count and report an event's dropped fields; resolve a speaking event's role.

        Returns:
            The event to act on, or ``None`` when it cannot be attributed (reported).
        """
        stats = self.stats
        for name in event.dropped_fields:
            stats[f"field_dropped_{name}"] += 1
        detail = f"dropped unreadable field(s) {', '.join(event.dropped_fields)}; event kept"
        out.append(self._report(RemoteProtocolError("bad_field", detail, message)))
        if isinstance(event, ev.SpeakingEvent) and event.role is None:
            role = self._implied_role(event.speaking)
            if role is None:
                detail = "a speaking event without role, and its role is not implied"
                out.append(self._report(RemoteProtocolError("missing_field", detail, message)))
                return None
            event = event.model_copy(update={"role": role})
        return event

    def _implied_role(self, speaking: bool) -> str | None:
        """The one role whose state this change can be (a stop ends the open span)."""
        user, replica = self._user_speaking, self.speaking
        if speaking:
            candidates = [r for r, on in ((ev.ROLE_USER, user), (ev.ROLE_PAL, replica)) if not on]
        else:
            candidates = [r for r, on in ((ev.ROLE_USER, user), (ev.ROLE_PAL, replica)) if on]
        return candidates[0] if len(candidates) == 1 else None

    def _dispatch(self, event: ev.Event, now: float, out: list) -> None:
        completed = self.ledger.observe(event, now)
        out.append(fx.EventAccepted(event))
        kind = type(event)
        # Replica snapshots before the final one are two thirds of the traffic and change
        # nothing here (the ledger above keeps them).
        if kind is not ev.UtteranceStreamingEvent or event.final or event.role == ev.ROLE_USER:
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(event, now, out)
        for turn in completed:
            out.append(fx.TurnCompleted(turn))

    def _on_unknown(self, event: ev.UnknownEvent, now: float, out: list) -> None:
        self.stats["unknown_events"] += 1

    def _on_present(self, event: ev.ReplicaPresentEvent, now: float, out: list) -> None:
        if not self._heartbeats_seen:
            self._heartbeats_seen = True
            self._moved = True
        if not self.ready and not self._shutting_down and not self._left_room:
            # The first heartbeat also says the replica is there.
            self._replica_joined(event, now, out)

    def _on_shutdown(self, event: ev.ShutdownEvent, now: float, out: list) -> None:
        self._shutting_down = True
        self._stop_speaking(out)
        out.append(fx.Shutdown(event, self.params.end_on_shutdown))

    def _on_utterance(self, event: ev.UtteranceEvent, now: float, out: list) -> None:
        if event.role != ev.ROLE_USER:
            out.append(
                fx.Utterance(ev.ROLE_PAL, event.speech, event.turn_idx, False, False, False, event)
            )
            return
        injected = self.sender.take_injected(event.speech)
        if injected and event.turn_idx is not None:
            self.ledger.mark_injected(event.turn_idx)
        if self.params.emit_transcriptions and not injected:
            out.append(fx.UserTranscript(event.speech, True, event))
        if self._pending_user_stop:
            # A proposed stop must follow the final transcription, which Tavus sends after
            # the stop event.
            self._pending_user_stop = False
            out.append(fx.UserTurn(False))
        out.append(
            fx.Utterance(ev.ROLE_USER, event.speech, event.turn_idx, False, False, injected, event)
        )

    def _on_streaming(self, event: ev.UtteranceStreamingEvent, now: float, out: list) -> None:
        if event.role == ev.ROLE_USER:
            if not event.final and self.params.emit_transcriptions:
                out.append(fx.UserTranscript(event.speech, False, event))
            return
        interrupted = event.is_interrupted
        out.append(
            fx.Utterance(ev.ROLE_PAL, event.speech, event.turn_idx, True, interrupted, False, event)
        )
        if interrupted:
            self._replica_interrupted(event, now, out)

    def _on_speaking(self, event: ev.SpeakingEvent, now: float, out: list) -> None:
        if event.role == ev.ROLE_USER:
            self._user_speaking_changed(event.speaking, out)
            return
        if event.speaking:
            if not self.speaking:
                self.speaking = True
                self._interrupt_reported = None
                if self.params.emit_bot_speaking:
                    out.append(fx.ReplicaSpeaking(True))
                    self._next_tick = now + self.params.bot_speaking_interval_s
                    self._moved = True
            return
        self._stop_speaking(out)
        if event.interrupted:
            self._replica_interrupted(event, now, out)

    def _on_legacy_interrupted(self, event: ev.Event, now: float, out: list) -> None:
        self._stop_speaking(out)
        self._replica_interrupted(event, now, out)

    def _on_tool_call(self, event: ev.ToolCallEvent, now: float, out: list) -> None:
        call = self.tools.accept(event, now)
        if call is None:
            self.stats["tool_call_repeats"] += 1
            return
        out.append(fx.RunTool(call))

    def _stop_speaking(self, out: list) -> None:
        if not self.speaking:
            return
        self.speaking = False
        self._next_tick = None
        if self.params.emit_bot_speaking:
            out.append(fx.ReplicaSpeaking(False))

    def _user_speaking_changed(self, speaking: bool, out: list) -> None:
        if speaking == self._user_speaking:
            return
        self._user_speaking = speaking
        if not self._user_frames or self.params.user_turn_frames == "none":
            return
        if speaking or self.params.user_turn_frames == "speaking":
            out.append(fx.UserTurn(speaking))
        else:
            self._pending_user_stop = True

    def _replica_interrupted(self, event: ev.Event, now: float, out: list) -> None:
        key = (event.turn_idx, event.inference_id)
        reported = self._interrupt_reported
        if reported is not None and (reported == key or event.inference_id is None):
            return  # one interruption, reported by several events
        self._interrupt_reported = key
        self.stats["replica_interrupted"] += 1
        broadcast = self.params.interrupt_pipeline_on_barge_in
        if broadcast:
            self._remote_interrupt_at = now
        out.append(fx.ReplicaInterrupted(event.turn_idx, event.inference_id, event, broadcast))

    def _replica_joined(self, event: ev.Event | None, now: float, out: list) -> None:
        if self.ready:
            return
        self.sender.ready = True
        self._moved = True
        out += self.sender.release(now)
        out.append(fx.ReplicaJoined(event))

    def _replica_gone(self, reason: str, now: float, out: list) -> None:
        if not self.ready:
            return
        self.sender.ready = False
        self._moved = True
        self._stop_speaking(out)
        for turn in self.ledger.end_open_span(ev.ROLE_PAL):
            out.append(fx.TurnCompleted(turn))
        out.append(fx.ReplicaLeft(reason, self._shutting_down))


__all__ = ["InboundHandlers"]
