"""The sending half of the conversation core: readiness, the held queue, echo and interrupts.

:class:`Sender` turns interactions into :class:`~.effects.Transmit` effects. Every message is
built, measured and split (:mod:`.outbound`) *before* anything is returned: a send that fails
inside Pipecat's queued output path stops the transport's audio task, so an interaction
either becomes messages that each fit ``max_message_bytes`` or fails here, loudly.

- **Readiness**: until the transport has started and (with ``wait_for_replica``) the replica
  has joined, messages wait in a bounded FIFO (``max_pending``) and leave in order when it
  joins; past ``ready_timeout_s`` they fail with :class:`~.effects.SendFailed`.
- **Echo**: text responses and audio utterances are planned by :mod:`.echo`; with
  ``echo_realtime`` audio leaves at playback speed.
- **Interrupts**: :meth:`Sender.drop_echo` drops every pending echo; :meth:`Sender.interrupt`
  sends ``conversation.interrupt`` at most once per piece of speech: a burst of barge-ins
  while the replica still speaks sends one, and only new speech (the replica starting to
  speak, or an echo sent since) can be interrupted again.
- **Bookkeeping**: what was sent feeds the echo-in-flight estimate and the recognition of
  our own ``respond`` when Tavus reports it back as a user utterance.

Pure: time is passed in, nothing is awaited.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from .. import interactions as ix
from ..exceptions import LocalProtocolError, ReplicaNotReadyError, TavusInteractionsError
from ..params import TavusInteractionsParams
from .echo import DONE_SILENCE_S, EchoAudio, EchoText, InFlight, Pacer, echo_seconds
from .effects import SendFailed, Transmit
from .outbound import audio_chunk_bytes, audio_message, build, build_all

_SPACES = re.compile(r"\s+")
_ECHO = ix.Echo.EVENT_TYPE


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


@dataclass(slots=True)
class _Held:
    interaction: ix.Interaction
    message: dict[str, Any]
    urgent: bool


class Sender:
    """Outbound state of one conversation. Owned by the connection; use it through that."""

    def __init__(self, params: TavusInteractionsParams, stats: Counter[str]):
        """Create an idle sender.

        Args:
            params: The configuration.
            stats: The connection's counters (shared).
        """
        self._params = params
        self.stats = stats
        self.conversation_id: str | None = params.conversation_id
        #: Participant to address messages to (``target_replica``), else ``None``.
        self.target: str | None = None
        self.started = False
        self.ready = False
        self._held: deque[_Held] = deque()
        self._first_held_at: float | None = None
        self._overflow_reported = False
        self.text = EchoText(whole=params.text_echo == "whole")
        self.audio = EchoAudio(
            sample_rate=params.echo_sample_rate, fallback_s=params.echo_done_fallback_s
        )
        self.pacer = Pacer()
        self.in_flight = InFlight()
        self._chunk_cache: dict[tuple[str | None, int], int] = {}
        self._recent_responds: deque[str] = deque(maxlen=16)
        #: Set when one of this half's deadlines may have appeared or moved earlier.
        self.moved = False
        # What the last interruption dropped, released at the next call (see drop_echo).
        self._garbage: object = None
        #: How many interruptions dropped the echo so far (a driver that awaits between
        #: taking audio and handing it over compares this to drop audio cut meanwhile).
        self.interruptions = 0
        #: True when speech may have started since the last interrupt we sent (an echo
        #: left, or the connection saw the replica start speaking): only then is another
        #: interrupt worth sending.
        self.fresh = True

    # --- state ----------------------------------------------------------------------------

    @property
    def held(self) -> int:
        """How many messages wait for the replica."""
        return len(self._held)

    def echo_in_flight(self, now: float) -> bool:
        """Tell whether an echo may still be playing or is about to.

        True while an echo is open (a text response partly sent, an audio utterance not
        closed yet, audio waiting for pacing), and until a grace period after the estimated
        end of playback of every echo sent (audio by its duration, text at speaking rate).
        """
        if self.text.in_flight or self.audio.inference_id is not None or self.pacer:
            return True
        return self.in_flight.playing(now)

    def take_injected(self, text: str) -> bool:
        """Tell (once) whether ``text`` is what we recently sent with ``respond``."""
        if not self._recent_responds:
            return False
        try:
            self._recent_responds.remove(_normalise(text))
        except ValueError:
            return False
        return True

    def deadline(self) -> float | None:
        """The earliest time :meth:`tick` has work, or ``None``."""
        # Called after every message: no allocation on the common path.
        best = self.audio.deadline
        paced = self.pacer.deadline
        if paced is not None and (best is None or paced < best):
            best = paced
        if self._first_held_at is not None and self._waiting_for_replica():
            timeout = self._first_held_at + self._params.ready_timeout_s
            if best is None or timeout < best:
                best = timeout
        return best

    def _waiting_for_replica(self) -> bool:
        return (
            self._first_held_at is not None
            and self.started
            and self._params.wait_for_replica
            and not self.ready
        )

    # --- sending --------------------------------------------------------------------------

    def send(self, interaction: ix.Interaction, now: float, urgent: bool | None = None) -> list:
        """Build, check and send (or hold) an interaction.

        Raises:
            LocalProtocolError: Not an interaction, no conversation id, over the cap and not
                splittable, or ``urgent=False`` with a non-UUID target participant.
        """
        self._garbage = None
        parts = build_all(
            interaction,
            conversation_id=self.conversation_id,
            max_bytes=self._params.max_message_bytes,
            stats=self.stats,
        )
        urgent = interaction.URGENT if urgent is None else urgent
        if not urgent and self.target is not None:
            _check_uuid(self.target)
        out: list = []
        for part, message in parts:
            self._submit(part, message, urgent, now, out)
        return out

    def send_reported(self, interaction: ix.Interaction, now: float, urgent=None) -> list:
        """Like :meth:`send`, but a failure becomes a :class:`SendFailed` effect."""
        try:
            return self.send(interaction, now, urgent)
        except TavusInteractionsError as e:
            self.stats["send_failed"] += 1
            return [SendFailed(interaction, e)]

    def fits(self, interaction: ix.Interaction) -> bool:
        """Tell whether ``interaction`` goes out as one message under the cap."""
        try:
            return len(self.check(interaction)) == 1
        except (TavusInteractionsError, TypeError, ValueError, RecursionError):
            return False

    def check(self, interaction: ix.Interaction) -> list:
        """Build ``interaction``'s messages without sending them (raises what send would).

        Raises:
            LocalProtocolError: It cannot be built or split under the cap.
            TypeError: Something in it is not JSON (and other encoding errors: ValueError
                for a circular structure, RecursionError for a deep one).
        """
        return build_all(
            interaction,
            conversation_id=self.conversation_id or "c",
            max_bytes=self._params.max_message_bytes,
        )

    def _submit(self, interaction, message, urgent: bool, now: float, out: list) -> None:
        if self._must_hold():
            self._hold(_Held(interaction, message, urgent), now, out)
        else:
            self._transmit(interaction, message, urgent, now, out)

    def _must_hold(self) -> bool:
        return (
            not self.started
            or bool(self._held)
            or (self._params.wait_for_replica and not self.ready)
        )

    def _transmit(self, interaction, message, urgent: bool, now: float, out: list) -> None:
        if isinstance(interaction, ix.Echo):
            audio = interaction.audio
            seconds = echo_seconds(
                interaction.text, 0 if audio is None else len(audio), interaction.sample_rate
            )
            self.in_flight.sent(seconds, now)
            self.fresh = True
        elif isinstance(interaction, ix.Respond):
            self._recent_responds.append(_normalise(interaction.text))
        self.stats[interaction.EVENT_TYPE] += 1
        out.append(Transmit(message, urgent, self.target))

    def _hold(self, held: _Held, now: float, out: list) -> None:
        params = self._params
        if len(self._held) >= params.max_pending:
            self.stats["send_failed"] += 1
            error = ReplicaNotReadyError(
                f"{held.interaction.EVENT_TYPE} dropped: {len(self._held)} interactions are "
                f"already waiting for the replica (max_pending={params.max_pending})"
            )
            out.append(SendFailed(held.interaction, error, report=not self._overflow_reported))
            self._overflow_reported = True
            return
        self._held.append(held)
        self.stats["held"] += 1
        if self._first_held_at is None:
            self._first_held_at = now
            self.moved = True

    def release(self, now: float) -> list:
        """Send every held message in order, when the transport and the replica are ready."""
        out: list = []
        if not self.started or (self._params.wait_for_replica and not self.ready):
            return out
        held, self._held = self._held, deque()
        for item in held:
            self.stats["released"] += 1
            self._transmit(item.interaction, item.message, item.urgent, now, out)
        self._first_held_at = None
        self._overflow_reported = False
        return out

    def fail_held(self, why: str) -> list:
        """Fail every held message (one report for the batch)."""
        held, self._held = self._held, deque()
        self._first_held_at = None
        self._overflow_reported = False
        if not held:
            return []
        error = ReplicaNotReadyError(f"{len(held)} held interaction(s) not sent: {why}")
        self.stats["send_failed"] += len(held)
        last = len(held) - 1
        return [SendFailed(h.interaction, error, report=k == last) for k, h in enumerate(held)]

    def tick(self, now: float) -> list:
        """Do what is due: the ready timeout, the audio fallback close, paced audio."""
        self._garbage = None
        out: list = []
        if self._waiting_for_replica() and now >= self._first_held_at + (
            timeout := self._params.ready_timeout_s
        ):
            out += self.fail_held(f"the replica did not join within ready_timeout_s={timeout}")
        deadline = self.audio.deadline
        if deadline is not None and now >= deadline:
            out += self.close_audio(now)
        for echo, message in self.pacer.release(now):
            self._submit(echo, message, True, now, out)
        return out

    def finish(self, now: float) -> list:
        """The pipeline ends: close open echoes, drop paced audio, fail what is held.

        Audio still waiting for real-time pacing is dropped, not sent: sent now, it would
        keep the replica talking for as long after the pipeline ended (30 s queued, 30 s of
        speech). The utterance being played is closed with a short ``done: true`` silence,
        so the replica stops after the little it already has.
        """
        out: list = []
        if self.text.inference_id is not None:
            out += self.text_pieces(self.text.end(), now)
        if self.audio.inference_id is not None:
            out += self.close_audio(now)
        paced = self.pacer.drop()
        if paced:
            self.stats["echo_dropped"] += len(paced)
            (echo, _message), _seconds = paced[0]
            self._close_cut(echo.inference_id, now, out)
        out += self.fail_held("the pipeline ended before the replica joined")
        return out

    def _close_cut(self, inference_id: str | None, now: float, out: list) -> None:
        """Close an utterance whose rest was dropped, with a short silence and ``done``."""
        rate = self._params.echo_sample_rate
        size = int(rate * DONE_SILENCE_S) * 2
        chunk = self._chunk_cache.get((self.conversation_id, rate))
        silence = bytes(min(size, chunk) if chunk else size)
        echo = ix.Echo(audio=silence, sample_rate=rate, inference_id=inference_id, done=True)
        self._submit(echo, build(echo, conversation_id=self.conversation_id), True, now, out)

    # --- echo -------------------------------------------------------------------------------

    def text_pieces(self, pieces: list, now: float) -> list:
        """Send echo text pieces ``(text, inference_id, done)`` from :class:`EchoText`."""
        out: list = []
        for text, iid, done in pieces:
            out += self.send_reported(ix.Echo(text=text, inference_id=iid, done=done), now)
        return out

    def add_audio(self, pcm: bytes | memoryview, context_id: str | None, now: float) -> list:
        """Add PCM16 mono audio at the wire rate to the open utterance (opening one)."""
        self._garbage = None
        audio = self.audio
        if audio.is_dead_context(context_id):
            # Late audio of an interrupted utterance, even when the next one is open.
            self.stats["echo_dropped"] += 1
            return []
        if audio.inference_id is None:
            out = self._open_audio(context_id, now)
        else:
            out = []
        if audio.failed:
            self.stats["echo_dropped"] += 1
            return out
        for chunk in audio.add(pcm, now):
            self._audio_chunk(chunk, now, out)
        return out

    def _open_audio(self, context_id: str | None, now: float) -> list:
        rate = self._params.echo_sample_rate
        key = (self.conversation_id, rate)
        chunk = self._chunk_cache.get(key)
        error = None
        if chunk is None:
            try:
                chunk = audio_chunk_bytes(
                    conversation_id=self.conversation_id,
                    sample_rate=rate,
                    inference_id=str(uuid.uuid4()),  # ids are UUIDs: only the length counts
                    max_bytes=self._params.max_message_bytes,
                )
                self._chunk_cache[key] = chunk
            except LocalProtocolError as e:
                error = e
        iid = self.audio.open(context_id=context_id, chunk_bytes=chunk, now=now)
        self.moved = True  # the fallback close's deadline
        if error is None:
            return []
        self.stats["send_failed"] += 1
        return [SendFailed(ix.Echo(audio=b"", inference_id=iid, done=False), error)]

    def close_audio(self, now: float, tail: bytes = b"") -> list:
        """Close the open audio utterance (``done: true``)."""
        out: list = []
        for chunk in self.audio.close(tail):
            self._audio_chunk(chunk, now, out)
        return out

    def _audio_chunk(self, chunk: tuple, now: float, out: list) -> None:
        pcm, iid, done = chunk
        params = self._params
        rate = params.echo_sample_rate
        realtime = params.echo_realtime
        if realtime or self._must_hold():
            echo = ix.Echo(audio=pcm, sample_rate=rate, inference_id=iid, done=done)
            message = build(echo, conversation_id=self.conversation_id)
            if realtime:
                self.pacer.put((echo, message), len(pcm) / (2 * rate))
                self.moved = True
            else:
                self._hold(_Held(echo, message, True), now, out)
            return
        # Hot path (every ~60 ms of speech): what _transmit() does for an echo, without the
        # intermediate object.
        self.in_flight.sent(len(pcm) / (2 * rate), now)
        self.fresh = True
        self.stats[_ECHO] += 1
        message = audio_message(self.conversation_id, pcm, rate, iid, done)
        out.append(Transmit(message, True, self.target))

    # --- interruptions ------------------------------------------------------------------------

    def drop_echo(self) -> int:
        """Forget every pending echo (text, audio, paced, held); return how many."""
        self.interruptions += 1
        dropped = self.text.drop() + self.audio.drop()
        paced = self.pacer.drop()
        dropped += len(paced)
        before = len(self._held)
        # Freeing seconds of queued, encoded audio takes longer than sending the interrupt:
        # the dropped containers are kept until the next call, after the interrupt left.
        self._garbage = (paced, self._held if before else None)
        if before:
            self._held = deque(h for h in self._held if not isinstance(h.interaction, ix.Echo))
            dropped += before - len(self._held)
        if dropped:
            self.stats["echo_dropped"] += dropped
        return dropped

    def interrupt(self, now: float, *, needed: bool, force: bool = False) -> list:
        """Send ``conversation.interrupt`` if it can stop something (after :meth:`drop_echo`).

        One interrupt per piece of speech: after one is sent, later interruptions send
        nothing (counted as ``interrupt_coalesced``) until new speech may have started
        (:attr:`fresh`), so a burst of ``InterruptionFrame`` while the replica is still
        speaking (Tavus has not reported the stop yet) sends one message, not hundreds.

        Args:
            now: The current time.
            needed: Whether the replica speaks or an echo may be playing.
            force: Send whatever the state (an explicit ``TavusInterruptFrame``).
        """
        if not force:
            if not needed:
                self.stats["interrupt_skipped_idle"] += 1
                return []
            if not self.fresh:
                self.stats["interrupt_coalesced"] += 1
                return []
        return self.send_interrupt(now)

    def send_interrupt(self, now: float) -> list:
        """Send ``conversation.interrupt`` now: never held, an interrupt is about now."""
        interaction = ix.Interrupt()
        try:
            message = build(interaction, conversation_id=self.conversation_id)
        except LocalProtocolError as e:
            self.stats["send_failed"] += 1
            return [SendFailed(interaction, e)]
        out: list = []
        self._transmit(interaction, message, True, now, out)
        self.in_flight.stop()
        self.fresh = False
        return out

    def cancel(self) -> int:
        """Forget everything unsent (the pipeline is cancelled); return how much."""
        dropped = len(self._held) + len(self.pacer)
        self._held.clear()
        self.pacer.drop()
        self._first_held_at = None
        return dropped


def _check_uuid(participant: str) -> None:
    try:
        uuid.UUID(participant)
    except ValueError:
        # Daily raises on a non-UUID id, and inside the queued output path that exception
        # would stop the transport's audio task.
        raise LocalProtocolError(
            f"urgent=False with target_replica needs a UUID participant id, got "
            f"{participant!r}; send it urgent or without target_replica"
        ) from None


__all__ = ["Sender"]
