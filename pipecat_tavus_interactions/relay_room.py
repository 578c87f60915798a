"""The Tavus room as the relay sees it: join and leave, app messages, the replica's media.

:class:`~pipecat_tavus_interactions.relay.TavusReplicaRelay` puts the bot in two rooms: the
user's (whatever Pipecat transport the bot runs on) and the Tavus conversation's. This module
says what the relay needs from the second one, :class:`ReplicaRoom`, and gives the real one,
:class:`DailyReplicaRoom`: Pipecat's Daily client (``DailyTransportClient``) in the Tavus
conversation's Daily room, the way Pipecat's ``TavusVideoService`` joins it. The simulator's
room (:class:`~pipecat_tavus_interactions.simulator.room.SimulatedRoom`) is the offline one.

A room reports through :class:`RoomCallbacks`: app messages (with the sender's participant
id), participants joining and leaving (Daily's dict shapes), and the replica's video frames
and audio once :meth:`ReplicaRoom.capture_replica` asked for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger
from pipecat.frames.frames import OutputAudioRawFrame, OutputTransportMessageUrgentFrame
from pipecat.processors.frame_processor import FrameProcessorSetup

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from pipecat.transports.daily.transport import DailyCallbacks, DailyTransportClient

    from .api import Conversation, TavusAPI

__all__ = [
    "DailyReplicaRoom",
    "ReplicaRoom",
    "RoomAudio",
    "RoomCallbacks",
    "RoomVideo",
]


@dataclass(frozen=True, slots=True)
class RoomVideo:
    """One video frame of the replica.

    Parameters:
        image: The pixels, ``format`` encoded (``"RGB"``: 3 bytes a pixel, rows top down).
        size: ``(width, height)``.
        format: The colour format, as Pipecat's ``OutputImageRawFrame`` takes it.
    """

    image: bytes
    size: tuple[int, int]
    format: str = "RGB"


@dataclass(frozen=True, slots=True)
class RoomAudio:
    """A chunk of the replica's audio (16-bit PCM).

    Parameters:
        audio: The samples.
        sample_rate: Samples a second.
        num_channels: Interleaved channels.
        inference_id: The utterance it belongs to, when the room knows (the simulator
            does, Daily does not); copied into the forwarded frame's metadata.
    """

    audio: bytes
    sample_rate: int
    num_channels: int = 1
    inference_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoomCallbacks:
    """What a room calls; each is ``async``.

    Parameters:
        on_app_message: ``(message, sender_id)`` for every app message.
        on_participant_joined: ``(participant)`` in Daily's dict shape.
        on_participant_left: ``(participant, reason)``.
        on_video: ``(RoomVideo)`` for the captured replica's frames.
        on_audio: ``(RoomAudio)`` for the captured replica's audio.
    """

    on_app_message: Callable[[Any, str | None], Awaitable[None]]
    on_participant_joined: Callable[[Mapping[str, Any]], Awaitable[None]]
    on_participant_left: Callable[[Mapping[str, Any], str], Awaitable[None]]
    on_video: Callable[[RoomVideo], Awaitable[None]]
    on_audio: Callable[[RoomAudio], Awaitable[None]]


class ReplicaRoom(Protocol):
    """The Tavus conversation's room, as the relay drives it."""

    @property
    def conversation_id(self) -> str | None:
        """The conversation the room belongs to (known after :meth:`join` at the latest)."""

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Take the pipeline's task manager (called from the relay's own ``setup``)."""

    async def join(self, callbacks: RoomCallbacks, *, sample_rate: int, microphone: bool) -> None:
        """Join the room.

        Args:
            callbacks: Where messages, participants and media go.
            sample_rate: The rate captured audio is delivered at (the bot's output rate),
                and the rate of the microphone audio written.
            microphone: Publish a microphone (``full`` mode: Tavus hears the user).
        """

    async def capture_replica(self, participant_id: str, *, framerate: int) -> None:
        """Start delivering a participant's video and audio to the callbacks."""

    async def send_app_message(self, message: Any, participant_id: str | None) -> None:
        """Send an app message to the room (``None``: broadcast)."""

    async def write_microphone(self, audio: bytes, *, sample_rate: int, num_channels: int) -> None:
        """Play audio into the room as the bot's microphone (``full`` mode)."""

    async def leave(self) -> None:
        """Leave the room and end the conversation if the room created it (idempotent)."""


class DailyReplicaRoom:
    """The Tavus conversation's Daily room through Pipecat's ``DailyTransportClient``.

    Give it a conversation (its URL and token), or a :class:`~pipecat_tavus_interactions.api.
    TavusAPI` and the create arguments: it then creates the conversation when the relay
    starts and always ends it on :meth:`leave` (Tavus bills from creation until the end).

    Example::

        async with aiohttp.ClientSession() as http:
            room = DailyReplicaRoom(
                api=TavusAPI(api_key=key, session=http), create={"pal_id": "p123"}
            )
            relay = TavusReplicaRelay(room=room, params=TavusInteractionsParams(mode="echo_audio"))
    """

    def __init__(
        self,
        *,
        conversation: Conversation | None = None,
        api: TavusAPI | None = None,
        create: Mapping[str, Any] | None = None,
        bot_name: str = "Pipecat",
    ):
        """Create the room (nothing is created or joined until :meth:`join`).

        Args:
            conversation: A conversation to join (the room does not end it: its creator
                does).
            api: The REST client that creates (when ``conversation`` is ``None``) and ends
                the conversation.
            create: Keyword arguments of :meth:`TavusAPI.create_conversation`.
            bot_name: The bot's user name in the room.

        Raises:
            ConfigurationError: Neither a conversation nor an API client is given.
        """
        if conversation is None and api is None:
            raise ConfigurationError(
                "DailyReplicaRoom needs conversation=... (one to join) or api=TavusAPI(...) "
                "(to create one)"
            )
        self._conversation = conversation
        self._api = api
        self._create = dict(create or {})
        self._bot_name = bot_name
        self._created: str | None = None
        self._client: DailyTransportClient | None = None
        self._setup: FrameProcessorSetup | None = None
        self._callbacks: RoomCallbacks | None = None
        self._sample_rate = 24000

    def __repr__(self) -> str:
        return f"DailyReplicaRoom(conversation_id={self.conversation_id!r})"

    @property
    def conversation_id(self) -> str | None:
        """The conversation's id, once known."""
        conversation = self._conversation
        return conversation.conversation_id if conversation is not None else None

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Keep the pipeline's task manager for the Daily client.

        Args:
            setup: The relay's setup.
        """
        self._setup = setup

    async def join(self, callbacks: RoomCallbacks, *, sample_rate: int, microphone: bool) -> None:
        """Create the conversation if needed, then join its room.

        Args:
            callbacks: Where messages, participants and media go.
            sample_rate: Rate of captured and microphone audio.
            microphone: Publish a microphone track.
        """
        self._callbacks = callbacks
        self._sample_rate = sample_rate
        if self._conversation is None:
            assert self._api is not None  # checked in __init__
            self._conversation = await self._api.create_conversation(**self._create)
            self._created = self._conversation.conversation_id
            logger.info(f"{self}: created conversation {self._created}")
        from pipecat.transports.daily.transport import DailyParams, DailyTransportClient

        params = DailyParams(
            audio_in_enabled=True,
            audio_in_user_tracks=True,
            video_in_enabled=True,
            audio_out_enabled=microphone,
            microphone_out_enabled=microphone,
            audio_out_sample_rate=sample_rate,
            audio_in_sample_rate=sample_rate,
        )
        self._client = DailyTransportClient(
            self._conversation.conversation_url,
            self._conversation.meeting_token,
            self._bot_name,
            params,
            self._daily_callbacks(),
            "TavusReplicaRelay",
        )
        assert self._setup is not None, "the relay calls setup() before join()"
        await self._client.setup(self._setup)
        await self._client.join()

    def _daily_callbacks(self) -> DailyCallbacks:
        from pipecat.transports.daily.transport import DailyCallbacks

        callbacks = self._callbacks
        assert callbacks is not None
        ignored = {
            name: partial(_ignore, name)
            for name in DailyCallbacks.model_fields
            if name not in ("on_app_message", "on_participant_joined", "on_participant_left")
        }
        return DailyCallbacks(
            on_app_message=callbacks.on_app_message,
            on_participant_joined=callbacks.on_participant_joined,
            on_participant_left=callbacks.on_participant_left,
            **ignored,
        )

    async def capture_replica(self, participant_id: str, *, framerate: int) -> None:
        """Subscribe to the replica's camera and microphone.

        Args:
            participant_id: The replica's participant id.
            framerate: Video frames a second to capture.
        """
        client = self._client
        if client is None:
            return
        await client.capture_participant_video(participant_id, self._video, framerate)
        await client.capture_participant_audio(
            participant_id, self._audio, sample_rate=self._sample_rate
        )

    async def _video(self, _participant_id: str, frame: Any, _source: str) -> None:
        assert self._callbacks is not None
        video = RoomVideo(
            image=frame.buffer, size=(frame.width, frame.height), format=frame.color_format
        )
        await self._callbacks.on_video(video)

    async def _audio(self, _participant_id: str, audio: Any, _source: str) -> None:
        assert self._callbacks is not None
        chunk = RoomAudio(
            audio=audio.audio_frames, sample_rate=audio.sample_rate, num_channels=audio.num_channels
        )
        await self._callbacks.on_audio(chunk)

    async def send_app_message(self, message: Any, participant_id: str | None) -> None:
        """Send an app message (urgent: it never waits behind media).

        Args:
            message: The message.
            participant_id: The addressee, or ``None`` to broadcast.
        """
        if self._client is None:
            return
        if participant_id is None:
            frame: Any = OutputTransportMessageUrgentFrame(message=message)
        else:
            from pipecat.transports.daily.transport import DailyOutputTransportMessageUrgentFrame

            frame = DailyOutputTransportMessageUrgentFrame(
                message=message, participant_id=participant_id
            )
        await self._client.send_message(frame)

    async def write_microphone(self, audio: bytes, *, sample_rate: int, num_channels: int) -> None:
        """Write the user's audio to the bot's microphone track.

        Args:
            audio: 16-bit PCM at the rate given to :meth:`join`.
            sample_rate: Its rate.
            num_channels: Its channels.
        """
        if self._client is not None:
            frame = OutputAudioRawFrame(audio, sample_rate=sample_rate, num_channels=num_channels)
            await self._client.write_audio_frame(frame)

    async def leave(self) -> None:
        """Leave the room, then end the conversation if this room created it (once)."""
        client, self._client = self._client, None
        try:
            if client is not None:
                await client.leave()
                await client.cleanup()
        finally:
            created, self._created = self._created, None
            if created is not None and self._api is not None:
                await self._api.end_conversation(created)
                logger.info(f"{self}: ended conversation {created}")


async def _ignore(name: str, *args: Any, **kwargs: Any) -> None:
    if name == "on_error":
        logger.error(f"DailyReplicaRoom: Daily reported an error: {args[0] if args else ''}")
    else:
        logger.trace(f"DailyReplicaRoom: {name}")
