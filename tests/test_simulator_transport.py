"""The simulator's Pipecat transport, in real pipelines (PipelineWorker + WorkerRunner).

Only plain Pipecat processors sit between ``transport.input()`` and ``transport.output()``:
a recorder, and for the tool loop a tiny bot that answers tool calls.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager

import pytest
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.daily.transport import (
    DailyInputTransportMessageFrame,
    DailyOutputTransportMessageFrame,
    DailyOutputTransportMessageUrgentFrame,
)
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.protocol import build_message
from pipecat_tavus_interactions.simulator import (
    Chaos,
    PersonaRule,
    ScriptedPersona,
    ScriptedUser,
    SimulatedTransport,
    TavusSimulator,
    ToolCallSpec,
)


class Recorder(FrameProcessor):
    """Records every frame with its direction and passes it on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.frames: list[tuple[Frame, FrameDirection]] = []
        self._arrived = asyncio.Condition()

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        self.frames.append((frame, direction))
        async with self._arrived:
            self._arrived.notify_all()
        await self.push_frame(frame, direction)

    def of(self, cls, direction=None):
        return [f for f, d in self.frames if isinstance(f, cls) and direction in (None, d)]

    async def wait_for(self, cls, direction=None):
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: self.of(cls, direction)), 10)
        return self.of(cls, direction)[0]


class ToolBot(FrameProcessor):
    """Answers the replica's tool calls with an urgent tool_result, like a bot would."""

    def __init__(self, conversation_id: str, **kwargs):
        super().__init__(**kwargs)
        self._cid = conversation_id

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, DailyInputTransportMessageFrame) and direction == DOWN:
            message = frame.message
            if isinstance(message, dict) and message.get("event_type") == "conversation.tool_call":
                result = ix.ToolResult(message["properties"]["tool_call_id"], "42 degrees")
                await self.push_frame(
                    OutputTransportMessageUrgentFrame(
                        message=build_message(result, conversation_id=self._cid)
                    )
                )


DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM


def make_sim(**kwargs) -> TavusSimulator:
    kwargs.setdefault("persona", ScriptedPersona(name="Anna", default_reply="Nice to meet you."))
    kwargs.setdefault("speed", 200)
    kwargs.setdefault("heartbeat_interval_s", None)
    return TavusSimulator(**kwargs)


