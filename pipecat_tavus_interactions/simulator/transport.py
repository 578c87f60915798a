"""An in-process Pipecat transport that puts a :class:`~.replica.TavusSimulator` in the room.

:class:`SimulatedTransport` carries app messages between a bot pipeline and the simulator the
way ``DailyTransport`` carries them between a bot and a real Tavus replica:

- **Inbound.** Each message the replica sends reaches ``transport.input()``, which calls
  ``broadcast_frame(DailyInputTransportMessageFrame, message=..., participant_id=sender)``:
  one copy goes downstream and one upstream, as with Daily. The ``on_app_message(transport,
  message, sender)`` event fires too. Without an ``input()`` in the pipeline only the event
  fires. Messages are held until the bot has joined (Daily holds its callbacks the same way).
- **Outbound.** ``transport.output()`` is a real ``BaseOutputTransport``: urgent message
  frames are sent at once, queued ``OutputTransportMessageFrame`` wait behind earlier audio
  and are dropped by an interruption (the base class does all of that). ``send_message``
  validates like daily-python (a non-UUID ``participant_id`` raises ``ValueError``, a value
  that is not JSON-serialisable raises ``TypeError``), then delivers broadcasts and messages
  targeted at the replica's participant id to the simulator. Messages sent before the bot
  joined are sent at the join; the simulator refuses those that arrive before the replica
  is ready, as Tavus drops app messages sent before the replica joins.
- **Participants.** The bot (``local``), the user, the replica (a UUID participant id,
  ``info.userName`` = the persona name, ``info.userId`` containing ``tavus-replica``) and,
  under chaos, a foreign participant. ``on_participant_joined``/``on_participant_left`` and
  the other Daily lifecycle events fire with Daily's argument shapes.
- **Lifecycle.** The bot joins when the pipeline starts (the first of the input and the
  output to receive ``StartFrame``, normally the input); the user and the replica join right
  after, and the simulator starts (``system.replica_joined``). When the pipeline ends the bot
  leaves and the simulator is closed; when the simulator shuts down the replica leaves.
- **Audio.** Output audio needs no device: with ``audio_out_enabled`` the written audio is
  counted and paced at real time divided by the simulator's ``speed``. In echo mode, user
  lines reach the pipeline as ``TranscriptionFrame`` (like Daily's transcription) unless
  ``user_transcription=False``.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotConnectedFrame,
    CancelFrame,
    ClientConnectedFrame,
    EndFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    TranscriptionFrame,
)
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.daily.transport import (
    DailyInputTransportMessageFrame,
    DailyOutputTransportMessageFrame,
    DailyOutputTransportMessageUrgentFrame,
)
from pipecat.utils.time import time_now_iso8601

from ..exceptions import ConfigurationError, ConfigurationTypeError
from .replica import TavusSimulator

__all__ = ["SimulatedInputTransport", "SimulatedOutputTransport", "SimulatedTransport"]

_LEFT_REASON = "leftCall"  # daily-python's reason for a participant who left

#: The Daily events the transport fires, with Daily's names.
_EVENTS = (
    "on_joined",
    "on_connected",
    "on_left",
    "on_app_message",
    "on_first_participant_joined",
    "on_participant_joined",
    "on_participant_left",
    "on_client_connected",
    "on_client_disconnected",
)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _participant_ids(
    simulator: TavusSimulator, bot_participant_id: str | None, user_participant_id: str | None
) -> tuple[str, str]:
    """The bot's and the user's participant ids: as given, or derived from the conversation."""
    cid = simulator.conversation_id
    bot_id = bot_participant_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim:{cid}:bot"))
    user_id = user_participant_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim:{cid}:user"))
    for what, pid in (("bot_participant_id", bot_id), ("user_participant_id", user_id)):
        if not _is_uuid(pid):
            raise ConfigurationError(f"{what} must be a UUID string, got {pid!r}")
    return bot_id, user_id


def _participant(pid: str, name: str, user_id: str, *, local: bool = False) -> dict[str, Any]:
    return {
        "id": pid,
        "info": {
            "userName": name,
            "userId": user_id,
            "isLocal": local,
            "isOwner": False,
            "joinedAt": datetime.now(UTC).isoformat(),
        },
    }


class SimulatedInputTransport(BaseInputTransport):
    """The input side: pushes the replica's app messages into the pipeline, like Daily."""

    def __init__(self, transport: SimulatedTransport, params: TransportParams, **kwargs):
        """Create the input transport.

        Args:
            transport: The owning transport.
            params: Transport parameters.
            **kwargs: Passed to ``BaseInputTransport``.
        """
        super().__init__(params, **kwargs)
        self._transport = transport
        self.active = False  # between StartFrame and EndFrame/CancelFrame

    async def start(self, frame: StartFrame):
        """Start, then join the room (which brings the replica in)."""
        await super().start(frame)
        await self.set_transport_ready(frame)
        self.active = True
        await self._transport.member_joined(self)

    async def stop(self, frame: EndFrame):
        """Stop and leave the room."""
        self.active = False
        await super().stop(frame)
        await self._transport.member_left(self)

    async def cancel(self, frame: CancelFrame):
        """Cancel and leave the room."""
        self.active = False
        await super().cancel(frame)
        await self._transport.member_left(self)

    async def push_app_message(self, message: Any, sender: str) -> None:
        """Broadcast an app message as ``DailyInputTransportMessageFrame`` (down and up).

        Args:
            message: The message as received.
            sender: The sender's participant id.
        """
        await self.broadcast_frame(
            DailyInputTransportMessageFrame, message=message, participant_id=sender
        )


