"""The Tavus room offline: a :class:`~.replica.TavusSimulator` for the relay to join.

:class:`SimulatedRoom` implements the relay's
:class:`~pipecat_tavus_interactions.relay_room.ReplicaRoom` around a simulator:

- **Messages** both ways, as JSON copies (a message that is not JSON fails as Daily's client
  would), from the replica's participant id.
- **Participants**: the replica joins when the bot does (Daily's dict shape, ``userId``
  holding ``tavus-replica``), then the simulator starts (``system.replica_joined``, the
  greeting); the replica leaves after ``system.shutdown``.
- **Video**: frames of :class:`~.media.ReplicaPicture` at the captured frame rate (wall
  clock): the face, its mouth moving with each word, and the words spoken so far.
- **Audio**: :class:`~.media.ReplicaVoice` while the replica speaks, in simulated time (a
  chunk every 20 ms of wall clock, ``speed`` times longer in simulated seconds), each chunk
  tagged with its utterance's ``inference_id``. Every chunk arrives one chunk late, as over
  a network, so the end of a cut utterance is still in flight when the cut happens.
- **Microphone** (``full`` mode): the simulator hears the bot's microphone with a level
  detector: a burst of sound of at least ``min_speech_s`` followed by ``end_silence_s`` of
  quiet becomes a user line (``"(the user spoke for 1.2 seconds)"``), since there is no
  speech recognition offline.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import numpy as np
from loguru import logger

from ..exceptions import ConfigurationTypeError
from ..relay_room import RoomAudio, RoomCallbacks, RoomVideo
from .media import ReplicaPicture, ReplicaVoice
from .replica import TavusSimulator

__all__ = ["SimulatedRoom"]


def _participant(pid: str, name: str, user_id: str) -> dict[str, Any]:
    return {"id": pid, "info": {"userName": name, "userId": user_id, "isLocal": False}}


class _Ear:
    """Turns microphone levels into user lines (no speech recognition offline)."""

    def __init__(self, *, threshold: float, min_speech_s: float, end_silence_s: float):
        self.threshold = threshold
        self.min_speech_s = min_speech_s
        self.end_silence_s = end_silence_s
        self.voiced_s = 0.0
        self.quiet_s = 0.0

    def hear(self, audio: bytes, sample_rate: int, num_channels: int) -> float | None:
        """Take a chunk; return the length of a finished speech burst, if one just ended."""
        samples = np.frombuffer(audio, dtype=np.int16)
        if not samples.size:
            return None
        seconds = samples.size / (sample_rate * num_channels)
        level = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)))
        if level >= self.threshold:
            self.voiced_s += seconds
            self.quiet_s = 0.0
            return None
        if self.voiced_s <= 0.0:
            return None
        self.quiet_s += seconds
        if self.quiet_s < self.end_silence_s:
            return None
        spoke, self.voiced_s, self.quiet_s = self.voiced_s, 0.0, 0.0
        return spoke if spoke >= self.min_speech_s else None


class SimulatedRoom:
    """A simulated Tavus room for :class:`~pipecat_tavus_interactions.TavusReplicaRelay`.

    Example::

        sim = TavusSimulator(persona=ScriptedPersona(greeting="Hi!"), speed=20)
        relay = TavusReplicaRelay(room=SimulatedRoom(sim), params=TavusInteractionsParams())
    """

    def __init__(
        self,
        simulator: TavusSimulator,
        *,
        width: int = 640,
        height: int = 360,
        max_framerate: int = 30,
        audio_chunk_s: float = 0.02,
        hear_microphone: bool = True,
        min_speech_s: float = 0.3,
        end_silence_s: float = 0.8,
        speech_level: float = 500.0,
    ):
        """Create the room.

        Args:
            simulator: The replica in the room.
            width: Video width.
            height: Video height.
            max_framerate: Upper bound of the video frame rate (wall clock).
            audio_chunk_s: Wall-clock seconds between audio chunks.
            hear_microphone: Turn bursts of microphone sound into user lines (``full``).
            min_speech_s: Shortest burst that counts as speech.
            end_silence_s: Quiet that ends a burst.
            speech_level: RMS level (16-bit) above which the microphone counts as sound.
        """
        self.simulator = simulator
        self.picture = ReplicaPicture(width=width, height=height, name=simulator.persona.name)
        self._max_framerate = max_framerate
        self._chunk_wall_s = audio_chunk_s
        self._hear = hear_microphone
        self._ear = _Ear(
            threshold=speech_level, min_speech_s=min_speech_s, end_silence_s=end_silence_s
        )
        cid = simulator.conversation_id
        self.bot_participant_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim:{cid}:relay-bot"))
        self._replica = _participant(
            simulator.participant_id,
            simulator.persona.name,
            f"tavus-replica-{simulator.replica_id}",
        )
        self._callbacks: RoomCallbacks | None = None
        self._sample_rate = 24000
        self._tasks: list[asyncio.Task] = []
        self._user_lines: set[asyncio.Task] = set()
        self._joined = False
        #: Every app message the bot sent, with its target (``None``: broadcast).
        self.sent_messages: list[tuple[Any, str | None]] = []
        #: Microphone audio heard, in seconds.
        self.microphone_s = 0.0
        #: Video frames and audio chunks delivered.
        self.frames_sent = 0
        self.audio_chunks_sent = 0

    def __repr__(self) -> str:
        return f"SimulatedRoom({self.simulator.conversation_id})"

    @property
    def replica_participant(self) -> dict[str, Any]:
        """The replica's participant dict (Daily's shape)."""
        return dict(self._replica)

    @property
    def conversation_id(self) -> str:
        """The simulator's conversation id."""
        return self.simulator.conversation_id

    async def setup(self, setup: Any) -> None:
        """Nothing to set up: the room runs its own tasks.

        Args:
            setup: The relay's setup (unused).
        """

    async def join(self, callbacks: RoomCallbacks, *, sample_rate: int, microphone: bool) -> None:
        """Join: the replica joins, then the simulator starts (and greets, in full mode).

        Args:
            callbacks: Where messages, participants and media go.
            sample_rate: The rate of the replica's audio.
            microphone: Whether the bot publishes a microphone.
        """
        self._callbacks = callbacks
        self._sample_rate = sample_rate
        self._joined = True
        self.simulator.connect(self._on_replica_message, on_left=self._on_replica_left)
        await callbacks.on_participant_joined(self._replica)
        await self.simulator.start()

    async def capture_replica(self, participant_id: str, *, framerate: int) -> None:
        """Start the replica's video and audio.

        Args:
            participant_id: The replica's participant id.
            framerate: Video frames a second (capped at ``max_framerate``).
        """
        if participant_id != self._replica["id"] or self._tasks:
            return
        loop = asyncio.get_running_loop()
        rate = max(1, min(framerate, self._max_framerate))
        self._tasks = [
            loop.create_task(self._video_loop(1.0 / rate), name=f"{self}-video"),
            loop.create_task(self._audio_loop(), name=f"{self}-audio"),
        ]

    async def send_app_message(self, message: Any, participant_id: str | None) -> None:
        """Deliver an app message to the simulator (a JSON copy, as over the network).

        Raises:
            ConfigurationTypeError: The message is not JSON-serialisable.
        """
        try:
            wire = json.loads(json.dumps(message))
        except (TypeError, ValueError):
            raise ConfigurationTypeError(f"unsupported type {type(message).__name__}") from None
        self.sent_messages.append((wire, participant_id))
        if self._joined and participant_id in (None, self._replica["id"]):
            await self.simulator.receive(wire, sender_id=self.bot_participant_id)

    async def write_microphone(self, audio: bytes, *, sample_rate: int, num_channels: int) -> None:
        """Hear the bot's microphone (the user's voice in ``full`` mode)."""
        self.microphone_s += len(audio) / (2 * sample_rate * num_channels)
        if not self._hear or not self.simulator.started:
            return
        spoke = self._ear.hear(audio, sample_rate, num_channels)
        if spoke is not None:
            text = f"(the user spoke for {spoke:.1f} seconds)"
            task = asyncio.get_running_loop().create_task(self._user_line(text))
            self._user_lines.add(task)
            task.add_done_callback(self._user_lines.discard)

    async def _user_line(self, text: str) -> None:
        try:
            await self.simulator.user_says(text)
        except Exception as err:  # the replica left meanwhile
            logger.debug(f"{self}: user line not heard: {err}")

    async def leave(self) -> None:
        """Stop the media and close the simulator (idempotent)."""
        self._joined = False
        tasks, self._tasks = self._tasks, []
        tasks.extend(self._user_lines)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.simulator.close()

    # --- the replica's side ---------------------------------------------------------------

    async def _on_replica_message(self, message: Any, sender: str) -> None:
        if self._joined and self._callbacks is not None:
            await self._callbacks.on_app_message(message, sender)

    async def _on_replica_left(self, reason: str) -> None:
        if self._callbacks is not None:
            await self._callbacks.on_participant_left(self._replica, "leftCall")

    def _now_saying(self) -> tuple[Any, str | None, str]:
        """The utterance being spoken, the word being said (``None``: audio) and captions."""
        sp = self.simulator.speech
        if sp is None:
            return None, None, ""
        word = None
        if sp.items:
            kind, value = sp.items[0]
            word = value if kind == "word" else None
        spoken = list(sp.spoken_words)
        if word is not None:
            spoken.append(word)
        return sp, word, " ".join(spoken[-24:])

    async def _video_loop(self, period: float) -> None:
        loop = asyncio.get_running_loop()
        callbacks = self._callbacks
        assert callbacks is not None
        start = loop.time()
        n = 0
        while True:
            sp, word, caption = self._now_saying()
            t = loop.time() - start
            mouth = sp is not None and int(t * 8) % 2 == 0
            eyes = int(t * 10) % 40 != 0  # a blink every 4 s
            image = self.picture.frame(caption, mouth_open=mouth, eyes_open=eyes)
            await callbacks.on_video(RoomVideo(image=image, size=self.picture.size))
            self.frames_sent += 1
            n += 1
            await asyncio.sleep(max(0.0, start + n * period - loop.time()))

    async def _audio_loop(self) -> None:
        callbacks = self._callbacks
        assert callbacks is not None
        voice = ReplicaVoice(sample_rate=self._sample_rate)
        step_s = self._chunk_wall_s * self.simulator.speed  # simulated seconds a chunk
        in_flight: RoomAudio | None = None
        while True:
            await asyncio.sleep(self._chunk_wall_s)
            sp, word, _ = self._now_saying()
            chunk = None
            if sp is not None:
                pcm = voice.render(step_s, word=word)
                chunk = RoomAudio(pcm, self._sample_rate, 1, inference_id=sp.inference_id)
            # One chunk late, as over a network.
            in_flight, chunk = chunk, in_flight
            if chunk is not None:
                await callbacks.on_audio(chunk)
                self.audio_chunks_sent += 1
