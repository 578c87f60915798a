"""The turn ledger: one record per Tavus ``turn_idx``, and when each turn is complete.

This module owns :class:`TurnLedger`; its records (:class:`~.records.TurnRecord`,
:class:`~.records.SpeakingSpan`, :class:`~.records.ToolCallRecord`) are in :mod:`.records`.
It is pure (no asyncio, no pipecat): the conversation core feeds it the events released by
:class:`~.ordering.EventOrderer` (ordered, de-duplicated) and the tool calls and their
results, and the ledger says which turns each of those completed, exactly once each. Time
(``now``) is passed in, never read.

Grouping: an event with ``turn_idx`` belongs to that turn. Speaking, utterance and tool-call
events without one belong to the current turn (the highest ``turn_idx`` seen); other events
without one (``system.*``, perception analysis, objectives) belong to no turn. When a
deployment never sends ``turn_idx`` at all, the ledger numbers turns itself from 0: a user
utterance or user started-speaking arriving after the current turn completed opens the next.

Completion, exactly once per turn:

- when a newer turn starts (any event with a higher ``turn_idx``). If the replica is still
  speaking this turn's reply at that moment (a barge-in: the user's new turn starts before the
  replica's interrupted stop arrives), completion waits for that span to end: its stop, the
  replica's next start, yet another turn, or :meth:`TurnLedger.flush`. So the completed record
  already says the reply was cut off and what was really said;
- when the replica stops speaking after the reply (after the turn had a user utterance or a
  replica utterance or start) with no tool call of the turn still pending;
- if a tool call is still pending at that stop: when its result is recorded (unless the
  replica is speaking again, in which case its next stop), or when the next turn starts.

Late events for a completed turn still update its record while it is kept; they never
complete it again.

Memory is bounded: only the last ``max_turns`` records are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import events as ev
from ..exceptions import ConfigurationError
from .ledger_calls import ToolCallBook
from .records import (
    SpeakingSpan,
    TurnRecord,
)


@dataclass(slots=True)
class _Scratch:
    """The ledger's working state for one turn (not part of the record's meaning)."""

    # Per inference: intended text, and the best streaming snapshot (final, index, text).
    intended: dict[str | None, str] = field(default_factory=dict)
    spoken: dict[str | None, tuple[bool, int, str]] = field(default_factory=dict)
    has_reply: bool = False
    reply_stopped: bool = False
    # A newer turn started while the replica was still speaking this turn's reply.
    superseded: bool = False
    # The tool calls by id and by seq (index into record.tool_calls), and how many pend:
    # per-call work stays O(1) however many calls a turn has.
    spoken_prefix: str = ""  # the spoken text of every inference but the newest, joined
    call_ids: dict[str, int] = field(default_factory=dict)
    call_seqs: dict[int, int] = field(default_factory=dict)
    pending: int = 0


#: Text a turn record keeps per field (user, intended, spoken); the rest is cut off.
MAX_TURN_TEXT = 16_384
#: Inferences whose text a turn keeps apart (a filler and the answer are two).
MAX_TURN_INFERENCES = 64
# A turn_idx first seen this far below the current one is a late event of an older turn.
_LATE_TURNS = 8
# Further than this from the current turn, a new turn_idx is suspect: one absurd value is
# ignored (the event belongs to the current turn); _RESTART_CONFIRM events in a row that
# agree on a new numbering are a restarted counter.
_MAX_TURN_STEP = 1_000
_RESTART_CONFIRM = 3

# Event types that belong to the current turn when they carry no turn_idx.
_TURN_BOUND = (
    ev.UtteranceEvent,
    ev.UtteranceStreamingEvent,
    ev.SpeakingEvent,
    ev.ReplicaInterruptedEvent,
    ev.ToolCallEvent,
)


class TurnLedger(ToolCallBook):
    """Keeps a :class:`TurnRecord` per turn and reports each turn's completion once.

    Feed it events in the order :class:`~.ordering.EventOrderer`
    releases them; see the module docstring for the grouping and completion rules.
    """

    def __init__(self, *, max_turns: int = 100):
        """Create a ledger.

        Args:
            max_turns: How many turn records to keep (the newest). Older ones are dropped,
                and late events for them are ignored.

        Raises:
            ConfigurationError: ``max_turns`` is below 1.
        """
        if max_turns < 1:
            raise ConfigurationError(f"max_turns must be >= 1, got {max_turns}")
        self._max_turns = max_turns
        self._records: dict[int, TurnRecord] = {}  # insertion order ~ turn order
        self._open: dict[int, TurnRecord] = {}  # kept records not completed yet
        self._current: int | None = None
        self._dropped_upto: int | None = None  # highest turn_idx whose record was dropped
        self._seen_turn_idx = False  # False: the ledger numbers turns itself
        self._speaking: dict[str, tuple[TurnRecord, SpeakingSpan]] = {}  # open span per role
        self._scratch: dict[int, _Scratch] = {}  # working state of the kept records
        self._completed_count = 0
        self._suspect: tuple[int, int] | None = None  # (far turn_idx, events agreeing)
        #: The turn the last observed event was put in (``None``: none).
        self.last_turn_idx: int | None = None
        #: How many events had a ``turn_idx`` that was ignored as absurd.
        self.turn_idx_ignored = 0
        #: How many times the turn numbering started over (a new replica session).
        self.restarts = 0

    def __str__(self) -> str:
        return f"{type(self).__name__}(current={self._current})"

    # --- queries ----------------------------------------------------------------------

    @property
    def current_turn_idx(self) -> int | None:
        """The highest ``turn_idx`` seen (the current turn), or ``None`` before any."""
        return self._current

    @property
    def turns(self) -> list[TurnRecord]:
        """The kept records, oldest ``turn_idx`` first."""
        return sorted(self._records.values(), key=lambda r: r.turn_idx)

    @property
    def completed_count(self) -> int:
        """How many turns have completed since the ledger was created."""
        return self._completed_count

    def get(self, turn_idx: int) -> TurnRecord | None:
        """Return the kept record of ``turn_idx``, or ``None``.

        Args:
            turn_idx: The turn.
        """
        return self._records.get(turn_idx)

    # --- events -----------------------------------------------------------------------

    def observe(self, event: ev.Event, now: float) -> list[TurnRecord]:
        """Update the ledger with one (ordered, de-duplicated) event.

        Args:
            event: The event.
            now: The current time on our monotonic clock (stamps tool calls).

        Returns:
            The turns this event completed, oldest first (usually empty).
        """
        done: list[TurnRecord] = []
        record = self._record_for(event, done)
        if record is None:
            self.last_turn_idx = None
            return done
        self.last_turn_idx = record.turn_idx
        record.event_count += 1
        seq = event.seq
        if seq is not None:
            if record.first_seq is None or seq < record.first_seq:
                record.first_seq = seq
            if record.last_seq is None or seq > record.last_seq:
                record.last_seq = seq
        if isinstance(event, ev.SpeakingEvent):
            self._on_speaking(event, record, done)
        elif isinstance(event, ev.UtteranceStreamingEvent):
            self._on_streaming(event, record)
        elif isinstance(event, ev.UtteranceEvent):
            self._on_utterance(event, record)
        elif isinstance(event, ev.ToolCallEvent):
            self._on_tool_call(event, record, now)
        elif isinstance(event, ev.ReplicaInterruptedEvent):
            record.replica_interrupted = True
            opened = self._speaking.get(ev.ROLE_PAL)
            if opened is not None:
                opened[0].replica_interrupted = True
                opened[1].interrupted = True
        return done

    def _record_for(self, event: ev.Event, done: list[TurnRecord]) -> TurnRecord | None:
        turn_idx = event.turn_idx
        if turn_idx is None:
            if not isinstance(event, _TURN_BOUND):
                return None
            if self._seen_turn_idx:
                return None if self._current is None else self._records.get(self._current)
            return self._synthetic_record(event, done)
        if not self._seen_turn_idx:
            self._seen_turn_idx = True
        return self._record(turn_idx, done)

    def _record(self, turn_idx: int, done: list[TurnRecord]) -> TurnRecord | None:
        """Return the record of ``turn_idx``, starting the turn (and completing older ones).

        Turns are ordered by when they start in the conversation, not by the number alone:
        see :data:`_MAX_TURN_STEP` for how an absurd value or a restart is told apart.
        """
        current = self._current
        if current is not None:
            record = self._records.get(turn_idx)
            if record is not None or turn_idx == current:
                if self._suspect is not None:
                    self._suspect = None
                return record
            step = turn_idx - current
            if -_LATE_TURNS <= step < 0:
                if self._dropped_upto is not None and turn_idx <= self._dropped_upto:
                    return None  # its record was dropped already; don't bring it back
                # First sight of a turn older than the current one: already superseded.
                record = self._new_record(turn_idx, done)
                self._complete(record, done)
                return record
            if not 0 < step <= _MAX_TURN_STEP:
                if not self._restart_confirmed(turn_idx):
                    self.turn_idx_ignored += 1
                    return self._records.get(current)
                done += self.restart()
            self._suspect = None
        return self._start_turn(turn_idx, done)

    def _restart_confirmed(self, turn_idx: int) -> bool:
        """Count a far ``turn_idx``; True once enough events in a row agree on it."""
        suspect = self._suspect
        n = 1
        if suspect is not None and 0 <= turn_idx - suspect[0] <= _LATE_TURNS:
            n = suspect[1] + 1
        if n < _RESTART_CONFIRM:
            self._suspect = (turn_idx, n)
            return False
        return True

    def restart(self) -> list[TurnRecord]:
        """The turn numbering starts over (a new replica session): complete every open turn.

        The old records are dropped (their completion was reported), so the new session's
        ``turn_idx`` values never land in an old turn of the same number.

        Returns:
            The turns completed, oldest first.
        """
        done = self.flush(0.0)
        self.restarts += 1
        for store in (self._records, self._open, self._scratch, self._speaking):
            store.clear()
        self._current = self._dropped_upto = self._suspect = None
        return done

    def _start_turn(self, turn_idx: int, done: list[TurnRecord]) -> TurnRecord:
        open_turns = self._open
        if len(open_turns) == 1:
            self._supersede(next(iter(open_turns.values())), done)
        elif open_turns:
            for idx in sorted(open_turns):
                self._supersede(open_turns[idx], done)
        self._current = turn_idx
        return self._new_record(turn_idx, done)

    def _supersede(self, record: TurnRecord, done: list[TurnRecord]) -> None:
        """A newer turn started: complete ``record``, or defer while its reply is spoken.

        On a barge-in the user's new turn starts before the replica's interrupted stop and
        final snapshot arrive; waiting for them (one span at most) means the completed
        record says what was really said and that it was cut off.
        """
        opened = self._speaking.get(ev.ROLE_PAL)
        if opened is not None and opened[0] is record and not self._st(record).superseded:
            self._st(record).superseded = True
        else:
            self._complete(record, done)

    def _synthetic_record(self, event: ev.Event, done: list[TurnRecord]) -> TurnRecord | None:
        """Number turns ourselves for deployments that never send ``turn_idx``."""
        current = self._current
        record = None if current is None else self._records.get(current)
        starts_turn = getattr(event, "role", None) == ev.ROLE_USER and (
            isinstance(event, ev.UtteranceEvent)
            or (isinstance(event, ev.SpeakingEvent) and event.speaking)
        )
        if current is None or (starts_turn and record is not None and record.completed):
            return self._record(0 if current is None else current + 1, done)
        return record

    def _new_record(self, turn_idx: int, done: list[TurnRecord]) -> TurnRecord:
        record = TurnRecord(turn_idx=turn_idx)
        records = self._records
        records[turn_idx] = record
        self._open[turn_idx] = record
        while len(records) > self._max_turns:
            oldest = next(iter(records))
            dropped = records.pop(oldest)
            self._scratch.pop(oldest, None)
            if not dropped.completed:  # a deferred turn is completed before it is dropped
                self._complete(dropped, done)
            if self._dropped_upto is None or oldest > self._dropped_upto:
                self._dropped_upto = oldest
        return record

    def _st(self, record: TurnRecord) -> _Scratch:
        """The working state of ``record``'s turn."""
        scratch = self._scratch.get(record.turn_idx)
        if scratch is None:
            scratch = self._scratch[record.turn_idx] = _Scratch()
        return scratch

    def _complete(self, record: TurnRecord, done: list[TurnRecord]) -> None:
        if record.completed:
            return
        record.completed = True
        self._open.pop(record.turn_idx, None)
        self._completed_count += 1
        done.append(record)

    def _on_utterance(self, event: ev.UtteranceEvent, record: TurnRecord) -> None:
        if event.role == ev.ROLE_USER:
            text = event.speech
            if record.user_text is not None:
                if len(record.user_text) >= MAX_TURN_TEXT:
                    return
                text = f"{record.user_text} {text}"
            record.user_text = text[:MAX_TURN_TEXT]
            if event.user_audio_analysis is not None:
                record.user_audio_analysis = event.user_audio_analysis
        else:
            # Keyed by inference so a filler and the answer both count, a copy does not.
            scratch = self._st(record)
            intended = scratch.intended
            key = event.inference_id
            if key in intended or len(intended) < MAX_TURN_INFERENCES:
                intended[key] = event.speech[:MAX_TURN_TEXT]
                record.replica_intended_text = " ".join(intended.values())[:MAX_TURN_TEXT]
            scratch.has_reply = True

    def _on_streaming(self, event: ev.UtteranceStreamingEvent, record: TurnRecord) -> None:
        if event.role == ev.ROLE_USER:
            return
        key = event.inference_id
        index = event.content_index if event.content_index is not None else -1
        scratch = self._st(record)
        spoken = scratch.spoken
        best = spoken.get(key)
        if best is not None:
            was_final, best_index, _ = best
            # Never un-finalise a span, and ignore snapshots older than the one we have.
            if was_final and not event.final:
                return
            if index < best_index and not (event.final and not was_final):
                return
        elif len(spoken) >= MAX_TURN_INFERENCES:
            return
        speech = event.speech[:MAX_TURN_TEXT]
        if best is None and spoken:  # a new inference: the text so far becomes the prefix
            scratch.spoken_prefix = f"{record.replica_spoken_text} "
        spoken[key] = (event.final, index, speech)
        if best is None or next(reversed(spoken)) == key:
            text = scratch.spoken_prefix + speech  # the newest inference: O(1) in the count
        else:  # an older inference's late snapshot (rare): join them all again
            *older, newest = spoken.values()
            scratch.spoken_prefix = "".join(f"{s[2]} " for s in older)
            text = scratch.spoken_prefix + newest[2]
        record.replica_spoken_text = text[:MAX_TURN_TEXT]
        if event.final and event.is_interrupted:
            record.replica_interrupted = True

    def _on_speaking(
        self, event: ev.SpeakingEvent, record: TurnRecord, done: list[TurnRecord]
    ) -> None:
        role = event.role
        ts = event.timestamp
        if event.speaking:
            span = SpeakingSpan(role=role, inference_id=event.inference_id, started_ts=ts)
            record.spans.append(span)
            previous = self._speaking.get(role)
            self._speaking[role] = (record, span)
            if role == ev.ROLE_PAL:
                if previous is not None and self._st(previous[0]).superseded:
                    # The deferred turn's stop never came; the replica has moved on.
                    self._complete(previous[0], done)
                scratch = self._st(record)
                scratch.has_reply = True
                scratch.reply_stopped = False
                if ts is not None and (
                    record.replica_started_ts is None or ts < record.replica_started_ts
                ):
                    record.replica_started_ts = ts
                    self._update_latency(record)
            return
        opened = self._speaking.pop(role, None)
        if opened is None:
            # A stop without a start closes nothing, but is kept as a span of its own.
            span = SpeakingSpan(role=role, inference_id=event.inference_id, open=False)
            record.spans.append(span)
            owner = record
        else:
            owner, span = opened
            span.open = False
        span.stopped_ts = ts
        if event.duration is not None:
            span.duration = event.duration
        elif span.started_ts is not None and ts is not None:
            span.duration = ts - span.started_ts
        if event.interrupted:
            span.interrupted = True
        if role == ev.ROLE_USER:
            if ts is not None and (owner.user_stopped_ts is None or ts > owner.user_stopped_ts):
                owner.user_stopped_ts = ts
                self._update_latency(owner)
            return
        if event.interrupted:
            owner.replica_interrupted = True
        self._reply_stopped(owner, done)

    def _reply_stopped(self, owner: TurnRecord, done: list[TurnRecord]) -> None:
        """The replica stopped speaking ``owner``'s reply: the turn may be complete."""
        scratch = self._st(owner)
        if scratch.superseded:
            self._complete(owner, done)
            return
        if scratch.has_reply or owner.user_text is not None:
            scratch.reply_stopped = True
            if not owner.completed and not scratch.pending:
                self._complete(owner, done)

    def end_open_span(self, role: ev.Role) -> list[TurnRecord]:
        """Close ``role``'s open span when no stop event will come (the speaker left).

        Args:
            role: ``"pal"`` or ``"user"``.

        Returns:
            The turn this completed (a one-element list), or an empty list.
        """
        opened = self._speaking.pop(role, None)
        done: list[TurnRecord] = []
        if opened is None:
            return done
        owner, span = opened
        span.open = False
        if role == ev.ROLE_PAL:
            self._reply_stopped(owner, done)
        return done

    @staticmethod
    def _update_latency(record: TurnRecord) -> None:
        if record.user_stopped_ts is not None and record.replica_started_ts is not None:
            record.response_latency_s = record.replica_started_ts - record.user_stopped_ts

    def mark_injected(self, turn_idx: int | None) -> None:
        """Mark a turn's user text as our own ``respond`` (not something the user said).

        Args:
            turn_idx: The turn, or ``None`` for the current one.
        """
        turn = self._turn(turn_idx)
        if turn is not None:
            turn.user_injected = True

    def flush(self, now: float) -> list[TurnRecord]:
        """Complete every open turn (e.g. at shutdown).

        Args:
            now: The current time on our monotonic clock (taken for symmetry with
                :meth:`observe`; completing does not depend on it).

        Returns:
            The turns completed, oldest first.
        """
        done: list[TurnRecord] = []
        for idx in sorted(self._open):
            self._complete(self._open[idx], done)
        return done

    def _turn(self, turn_idx: int | None) -> TurnRecord | None:
        if turn_idx is None:
            turn_idx = self._current
            if turn_idx is None:
                return None
        return self._records.get(turn_idx)


__all__ = ["TurnLedger"]
