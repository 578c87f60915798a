"""``TavusInteractionsOutput``: Pipecat frames become Tavus interactions on the data channel.

This processor sits right before ``transport.output()`` and owns everything outbound:

- **Echo text** (``echo_text`` mode): LLM text is streamed to the replica one completed
  sentence at a time under one ``inference_id`` per response, ``done: true`` on the last
  message. ``TTSSpeakFrame`` becomes one echo. Text frames are still forwarded, so the
  assistant aggregator keeps building the context.
- **Echo audio** (``echo_audio`` mode): TTS audio is consumed, resampled and downmixed to
  PCM16 mono at ``echo_sample_rate``, and sent in chunks sized by their *encoded* length so
  every message stays under ``max_message_bytes``. ``TTSStoppedFrame`` (or a silence
  fallback) closes the utterance with ``done: true``.
- **Interruptions**: ``InterruptionFrame`` drops every pending echo of the current
  utterance and sends ``conversation.interrupt`` when the replica speaks or an echo is in
  flight, except when Tavus itself reported the barge-in.
- **Direct control frames** (``Tavus*Frame``) and optional **context mirroring**
  (``LLMMessagesUpdateFrame``/``LLMMessagesAppendFrame``).
- **Readiness gating**: until the replica has joined, built messages wait in a bounded FIFO
  and are released in order; past ``ready_timeout_s`` they fail loudly.

Every message is built and size-checked *before* it is pushed: a send that fails inside
Pipecat's queued output path stops the transport's audio task, so nothing unchecked may
reach it. All messages go out as urgent transport frames by default (echo included, so an
interruption cannot cut an utterance's message stream halfway; this processor drops stale
echo itself).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from binascii import b2a_base64
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMAssistantPushAggregationFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMMessagesUpdateFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.aggregators.llm_context import standard_message_text
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from . import interactions as ix
from .echo_text import EchoTextStream
from .exceptions import LocalProtocolError, ReplicaNotReadyError, TavusInteractionsError
from .frames import TavusInteractionFrame, TavusInterruptFrame
from .outbound import Part, build, build_all
from .protocol import max_audio_bytes

if TYPE_CHECKING:
    from .session import TavusInteractions

# --- message plumbing --------------------------------------------------------------------

#: Seconds added to the estimated end of echo playback before an echo stops counting as
#: "in flight" (network, buffering and render start-up).
ECHO_GRACE_S = 1.0
#: Speaking rate used to estimate how long a text echo plays (about 150 words a minute).
TEXT_ECHO_CHARS_PER_S = 14.0
#: In real-time pacing, how far ahead of the playback clock chunks may be sent, so the
#: replica's buffer never runs dry on network jitter.
REALTIME_LEAD_S = 0.2
#: Length of the silence that closes an audio utterance with nothing left to send
#: (Pipecat's Tavus transport closes with 40 ms of silence too).
DONE_SILENCE_S = 0.04


_ECHO = ix.Echo.EVENT_TYPE


@dataclass(slots=True)
class _Held:
    interaction: ix.Interaction
    message: dict[str, Any]
    urgent: bool


class TavusInteractionsOutput(FrameProcessor):
    """Turn Pipecat frames into Tavus interactions and push them to the transport.

    Created by :meth:`TavusInteractions.output`; place it right before
    ``transport.output()``. All configuration comes from the facade's
    :class:`~pipecat_tavus_interactions.params.TavusInteractionsParams`.

    Frames it translates (downstream only, unless noted):

    - ``echo_text``: ``LLMFullResponseStartFrame``/``LLMTextFrame``/``LLMFullResponseEndFrame``
      become streamed ``conversation.echo`` text (frames forwarded); ``TTSSpeakFrame``
      becomes one echo (consumed; ``TTSStartedFrame``/``TTSTextFrame``/``TTSStoppedFrame``
      are pushed instead, as a TTS would, so the assistant aggregator still records it).
    - ``echo_audio``: ``OutputAudioRawFrame``/``TTSAudioRawFrame`` become echo audio
      (consumed); ``TTSStoppedFrame`` closes the utterance (forwarded).
    - ``InterruptionFrame`` (either direction, forwarded) and ``TavusInterruptFrame``
      (consumed) become ``conversation.interrupt``.
    - ``TavusInteractionFrame`` subclasses become their interaction (consumed).
    - With ``mirror_context``: ``LLMMessagesUpdateFrame``/``LLMMessagesAppendFrame`` become
      ``overwrite_llm_context``/``append_llm_context`` (forwarded).

    Everything else is forwarded unchanged.
    """

    def __init__(self, *, tavus: TavusInteractions, name: str | None = None):
        """Create the processor (use ``tavus.output()`` instead of calling this).

        Args:
            tavus: The facade that owns the shared state and the configuration.
            name: Optional processor name used in logs.
        """
        super().__init__(name=name)
        self._tavus = tavus
        self._params = tavus.params
        self._started = False

        # readiness gating
        self._pending: deque[_Held] = deque()
        self._first_held_at: float | None = None
        self._ready_timer: asyncio.Task | None = None
        self._overflow_reported = False
        self._releasing = False

        # in-flight estimate for interruptions (tavus.clock seconds)
        self._echo_busy_until = 0.0

        # echo text: one response at a time
        self._text = EchoTextStream(
            send=self._send_echo_text, params=self._params, stats=tavus.stats
        )

        # echo audio: one utterance at a time
        self._a_iid: str | None = None
        self._a_chunk = 0
        self._a_pending = bytearray()
        self._a_resampler = None
        self._a_in_rate = 0
        self._a_context_id: str | None = None
        self._a_last_audio = 0.0
        self._a_failed = False
        self._a_fallback_task: asyncio.Task | None = None
        self._dead_contexts: deque[str] = deque(maxlen=16)
        self._chunk_cache: dict[tuple[str, int, int], int] = {}

        # real-time pacing of echo audio
        self._rt_queue: deque[tuple[ix.Echo, dict[str, Any], float]] = deque()
        self._rt_wakeup = asyncio.Event()
        self._rt_idle = asyncio.Event()
        self._rt_idle.set()
        self._rt_next_at = 0.0
        self._rt_task: asyncio.Task | None = None

        self._daily_frames: tuple[type, type] | None = None
        # Timers sleep with asyncio, so their deadlines use asyncio's clock (monotonic).
        self._now = time.monotonic

    # --- public API --------------------------------------------------------------------

    async def send_interaction(
        self, interaction: ix.Interaction, *, urgent: bool | None = None
    ) -> None:
        """Build, check and send an interaction (held until the replica is ready).

        Long ``append_llm_context`` text, long echo text and long echo audio are split into
        several messages that each fit ``max_message_bytes``; anything else over the cap is
        refused.

        Args:
            interaction: The interaction to send.
            urgent: Send as an urgent transport frame (the default for every interaction).
                ``False`` queues it behind the audio already queued in the output
                transport, where an interruption may drop it.

        Raises:
            LocalProtocolError: ``interaction`` is not an interaction, the conversation id is
                not set, or the message is over the cap and cannot be split.
        """
        for part, message in self._build_all(interaction):
            await self._submit(part, message, urgent=urgent)

    # --- readiness ---------------------------------------------------------------------

    async def _on_replica_ready(self) -> None:
        """Release held messages in order (called by the facade when the replica joins)."""
        await self._cancel_ready_timer()
        await self._release_pending()

    def _must_hold(self) -> bool:
        if not self._started:
            return True
        if self._params.wait_for_replica and not self._tavus.replica_ready:
            return True
        # While earlier messages are still being released, later ones queue behind them.
        return bool(self._pending)

    async def _hold(self, held: _Held) -> None:
        if len(self._pending) >= self._params.max_pending:
            self._tavus.stats["send_failed"] += 1
            error = ReplicaNotReadyError(
                f"{held.interaction.EVENT_TYPE} dropped: {len(self._pending)} interactions are "
                f"already waiting for the replica (max_pending={self._params.max_pending})"
            )
            await self._tavus._call_event_handler("on_send_failed", held.interaction, error)
            if not self._overflow_reported:
                self._overflow_reported = True
                await self.push_error(str(error), exception=error)
            return
        self._pending.append(held)
        self._tavus.stats["held"] += 1
        if self._first_held_at is None:
            self._first_held_at = self._now()
        logger.trace(f"{self}: holding {held.interaction.EVENT_TYPE} ({len(self._pending)})")
        self._maybe_start_ready_timer()

    def _maybe_start_ready_timer(self) -> None:
        if (
            self._ready_timer is None
            and self._started
            and self._pending
            and self._params.wait_for_replica
            and not self._tavus.replica_ready
        ):
            self._ready_timer = self.create_task(self._ready_timeout(), "ready_timeout")

    async def _cancel_ready_timer(self) -> None:
        task, self._ready_timer = self._ready_timer, None
        if task is not None and task is not asyncio.current_task():
            await self.cancel_task(task)

    async def _ready_timeout(self) -> None:
        first = self._first_held_at if self._first_held_at is not None else self._now()
        await asyncio.sleep(max(0.0, first + self._params.ready_timeout_s - self._now()))
        self._ready_timer = None
        if self._tavus.replica_ready:
            return
        await self._fail_pending(
            f"the replica did not join within ready_timeout_s={self._params.ready_timeout_s}"
        )

    async def _fail_pending(self, why: str) -> None:
        held = list(self._pending)
        self._pending.clear()
        self._first_held_at = None
        self._overflow_reported = False
        if not held:
            return
        error = ReplicaNotReadyError(f"{len(held)} held interaction(s) not sent: {why}")
        self._tavus.stats["send_failed"] += len(held)
        logger.warning(f"{self}: {error}")
        for item in held:
            await self._tavus._call_event_handler("on_send_failed", item.interaction, error)
        await self.push_error(str(error), exception=error)

    async def _release_pending(self) -> None:
        if self._releasing or not self._started:
            return
        if self._params.wait_for_replica and not self._tavus.replica_ready:
            return
        self._releasing = True
        try:
            if self._pending:
                logger.debug(f"{self}: releasing {len(self._pending)} held interaction(s)")
            while self._pending:
                item = self._pending.popleft()
                self._tavus.stats["released"] += 1
                await self._push(item.interaction, item.message, item.urgent)
        finally:
            self._releasing = False
            self._first_held_at = None
            self._overflow_reported = False

    # --- building and pushing ---------------------------------------------------------

    def _build(self, interaction: ix.Interaction, *, max_bytes: int | None) -> dict[str, Any]:
        return build(interaction, conversation_id=self._tavus.conversation_id, max_bytes=max_bytes)

    def _build_all(self, interaction: ix.Interaction) -> list[Part]:
        """Build an interaction's messages, splitting what can be split; raise otherwise."""
        return build_all(
            interaction,
            conversation_id=self._tavus.conversation_id,
            max_bytes=self._params.max_message_bytes,
            stats=self._tavus.stats,
        )

    def _chunk_bytes(self, rate: int, iid: str) -> int:
        key = (self._tavus.conversation_id or "", rate, len(iid))
        n = self._chunk_cache.get(key)
        if n is None:
            n = max_audio_bytes(
                conversation_id=key[0],
                sample_rate=rate,
                inference_id=iid,
                max_bytes=self._params.max_message_bytes,
            )
            self._chunk_cache[key] = n
        return n

    async def _submit(
        self, interaction: ix.Interaction, message: dict[str, Any], *, urgent: bool | None = None
    ) -> None:
        urgent = interaction.URGENT if urgent is None else urgent
        if self._must_hold():
            await self._hold(_Held(interaction, message, urgent))
            return
        await self._push(interaction, message, urgent)

    def _transport_frame(self, message: dict[str, Any], urgent: bool) -> Frame:
        participant = self._tavus.replica_participant_id if self._params.target_replica else None
        if participant is None:
            if urgent:
                return OutputTransportMessageUrgentFrame(message=message)
            return OutputTransportMessageFrame(message=message)
        if self._daily_frames is None:
            from pipecat.transports.daily.transport import (
                DailyOutputTransportMessageFrame,
                DailyOutputTransportMessageUrgentFrame,
            )

            self._daily_frames = (
                DailyOutputTransportMessageUrgentFrame,
                DailyOutputTransportMessageFrame,
            )
        if urgent:
            return self._daily_frames[0](message=message, participant_id=participant)
        try:
            uuid.UUID(participant)
        except ValueError:
            # Daily raises on a non-UUID id, and inside the queued output path that
            # exception would stop the transport's audio task.
            raise LocalProtocolError(
                f"urgent=False with target_replica needs a UUID participant id, got "
                f"{participant!r}; send it urgent or without target_replica"
            ) from None
        return self._daily_frames[1](message=message, participant_id=participant)

    async def _push(self, interaction: ix.Interaction, message: dict[str, Any], urgent: bool):
        frame = self._transport_frame(message, urgent)
        if isinstance(interaction, ix.Echo):
            self._note_echo_sent(interaction)
        elif isinstance(interaction, ix.Respond):
            self._tavus._note_respond(interaction.text)
        await self.push_frame(frame)
        self._tavus.stats[interaction.EVENT_TYPE] += 1
        await self._tavus._call_event_handler("on_interaction_sent", message)

    async def _send_from_frame(self, interaction: ix.Interaction, urgent: bool | None = None):
        """Send for a frame: failures are reported (event + ErrorFrame), never raised."""
        try:
            await self.send_interaction(interaction, urgent=urgent)
        except TavusInteractionsError as e:
            await self._report_failure(interaction, e)

    async def _report_failure(self, interaction: ix.Interaction, error: Exception) -> None:
        self._tavus.stats["send_failed"] += 1
        await self._tavus._call_event_handler("on_send_failed", interaction, error)
        await self.push_error(f"{interaction.EVENT_TYPE} not sent: {error}", exception=error)

    # --- in-flight estimate ----------------------------------------------------------

    def _note_echo_sent(self, echo: ix.Echo) -> None:
        now = self._tavus.clock()
        if echo.audio is not None:
            seconds = len(echo.audio) / (2 * (echo.sample_rate or 16000))
        else:
            seconds = len(echo.text or "") / TEXT_ECHO_CHARS_PER_S
        self._echo_busy_until = max(self._echo_busy_until, now) + seconds

    def echo_in_flight(self) -> bool:
        """Tell whether an echo may still be playing or is about to.

        True while an echo utterance is open (a text response or an audio utterance that
        has not been closed with ``done: true``, or audio still waiting for real-time
        pacing), and until ``ECHO_GRACE_S`` after the estimated end of playback of every
        echo sent (audio by its duration, text at about 14 characters a second, playback
        assumed to start when a message is sent).

        Returns:
            True when an interruption should send ``conversation.interrupt``.
        """
        if self._text.in_flight:
            return True
        if self._a_iid is not None or self._rt_queue:
            return True
        return self._tavus.clock() < self._echo_busy_until + ECHO_GRACE_S

    # --- frame processing ------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Translate the frames this processor owns and forward everything else.

        Args:
            frame: The frame to process.
            direction: The direction it travels.
        """
        await super().process_frame(frame, direction)

        if isinstance(frame, InterruptionFrame):
            await self._handle_interruption(frame, direction)
            return
        if direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._start()
            return
        if isinstance(frame, TavusInterruptFrame):
            await self._interrupt(send="always")
            return
        if isinstance(frame, TavusInteractionFrame):
            await self._send_from_frame(frame.interaction)
            return

        mode = self._params.mode
        if mode == "echo_audio" and isinstance(frame, OutputAudioRawFrame):
            if frame.transport_destination is None:
                await self._on_audio(frame)
                return
        elif mode == "echo_audio" and isinstance(frame, TTSStoppedFrame):
            if frame.context_id is None or frame.context_id not in self._dead_contexts:
                await self._close_audio("tts_stopped")
        elif mode == "echo_text":
            if isinstance(frame, LLMTextFrame):
                if not frame.skip_tts:
                    await self._text.add(frame.text)
            elif isinstance(frame, LLMFullResponseStartFrame):
                await self._text.start()
            elif isinstance(frame, LLMFullResponseEndFrame):
                await self._text.end()
            elif isinstance(frame, TTSSpeakFrame):
                await self._on_tts_speak(frame)
                return

        if self._params.mirror_context and isinstance(
            frame, LLMMessagesUpdateFrame | LLMMessagesAppendFrame
        ):
            await self._mirror(frame)
        elif isinstance(frame, EndFrame):
            await self._on_end()
        elif isinstance(frame, CancelFrame):
            await self._on_cancel()

        await self.push_frame(frame, direction)

    async def _start(self) -> None:
        self._started = True
        if self._params.mode == "echo_audio" and self._params.echo_realtime:
            self._rt_task = self.create_task(self._realtime_sender(), "realtime_sender")
        if self._pending:
            if self._params.wait_for_replica and not self._tavus.replica_ready:
                self._maybe_start_ready_timer()
            else:
                await self._release_pending()

    async def _on_end(self) -> None:
        if self._text.inference_id is not None:
            await self._text.end()
        if self._a_iid is not None:
            await self._close_audio("end")
        if self._rt_queue:
            await self._rt_idle.wait()
        await self._fail_pending("the pipeline ended before the replica joined")
        await self._stop_tasks()

    async def _on_cancel(self) -> None:
        dropped = len(self._pending) + len(self._rt_queue)
        if dropped:
            self._tavus.stats["dropped_on_cancel"] += dropped
            logger.debug(f"{self}: cancelled with {dropped} unsent message(s)")
        self._pending.clear()
        self._rt_queue.clear()
        await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        await self._cancel_ready_timer()
        for attr in ("_a_fallback_task", "_rt_task"):
            task = getattr(self, attr)
            setattr(self, attr, None)
            if task is not None and task is not asyncio.current_task():
                await self.cancel_task(task)

    async def cleanup(self):
        """Cancel this processor's timers and sender tasks."""
        await super().cleanup()
        await self._stop_tasks()

    # --- interruptions ---------------------------------------------------------------

    async def _handle_interruption(self, frame: InterruptionFrame, direction: FrameDirection):
        await self.push_frame(frame, direction)
        remote = self._tavus._consume_remote_interruption()
        await self._interrupt(send="never" if remote else "if_needed")

    async def _interrupt(self, *, send: str) -> None:
        """Drop every pending echo, then send ``conversation.interrupt`` as asked.

        Args:
            send: ``"always"``, ``"never"`` (Tavus reported the barge-in itself) or
                ``"if_needed"`` (only when the replica speaks or an echo is in flight).
        """
        needed = self._tavus.replica_speaking or self.echo_in_flight()
        # Freeing seconds of queued, encoded audio takes longer than sending the
        # interrupt, so the dropped containers are only released after it is sent.
        garbage: list[Any] = []
        dropped = self._drop_echo(garbage)
        if dropped:
            self._tavus.stats["echo_dropped"] += dropped
        if send == "never":
            self._tavus.stats["interrupt_skipped_remote"] += 1
            logger.debug(f"{self}: interruption reported by Tavus; no interrupt sent back")
            return
        if send == "if_needed" and not needed:
            self._tavus.stats["interrupt_skipped_idle"] += 1
            logger.trace(f"{self}: interruption while the replica is silent; nothing to stop")
            return
        interaction = ix.Interrupt()
        try:
            message = self._build(interaction, max_bytes=None)
        except LocalProtocolError as e:
            await self._report_failure(interaction, e)
            return
        # Never held: an interrupt is about now, and held echoes were just dropped.
        await self._push(interaction, message, True)
        self._echo_busy_until = 0.0
        logger.debug(f"{self}: sent conversation.interrupt")

    def _drop_echo(self, garbage: list[Any]) -> int:
        """Forget the current text response and audio utterance; return what was dropped.

        Args:
            garbage: Receives the dropped containers, for the caller to release.
        """
        dropped = self._text.drop()
        if self._a_iid is not None:
            dropped += bool(self._a_pending)
            if self._a_context_id is not None:
                self._dead_contexts.append(self._a_context_id)
            self._a_iid = None
            self._a_pending = bytearray()
            self._a_resampler = None
            task, self._a_fallback_task = self._a_fallback_task, None
            if task is not None:
                task.cancel()
        if self._rt_queue:
            dropped += len(self._rt_queue)
            garbage.append(self._rt_queue)
            self._rt_queue = deque()
        self._rt_next_at = 0.0
        self._rt_idle.set()
        before = len(self._pending)
        if before:
            garbage.append(self._pending)
            kept = (h for h in self._pending if not isinstance(h.interaction, ix.Echo))
            self._pending = deque(kept)
            dropped += before - len(self._pending)
        return dropped

    # --- echo text -------------------------------------------------------------------

    async def _send_echo_text(self, text: str, iid: str, done: bool) -> None:
        echo = ix.Echo(text=text, inference_id=iid, done=done)
        try:
            parts = self._build_all(echo)
        except LocalProtocolError as e:
            await self._report_failure(echo, e)
            return
        for part, message in parts:
            await self._submit(part, message)

    async def _on_tts_speak(self, frame: TTSSpeakFrame) -> None:
        text = frame.text.strip()
        if not text:
            return
        iid = str(uuid.uuid4())
        await self._send_echo_text(text, iid, done=True)
        if frame.append_to_context:
            # No TTS will speak this frame, so report it the way a TTS service would; the
            # assistant aggregator then records the text, as it would without Tavus.
            await self.push_frame(TTSStartedFrame(context_id=iid))
            await self.push_frame(TTSTextFrame(text, text_type=frame.text_type, context_id=iid))
            await self.push_frame(TTSStoppedFrame(context_id=iid))
            if self._text.inference_id is None:
                await self.push_frame(LLMAssistantPushAggregationFrame())

    # --- echo audio ------------------------------------------------------------------

    def _to_mono(self, frame: OutputAudioRawFrame) -> bytes:
        audio = frame.audio
        if len(audio) % 2:
            audio = audio[:-1]
        channels = frame.num_channels
        if channels > 1:
            samples = np.frombuffer(audio, dtype=np.int16)
            samples = samples[: len(samples) - len(samples) % channels]
            mono = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
            audio = np.round(mono).astype(np.int16).tobytes()
        return audio

    async def _open_audio(self, frame: OutputAudioRawFrame) -> None:
        iid = str(uuid.uuid4())
        self._a_iid = iid
        self._a_pending = bytearray()
        self._a_resampler = None
        self._a_in_rate = frame.sample_rate
        self._a_context_id = getattr(frame, "context_id", None)
        self._a_failed = False
        self._a_last_audio = self._now()
        # Also closes a failed utterance, so it does not count as in flight for ever.
        self._a_fallback_task = self.create_task(self._audio_fallback(iid), "echo_fallback")
        try:
            self._a_chunk = self._chunk_bytes(self._params.echo_sample_rate, iid)
        except LocalProtocolError as e:
            self._a_failed = True
            await self._report_failure(ix.Echo(audio=b"", inference_id=iid, done=False), e)
            return
        logger.debug(f"{self}: echo audio utterance {iid} started")

    async def _on_audio(self, frame: OutputAudioRawFrame) -> None:
        # Hot path: a 20 ms frame arrives 50 times a second per conversation.
        context_id = getattr(frame, "context_id", None)
        if context_id is not None and context_id in self._dead_contexts:
            self._tavus.stats["echo_dropped"] += 1
            return
        if self._a_iid is None:
            await self._open_audio(frame)
        iid = self._a_iid
        if self._a_failed:
            self._tavus.stats["echo_dropped"] += 1
            return
        self._a_last_audio = self._now()
        audio = frame.audio
        if frame.num_channels != 1 or len(audio) % 2:
            audio = self._to_mono(frame)
        rate = self._params.echo_sample_rate
        if frame.sample_rate != rate:
            if self._a_resampler is None or frame.sample_rate != self._a_in_rate:
                self._a_resampler = create_stream_resampler()
                self._a_in_rate = frame.sample_rate
            audio = await self._a_resampler.resample(audio, frame.sample_rate, rate)
            if self._a_iid != iid:  # interrupted while resampling
                return
        pending = self._a_pending
        if len(pending) + len(audio) < self._a_chunk:
            pending += audio
            return
        await self._feed(audio, iid)

    async def _feed(self, audio: bytes, iid: str) -> None:
        """Cut ``audio`` into message-sized chunks without copying whole frames."""
        chunk = self._a_chunk
        pending = self._a_pending
        view = memoryview(audio)
        pos = 0
        if pending:
            pos = chunk - len(pending)
            pending += view[:pos]
            self._a_pending = bytearray()
            await self._send_audio(bytes(pending), iid, done=False)
            if self._a_iid != iid:
                return
        end = len(view)
        while end - pos >= chunk:
            await self._send_audio(view[pos : pos + chunk], iid, done=False)
            if self._a_iid != iid:  # an interruption arrived while the chunk was pushed
                return
            pos += chunk
        if pos < end:
            self._a_pending += view[pos:]

    async def _send_audio(self, audio: bytes | memoryview, iid: str, *, done: bool) -> None:
        # Chunks are sized by construction (at most max_audio_bytes() for this envelope),
        # so they need no size check.
        rate = self._params.echo_sample_rate
        realtime = self._params.echo_realtime
        if realtime or self._must_hold():
            echo = ix.Echo(audio=audio, sample_rate=rate, inference_id=iid, done=done)
            message = self._build(echo, max_bytes=None)
            if realtime:
                self._rt_queue.append((echo, message, len(audio) / (2 * rate)))
                self._rt_idle.clear()
                self._rt_wakeup.set()
            else:
                await self._hold(_Held(echo, message, True))
            return
        # Hot path (every ~60 ms of speech): the exact message build_message() makes for
        # ix.Echo(audio=..., sample_rate=..., inference_id=..., done=...) (a test holds
        # them equal), without the intermediate object and checks.
        message = {
            "message_type": "conversation",
            "event_type": _ECHO,
            "conversation_id": self._tavus.conversation_id,
            "properties": {
                "modality": "audio",
                "audio": b2a_base64(audio, newline=False).decode("ascii"),
                "sample_rate": rate,
                "inference_id": iid,
                "done": done,
            },
        }
        now = self._tavus.clock()
        self._echo_busy_until = max(self._echo_busy_until, now) + len(audio) / (2 * rate)
        await self.push_frame(self._transport_frame(message, True))
        self._tavus.stats[_ECHO] += 1
        await self._tavus._call_event_handler("on_interaction_sent", message)

    async def _close_audio(self, reason: str) -> None:
        iid = self._a_iid
        if iid is None:
            return
        self._a_iid = None
        resampler, self._a_resampler = self._a_resampler, None
        task, self._a_fallback_task = self._a_fallback_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if self._a_failed:
            return
        tail = bytes(self._a_pending)
        self._a_pending = bytearray()
        if resampler is not None:
            tail += await resampler.flush()
        if len(tail) % 2:
            tail = tail[:-1]
        chunk = self._a_chunk
        view = memoryview(tail)
        while len(view) > chunk:
            await self._send_audio(view[:chunk], iid, done=False)
            view = view[chunk:]
        if not len(view):
            silence = int(self._params.echo_sample_rate * DONE_SILENCE_S) * 2
            view = memoryview(bytes(min(silence, chunk)))
        await self._send_audio(view, iid, done=True)
        logger.debug(f"{self}: echo audio utterance {iid} closed ({reason})")

    async def _audio_fallback(self, iid: str) -> None:
        while self._a_iid == iid:
            delay = self._a_last_audio + self._params.echo_done_fallback_s - self._now()
            if delay <= 0:
                self._a_fallback_task = None
                await self._close_audio("no audio for echo_done_fallback_s")
                return
            await asyncio.sleep(delay)

    async def _realtime_sender(self) -> None:
        while True:
            if not self._rt_queue:
                self._rt_idle.set()
                self._rt_wakeup.clear()
                await self._rt_wakeup.wait()
                continue
            wait = self._rt_next_at - REALTIME_LEAD_S - self._now()
            if wait > 0:
                # Re-check the queue after sleeping: an interruption may have emptied it.
                await asyncio.sleep(wait)
                continue
            echo, message, seconds = self._rt_queue.popleft()
            self._rt_next_at = max(self._rt_next_at, self._now()) + seconds
            await self._submit(echo, message)

    # --- context mirroring -------------------------------------------------------------

    @staticmethod
    def render_messages(messages: list[Any]) -> str:
        """Render LLM context messages as readable text for Tavus's context.

        Args:
            messages: OpenAI-style messages (or Pipecat ``LLMSpecificMessage``s, skipped).

        Returns:
            One ``"role: text"`` line per message that has text; non-text parts are skipped.
        """
        lines = []
        for message in messages:
            text = standard_message_text(message).strip()
            if not text:
                continue
            role = message.get("role", "unknown") if isinstance(message, dict) else "unknown"
            lines.append(f"{role}: {text}")
        return "\n".join(lines)

    async def _mirror(self, frame: LLMMessagesUpdateFrame | LLMMessagesAppendFrame) -> None:
        text = self.render_messages(list(frame.messages))
        if isinstance(frame, LLMMessagesUpdateFrame):
            await self._send_from_frame(ix.OverwriteLLMContext(text))
        elif text:
            await self._send_from_frame(ix.AppendLLMContext(text))


__all__ = ["TavusInteractionsOutput"]
