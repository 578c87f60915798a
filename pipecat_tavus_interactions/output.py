"""``TavusInteractionsOutput``: Pipecat frames become Tavus interactions on the data channel.

This processor sits right before ``transport.output()``. It owns the routing of frames and
the putting of messages on the wire; the echo streams and message building it uses live in
their own modules:

- **Frame routing**: which frame becomes which interaction, and which frames are consumed
  or forwarded (see :class:`TavusInteractionsOutput`).
- **Echo text** (``echo_text`` mode) through
  :class:`~pipecat_tavus_interactions.echo_text.EchoTextStream`: one completed sentence at
  a time under one ``inference_id`` per response. ``TTSSpeakFrame`` becomes one echo.
- **Echo audio** (``echo_audio`` mode) through
  :class:`~pipecat_tavus_interactions.echo_audio.EchoAudioStream`: PCM16 mono chunks at
  ``echo_sample_rate``, each under ``max_message_bytes``, ``done: true`` to close; with
  ``echo_realtime``, paced by :class:`~pipecat_tavus_interactions.echo_audio.RealtimePacer`.
- **Interruptions**: ``InterruptionFrame`` drops every pending echo of the current
  utterance and sends ``conversation.interrupt`` when the replica speaks or an echo is in
  flight, except when Tavus itself reported the barge-in.
- **Direct control frames** (``Tavus*Frame``) and optional **context mirroring**
  (``LLMMessagesUpdateFrame``/``LLMMessagesAppendFrame``).
- **Readiness gating**: until the replica has joined, built messages wait in a bounded FIFO
  and are released in order; past ``ready_timeout_s`` they fail loudly.

Every message is built and size-checked (:mod:`~pipecat_tavus_interactions.outbound`)
*before* it is pushed: a send that fails inside Pipecat's queued output path stops the
transport's audio task, so nothing unchecked may reach it. All messages go out as urgent
transport frames by default (echo included, so an interruption cannot cut an utterance's
message stream halfway; this processor drops stale echo itself).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger
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
from .echo_audio import EchoAudioStream, RealtimePacer, audio_message
from .echo_text import EchoTextStream
from .exceptions import LocalProtocolError, ReplicaNotReadyError, TavusInteractionsError
from .frames import TavusInteractionFrame, TavusInterruptFrame
from .outbound import Part, build, build_all

if TYPE_CHECKING:
    from .session import TavusInteractions

#: Seconds added to the estimated end of echo playback before an echo stops counting as
#: "in flight" (network, buffering and render start-up).
ECHO_GRACE_S = 1.0
#: Speaking rate used to estimate how long a text echo plays (about 150 words a minute).
TEXT_ECHO_CHARS_PER_S = 14.0


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

        # Timers sleep with asyncio, so their deadlines use asyncio's clock (monotonic).
        self._now = time.monotonic

        # in-flight estimate for interruptions (tavus.clock seconds)
        self._echo_busy_until = 0.0

        # echo text: one response at a time
        self._text = EchoTextStream(
            send=self._send_echo_text, params=self._params, count=self._count
        )

        # echo audio: one utterance at a time, optionally paced at playback speed
        self._audio = EchoAudioStream(
            owner=self,
            params=self._params,
            count=self._count,
            conversation_id=lambda: self._tavus.conversation_id,
            now=self._now,
            send=self._send_audio,
            report_failure=self._report_failure,
        )
        self._pacer = RealtimePacer(now=self._now)
        self._rt_task: asyncio.Task | None = None

        self._daily_frames: tuple[type, type] | None = None

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

    def _count(self, name: str) -> None:
        # Through the facade every time: its stats may be replaced between runs.
        self._tavus.stats[name] += 1

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
        if self._audio.inference_id is not None or self._pacer:
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

        if isinstance(frame, OutputAudioRawFrame):
            # Hot path in echo_audio mode (50 frames a second), so it is tested first;
            # audio is neither an interruption, a control frame nor one of ours.
            if (
                direction is FrameDirection.DOWNSTREAM
                and self._params.mode == "echo_audio"
                and frame.transport_destination is None
            ):
                await self._audio.add(frame)
            else:
                await self.push_frame(frame, direction)
            return
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
        if mode == "echo_audio" and isinstance(frame, TTSStoppedFrame):
            if not self._audio.is_dead_context(frame.context_id):
                await self._audio.close("tts_stopped")
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
            self._rt_task = self.create_task(self._pacer.run(self._submit), "realtime_sender")
        if self._pending:
            if self._params.wait_for_replica and not self._tavus.replica_ready:
                self._maybe_start_ready_timer()
            else:
                await self._release_pending()

    async def _on_end(self) -> None:
        if self._text.inference_id is not None:
            await self._text.end()
        if self._audio.inference_id is not None:
            await self._audio.close("end")
        if self._pacer:
            await self._pacer.wait_idle()
        await self._fail_pending("the pipeline ended before the replica joined")
        await self._stop_tasks()

    async def _on_cancel(self) -> None:
        dropped = len(self._pending) + len(self._pacer)
        if dropped:
            self._tavus.stats["dropped_on_cancel"] += dropped
            logger.debug(f"{self}: cancelled with {dropped} unsent message(s)")
        self._pending.clear()
        self._pacer.clear()
        await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        await self._cancel_ready_timer()
        await self._audio.stop()
        task, self._rt_task = self._rt_task, None
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
        dropped += self._audio.drop()
        paced = self._pacer.drop()
        if paced:
            dropped += len(paced)
            garbage.append(paced)
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

    async def _send_audio(self, audio: bytes | memoryview, iid: str, done: bool) -> None:
        """Send, hold or pace one echo audio chunk (``EchoAudioStream``'s ``send``)."""
        # Chunks are sized by construction (at most max_audio_bytes() for this envelope),
        # so they need no size check.
        params = self._params
        rate = params.echo_sample_rate
        realtime = params.echo_realtime
        if realtime or self._must_hold():
            echo = ix.Echo(audio=audio, sample_rate=rate, inference_id=iid, done=done)
            message = self._build(echo, max_bytes=None)
            if realtime:
                self._pacer.put(echo, message, len(audio) / (2 * rate))
            else:
                await self._hold(_Held(echo, message, True))
            return
        # Hot path (every ~60 ms of speech): what _push() does for an Echo, without the
        # intermediate object; the message is built directly.
        tavus = self._tavus
        message = audio_message(tavus.conversation_id, audio, rate, iid, done)
        now = tavus.clock()
        busy = self._echo_busy_until
        self._echo_busy_until = (busy if busy > now else now) + len(audio) / (2 * rate)
        if params.target_replica:
            frame = self._transport_frame(message, True)
        else:
            frame = OutputTransportMessageUrgentFrame(message=message)
        await self.push_frame(frame)
        tavus.stats[_ECHO] += 1
        await tavus._call_event_handler("on_interaction_sent", message)

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
