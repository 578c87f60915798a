"""The relay on the simulated room: media forwarding, the audio cut, speaking frames, the mic.

The event, tool and barge-in behaviour shared with direct mode is tested in
``test_end_to_end.py`` (parametrised over both wirings); these are the relay's own duties.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp
import numpy as np
import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    OutputTransportReadyFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import (
    TavusInteractions,
    TavusInteractionsParams,
    TavusReplicaRelay,
)
from pipecat_tavus_interactions.api import TavusAPI
from pipecat_tavus_interactions.exceptions import ConfigurationError
from pipecat_tavus_interactions.relay_room import DailyReplicaRoom
from pipecat_tavus_interactions.simulator import (
    ScriptedPersona,
    TavusRestSimulator,
    TavusSimulator,
)
from pipecat_tavus_interactions.simulator.room import SimulatedRoom


class Sink(FrameProcessor):
    """Stands where the output transport is: records what reaches it, with the time."""

    def __init__(self):
        super().__init__()
        self.frames: list[tuple[float, Frame]] = []
        self.upstream: list[Frame] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.frames.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)

    def of(self, cls) -> list[Any]:
        return [f for _, f in self.frames if isinstance(f, cls)]


class Head(FrameProcessor):
    """Stands before the relay: records the frames the relay pushes upstream."""

    def __init__(self):
        super().__init__()
        self.upstream: list[Frame] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if direction is FrameDirection.UPSTREAM:
            self.upstream.append(frame)
        await self.push_frame(frame, direction)


async def until(condition, limit_s: float = 20.0) -> None:
    """Wait for ``condition()`` (polled every 10 ms), failing after ``limit_s`` seconds."""
    for _ in range(int(limit_s * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {limit_s} s")


class Bot:
    """A relay bot on the simulator, run by a real worker."""

    def __init__(self, sim: TavusSimulator, mode: str, **room: Any):
        self.sim = sim
        self.room = SimulatedRoom(sim, **room)
        self.tavus = TavusInteractions(
            params=TavusInteractionsParams(mode=mode, conversation_id=sim.conversation_id)
        )
        self.relay = TavusReplicaRelay(room=self.room, tavus=self.tavus, video_framerate=10)
        self.head, self.sink = Head(), Sink()
        pipeline = Pipeline([self.head, self.relay, self.sink])
        self.worker = PipelineWorker(pipeline, enable_rtvi=False, idle_timeout_secs=None)
        self.joined = asyncio.Event()

        @self.tavus.event_handler("on_replica_joined")
        async def joined(tavus, event):
            self.joined.set()

    async def run(self, script) -> None:
        async def scripted():
            await self.joined.wait()
            # The output transport says it is ready (it pushes this upstream itself).
            await self.worker.queue_frame(OutputTransportReadyFrame())
            try:
                await script(self)
            finally:
                await self.worker.queue_frame(EndFrame())

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        task = asyncio.create_task(scripted())
        await asyncio.wait_for(runner.run(), timeout=60)
        await task


def tts_audio(seconds: float, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16).tobytes()


async def speak(bot: Bot, context_id: str, seconds: float, *, stop_after: float | None = None):
    """A TTS streaming ``seconds`` of audio at twice real time (20 ms chunks)."""
    audio = tts_audio(seconds)
    chunk = 960  # 20 ms at 24 kHz, 16-bit
    await bot.worker.queue_frame(TTSStartedFrame(context_id=context_id))
    start = time.monotonic()
    for i in range(0, len(audio), chunk):
        if stop_after is not None and time.monotonic() - start >= stop_after:
            return
        frame = TTSAudioRawFrame(audio[i : i + chunk], 24000, 1, context_id=context_id)
        await bot.worker.queue_frame(frame)
        await asyncio.sleep(0.01)
    await bot.worker.queue_frame(TTSStoppedFrame(context_id=context_id))


async def test_echo_audio_cut_after_1s_stops_the_wire_and_the_replica_audio():
    sim = TavusSimulator(pipeline_mode="echo", speed=1.0)
    bot = Bot(sim, "echo_audio")
    marks: dict[str, Any] = {}

    async def script(bot: Bot):
        producer = asyncio.create_task(speak(bot, "ctx-1", 10.0, stop_after=1.3))
        await asyncio.sleep(1.0)
        marks["cut_id"] = bot.tavus.connection.echo_audio_id
        await bot.worker.queue_frame(InterruptionFrame())
        await producer  # the TTS goes on for 0.3 s (late frames of the cut context)
        await until(lambda: not bot.sim.is_speaking)
        await until(lambda: bot.tavus.stats["relay_audio_dropped"] > 0, limit_s=5)
        # The next utterance is heard again.
        await speak(bot, "ctx-2", 0.6)
        await until(lambda: any(_tag(f) not in (None, marks["cut_id"]) for f in _audio(bot)))

    await bot.run(script)
    messages = [m for m, _ in bot.room.sent_messages]
    kinds = [m["event_type"] for m in messages]
    cut = kinds.index("conversation.interrupt")
    assert kinds.count("conversation.interrupt") == 1
    # The utterance being sent when the interruption came: echo chunks up to the interrupt,
    # none after it (late TTS frames of the cut context were dropped, not sent).
    cut_id = marks["cut_id"]
    before = [m for m in messages[:cut] if m["properties"].get("inference_id") == cut_id]
    assert before and not any(m["properties"]["done"] for m in before)
    assert not [m for m in messages[cut + 1 :] if m["properties"].get("inference_id") == cut_id]
    sent_s = sum(len(base64.b64decode(m["properties"]["audio"])) for m in before) / (2 * 24000)
    assert 0.5 < sent_s < 5.0  # most of the 10 s never left
    assert bot.tavus.stats["echo_dropped"] > 0
    # Before the cut the replica was heard; after it none of the cut utterance got through.
    seen = [(t, f) for t, f in bot.sink.frames]
    cut_at = next(i for i, (_, f) in enumerate(seen) if isinstance(f, InterruptionFrame))
    before = [f for _, f in seen[:cut_at] if _tag(f) == cut_id]
    after = [f for _, f in seen[cut_at:] if _tag(f) == cut_id]
    assert before and after == []
    # Audio of the cut utterance did arrive from the room after the cut, and was dropped.
    assert bot.tavus.stats["relay_audio_dropped"] > 0
    assert any(_tag(f) not in (None, cut_id) for f in _audio(bot))


def _audio(bot: Bot) -> list[OutputAudioRawFrame]:
    return [f for f in bot.sink.of(OutputAudioRawFrame) if not isinstance(f, TTSAudioRawFrame)]


def _tag(frame: Frame) -> str | None:
    if isinstance(frame, OutputAudioRawFrame) and not isinstance(frame, TTSAudioRawFrame):
        return frame.metadata.get("tavus_inference_id")
    return None


async def test_replica_video_and_speaking_state_reach_the_output_transport():
    persona = ScriptedPersona(greeting="Hello from the simulated replica.")
    sim = TavusSimulator(persona=persona, speed=4.0)
    bot = Bot(sim, "full", width=320, height=180, max_framerate=10)

    async def script(bot: Bot):
        await until(lambda: bot.sink.of(BotStoppedSpeakingFrame))

    await bot.run(script)
    images = bot.sink.of(OutputImageRawFrame)
    assert images and {f.size for f in images} == {(320, 180)}
    assert all(len(f.image) == 320 * 180 * 3 for f in images)
    assert len({f.image for f in images}) > 1  # the mouth and the captions move
    # The replica's real speaking state, both ways, as an output transport pushes it.
    assert len(bot.sink.of(BotStartedSpeakingFrame)) == 1
    assert [type(f) for f in bot.head.upstream if isinstance(f, BotStartedSpeakingFrame)] == [
        BotStartedSpeakingFrame
    ]
    started = bot.sink.of(BotStartedSpeakingFrame)[0]
    up = next(f for f in bot.head.upstream if isinstance(f, BotStartedSpeakingFrame))
    assert started.broadcast_sibling_id == up.id
    # The replica's voice, at the pipeline's output rate, and its words as TTS text.
    audio = _audio(bot)
    assert audio and {f.sample_rate for f in audio} == {24000}
    assert [f.text for f in bot.sink.of(TTSTextFrame)] == ["Hello from the simulated replica."]


async def test_full_mode_sends_the_users_voice_as_the_bots_microphone():
    sim = TavusSimulator(persona=ScriptedPersona(default_reply="I heard you."), speed=4.0)
    bot = Bot(sim, "full", max_framerate=2, min_speech_s=0.3, end_silence_s=0.4)

    async def script(bot: Bot):
        rate = 16000
        loud = tts_audio(0.02, rate)
        quiet = bytes(len(loud))
        for chunk in [loud] * 30 + [quiet] * 30:  # 0.6 s of voice, then 0.6 s of quiet
            await bot.worker.queue_frame(InputAudioRawFrame(chunk, rate, 1))
        await until(lambda: bot.sink.of(BotStoppedSpeakingFrame))  # the reply ended

    await bot.run(script)
    assert bot.room.microphone_s == pytest.approx(1.2, abs=0.05)
    turn = bot.tavus.ledger.get(1)
    assert turn.user_text == "(the user spoke for 0.6 seconds)"
    assert turn.replica_spoken_text == "I heard you."


async def test_the_relay_ends_the_conversation_its_room_created(monkeypatch):
    import pipecat.transports.daily.transport as daily

    calls: list[str] = []

    class FakeDailyClient:
        """Daily's client without a network: records what the room asked of it."""

        def __init__(self, url, token, bot_name, params, callbacks, name):
            calls.append(f"client {url.rsplit('/', 1)[-1]}")

        async def setup(self, setup):
            calls.append("setup")

        async def join(self):
            calls.append("join")

        async def leave(self):
            calls.append("leave")

        async def cleanup(self):
            calls.append("cleanup")

    monkeypatch.setattr(daily, "DailyTransportClient", FakeDailyClient)
    async with TavusRestSimulator(api_key="k") as server, aiohttp.ClientSession() as http:
        api = TavusAPI(api_key="k", session=http, base_url=server.base_url)
        room = DailyReplicaRoom(api=api, create={"pal_id": "p1", "face_id": "f1"})
        relay = TavusReplicaRelay(room=room, params=TavusInteractionsParams(mode="echo_audio"))
        worker = PipelineWorker(Pipeline([relay]), enable_rtvi=False, idle_timeout_secs=None)

        async def end_soon():
            await until(lambda: "join" in calls)
            await worker.queue_frame(EndFrame())

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        ender = asyncio.create_task(end_soon())
        await asyncio.wait_for(runner.run(), timeout=30)
        await ender
        cid = relay.tavus.conversation_id
        assert cid is not None
        assert calls == [f"client {cid}", "setup", "join", "leave", "cleanup"]
        assert server.conversations[cid]["status"] == "ended"


