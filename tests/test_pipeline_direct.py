"""The processors' per-frame path: direct mode, and the message frames they push.

``tavus.input()`` and ``tavus.output()`` run in Pipecat's direct mode: a frame is handled in
the task that pushes it, so what it becomes is out before that push returns. The relay stays
queued. Messages leave as subclasses of Pipecat's transport message frames whose ``str()``
names the event type instead of printing the (up to 4 KB) message.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.frames.frames import (
    Frame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.daily.transport import (
    DailyInputTransportMessageFrame,
    DailyOutputTransportMessageFrame,
    DailyOutputTransportMessageUrgentFrame,
)

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.pipeline.frames import (
    TavusMessageFrame,
    TavusMessageUrgentFrame,
    TavusRespondFrame,
    TavusUtteranceFrame,
    daily_message_frames,
)

CID = "c0ffee12"
REPLICA = "replica-1"


def make_tavus(**params: Any) -> TavusInteractions:
    params.setdefault("conversation_id", CID)
    params.setdefault("wait_for_replica", False)
    params.setdefault("replica_participant_id", REPLICA)
    params.setdefault("heartbeat_timeout_s", None)
    return TavusInteractions(params=TavusInteractionsParams(**params))


class Catcher(FrameProcessor):
    """Direct mode: records every downstream frame in the task that pushed it."""

    def __init__(self):
        super().__init__(enable_direct_mode=True)
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
        await self.push_frame(frame, direction)

    def messages(self) -> list[dict]:
        return [
            f.message
            for f in self.frames
            if isinstance(f, OutputTransportMessageUrgentFrame | OutputTransportMessageFrame)
        ]


class SentOutput(BaseOutputTransport):
    """A real output transport whose ``send_message`` records what it was given."""

    def __init__(self):
        super().__init__(TransportParams())
        self.sent: list[Frame] = []
        self.changed = asyncio.Event()

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def send_message(self, frame):
        self.sent.append(frame)
        self.changed.set()


class Running:
    """A started pipeline of ``processors`` (stopped with an ``EndFrame`` on exit)."""

    def __init__(self, processors: list[FrameProcessor]):
        self.worker = PipelineWorker(
            Pipeline(processors), cancel_on_idle_timeout=False, enable_rtvi=False
        )
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Running:
        started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def _started(_worker, _frame):
            started.set()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._task = asyncio.create_task(runner.run())
        await asyncio.wait_for(started.wait(), 5.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        from pipecat.frames.frames import EndFrame

        await self.worker.queue_frame(EndFrame())
        assert self._task is not None
        await asyncio.wait_for(self._task, 10.0)


# --- direct mode ------------------------------------------------------------------------


async def test_output_sends_before_the_push_into_it_returns():
    tavus = make_tavus(mode="full")
    output, catcher = tavus.output(), Catcher()
    async with Running([output, catcher]):
        await output.queue_frame(TavusRespondFrame(text="right away"))
        # No await in between: the frame was handled in this task, inside queue_frame.
        assert [m["event_type"] for m in catcher.messages()] == ["conversation.respond"]


async def test_input_pushes_an_event_before_the_push_into_it_returns():
    tavus = make_tavus(mode="full")
    tavus_in, catcher = tavus.input(), Catcher()
    message = {
        "message_type": "conversation",
        "event_type": "conversation.utterance",
        "conversation_id": CID,
        "properties": {"role": "replica", "speech": "Hello there."},
        "seq": 1,
    }
    async with Running([tavus_in, catcher]):
        frame = DailyInputTransportMessageFrame(message=message, participant_id=REPLICA)
        await tavus_in.queue_frame(frame)
        utterances = [f for f in catcher.frames if isinstance(f, TavusUtteranceFrame)]
        assert [u.text for u in utterances] == ["Hello there."]


async def test_echo_audio_in_direct_mode_still_closes_with_done():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000)
    output, catcher = tavus.output(), Catcher()
    audio = bytes(range(256)) * 25  # 6400 bytes: 200 ms at 16 kHz
    async with Running([output, catcher]):
        for i in range(0, len(audio), 640):
            await output.queue_frame(
                OutputAudioRawFrame(audio[i : i + 640], sample_rate=16000, num_channels=1)
            )
        await output.queue_frame(TTSStoppedFrame())
        echoes = catcher.messages()
    assert [m["properties"]["done"] for m in echoes][-1] is True
    assert not any(m["properties"]["done"] for m in echoes[:-1])


def test_the_relay_stays_queued():
    from pipecat_tavus_interactions import TavusReplicaRelay
    from pipecat_tavus_interactions.pipeline.input import TavusInteractionsInput
    from pipecat_tavus_interactions.pipeline.output import TavusInteractionsOutput

    # Joining the room at StartFrame takes seconds; direct mode would hold the TTS that long.
    assert TavusReplicaRelay.DIRECT_MODE is False
    assert TavusInteractionsOutput.DIRECT_MODE is True
    assert TavusInteractionsInput.DIRECT_MODE is True


# --- message frames ---------------------------------------------------------------------


async def test_messages_reach_a_real_output_transports_send_message():
    tavus = make_tavus(mode="full")
    output, transport = tavus.output(), SentOutput()
    async with Running([output, transport]):
        await tavus.send(ix.Respond("urgent by default"))
        await output.send_interaction(ix.Respond("behind the audio"), urgent=False)
        while len(transport.sent) < 2:
            transport.changed.clear()
            await asyncio.wait_for(transport.changed.wait(), 5.0)
    urgent, queued = transport.sent
    assert isinstance(urgent, TavusMessageUrgentFrame)
    assert isinstance(urgent, OutputTransportMessageUrgentFrame)
    assert urgent.message["properties"] == {"text": "urgent by default"}
    assert isinstance(queued, TavusMessageFrame)
    assert isinstance(queued, OutputTransportMessageFrame)
    assert queued.message["properties"] == {"text": "behind the audio"}


async def test_an_urgent_message_is_sent_by_the_transport_before_the_send_returns():
    # Handed to the ready output transport's send_message, not queued into it as a frame.
    tavus = make_tavus(mode="full")
    output, transport = tavus.output(), SentOutput()
    async with Running([output, transport]):
        await tavus.send(ix.Respond("now"))
        assert [f.message["properties"]["text"] for f in transport.sent] == ["now"]
        # A queued message still travels as a frame, behind what the transport has queued.
        await output.send_interaction(ix.Respond("later"), urgent=False)
        assert len(transport.sent) == 1
        while len(transport.sent) < 2:
            transport.changed.clear()
            await asyncio.wait_for(transport.changed.wait(), 5.0)


async def test_with_a_processor_before_the_transport_messages_travel_as_frames():
    tavus = make_tavus(mode="full")
    output, catcher, transport = tavus.output(), Catcher(), SentOutput()
    async with Running([output, catcher, transport]):
        await tavus.send(ix.Respond("through the catcher"))
        while not transport.sent:
            transport.changed.clear()
            await asyncio.wait_for(transport.changed.wait(), 5.0)
    assert [m["properties"]["text"] for m in catcher.messages()] == ["through the catcher"]
    assert [f.message["properties"]["text"] for f in transport.sent] == ["through the catcher"]


def test_message_str_names_the_event_not_the_body():
    body = "x" * 3000
    message = {"event_type": "conversation.echo", "properties": {"audio": body}}
    for cls in (TavusMessageUrgentFrame, TavusMessageFrame):
        frame = cls(message=message)
        text = str(frame)
        assert text.startswith(cls.__name__)
        assert "conversation.echo" in text
        assert body[:100] not in text
        assert len(text) < 120
        assert frame.message is message


def test_daily_message_frames_carry_the_addressee_and_a_short_str():
    urgent_cls, queued_cls = daily_message_frames()
    assert issubclass(urgent_cls, DailyOutputTransportMessageUrgentFrame)
    assert issubclass(queued_cls, DailyOutputTransportMessageFrame)
    assert daily_message_frames() == (urgent_cls, queued_cls)  # made once
    message = {"event_type": "conversation.respond", "properties": {"text": "y" * 2000}}
    frame = urgent_cls(message=message, participant_id="p-1")
    assert frame.participant_id == "p-1"
    assert "participant_id: p-1" in str(frame)
    assert "y" * 100 not in str(frame)
    assert urgent_cls.__name__ == "TavusDailyMessageUrgentFrame"
    assert queued_cls.__name__ == "TavusDailyMessageFrame"
