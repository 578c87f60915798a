"""``TavusInteractionsOutput``: Pipecat frames into interactions, and messages onto the wire.

This processor sits right before ``transport.output()``. It translates the frames it owns
into calls on the conversation core (which builds, sizes, splits, holds and paces every
message) and pushes the core's messages to the transport as urgent transport frames:

- ``echo_text``: ``LLMFullResponseStartFrame``/``LLMTextFrame``/``LLMFullResponseEndFrame``
  become streamed ``conversation.echo`` text (frames forwarded); ``TTSSpeakFrame`` becomes
  one echo (consumed; ``TTSStartedFrame``/``TTSTextFrame``/``TTSStoppedFrame`` are pushed
  instead, as a TTS would, so the assistant aggregator still records it).
- ``echo_audio``: ``OutputAudioRawFrame``/``TTSAudioRawFrame`` become echo audio (consumed;
  downmixed and resampled here, chunked by the core); ``TTSStoppedFrame`` closes the
  utterance (forwarded). Audio at another rate than the wire's is resampled in batches of
  about one message (see :mod:`.audio`); what a batch holds is resampled and sent when the
  utterance closes: at ``TTSStoppedFrame``, at ``EndFrame``, and at the fallback close
  (no audio for ``echo_done_fallback_s``), which this processor then makes itself, just
  before the core would.
- ``InterruptionFrame`` (either direction, forwarded) and ``TavusInterruptFrame``
  (consumed) become ``conversation.interrupt``.
- ``TavusInteractionFrame`` subclasses become their interaction (consumed).
- With ``mirror_context``: ``LLMMessagesUpdateFrame``/``LLMMessagesAppendFrame`` become
  ``overwrite_llm_context``/``append_llm_context`` (forwarded).

Everything else is forwarded unchanged. Every message goes out as an urgent transport frame
by default (echo included, so an interruption cannot cut an utterance's message stream
halfway; the core drops stale echo itself).

The processor runs in Pipecat's direct mode: a frame is processed in the task of the
processor that pushes it (the TTS, the LLM), not queued twice and handed to tasks of its own
(two queue hops a frame, at 50 audio frames a second). What you may notice: frames queue in
the processor before this one instead of in this one, so an interruption flushes them there,
and a slow step here (none is: the core is synchronous, handlers run as tasks) would hold
that processor. Order is unchanged: each direction's frames are processed in the order they
are pushed.

Urgent messages (every message, by default) are handed to the output transport right after
this processor by calling its ``send_message``, as that transport does with an urgent
message frame, once it has said it is ready (``OutputTransportReadyFrame``): the frame's hop
into the transport, and its observer events, cost more than building and encoding the
message. So observers do not see these message frames (``on_interaction_sent`` and the
recorder do see every message), and the send is awaited in the task that pushed the frame
here, as Pipecat's own Tavus client awaits it in its send task (Daily's ``send_message``
returns when daily-python has taken the message). Queued messages (``urgent=False``), and
every message when something else follows this processor, are pushed downstream as frames.
"""

from __future__ import annotations

import asyncio
import uuid
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
    OutputTransportReadyFrame,
    StartFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from .. import interactions as ix
from .audio import EchoResampler, frame_pcm16
from .frames import (
    TavusInteractionFrame,
    TavusInterruptFrame,
    TavusMessageFrame,
    TavusMessageUrgentFrame,
    daily_message_frames,
)

if TYPE_CHECKING:
    from pipecat.transports.base_output import BaseOutputTransport

    from ..core.effects import SendFailed, Transmit
    from .driver import Driver


# How long after start the output transport has to say it is ready (placement check).
_PLACEMENT_GRACE_S = 1.0
# How long before the core's fallback close this processor closes an utterance whose
# resampler holds audio (at most half the fallback delay), so the close carries that audio.
_FALLBACK_LEAD_S = 0.02