def test_relay_configuration_mistakes_say_what_to_change():
    sim = TavusSimulator()
    tavus = TavusInteractions()
    with pytest.raises(ConfigurationError, match="not both"):
        TavusReplicaRelay(room=SimulatedRoom(sim), tavus=tavus, params=TavusInteractionsParams())
    with pytest.raises(ConfigurationError, match="video_framerate"):
        TavusReplicaRelay(room=SimulatedRoom(sim), video_framerate=0)
    with pytest.raises(ConfigurationError, match="conversation="):
        DailyReplicaRoom()


async def test_echo_text_through_the_relay_is_spoken_cut_and_restarted():
    from pipecat.frames.frames import (
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
    )

    from pipecat_tavus_interactions import TavusUtteranceFrame

    sim = TavusSimulator(pipeline_mode="echo", speed=20.0, words_per_second=4.0)
    bot = Bot(sim, "echo_text", max_framerate=2)
    marks: dict[str, Any] = {}

    def echoes() -> list[dict]:
        return [m for m, _ in bot.room.sent_messages if m["event_type"] == "conversation.echo"]

    async def script(bot: Bot):
        long = "This answer is long. It goes on and on. And on a while more."
        await bot.worker.queue_frame(LLMFullResponseStartFrame())
        await bot.worker.queue_frame(LLMTextFrame(long + " Then"))
        await until(lambda: bot.sink.of(BotStartedSpeakingFrame))
        marks["sent"] = len(bot.room.sent_messages)
        await bot.worker.queue_frame(InterruptionFrame())
        await until(lambda: bot.sink.of(BotStoppedSpeakingFrame))
        # Late text of the cut response is not echoed; the next response is.
        await bot.worker.queue_frame(LLMTextFrame(" more text."))
        await bot.worker.queue_frame(LLMFullResponseEndFrame())
        await bot.worker.queue_frame(LLMFullResponseStartFrame())
        await bot.worker.queue_frame(LLMTextFrame("A new answer."))
        await bot.worker.queue_frame(LLMFullResponseEndFrame())
        await until(lambda: len(bot.sink.of(BotStoppedSpeakingFrame)) == 2)

    await bot.run(script)
    after = [m["event_type"] for m, _ in bot.room.sent_messages[marks["sent"] :]]
    assert after[0] == "conversation.interrupt"
    first_id = echoes()[0]["properties"]["inference_id"]
    late = [m for m in echoes() if m["properties"]["inference_id"] == first_id]
    assert all("more text" not in m["properties"].get("text", "") for m in late)
    spoken = [f for f in bot.sink.of(TavusUtteranceFrame) if f.spoken]
    assert spoken[0].interrupted and spoken[-1].text == "A new answer."
    assert not spoken[-1].interrupted