@asynccontextmanager
async def running(*processors):
    worker = PipelineWorker(Pipeline(list(processors)), enable_rtvi=False, idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        yield worker
    finally:
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(task, 10)


def message(sim: TavusSimulator, interaction: ix.Interaction) -> dict:
    return build_message(interaction, conversation_id=sim.conversation_id)


async def test_inbound_messages_are_broadcast_both_ways_from_the_replica():
    sim = make_sim()
    transport = SimulatedTransport(sim)
    up, down = Recorder(), Recorder()
    received = []

    @transport.event_handler("on_app_message")
    async def on_app_message(transport, msg, sender):
        received.append((msg, sender))

    async with running(up, transport.input(), down, transport.output()):
        await sim.run_script(ScriptedUser(lines=["Hello there"]))
    emitted = sim.emitted
    inbound = down.of(DailyInputTransportMessageFrame, DOWN)
    assert [f.message for f in inbound] == emitted
    assert {f.participant_id for f in inbound} == {sim.participant_id}
    upstream = up.of(DailyInputTransportMessageFrame, UP)
    assert [f.message for f in upstream] == emitted
    assert [f.broadcast_sibling_id for f in upstream] == [f.id for f in inbound]
    assert received == [(m, sim.participant_id) for m in emitted]
    assert emitted[0]["event_type"] == "system.replica_joined"
    assert emitted[-1]["event_type"] == "conversation.stopped_speaking"


async def test_participants_join_and_leave_in_dailys_shapes():
    sim = make_sim()
    transport = SimulatedTransport(sim)
    events = []

    @transport.event_handler("on_joined")
    async def on_joined(transport, data):
        events.append(("joined", sorted(data["participants"])))

    @transport.event_handler("on_first_participant_joined")
    async def on_first(transport, participant):
        events.append(("first", participant["id"]))

    @transport.event_handler("on_participant_joined")
    async def on_participant_joined(transport, participant):
        events.append(("participant_joined", participant))

    @transport.event_handler("on_participant_left")
    async def on_participant_left(transport, participant, reason):
        events.append(("participant_left", participant["id"], reason))

    @transport.event_handler("on_left")
    async def on_left(transport):
        events.append(("left",))

    async with running(transport.input(), transport.output()):
        await sim.wait_started()
        present = transport.participants()
        await sim.shutdown()
        after_shutdown = transport.participants()
    await asyncio.sleep(0)  # let the last handler task run
    joined = [e[1] for e in events if e[0] == "participant_joined"]
    user, replica = joined
    assert replica["id"] == sim.participant_id == transport.replica_participant_id
    assert uuid.UUID(replica["id"])
    assert replica["info"]["userName"] == "Anna"
    assert "tavus-replica" in replica["info"]["userId"]
    assert user["id"] == transport.user_participant_id
    assert events[0][0] == "joined" and ("first", user["id"]) in events
    assert set(present) == {"local", user["id"], replica["id"]}
    assert present["local"]["info"]["isLocal"] is True
    assert set(after_shutdown) == {"local", user["id"]}
    assert ("participant_left", replica["id"], "leftCall") in events
    assert events[-1] == ("left",)


async def test_urgent_and_queued_messages_reach_the_replica():
    sim = make_sim()
    transport = SimulatedTransport(sim)
    async with running(transport.input(), transport.output()) as worker:
        await sim.wait_started()
        await worker.queue_frames(
            [
                OutputTransportMessageUrgentFrame(message=message(sim, ix.AppendLLMContext("a"))),
                OutputTransportMessageFrame(message=message(sim, ix.AppendLLMContext("b"))),
                DailyOutputTransportMessageUrgentFrame(
                    message=message(sim, ix.AppendLLMContext("c")),
                    participant_id=sim.participant_id,
                ),
                DailyOutputTransportMessageFrame(
                    message=message(sim, ix.AppendLLMContext("d")),
                    participant_id=transport.user_participant_id,  # not for the replica
                ),
                OutputTransportMessageFrame(message=message(sim, ix.AppendLLMContext("e"))),
            ]
        )
        await sim.wait_for_interaction(lambda i: getattr(i, "context", None) == "e", timeout_s=10)
    assert sim.context == ["a", "c", "b", "e"]  # urgent ones overtake the queued ones
    assert [t for _, t in transport.sent_messages].count(transport.user_participant_id) == 1
    assert not sim.rejected


def context_is(text):
    return lambda i: isinstance(i, ix.AppendLLMContext) and i.context == text


async def test_queued_messages_wait_for_audio_and_are_dropped_by_an_interruption():
    # speed=1: the output plays audio in real time, so 2 s of audio is still playing when
    # the interruption arrives a few milliseconds later.
    sim = make_sim(speed=1)
    params = TransportParams(audio_out_enabled=True, audio_out_end_silence_secs=0)
    transport = SimulatedTransport(sim, params=params)
    output, after = transport.output(), Recorder()
    queued = asyncio.Event()

    def on_after_process_frame(processor, frame):
        if isinstance(frame, OutputTransportMessageFrame) and "dropped" in json.dumps(
            frame.message
        ):
            queued.set()  # the output has put it in its media queue, behind the audio

    output.add_event_handler("on_after_process_frame", on_after_process_frame)
    async with running(transport.input(), output, after) as worker:
        await sim.wait_started()
        # Short audio, then a queued message: it is sent after the audio was played.
        await worker.queue_frames(
            [
                TTSAudioRawFrame(audio=bytes(3200), sample_rate=16_000, num_channels=1),
                OutputTransportMessageFrame(message=message(sim, ix.AppendLLMContext("late"))),
            ]
        )
        await after.wait_for(OutputTransportMessageFrame, DOWN)
        played = [
            f
            for f, _ in after.frames
            if isinstance(f, TTSAudioRawFrame | OutputTransportMessageFrame)
        ]
        assert isinstance(played[-1], OutputTransportMessageFrame)
        assert played[:-1] and all(isinstance(f, TTSAudioRawFrame) for f in played[:-1])
        assert sim.context == ["late"]

        # Long audio, a queued message, then an interruption: the message is never sent.
        await worker.queue_frames(
            [
                TTSAudioRawFrame(audio=bytes(2 * 16_000 * 2), sample_rate=16_000, num_channels=1),
                OutputTransportMessageFrame(message=message(sim, ix.AppendLLMContext("dropped"))),
            ]
        )
        await asyncio.wait_for(queued.wait(), 10)
        await worker.queue_frame(InterruptionFrame())
        await worker.queue_frame(
            OutputTransportMessageUrgentFrame(message=message(sim, ix.AppendLLMContext("urgent")))
        )
        await sim.wait_for_interaction(context_is("urgent"), timeout_s=10)
    assert sim.context == ["late", "urgent"]  # even after the pipeline drained at EndFrame
    assert output.audio_bytes_written >= 3200


async def test_targeting_is_validated_like_daily_python():
    sim = make_sim()
    transport = SimulatedTransport(sim)
    out = transport.output()
    with pytest.raises(ValueError, match="invalid participant ID"):
        await out.send_message(
            DailyOutputTransportMessageUrgentFrame(message={"a": 1}, participant_id="not-a-uuid")
        )
    with pytest.raises(TypeError, match="unsupported type"):
        await out.send_message(OutputTransportMessageUrgentFrame(message={"a": object()}))
    assert not transport.sent_messages

    up = Recorder()
    async with running(up, transport.input(), transport.output()) as worker:
        await sim.wait_started()
        await worker.queue_frame(
            DailyOutputTransportMessageUrgentFrame(
                message=message(sim, ix.Respond("hi")), participant_id="replica"
            )
        )
        error = await up.wait_for(ErrorFrame, UP)
    assert "invalid participant ID" in error.error
    assert sim.interactions == []


async def test_messages_sent_before_the_replica_joined_are_lost():
    sim = make_sim()
    transport = SimulatedTransport(sim)
    await transport.output().send_message(
        OutputTransportMessageUrgentFrame(message=message(sim, ix.Respond("too early")))
    )
    async with running(transport.input(), transport.output()):
        await sim.wait_started()
        await sim.wait_idle()
    assert sim.rejected == [(message(sim, ix.Respond("too early")), "replica_not_present")]
    assert sim.turn_idx == 0


async def test_a_plain_bot_answers_a_tool_call_over_the_transport():
    persona = ScriptedPersona(
        rules=[
            PersonaRule(
                pattern="temperature",
                tool_call=ToolCallSpec(name="get_temperature", arguments={"room": "lab"}),
                reply="It is {result}.",
            )
        ]
    )
    sim = make_sim(persona=persona, tool_wait_s=5)
    transport = SimulatedTransport(sim)
    async with running(transport.input(), ToolBot(sim.conversation_id), transport.output()):
        await sim.run_script(ScriptedUser(lines=["What's the temperature?"]))
    replies = [
        m["properties"]["speech"]
        for m in sim.emitted
        if m["event_type"] == "conversation.utterance" and m["properties"]["role"] == "pal"
    ]
    assert replies == ["It is 42 degrees."]
    assert [type(i).__name__ for i in sim.interactions] == ["ToolResult"]


async def test_echo_mode_user_lines_arrive_as_transcriptions():
    sim = make_sim(pipeline_mode="echo")
    transport = SimulatedTransport(sim)
    down = Recorder()
    async with running(transport.input(), down, transport.output()):
        await sim.run_script(ScriptedUser(lines=["Hello bot"], reply_timeout_s=0.05))
    (frame,) = down.of(TranscriptionFrame, DOWN)
    assert frame.text == "Hello bot" and frame.user_id == transport.user_participant_id
    assert frame.finalized is True


async def test_chaos_foreign_sender_is_a_participant_and_sends_from_its_own_id():
    chaos = Chaos(foreign_sender_rate=1.0, seed=3)
    sim = make_sim(chaos=chaos)
    transport = SimulatedTransport(sim)
    down = Recorder()
    joined = []

    @transport.event_handler("on_participant_joined")
    async def on_participant_joined(transport, participant):
        joined.append(participant["id"])

    async with running(transport.input(), down, transport.output()):
        await sim.run_script(ScriptedUser(lines=["hi"]))
    senders = {f.participant_id for f in down.of(DailyInputTransportMessageFrame, DOWN)}
    assert senders == {sim.participant_id, chaos.foreign_participant_id}
    assert chaos.foreign_participant_id in joined


async def test_output_takes_audio_without_a_device():
    sim = make_sim()
    transport = SimulatedTransport(sim)  # audio out disabled by default
    async with running(transport.input(), transport.output()) as worker:
        await sim.wait_started()
        await worker.queue_frame(
            TTSAudioRawFrame(audio=bytes(3200), sample_rate=16_000, num_channels=1)
        )
        await worker.queue_frame(
            OutputTransportMessageFrame(message=message(sim, ix.AppendLLMContext("after")))
        )
        await sim.wait_for_interaction(context_is("after"), timeout_s=10)
    assert transport.output().audio_bytes_written == 0


def test_participant_ids_must_be_uuids():
    with pytest.raises(ValueError):
        SimulatedTransport(make_sim(), bot_participant_id="bot")