class TavusInteractionsOutput(FrameProcessor):
    """Turn Pipecat frames into Tavus interactions and push them to the transport.

    Created by :meth:`TavusInteractions.output`; place it right before
    ``transport.output()``. The module docstring lists the frames it translates.
    """

    #: Messages leave as transport frames pushed downstream (a relay sends them itself).
    PUSHES_TO_TRANSPORT = True

    #: Process frames in the pushing processor's task (no queues of its own).
    DIRECT_MODE = True

    def __init__(self, *, tavus: Driver, name: str | None = None):
        """Create the processor (use ``tavus.output()`` instead of calling this).

        Args:
            tavus: The facade that owns the conversation.
            name: Optional processor name used in logs.
        """
        super().__init__(name=name, enable_direct_mode=self.DIRECT_MODE)
        self._tavus = tavus
        self._conn = tavus.connection
        self._clock = tavus.clock
        self._run = tavus.run
        self._params = tavus.params
        self._resampler = EchoResampler(self._params.echo_sample_rate)
        self._echo_rate = self._params.echo_sample_rate
        # The fallback close of an utterance whose resampler holds audio (see _echo_audio).
        self._fallback_s = self._params.echo_done_fallback_s
        self._fallback_s -= min(_FALLBACK_LEAD_S, self._fallback_s / 2)
        self._held_at = 0.0
        self._fallback: asyncio.TimerHandle | None = None
        self._fallback_task: asyncio.Task | None = None
        # An output transport after this processor says it is ready (upstream) at start;
        # without one, what we push never reaches Tavus (see _check_placement).
        self._transport_ready = False
        self._placement_checked = False
        # The started output transport right after this processor, which urgent messages
        # are handed to directly (see transmit); None until it says it is ready.
        self._sink: BaseOutputTransport | None = None
        self._started_at: float | None = None

    # --- public API --------------------------------------------------------------------

    async def send_interaction(
        self, interaction: ix.Interaction, *, urgent: bool | None = None
    ) -> None:
        """Build, check and send an interaction (held until the replica is ready).

        Args:
            interaction: The interaction to send.
            urgent: Send as an urgent transport frame (the default for every interaction).
                ``False`` queues it behind the audio already queued in the output
                transport, where an interruption may drop it.

        Raises:
            LocalProtocolError: ``interaction`` is not an interaction, the conversation id is
                not set, or the message is over the cap and cannot be split.
        """
        await self._run(self._conn.send(interaction, now=self._clock(), urgent=urgent))

    def echo_in_flight(self) -> bool:
        """Tell whether an echo may still be playing (an interruption then sends an interrupt).

        Returns:
            True while an echo is open or until a grace period after its estimated end.
        """
        return self._conn.echo_in_flight(now=self._clock())

    async def transmit(self, effect: Transmit) -> None:
        """Push one of the core's messages to the transport.

        Args:
            effect: The message, its urgency and its addressee.
        """
        message = effect.message
        participant = effect.participant_id
        if participant is None:
            if effect.urgent:
                frame: Frame = TavusMessageUrgentFrame(message=message)
            else:
                frame = TavusMessageFrame(message=message)
        else:
            urgent_cls, queued_cls = daily_message_frames()
            cls = urgent_cls if effect.urgent else queued_cls
            frame = cls(message=message, participant_id=participant)
        if not self._placement_checked:
            self._check_placement(message.get("event_type"))
        sink = self._sink
        if sink is not None and effect.urgent:
            # What the output transport right after us does with an urgent message frame,
            # without the frame's hop into it (and its observer events): 16 echo messages
            # a second cost more in that hop than in everything else this processor does.
            await sink.send_message(frame)
        else:
            await self.push_frame(frame)
        if self._tavus.has_handlers("on_interaction_sent"):
            await self._tavus.emit("on_interaction_sent", message)

    async def report_failure(self, effect: SendFailed) -> None:
        """Report an interaction that was not sent (``on_send_failed`` and an ``ErrorFrame``).

        Args:
            effect: What failed and why.
        """
        await self._tavus.emit("on_send_failed", effect.interaction, effect.error)
        if not self._placement_checked:
            self._check_placement(effect.interaction.EVENT_TYPE)
        if effect.report:
            text = f"{effect.interaction.EVENT_TYPE} not sent: {effect.error}"
            await self.push_error(text, exception=effect.error)

    def _output_transport_next(self) -> BaseOutputTransport | None:
        """The processor after this one, when it is an output transport (the placement)."""
        # Imported here: loaded by the time a pipeline runs, not needed to import the package.
        from pipecat.transports.base_output import BaseOutputTransport

        after = self.next
        return after if isinstance(after, BaseOutputTransport) else None

    def _check_placement(self, where: str | None) -> None:
        """Say once, loudly, when the pipeline cannot deliver what this processor pushes.

        Judged at the first message (or failure) a while after start: the transport after
        us says it is ready upstream as it starts, which may come after the first messages.
        """
        started = self._started_at
        if started is None or self._clock() - started < _PLACEMENT_GRACE_S:
            return
        self._placement_checked = True
        if not self._transport_ready and self.PUSHES_TO_TRANSPORT:
            self._conn.stats["pushed_without_output_transport"] += 1
            logger.error(
                f"{self}: no output transport after tavus.output() reported ready, so "
                f"{where} (and what follows) may never reach Tavus. Place tavus.output() "
                "right before transport.output(): [..., tavus.output(), transport.output()]"
            )
        if not self._tavus.input_started:
            logger.error(
                f"{self}: tavus.input() is not running in this pipeline, so no replica event "
                "is read (no speaking state, transcripts or tool calls). Place it right after "
                "the transport's input: [transport.input(), tavus.input(), ...]"
            )

    # --- frame processing ------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Translate the frames this processor owns and forward everything else.

        Args:
            frame: The frame to process.
            direction: The direction it travels.
        """
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame):
            # Hot path in echo_audio mode (50 frames a second), so it is tested first.
            if (
                direction is FrameDirection.DOWNSTREAM
                and self._params.mode == "echo_audio"
                and frame.transport_destination is None
            ):
                await self._echo_audio(frame)
            else:
                await self.push_frame(frame, direction)
            return
        if isinstance(frame, InterruptionFrame):
            await self.push_frame(frame, direction)
            await self._run(self._conn.interrupt(now=self._clock()))
            return
        if direction is not FrameDirection.DOWNSTREAM:
            if isinstance(frame, OutputTransportReadyFrame):
                self._transport_ready = True
                self._sink = self._output_transport_next()
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, TavusInterruptFrame):
            await self._run(self._conn.interrupt(now=self._clock(), force=True))
            return
        if isinstance(frame, TavusInteractionFrame):
            await self._run(self._conn.send_reported(frame.interaction, now=self._clock()))
            return
        if isinstance(frame, TTSSpeakFrame) and self._params.mode == "echo_text":
            await self._tts_speak(frame)
            return
        if isinstance(frame, StartFrame):
            self._started_at = self._clock()
            await self.push_frame(frame, direction)
            await self._tavus.processor_started(self)
            await self._run(self._conn.start(now=self._clock()))
            return
        await self._translate(frame)
        await self.push_frame(frame, direction)

    async def _translate(self, frame: Frame) -> None:
        """The frames that are forwarded after the core has seen them."""
        now = self._clock()
        conn = self._conn
        mode = self._params.mode
        effects: Any = None
        if mode == "echo_text":
            if isinstance(frame, LLMTextFrame):
                if not frame.skip_tts:
                    effects = conn.echo_text_add(frame.text, now=now)
            elif isinstance(frame, LLMFullResponseStartFrame):
                effects = conn.echo_text_start(now=now)
            elif isinstance(frame, LLMFullResponseEndFrame):
                effects = conn.echo_text_end(now=now)
        elif mode == "echo_audio" and isinstance(frame, TTSStoppedFrame):
            if not conn.echo_audio_interrupted(frame.context_id):
                # (A late stop of an interrupted context must not flush the next utterance.)
                tail = await self._resampler.flush(conn.echo_audio_id)
                effects = conn.echo_audio_close(now=now, tail=tail, context_id=frame.context_id)
        if self._params.mirror_context and isinstance(
            frame, LLMMessagesUpdateFrame | LLMMessagesAppendFrame
        ):
            effects = self._mirror(frame, now)
        elif isinstance(frame, EndFrame):
            # What a resampler holds closes its utterance first (finishing would drop it).
            tail = await self._resampler.flush(conn.echo_audio_id)
            effects = conn.echo_audio_close(now=now, tail=tail) if tail else []
            effects += conn.finish_output(now=now)
        elif isinstance(frame, CancelFrame):
            conn.cancel()
            self._resampler.reset()
        if effects is not None:
            await self._run(effects)

    async def _echo_audio(self, frame: OutputAudioRawFrame) -> None:
        conn = self._conn
        context_id = getattr(frame, "context_id", None)
        if frame.sample_rate == self._echo_rate and not self._resampler.holds(conn.echo_audio_id):
            audio = frame_pcm16(frame)
            await self._run(conn.echo_audio(audio, context_id=context_id, now=self._clock()))
            return
        if conn.echo_audio_interrupted(context_id):
            conn.stats["echo_dropped"] += 1  # late audio of an interrupted TTS context
            return
        # Audio came, though it may wait to be resampled: the utterance opens at its first
        # frame (in flight, interruptible), and its fallback close counts from this frame.
        now = self._clock()
        effects = conn.echo_audio(b"", context_id=context_id, now=now)
        if effects or conn.deadline_moved:
            await self._run(effects)
        iid = conn.echo_audio_id
        room = conn.echo_audio_room
        if iid is None or room is None:
            return  # a failed utterance (counted)
        generation = conn.interruptions
        audio = await self._resampler.convert(frame, iid, room)
        if conn.interruptions != generation:
            conn.stats["echo_dropped"] += 1  # interrupted while resampling
            return
        if self._resampler.holds(iid):
            self._held_at = now
            if self._fallback is None:
                self._arm_fallback(now)
        if audio:
            await self._run(conn.echo_audio(audio, context_id=context_id, now=self._clock()))

    def _arm_fallback(self, now: float) -> None:
        """Close the utterance whose resampler holds audio just before the core would."""
        delay = self._held_at + self._fallback_s - now
        self._fallback = asyncio.get_running_loop().call_later(delay, self._fallback_due)

    def _fallback_due(self) -> None:
        self._fallback = None
        iid = self._conn.echo_audio_id
        if iid is None or not self._resampler.holds(iid) or self._fallback_task is not None:
            return
        now = self._clock()
        if now < self._held_at + self._fallback_s:
            self._arm_fallback(now)  # audio came since: wait for the new deadline
            return
        self._fallback_task = self.create_task(self._fallback_close(iid), "tavus-echo-fallback")

    async def _fallback_close(self, iid: str) -> None:
        """The fallback close (no audio for a while), carrying what the resampler holds."""
        try:
            conn = self._conn
            now = self._clock()
            if conn.echo_audio_id == iid and now >= self._held_at + self._fallback_s:
                tail = await self._resampler.flush(iid)
                await self._run(conn.echo_audio_close(now=now, tail=tail))
        finally:
            self._fallback_task = None

    async def _tts_speak(self, frame: TTSSpeakFrame) -> None:
        text = frame.text.strip()
        if not text:
            return
        iid = str(uuid.uuid4())
        echo = ix.Echo(text=text, inference_id=iid, done=True)
        await self._run(self._conn.send_reported(echo, now=self._clock()))
        if frame.append_to_context:
            # No TTS will speak this frame, so report it the way a TTS service would; the
            # assistant aggregator then records the text, as it would without Tavus.
            await self.push_frame(TTSStartedFrame(context_id=iid))
            await self.push_frame(TTSTextFrame(text, text_type=frame.text_type, context_id=iid))
            await self.push_frame(TTSStoppedFrame(context_id=iid))
            if not self._conn.echo_text_open:
                await self.push_frame(LLMAssistantPushAggregationFrame())

    # --- context mirroring -------------------------------------------------------------

    @staticmethod
    def render_messages(messages: list[Any]) -> str:
        """Render LLM context messages as readable text for Tavus's context.

        Args:
            messages: OpenAI-style messages (or Pipecat ``LLMSpecificMessage``s, skipped).

        Returns:
            One ``"role: text"`` line per message that has text; non-text parts are skipped.
        """
        # Imported here: the module pulls in PIL, which only context mirroring needs.
        from pipecat.processors.aggregators.llm_context import standard_message_text

        lines = []
        for message in messages:
            text = standard_message_text(message).strip()
            if not text:
                continue
            role = message.get("role", "unknown") if isinstance(message, dict) else "unknown"
            lines.append(f"{role}: {text}")
        return "\n".join(lines)

    def _mirror(self, frame: LLMMessagesUpdateFrame | LLMMessagesAppendFrame, now: float):
        text = self.render_messages(list(frame.messages))
        if isinstance(frame, LLMMessagesUpdateFrame):
            return self._conn.send_reported(ix.OverwriteLLMContext(text), now=now)
        if text:
            return self._conn.send_reported(ix.AppendLLMContext(text), now=now)
        return None

    async def cleanup(self):
        """Stop the core's timers and the tool handlers; wait for event handler tasks."""
        if self._fallback is not None:
            self._fallback.cancel()
            self._fallback = None
        if self._fallback_task is not None:
            await self.cancel_task(self._fallback_task)
        await self._tavus.cleanup()
        await super().cleanup()


__all__ = ["TavusInteractionsOutput"]
