"""``TavusConnection``: one Tavus conversation as a sans-I/O state machine.

In the style of h11's ``Connection``: it takes what happened and returns what to do (a list
of :mod:`~pipecat_tavus_interactions.core.effects`), and does no I/O. Time is passed in.

It takes wire messages, app sends (echo included), local interrupts, tool outcomes,
participant changes and clock ticks (:meth:`~TavusConnection.tick` at
:meth:`~TavusConnection.next_deadline`); ``docs/architecture.md`` lists every call and effect.

What it owns: the sender checks, parsing, ``seq`` ordering and de-duplication
(:mod:`.ordering`), the turn ledger (:mod:`.turns`), the replica's readiness and speaking
state (one source of truth), interruption bookkeeping (an interruption Tavus reported is not
sent back), tool-call bookkeeping and the delivery policy (:mod:`.tools`), and everything
outbound (:mod:`.sender`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from .. import events as ev
from .. import interactions as ix
from ..exceptions import LocalProtocolError, RemoteProtocolError
from ..params import TavusInteractionsParams
from ..protocol import parse_message
from . import effects as fx
from .identity import ReplicaIdentity, looks_like_tavus
from .inbound import InboundHandlers
from .ordering import EventOrderer
from .sender import Sender
from .tools import ToolCalls
from .turns import TurnLedger

#: How long after Tavus reported an interruption a local one is taken to be its echo in
#: the pipeline (the broadcast ``InterruptionFrame`` reaching the output), not a new one.
REMOTE_INTERRUPT_WINDOW_S = 2.0


class TavusConnection(InboundHandlers):
    """The protocol state of one Tavus conversation; see the module docstring."""

    def __init__(self, params: TavusInteractionsParams | None = None, *, now: float = 0.0):
        """Create the state of a conversation that has not started.

        Args:
            params: The configuration.
            now: The current time (seconds on a monotonic clock).
        """
        self.params = params = params or TavusInteractionsParams()
        #: Counters by name (messages sent by type, drops by reason, ...).
        self.stats: Counter[str] = Counter()
        self.orderer = EventOrderer(window_s=params.reorder_window_ms / 1000.0)
        self.ledger = TurnLedger(max_turns=params.max_turns)
        self.tools = ToolCalls(params, self.ledger)
        self.sender = Sender(params, self.stats)
        self.identity = ReplicaIdentity(params)
        self._update_target()
        self.speaking = False
        self._shutting_down = False
        self._left_room = False
        self._last_message: float | None = None
        self._heartbeats_seen = False
        self._next_tick: float | None = None
        self._user_speaking = False
        self._pending_user_stop = False
        self._interrupt_reported: tuple[int | None, str | None] | None = None
        self._remote_interrupt_at: float | None = None
        self._error_counts: Counter[str] = Counter()
        # Set when a deadline may have appeared or moved earlier (see deadline_moved).
        self._moved = False
        # One handler per event model; subclasses (every speaking form) share their base's.
        handlers = (
            (ev.SpeakingEvent, self._on_speaking),
            (ev.ToolCallEvent, self._on_tool_call),
            (ev.UtteranceStreamingEvent, self._on_streaming),
            (ev.UtteranceEvent, self._on_utterance),
            (ev.ReplicaInterruptedEvent, self._on_legacy_interrupted),
            (ev.ReplicaJoinedEvent, self._replica_joined),
            (ev.ReplicaPresentEvent, self._on_present),
            (ev.ShutdownEvent, self._on_shutdown),
            (ev.UnknownEvent, self._on_unknown),
        )
        self._handlers = {
            cls: next(h for base, h in handlers if issubclass(cls, base))
            for cls in (*ev.EVENT_MODELS, ev.UnknownEvent)
            if any(issubclass(cls, base) for base, _ in handlers)
        }
        full = params.mode == "full"
        self._user_frames = full or params.user_turn_frames_in_echo

    def __repr__(self) -> str:
        return (
            f"TavusConnection(mode={self.params.mode!r}, "
            f"conversation_id={self.conversation_id!r}, ready={self.ready})"
        )

    @property
    def conversation_id(self) -> str | None:
        """The Tavus conversation id, once known."""
        return self.sender.conversation_id

    def set_conversation_id(self, conversation_id: str) -> None:
        """Set the conversation id (when it is only known after the pipeline is built).

        Raises:
            LocalProtocolError: The id is empty or not a string.
        """
        if not isinstance(conversation_id, str) or not conversation_id:
            raise LocalProtocolError("conversation_id must be a non-empty string")
        self.sender.conversation_id = conversation_id

    @property
    def replica_participant_id(self) -> str | None:
        """The replica's transport participant id, once known."""
        return self.identity.participant_id

    def set_replica_participant(self, participant_id: str) -> None:
        """Declare which transport participant is the replica."""
        self.identity.participant_id = participant_id
        self._update_target()

    def _update_target(self) -> None:
        target = self.identity.participant_id if self.params.target_replica else None
        self.sender.target = target

    @property
    def ready(self) -> bool:
        """True once the replica has joined (and until it leaves)."""
        return self.sender.ready

    def receive(self, message: Any, *, sender_id: str | None, now: float) -> list | None:
        """Take one app message from the transport.

        Args:
            message: The message as delivered (dict, str or bytes).
            sender_id: The sending participant (``None`` when the transport did not say).
            now: The current time.

        Returns:
            ``None`` when the message is not a Tavus message (forward it untouched), else
            the effects (possibly none: held for ordering, a duplicate).
        """
        identity = self.identity
        if sender_id is None or sender_id != identity.participant_id:
            if not looks_like_tavus(message):
                return None
            if not identity.trusts(sender_id):
                error, first = identity.foreign(sender_id, message)
                effect = self._report(error)
                return [fx.ProtocolErrorReported(error, first, effect.count)]
        self._last_message = now
        try:
            event = parse_message(message)
        except RemoteProtocolError as e:
            return [self._report(e)]
        cid = event.conversation_id
        ours = self.sender.conversation_id
        if cid is not None and ours and cid != ours:
            detail = f"conversation_id {cid!r} is not ours"
            return [self._report(RemoteProtocolError("other_conversation", detail, message))]
        out: list = []
        if event.dropped_fields:  # another conversation's fields are not ours to report
            event = self._kept_with_dropped_fields(event, message, out)
            if event is None:
                return out
        orderer = self.orderer
        before = orderer.restarted_with
        released = orderer.push(event, now)
        if orderer.restarted_with is before:
            for accepted in released:
                self._dispatch(accepted, now, out)
        else:
            self._dispatch_restarted(released, now, out)
        if orderer.pending:
            self._moved = True  # a gap is held: its window may end before other deadlines
        return out

    def _dispatch_restarted(self, released: list, now: float, out: list) -> None:
        """Dispatch across a new ``seq`` counter: a new turn numbering starts there too."""
        first_new = self.orderer.restarted_with
        for accepted in released:
            if accepted is first_new:
                out += [fx.TurnCompleted(turn) for turn in self.ledger.restart()]
            self._dispatch(accepted, now, out)

    def _report(self, error: RemoteProtocolError) -> fx.ProtocolErrorReported:
        reason = error.reason
        count = self._error_counts[reason] = self._error_counts[reason] + 1
        self.stats[f"dropped_{reason}"] += 1
        return fx.ProtocolErrorReported(error, count <= 5 or count % 100 == 0, count)

    def participant_joined(self, participant: Mapping[str, Any], *, now: float) -> list:
        """A participant joined the room (learns the replica's participant id).

        Once the replica is known it does not move: a second participant matching the
        name rules is reported (``second_replica``) and its messages are dropped as foreign
        until the real replica leaves the room.
        """
        if not self.identity.matches(participant):
            return []
        pid = participant.get("id")
        known = self.identity.participant_id
        if known is not None and pid != known and not self._left_room:
            detail = f"participant {pid!r} also looks like the replica; {known!r} stays it"
            return [self._report(RemoteProtocolError("second_replica", detail, participant))]
        out: list = []
        if self._left_room:  # the replica joined again: a new session, a new seq counter
            for event in self.orderer.new_session():
                self._dispatch(event, now, out)
        self._left_room = False
        self.set_replica_participant(pid)
        return out

    def participant_left(self, participant_id: str | None, *, now: float) -> list:
        """A participant left the room (the replica leaving ends its presence)."""
        out: list = []
        if self.identity.is_replica(participant_id):
            self._left_room = True
            self._replica_gone("participant_left", now, out)
        return out

    def start(self, *, now: float) -> list:
        """The transport can send: release what waits (once the replica has joined)."""
        self.sender.started = True
        self._moved = True
        return self.sender.release(now)

    def send(self, interaction: ix.Interaction, *, now: float, urgent: bool | None = None):
        """Send an interaction (held until the replica joins with ``wait_for_replica``).

        Long ``append_llm_context`` text, echo text and echo audio are split into messages
        that each fit ``max_message_bytes``; anything else over the cap is refused.

        Args:
            interaction: The interaction.
            now: The current time.
            urgent: Send as urgent (the default for every interaction).

        Raises:
            LocalProtocolError: ``interaction`` is not an interaction, the conversation id
                is not set, or the message is over the cap and cannot be split.
        """
        return self.sender.send(interaction, now, urgent)

    def send_reported(self, interaction: ix.Interaction, *, now: float) -> list:
        """Like :meth:`send`, but a failure becomes a ``SendFailed`` effect (for frames)."""
        return self.sender.send_reported(interaction, now)

    def echo_text_start(self, *, now: float) -> list:
        """An LLM response starts (``echo_text``)."""
        return self.sender.text_pieces(self.sender.text.start(), now)

    def echo_text_add(self, text: str, *, now: float) -> list:
        """More LLM text: every completed sentence leaves as it completes."""
        return self.sender.text_pieces(self.sender.text.add(text), now)

    def echo_text_end(self, *, now: float) -> list:
        """The LLM response ends: the rest leaves, the last piece with ``done: true``."""
        return self.sender.text_pieces(self.sender.text.end(), now)

    @property
    def echo_text_open(self) -> bool:
        """True while an echo text response is open."""
        return self.sender.text.inference_id is not None

    def echo_audio(self, pcm: bytes | memoryview, *, context_id: str | None, now: float) -> list:
        """Echo PCM16 mono audio at ``echo_sample_rate`` (opens an utterance if none is)."""
        return self.sender.add_audio(pcm, context_id, now)

    def echo_audio_close(self, *, now: float, tail: bytes = b"", context_id: str | None = None):
        """Close the open audio utterance (``TTSStoppedFrame``); a dead context is ignored."""
        if self.sender.audio.is_dead_context(context_id):
            return []
        return self.sender.close_audio(now, tail)

    def echo_audio_interrupted(self, context_id: str | None) -> bool:
        """Tell whether ``context_id`` is a TTS context of an interrupted utterance.

        Its late frames are dropped, and its ``TTSStoppedFrame`` closes nothing.

        Args:
            context_id: A TTS context id (``None`` never is).
        """
        return self.sender.audio.is_dead_context(context_id)

    @property
    def echo_audio_room(self) -> int | None:
        """How many more PCM bytes complete the open utterance's next chunk.

        For a driver that converts audio in batches: it says when a batch would make the
        next message. ``echo_audio(b"", ...)`` tells the core that audio came without
        adding any (it opens the utterance; the fallback close counts from then).
        ``None`` when no utterance is open, or the open one is failed.
        """
        return self.sender.audio.room

    @property
    def echo_audio_id(self) -> str | None:
        """The ``inference_id`` of the open audio utterance, or ``None``."""
        return self.sender.audio.inference_id

    @property
    def interruptions(self) -> int:
        """How many local interruptions there were (it changes when echo is dropped)."""
        return self.sender.interruptions

    def echo_in_flight(self, *, now: float) -> bool:
        """Tell whether an echo may still be playing or is about to."""
        return self.sender.echo_in_flight(now)

    def interrupt(self, *, now: float, force: bool = False) -> list:
        """A local interruption: drop pending echo, send ``conversation.interrupt`` if needed.

        Args:
            now: The current time.
            force: Send the interrupt whatever the state (``TavusInterruptFrame``).

        Returns:
            The interrupt's effects; none when Tavus itself reported this interruption
            (it is not sent back), when nothing is playing, or when this speech was already
            interrupted (see ``Sender.interrupt``).
        """
        sender = self.sender
        needed = self.speaking or sender.echo_in_flight(now)
        sender.drop_echo()
        remote = self._remote_interrupt_at
        if not force and remote is not None:
            self._remote_interrupt_at = None
            if now - remote <= REMOTE_INTERRUPT_WINDOW_S:
                self.stats["interrupt_skipped_remote"] += 1
                return []
        return sender.interrupt(now, needed=needed, force=force)

    def tool_finished(self, call_id: str, *, now: float, **outcome: Any) -> list:
        """A tool handler settled: deliver its outcome (see ``ToolCalls.settle``).

        Args:
            call_id: The ``ToolCall.call_id``.
            now: The current time.
            **outcome: ``status``, and ``result``, ``error``, ``reply`` as they apply.
        """
        return self.tools.settle(call_id, now=now, sender=self.sender, **outcome)

    @property
    def deadline_moved(self) -> bool:
        """True when a deadline may have appeared or moved earlier since :meth:`next_deadline`.

        Deadlines otherwise only move later (a heartbeat pushes the watchdog back), so a
        driver whose timer is armed can skip asking after every message while this is False.
        """
        return self._moved or self.sender.moved

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has work, or ``None`` (clears :attr:`deadline_moved`)."""
        self._moved = False
        self.sender.moved = False
        # Called after every message: no allocation on the common path.
        best = self.orderer.next_deadline()
        t = self._next_tick
        if t is not None and (best is None or t < best):
            best = t
        t = self.sender.deadline()
        if t is not None and (best is None or t < best):
            best = t
        t = self._heartbeat_deadline()
        if t is not None and (best is None or t < best):
            best = t
        return best

    def _heartbeat_deadline(self) -> float | None:
        timeout = self.params.heartbeat_timeout_s
        if timeout is None or not self._heartbeats_seen or not self.ready:
            return None
        return None if self._last_message is None else self._last_message + timeout

    def tick(self, *, now: float) -> list:
        """Do everything that is due at ``now``."""
        out: list = []
        for event in self.orderer.poll(now):
            self._dispatch(event, now, out)
        heartbeat = self._heartbeat_deadline()
        if heartbeat is not None and now >= heartbeat:
            self._replica_gone("heartbeat_lost", now, out)
        out += self.sender.tick(now)
        if self._next_tick is not None and now >= self._next_tick:
            self._next_tick = now + self.params.bot_speaking_interval_s
            out.append(fx.ReplicaSpeakingTick())
        return out

    def finish(self, *, now: float) -> list:
        """The inbound side ends: release held events, complete the open turns."""
        out: list = []
        for event in self.orderer.flush():
            self._dispatch(event, now, out)
        out += [fx.TurnCompleted(turn) for turn in self.ledger.flush(now)]
        self._next_tick = None
        return out

    def finish_output(self, *, now: float) -> list:
        """The outbound side ends: close open echoes, drop paced audio, fail what is held."""
        return self.sender.finish(now)

    def cancel(self) -> None:
        """The pipeline is cancelled: forget everything unsent."""
        dropped = self.sender.cancel()
        if dropped:
            self.stats["dropped_on_cancel"] += dropped
        self._next_tick = None


__all__ = ["REMOTE_INTERRUPT_WINDOW_S", "TavusConnection"]