class SimulatedOutputTransport(BaseOutputTransport):
    """The output side: sends app messages to the replica through the base-class machinery."""

    def __init__(self, transport: SimulatedTransport, params: TransportParams, **kwargs):
        """Create the output transport.

        Args:
            transport: The owning transport.
            params: Transport parameters.
            **kwargs: Passed to ``BaseOutputTransport``.
        """
        super().__init__(params, **kwargs)
        self._transport = transport
        self.audio_bytes_written = 0

    async def start(self, frame: StartFrame):
        """Start, then join the room if the input has not."""
        await super().start(frame)
        await self.set_transport_ready(frame)
        await self._transport.member_joined(self)

    async def stop(self, frame: EndFrame):
        """Stop (after queued audio and messages) and leave the room."""
        await super().stop(frame)
        await self._transport.member_left(self)

    async def cancel(self, frame: CancelFrame):
        """Cancel and leave the room."""
        await super().cancel(frame)
        await self._transport.member_left(self)

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ):
        """Send an app message (called by the base class, urgent or in order with audio).

        Args:
            frame: The message frame; the ``Daily*`` variants may target a participant.

        Raises:
            ConfigurationError: ``participant_id`` is not a UUID (as daily-python raises).
            ConfigurationTypeError: The message is not JSON-serialisable (as daily-python raises).
        """
        participant_id = None
        if isinstance(
            frame, DailyOutputTransportMessageFrame | DailyOutputTransportMessageUrgentFrame
        ):
            participant_id = frame.participant_id
        await self._transport.send_app_message(frame.message, participant_id)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Take an audio chunk as a call would, paced by the simulator's clock.

        With audio output disabled there is no track: the chunk is taken and not played.

        Args:
            frame: The audio chunk.

        Returns:
            True: the room took it.
        """
        if not self._params.audio_out_enabled:
            return True  # e.g. the base class's closing silence: there is no track to play
        self.audio_bytes_written += len(frame.audio)
        per_second = frame.sample_rate * frame.num_channels * 2
        await self._transport.simulator.sleep(len(frame.audio) / per_second)
        return True


class SimulatedTransport(BaseTransport):
    """A Pipecat transport whose room holds a simulated Tavus replica.

    Event handlers available (Daily's names and argument shapes):

    - on_joined(transport, data) / on_connected(transport, data): the bot joined.
    - on_left(transport): the bot left.
    - on_first_participant_joined(transport, participant)
    - on_participant_joined(transport, participant) / on_client_connected(transport, participant)
    - on_participant_left(transport, participant, reason) /
      on_client_disconnected(transport, participant)
    - on_app_message(transport, message, sender)

    Example::

        sim = TavusSimulator(persona=ScriptedPersona(default_reply="Hi!"), speed=50)
        transport = SimulatedTransport(sim)

        @transport.event_handler("on_participant_joined")
        async def on_joined(transport, participant): ...

        pipeline = Pipeline([transport.input(), tavus.input(), tavus.output(), transport.output()])
    """

    def __init__(
        self,
        simulator: TavusSimulator,
        *,
        params: TransportParams | None = None,
        bot_participant_id: str | None = None,
        user_participant_id: str | None = None,
        bot_name: str = "Pipecat",
        user_name: str = "User",
        user_transcription: bool | None = None,
        name: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
    ):
        """Create the transport.

        Args:
            simulator: The replica in the room.
            params: Transport parameters (audio disabled by default).
            bot_participant_id: The bot's participant id (a UUID; derived by default).
            user_participant_id: The user's participant id (a UUID; derived by default).
            bot_name: The bot's user name.
            user_name: The user's user name.
            user_transcription: Push user lines as ``TranscriptionFrame``; default: only in
                echo mode (in full mode Tavus transcribes the user itself).
            name: Transport name.
            input_name: Input processor name.
            output_name: Output processor name.
        """
        super().__init__(name=name, input_name=input_name, output_name=output_name)
        bot_id, user_id = _participant_ids(simulator, bot_participant_id, user_participant_id)
        self.simulator = simulator
        self._params = params or TransportParams()
        self._user_transcription = (
            simulator.pipeline_mode == "echo" if user_transcription is None else user_transcription
        )
        self._local = _participant(bot_id, bot_name, bot_id, local=True)
        self._user = _participant(user_id, user_name, user_id)
        self._replica = _participant(
            simulator.participant_id,
            simulator.persona.name,
            f"tavus-replica-{simulator.replica_id}",
        )
        self._remote: dict[str, dict[str, Any]] = {}
        self._input: SimulatedInputTransport | None = None
        self._output: SimulatedOutputTransport | None = None
        self._members: set[int] = set()
        self._joined = False
        self._left = False
        self._held_in: list[tuple[Any, str]] = []
        self._held_out: list[tuple[Any, str | None]] = []
        #: Every app message the bot sent, with its target (``None`` = broadcast); bounded.
        self.sent_messages: deque[tuple[Any, str | None]] = deque(maxlen=simulator.history)
        #: Messages that reached nobody in the room (bot left, or target absent); bounded.
        self.undelivered: deque[tuple[Any, str | None]] = deque(maxlen=simulator.history)
        simulator.connect(
            self._on_replica_message, on_user_speech=self._on_user_speech, on_left=self._on_left
        )
        for event in _EVENTS:
            self._register_event_handler(event)

    @property
    def bot_participant_id(self) -> str:
        """The bot's (local) participant id."""
        return self._local["id"]

    @property
    def user_participant_id(self) -> str:
        """The user's participant id."""
        return self._user["id"]

    @property
    def replica_participant_id(self) -> str:
        """The replica's participant id (a UUID)."""
        return self._replica["id"]

    def input(self) -> SimulatedInputTransport:
        """Return the input processor (created once)."""
        if self._input is None:
            self._input = SimulatedInputTransport(self, self._params, name=self._input_name)
        return self._input

    def output(self) -> SimulatedOutputTransport:
        """Return the output processor (created once)."""
        if self._output is None:
            self._output = SimulatedOutputTransport(self, self._params, name=self._output_name)
        return self._output

    def participants(self) -> dict[str, Any]:
        """Return the participants in the room, keyed by id (the bot as ``"local"``)."""
        return {"local": self._local, **self._remote}

    def participant_counts(self) -> dict[str, int]:
        """Return how many participants are present (the bot included)."""
        return {"present": 1 + len(self._remote), "hidden": 0}

    # --- room lifecycle -------------------------------------------------------------------

    async def member_joined(self, member: BaseInputTransport | BaseOutputTransport) -> None:
        """One of the transport's processors started: the bot joins the room (once)."""
        self._members.add(id(member))
        if self._joined:
            return
        self._joined = True
        logger.debug(f"{self}: joined the simulated room")
        await member.push_frame(BotConnectedFrame())
        await self._call_event_handler("on_joined", {"participants": self.participants()})
        await self._call_event_handler("on_connected", {"participants": self.participants()})
        await self._add_participant(self._user)
        await self._add_participant(self._replica)
        for pid in self.simulator.foreign_participant_ids:
            await self._add_participant(_participant(pid, "Guest", pid))
        held_out, self._held_out = self._held_out, []
        for message, target in held_out:
            await self._deliver_out(message, target)
        await self.simulator.start()
        held_in, self._held_in = self._held_in, []
        for message, sender in held_in:
            await self._on_replica_message(message, sender)

    async def _add_participant(self, participant: dict[str, Any]) -> None:
        first = not self._remote
        self._remote[participant["id"]] = participant
        if first:
            await self._call_event_handler("on_first_participant_joined", participant)
        await self._call_event_handler("on_participant_joined", participant)
        await self._call_event_handler("on_client_connected", participant)
        if self._input is not None:
            await self._input.push_frame(ClientConnectedFrame())

    async def _remove_participant(self, pid: str, reason: str) -> None:
        participant = self._remote.pop(pid, None)
        if participant is not None:
            await self._call_event_handler("on_participant_left", participant, reason)
            await self._call_event_handler("on_client_disconnected", participant)

    async def member_left(self, member: BaseInputTransport | BaseOutputTransport) -> None:
        """One of the transport's processors stopped: the bot leaves when both have."""
        self._members.discard(id(member))
        if self._members or self._left:
            return
        self._left = True
        logger.debug(f"{self}: left the simulated room")
        await self.simulator.close()
        self._remote.clear()
        await self._call_event_handler("on_left")

    # --- messages -------------------------------------------------------------------------

    async def _on_replica_message(self, message: Any, sender: str) -> None:
        if self._left:
            return
        if not self._joined:
            self._held_in.append((message, sender))
            return
        if self._input is not None and self._input.active:
            await self._input.push_app_message(message, sender)
        await self._call_event_handler("on_app_message", message, sender)

    async def _on_user_speech(self, text: str) -> None:
        if self._user_transcription and self._input is not None and self._input.active:
            await self._input.push_frame(
                TranscriptionFrame(
                    text=text,
                    user_id=self.user_participant_id,
                    timestamp=time_now_iso8601(),
                    finalized=True,
                )
            )

    async def _on_left(self, reason: str) -> None:
        await self._remove_participant(self.replica_participant_id, _LEFT_REASON)

    async def send_app_message(self, message: Any, participant_id: str | None) -> None:
        """Send an app message to the simulated replica, as Daily's client would.

        Raises:
            ConfigurationError: ``participant_id`` is not a UUID (Daily refuses it the same way).
        """
        if participant_id is not None and not _is_uuid(participant_id):
            raise ConfigurationError(f"invalid participant ID '{participant_id}'")
        try:
            wire = json.dumps(message)
        except (TypeError, ValueError):
            raise ConfigurationTypeError(f"unsupported type {type(message).__name__}") from None
        message = json.loads(wire)  # the replica gets its own copy, as over a network
        self.sent_messages.append((message, participant_id))
        if self._left:
            self.undelivered.append((message, participant_id))
        elif not self._joined:
            self._held_out.append((message, participant_id))  # Daily sends these at join
        else:
            await self._deliver_out(message, participant_id)

    async def _deliver_out(self, message: Any, participant_id: str | None) -> None:
        replica_id = self.replica_participant_id
        if replica_id in self._remote and participant_id in (None, replica_id):
            await self.simulator.receive(message, sender_id=self.bot_participant_id)
        elif participant_id is None or participant_id not in self._remote:
            self.undelivered.append((message, participant_id))
