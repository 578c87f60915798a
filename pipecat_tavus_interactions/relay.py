"""``TavusReplicaRelay``: the Tavus replica inside the bot's own transport.

Placed where Pipecat's ``TavusVideoService`` goes (after the TTS, right before
``transport.output()``), the relay puts the bot in two rooms: the user's (any Pipecat
transport) and the Tavus conversation's (:class:`~.relay_room.ReplicaRoom`: Daily for real,
:class:`~.simulator.room.SimulatedRoom` offline). It is one more driver of the conversation
core, beside ``tavus.input()`` and ``tavus.output()``, and it replaces both:

- **Outbound** it *is* ``tavus.output()`` (a subclass): echo text, echo audio (faster than
  real time, cut by an interruption), ``conversation.interrupt``, context mirroring and every
  ``TavusInteractionFrame`` go through the core as in direct mode; the messages leave
  through the Tavus room instead of being pushed to the user's transport.
- **Inbound** the room's app messages go into the core; the effects become the same frames
  and ``on_*`` handlers as in direct mode, pushed downstream from the relay. The replica's
  real speaking state comes out as ``BotStarted/StoppedSpeakingFrame`` (and
  ``BotSpeakingFrame``), in both directions as an output transport pushes them, so the user
  aggregator, RTVI and idle timeouts see when the face really talks.
- **Media** the replica's video becomes ``OutputImageRawFrame`` and its voice
  ``OutputAudioRawFrame`` (at the output transport's sample rate), once the output transport
  is ready. After an interruption the replica's audio is dropped until the replica has
  stopped and speaks again, so the cut utterance's tail never reaches the user. In ``full``
  mode the user's audio (``InputAudioRawFrame``) is the bot's microphone in the Tavus room.

The relay owns a :class:`~.TavusInteractions` (give one, or ``params`` to make one), so tools,
event handlers and the turn ledger are registered on ``relay.tavus`` exactly as in direct mode.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    OutputTransportReadyFrame,
    StartFrame,
    TTSStartedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup

from .exceptions import ConfigurationError
from .params import TavusInteractionsParams
from .pipeline.facade import TavusInteractions
from .pipeline.output import TavusInteractionsOutput
from .relay_room import ReplicaRoom, RoomAudio, RoomCallbacks, RoomVideo

__all__ = ["TavusReplicaRelay"]

_SPEAKING_FRAMES = (BotStartedSpeakingFrame, BotStoppedSpeakingFrame, BotSpeakingFrame)


class _RelayInbound:
    """The relay as the effect runner's inbound side (frames the core's events become)."""

    def __init__(self, relay: TavusReplicaRelay):
        self._relay = relay

    def __str__(self) -> str:
        return str(self._relay)

    async def push_frame(self, frame: Frame, direction=FrameDirection.DOWNSTREAM) -> None:
        await self._relay.push_inbound(frame, direction)

    @property
    def name(self) -> str:
        return self._relay.name

    @property
    def metrics_enabled(self) -> bool:
        return self._relay.metrics_enabled

    async def broadcast_interruption(self) -> None:
        await self._relay.replica_barge_in()

    def create_task(self, coroutine: Any, name: str | None = None) -> Any:
        return self._relay.create_task(coroutine, name)

    @property
    def pipeline_worker(self) -> Any:
        return self._relay.pipeline_worker


class TavusReplicaRelay(TavusInteractionsOutput):
    """Relay a Tavus replica into the bot's own transport, with the whole protocol.

    Replace ``TavusVideoService`` with it (same place: after the TTS, before
    ``transport.output()``); leave ``tavus.input()`` and ``tavus.output()`` out.

    Example::

        relay = TavusReplicaRelay(
            room=DailyReplicaRoom(api=TavusAPI(api_key=key, session=http),
                                  create={"pal_id": pal_id}),
            params=TavusInteractionsParams(mode="echo_audio"),
        )

        @relay.tavus.event_handler("on_turn_completed")
        async def on_turn(tavus, turn): ...

        pipeline = Pipeline([transport.input(), stt, user_agg, llm, tts, relay,
                             transport.output(), assistant_agg])
    """

    PUSHES_TO_TRANSPORT = False  # messages go to the Tavus room, not downstream
    # Queued, unlike tavus.output(): joining the room at StartFrame takes seconds, and
    # in direct mode it would hold the processor before the relay for that long.
    DIRECT_MODE = False

    def __init__(
        self,
        *,
        room: ReplicaRoom,
        tavus: TavusInteractions | None = None,
        params: TavusInteractionsParams | None = None,
        video_framerate: int = 30,
        name: str | None = None,
    ):
        """Create the relay.

        Args:
            room: The Tavus conversation's room (joined at ``StartFrame``, left at the end;
                a room that created its conversation ends it).
            tavus: The facade that owns the conversation (its ``input()``/``output()`` are
                then not used); one is made from ``params`` when omitted.
            params: The configuration of the facade made here.
            video_framerate: Replica video frames a second to capture and forward.
            name: Optional processor name.

        Raises:
            ConfigurationError: Both ``tavus`` and ``params`` are given, or the frame rate
                is not positive.
        """
        if tavus is not None and params is not None:
            raise ConfigurationError(
                "pass params= to TavusInteractions or to the relay, not both: the relay "
                "uses the facade's params"
            )
        if video_framerate <= 0:
            raise ConfigurationError(f"video_framerate must be positive, not {video_framerate}")
        tavus = tavus or TavusInteractions(params=params)
        super().__init__(tavus=tavus, name=name or f"{tavus.name}::relay")
        self.tavus = tavus
        self._room = room
        self._framerate = video_framerate
        self._mic = tavus.params.mode == "full"
        self._mic_resampler = create_stream_resampler()
        self._sample_rate = 24000
        self._transport_ready = False
        self._joined = False
        self._captured: set[str] = set()
        # Replica audio is cut from an interruption until the replica stopped and spoke again.
        self._cut = False
        self._stop_seen = False
        tavus.drive_with(_RelayInbound(self), self)

    @property
    def room(self) -> ReplicaRoom:
        """The Tavus conversation's room."""
        return self._room

    def can_generate_metrics(self) -> bool:
        """TTFB: from ``TTSStartedFrame`` to the replica starting to speak (echo audio)."""
        return True

    # --- lifecycle ------------------------------------------------------------------------

    async def setup(self, setup: FrameProcessorSetup):
        """Give the room the pipeline's task manager."""
        await super().setup(setup)
        self._sample_rate = setup.audio_out_sample_rate or self._sample_rate
        await self._room.setup(setup)

    async def _join(self) -> None:
        callbacks = RoomCallbacks(
            on_app_message=self._on_app_message,
            on_participant_joined=self._on_participant_joined,
            on_participant_left=self._on_participant_left,
            on_video=self._on_video,
            on_audio=self._on_audio,
        )
        try:
            await self._room.join(callbacks, sample_rate=self._sample_rate, microphone=self._mic)
        except Exception as err:  # a REST or network failure: report it, keep the pipeline
            await self.push_error(f"{self}: could not join the Tavus room: {err}", exception=err)
            return
        self._joined = True
        cid = self._room.conversation_id
        if cid is not None and self._conn.conversation_id is None:
            self.tavus.set_conversation_id(cid)

    async def _leave(self) -> None:
        self._joined = False
        try:
            await self._room.leave()
        except Exception as err:  # never let the end of the pipeline fail on the way out
            logger.warning(f"{self}: leaving the Tavus room failed: {err}")

    async def cleanup(self):
        """Leave the room (ending a conversation the room created), then clean up."""
        await self._leave()
        await super().cleanup()

    # --- frames ---------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Relay-specific handling first, then everything ``tavus.output()`` does.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        if isinstance(frame, InputAudioRawFrame):
            if self._mic and self._joined and direction is FrameDirection.DOWNSTREAM:
                await self._microphone(frame)
        elif isinstance(frame, StartFrame):
            await super().process_frame(frame, direction)
            await self._join()
            return
        elif isinstance(frame, InterruptionFrame):
            self._cut_replica_audio()
        elif isinstance(frame, OutputTransportReadyFrame):
            self._transport_ready = True
        elif isinstance(frame, TTSStartedFrame) and self._params.mode == "echo_audio":
            await self.start_ttfb_metrics()
        elif isinstance(frame, EndFrame):
            # What tavus.input() does at the end: release held events, close the turn.
            await self._run(self._conn.finish(now=self._clock()))
            await super().process_frame(frame, direction)
            await self._leave()
            return
        elif isinstance(frame, CancelFrame):
            await super().process_frame(frame, direction)
            await self._leave()
            return
        await super().process_frame(frame, direction)

    async def _microphone(self, frame: InputAudioRawFrame) -> None:
        audio = await self._mic_resampler.resample(
            frame.audio, frame.sample_rate, self._sample_rate
        )
        if audio:
            await self._room.write_microphone(
                audio, sample_rate=self._sample_rate, num_channels=frame.num_channels
            )

    async def transmit(self, effect) -> None:
        """Send one of the core's messages through the Tavus room.

        Args:
            effect: The message and its addressee.
        """
        await self._room.send_app_message(effect.message, effect.participant_id)
        if self._tavus.has_handlers("on_interaction_sent"):
            await self._tavus.emit("on_interaction_sent", effect.message)

    async def push_inbound(self, frame: Frame, direction: FrameDirection) -> None:
        """Push a frame of the core's inbound effects (speaking frames go both ways).

        Args:
            frame: The frame.
            direction: The direction the effect runner asked for.
        """
        if isinstance(frame, _SPEAKING_FRAMES):
            if isinstance(frame, BotStartedSpeakingFrame) and self._params.mode == "echo_audio":
                await self.stop_ttfb_metrics()
            up = type(frame)()
            up.broadcast_sibling_id = frame.id
            frame.broadcast_sibling_id = up.id
            await self.push_frame(frame, FrameDirection.DOWNSTREAM)
            await self.push_frame(up, FrameDirection.UPSTREAM)
            return
        # The replica's words go out as a TTSTextFrame from the shared effect runner
        # (emit_bot_output), as in direct mode.
        await self.push_frame(frame, direction)

    async def replica_barge_in(self) -> None:
        """Tavus says the user cut the replica off: interrupt the pipeline, as in direct mode."""
        self._cut_replica_audio()
        await self.broadcast_interruption()
        await self._run(self._conn.interrupt(now=self._clock()))

    # --- the room's side ------------------------------------------------------------------

    async def _on_app_message(self, message: Any, sender: str | None) -> None:
        effects = self._conn.receive(message, sender_id=sender, now=self._clock())
        if effects is not None:
            await self._run(effects)

    async def _on_participant_joined(self, participant: Any) -> None:
        await self._run(self._conn.participant_joined(participant, now=self._clock()))
        pid = participant.get("id")
        if pid and pid not in self._captured and self.tavus.is_replica_participant(participant):
            self._captured.add(pid)
            await self._room.capture_replica(pid, framerate=self._framerate)

    async def _on_participant_left(self, participant: Any, reason: str) -> None:
        pid = participant.get("id")
        self._captured.discard(pid)
        await self._run(self._conn.participant_left(pid, now=self._clock()))

    async def _on_video(self, video: RoomVideo) -> None:
        if self._transport_ready:
            frame = OutputImageRawFrame(image=video.image, size=video.size, format=video.format)
            await self.push_frame(frame)

    async def _on_audio(self, chunk: RoomAudio) -> None:
        if not self._transport_ready:
            return
        if self._cut and not self._reopen():
            self._conn.stats["relay_audio_dropped"] += 1
            return
        frame = OutputAudioRawFrame(
            chunk.audio, sample_rate=chunk.sample_rate, num_channels=chunk.num_channels
        )
        if chunk.inference_id is not None:
            frame.metadata["tavus_inference_id"] = chunk.inference_id
        await self.push_frame(frame)

    def _cut_replica_audio(self) -> None:
        self._cut = True
        self._stop_seen = not self._conn.speaking

    def _reopen(self) -> bool:
        """Forward again once the replica stopped (the cut utterance) and speaks again."""
        if not self._conn.speaking:
            self._stop_seen = True
            return False
        if self._stop_seen:
            self._cut = False
            return True
        return False
