"""Tests of TavusInteractionsOutput: frames in, exact Tavus wire messages out.

Processors run in real Pipecat pipelines (a small harness below, or ``run_test``); the wire
is read from the transport message frames that reach the end of the pipeline.
"""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from pipecat.audio.resamplers import soxr_stream_resampler
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    DataFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    FunctionCallResultFrame,
    InterruptionFrame,
    LLMAssistantPushAggregationFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMMessagesUpdateFrame,
    LLMRunFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.settings import LLMSettings
from pipecat.tests.utils import run_test
from pipecat.transports.daily.transport import DailyOutputTransportMessageUrgentFrame
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.core.sentences import find_sentence_end as _find_sentence_end
from pipecat_tavus_interactions.exceptions import LocalProtocolError, ReplicaNotReadyError
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.pipeline.facade import TavusInteractions
from pipecat_tavus_interactions.pipeline.frames import (
    TavusContextFrame,
    TavusEchoFrame,
    TavusInteractionFrame,
    TavusInterruptFrame,
    TavusMessageUrgentFrame,
    TavusObjectiveConfirmFrame,
    TavusRespondFrame,
    TavusSensitivityFrame,
)
from pipecat_tavus_interactions.pipeline.output import TavusInteractionsOutput
from pipecat_tavus_interactions.protocol import (
    build_message,
    encoded_size,
    max_audio_bytes,
    parse_interaction,
)

CID = "c0ffee12"
CAP = 4096


# --- harness ---------------------------------------------------------------------------


class Recorder(FrameProcessor):
    """Records the frames travelling one way past it (direct mode: exact push order)."""

    def __init__(self, direction: FrameDirection):
        super().__init__(enable_direct_mode=True)
        self._direction = direction
        self.frames: list[Frame] = []
        self._changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == self._direction and not isinstance(frame, StartFrame):
            self.frames.append(frame)
            self._changed.set()
        await self.push_frame(frame, direction)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 3.0) -> None:
        async def loop():
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), within)


class QueuedPassThrough(FrameProcessor):
    """Forwards every frame through Pipecat's queues (a stand-in for a TTS service)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Harness:
    """A running pipeline ``[up-recorder, *before, tavus.output(), *after, down-recorder]``."""

    def __init__(self, tavus: TavusInteractions, *, before=(), after=()):
        self.tavus = tavus
        self.up = Recorder(FrameDirection.UPSTREAM)
        self.down = Recorder(FrameDirection.DOWNSTREAM)
        self.output = tavus.output()
        pipeline = Pipeline([self.up, *before, self.output, *after, self.down])
        self.worker = PipelineWorker(pipeline, cancel_on_idle_timeout=False, enable_rtvi=False)
        self._run: asyncio.Task | None = None

    async def __aenter__(self) -> Harness:
        started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def _started(worker, frame):
            started.set()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._run = asyncio.create_task(runner.run())
        await asyncio.wait_for(started.wait(), 3.0)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.worker.queue_frame(EndFrame())
        await asyncio.wait_for(self._run, 10.0)

    async def send(self, *frames: Frame) -> None:
        await self.worker.queue_frames(list(frames))

    # wire views

    def transport_frames(self) -> list[Frame]:
        return [
            f
            for f in self.down.frames
            if isinstance(f, OutputTransportMessageUrgentFrame | OutputTransportMessageFrame)
        ]

    def messages(self) -> list[dict]:
        return [f.message for f in self.transport_frames()]

    def echoes(self) -> list[dict]:
        return [m for m in self.messages() if m["event_type"] == "conversation.echo"]

    async def wait_messages(self, n: int, within: float = 3.0) -> list[dict]:
        await self.down.wait_for(lambda: len(self.messages()) >= n, within)
        return self.messages()


REPLICA = "replica-1"


def make_tavus(**params) -> TavusInteractions:
    params.setdefault("conversation_id", CID)
    params.setdefault("wait_for_replica", False)
    params.setdefault("replica_participant_id", REPLICA)
    return TavusInteractions(params=TavusInteractionsParams(**params))


def replica_says(tavus: TavusInteractions, event_type: str, **properties) -> list:
    """Feed one replica event to the conversation core, as tavus.input() would."""
    message = {"message_type": "conversation", "event_type": event_type, "conversation_id": CID}
    if event_type.startswith("system."):
        message["message_type"] = "system"
    if properties:
        message["properties"] = properties
    return tavus.connection.receive(message, sender_id=REPLICA, now=tavus.clock())


async def replica_joins(tavus: TavusInteractions) -> None:
    """The replica joins: held messages are released through tavus.output()."""
    await tavus.run(replica_says(tavus, "system.replica_joined"))


@dataclass
class Events:
    sent: list[dict]
    failed: list[tuple[ix.Interaction, Exception]]


def watch(tavus: TavusInteractions) -> Events:
    events = Events([], [])
    tavus.add_event_handler("on_interaction_sent", lambda t, m: events.sent.append(m))
    tavus.add_event_handler("on_send_failed", lambda t, i, e: events.failed.append((i, e)))
    return events


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Poll ``predicate`` (for state outside the pipeline, e.g. event handler results)."""
    for _ in range(int(within / 0.002)):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise TimeoutError("condition not met")


def assert_wire(messages: Sequence[dict], cap: int = CAP) -> None:
    """Every message is ours, well-formed (parses back) and under the cap."""
    for m in messages:
        assert m["message_type"] == "conversation"
        assert m["conversation_id"] == CID
        assert encoded_size(m) <= cap, (m["event_type"], encoded_size(m))
        parse_interaction(m)


def text_of(echoes: Sequence[dict]) -> list[tuple[str, bool]]:
    return [(m["properties"]["text"], m["properties"]["done"]) for m in echoes]


def is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


# --- sentence boundaries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("Hello there.", 12),  # end of buffer, unambiguous: leaves now
        ("Hello there. How", 12),
        ("Really?!", 8),
        ('He said "Hi." Then', 13),  # the closing quote stays with its sentence
        ("Wait... what", 7),
        ("你好。再见", 3),  # CJK needs no space
        ("It costs 3.", -1),  # may become 3.5
        ("It costs 3.5 dollars. Ok", 21),
        ("See e.g.", -1),
        ("See e.g. this. More", 14),
        ("Ask Mr. Smith. Then", 14),
        ("J. R. Tolkien wrote it. Yes", 23),
        ("The U.S. is big. Yes", 16),
        ("Wait..", -1),  # may grow into an ellipsis
        ("version1.2.3 is out", -1),
    ],
)
def test_sentence_end(text, end):
    assert _find_sentence_end(text)[0] == end


def test_sentence_end_resumes_at_undecided_candidate():
    end, resume = _find_sentence_end("It costs 3.")
    assert (end, resume) == (-1, 10)
    assert _find_sentence_end("It costs 3.5 now. Yes", resume)[0] == 17


# --- echo text ---------------------------------------------------------------------------

ANSWER = ["Hello", " there", ".", " How", " are", " you", " today", "?"]
ANSWER += [" I", " hope", " it", " is", " going", " well", "."]


class StreamingLLM(FrameProcessor):
    """An LLM stand-in: on ``LLMRunFrame`` it streams ``tokens`` one frame at a time."""

    def __init__(self, tokens: list[str]):
        super().__init__()
        self._tokens = tokens

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMRunFrame):
            await self.push_frame(frame, direction)
            return
        await self.push_frame(LLMFullResponseStartFrame())
        for token in self._tokens:
            await self.push_frame(LLMTextFrame(token))
        await self.push_frame(LLMFullResponseEndFrame())


async def echo_response(tavus, frames: list[Frame]) -> tuple[list[dict], list[Frame]]:
    """Run one LLM response (``frames`` between its start and end) through ``tavus.output()``.

    Returns:
        The echo messages it sent, and every frame that came out downstream.
    """
    down, _ = await run_test(
        tavus.output(),
        frames_to_send=[LLMFullResponseStartFrame(), *frames, LLMFullResponseEndFrame()],
    )
    return [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)], down


async def test_echo_text_streams_sentences_each_leaves_with_the_next_token():
    tavus = make_tavus(mode="echo_text")
    h = Harness(tavus, before=[StreamingLLM(ANSWER)])
    async with h:
        await h.send(LLMRunFrame())
        await h.down.wait_for(
            lambda: any(isinstance(f, LLMFullResponseEndFrame) for f in h.down.frames)
        )

    echoes = h.echoes()
    assert text_of(echoes) == [
        ("Hello there.", False),
        ("How are you today?", False),
        ("I hope it is going well.", True),
    ]
    iids = {m["properties"]["inference_id"] for m in echoes}
    assert len(iids) == 1 and is_uuid(iids.pop())
    assert_wire(h.messages())
    # Text frames are forwarded unchanged and in order; the first echo leaves with the
    # second sentence's first token, before that token is forwarded.
    order = [
        f for f in h.down.frames if isinstance(f, LLMTextFrame | OutputTransportMessageUrgentFrame)
    ]
    texts = [f.text for f in order if isinstance(f, LLMTextFrame)]
    assert texts == ANSWER
    first_echo = next(
        i for i, f in enumerate(order) if isinstance(f, OutputTransportMessageUrgentFrame)
    )
    how = next(i for i, f in enumerate(order) if isinstance(f, LLMTextFrame) and f.text == " How")
    assert first_echo == how - 1
    assert tavus.stats["conversation.echo"] == 3


async def test_echo_text_does_not_split_decimals_or_abbreviations():
    tokens = ["It", " costs", " 3", ".", "5", " dollars", ",", " e", ".g", ".", " at", " Mr", "."]
    tokens += [" Lee", "'s", " shop", ".", " Bye", "!"]
    tavus = make_tavus(mode="echo_text")
    echoes, down = await echo_response(tavus, [*map(LLMTextFrame, tokens)])
    assert text_of(echoes) == [
        ("It costs 3.5 dollars, e.g. at Mr. Lee's shop.", False),
        ("Bye!", True),
    ]


async def test_echo_text_keeps_quotations_lists_and_other_scripts_whole():
    tokens = ['"Why', '?"', " she", " asked", ".", " Steps", ":", "\n1", ".", " Open", " it", "."]
    tokens += [" नमस्ते", "।", " ठीक", " है", "।"]
    tavus = make_tavus(mode="echo_text")
    echoes, down = await echo_response(tavus, [*map(LLMTextFrame, tokens)])
    assert text_of(echoes) == [
        ('"Why?" she asked.', False),
        ("Steps:\n1. Open it.", False),
        ("नमस्ते।", False),
        ("ठीक है।", True),
    ]


async def test_echo_text_single_sentence_is_one_message_with_text_and_done():
    tavus = make_tavus(mode="echo_text")
    echoes, down = await echo_response(tavus, [LLMTextFrame("Hi"), LLMTextFrame(" there.")])
    # Never an empty text echo: the sentence waits for the end and carries done=true.
    assert text_of(echoes) == [("Hi there.", True)]
    assert tavus.stats["conversation.echo"] == 1


async def test_echo_text_unterminated_tail_goes_with_done():
    tavus = make_tavus(mode="echo_text")
    down, _ = await run_test(
        tavus.output(),
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("One. Two"),
            LLMTextFrame(" and three"),
            LLMFullResponseEndFrame(),
            # a second response gets its own inference id
            LLMFullResponseStartFrame(),
            LLMTextFrame("Again"),
            LLMFullResponseEndFrame(),
            # a response with no text sends nothing
            LLMFullResponseStartFrame(),
            LLMFullResponseEndFrame(),
        ],
    )
    echoes = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert text_of(echoes) == [("One.", False), ("Two and three", True), ("Again", True)]
    ids = [m["properties"]["inference_id"] for m in echoes]
    assert ids[0] == ids[1] != ids[2]


async def test_echo_text_whole_mode_sends_one_message_per_response():
    tavus = make_tavus(mode="echo_text", text_echo="whole")
    echoes, down = await echo_response(tavus, [*map(LLMTextFrame, ANSWER)])
    assert text_of(echoes) == [("Hello there. How are you today? I hope it is going well.", True)]
    # The message follows every text frame.
    assert isinstance(down[-2], OutputTransportMessageUrgentFrame)
    assert isinstance(down[-1], LLMFullResponseEndFrame)


async def test_echo_text_skips_skip_tts_text_but_forwards_it():
    tavus = make_tavus(mode="echo_text")
    hidden = LLMTextFrame("Secret notes. ")
    hidden.skip_tts = True
    echoes, down = await echo_response(tavus, [hidden, LLMTextFrame("Spoken.")])
    assert text_of(echoes) == [("Spoken.", True)]
    assert hidden in down


async def test_echo_text_long_sentence_is_split_under_the_cap():
    cap = 600
    tavus = make_tavus(mode="echo_text", max_message_bytes=cap)
    words = [f" wörd{i}" for i in range(300)]  # multibyte text, one long sentence
    echoes, down = await echo_response(tavus, [*map(LLMTextFrame, words), LLMTextFrame(".")])
    assert len(echoes) > 3
    assert_wire(echoes, cap)
    assert " ".join(t for t, _ in text_of(echoes)).split() == "".join(words + ["."]).split()
    assert [d for _, d in text_of(echoes)].count(True) == 1 and echoes[-1]["properties"]["done"]
    assert len({m["properties"]["inference_id"] for m in echoes}) == 1


async def test_tts_speak_becomes_one_echo_and_keeps_the_context():
    tavus = make_tavus(mode="echo_text")
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    h = Harness(tavus, after=[assistant])
    async with h:
        await h.send(TTSSpeakFrame("Welcome to the demo!"))
        await h.wait_messages(1)
        await until(lambda: context.messages)
    echoes = h.echoes()
    assert text_of(echoes) == [("Welcome to the demo!", True)]
    assert is_uuid(echoes[0]["properties"]["inference_id"])
    assert not any(isinstance(f, TTSSpeakFrame) for f in h.down.frames)
    assert context.messages == [{"role": "assistant", "content": "Welcome to the demo!"}]


async def test_llm_text_still_reaches_the_assistant_context():
    tavus = make_tavus(mode="echo_text")
    context = LLMContext()
    h = Harness(tavus, before=[StreamingLLM(ANSWER)], after=[LLMAssistantAggregator(context)])
    async with h:
        await h.send(LLMRunFrame())
        await until(lambda: context.messages)
    assert context.messages == [
        {"role": "assistant", "content": "Hello there. How are you today? I hope it is going well."}
    ]
    assert len(h.echoes()) == 3


async def test_tts_speak_frame_outside_a_response_pushes_text_and_commit():
    tavus = make_tavus(mode="echo_text")
    down, _ = await run_test(tavus.output(), frames_to_send=[TTSSpeakFrame("Hi.")])
    assert [type(f) for f in down] == [
        TavusMessageUrgentFrame,
        TTSStartedFrame,
        TTSTextFrame,
        TTSStoppedFrame,
        LLMAssistantPushAggregationFrame,
    ]
    iid = down[0].message["properties"]["inference_id"]
    assert down[1].context_id == down[2].context_id == down[3].context_id == iid


# --- echo audio --------------------------------------------------------------------------


def pcm(seconds: float, rate: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-12000, 12000, int(seconds * rate), dtype=np.int16).tobytes()


def audio_frames(audio: bytes, rate: int, *, frame_ms: int = 20, context_id=None) -> list[Frame]:
    step = rate * 2 * frame_ms // 1000
    return [
        TTSAudioRawFrame(
            audio=audio[i : i + step], sample_rate=rate, num_channels=1, context_id=context_id
        )
        for i in range(0, len(audio), step)
    ]


def decode(echoes: Sequence[dict]) -> bytes:
    return b"".join(base64.b64decode(m["properties"]["audio"]) for m in echoes)


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_echo_audio_round_trips_ten_seconds_under_the_cap(rate):
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=rate)
    audio = pcm(10.0, rate)
    frames = [TTSStartedFrame(context_id="ctx"), *audio_frames(audio, rate, context_id="ctx")]
    down, _ = await run_test(
        tavus.output(), frames_to_send=[*frames, TTSStoppedFrame(context_id="ctx")]
    )
    echoes = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert_wire(echoes)
    # The hot path builds audio messages itself: they must equal build_message()'s.
    assert all(build_message(parse_interaction(m), conversation_id=CID) == m for m in echoes)
    props = [m["properties"] for m in echoes]
    assert {p["modality"] for p in props} == {"audio"}
    assert {p["sample_rate"] for p in props} == {rate}
    assert len({p["inference_id"] for p in props}) == 1
    assert [p["done"] for p in props] == [False] * (len(props) - 1) + [True]
    chunk = max_audio_bytes(
        conversation_id=CID, sample_rate=rate, inference_id=props[0]["inference_id"], max_bytes=CAP
    )
    assert all(len(base64.b64decode(p["audio"])) == chunk for p in props[:-1])
    got = decode(echoes)
    if len(audio) % chunk:
        assert got == audio
    else:  # nothing was left for the last message: it carries a short silence
        assert got[: len(audio)] == audio and not any(got[len(audio) :])
    # audio is consumed, the TTS control frames are forwarded
    assert not any(isinstance(f, OutputAudioRawFrame) for f in down)
    assert isinstance(down[0], TTSStartedFrame) and isinstance(down[-1], TTSStoppedFrame)


async def test_echo_audio_chunks_are_reported_to_on_interaction_sent():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000)
    frames = audio_frames(pcm(1.0, 16000), 16000)
    h = Harness(tavus)
    async with h:
        await h.send(*frames[:25])
        await h.down.wait_for(lambda: len(h.echoes()) >= 5)
        # A handler added mid-utterance sees every later chunk, and only those.
        events = watch(tavus)
        unseen = len(h.echoes())
        await h.send(*frames[25:], TTSStoppedFrame())
        await h.down.wait_for(lambda: h.echoes()[-1]["properties"]["done"])
        await until(lambda: events.sent and events.sent[-1]["properties"]["done"])
    echoes = h.echoes()
    assert len(events.sent) > 5
    assert events.sent == echoes[unseen:]
    assert tavus.stats["conversation.echo"] == len(echoes)


async def test_echo_audio_resamples_to_the_echo_rate():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=24000)
    audio = pcm(2.0, 16000)
    down, _ = await run_test(
        tavus.output(), frames_to_send=[*audio_frames(audio, 16000), TTSStoppedFrame()]
    )
    echoes = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert_wire(echoes)
    assert {m["properties"]["sample_rate"] for m in echoes} == {24000}
    got = decode(echoes)
    assert abs(len(got) / 2 / 24000 - 2.0) < 0.05


async def test_echo_audio_keeps_every_sample_when_the_tts_rate_changes_mid_utterance(
    monkeypatch,
):
    # Pipecat's stream resampler forgets its history after 0.2 s of wall-clock idleness.
    monkeypatch.setattr(soxr_stream_resampler, "time", SimpleNamespace(time=lambda: 0.0))
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=24000)
    first, second = pcm(1.0, 16000, seed=1), pcm(1.0, 22050, seed=2)
    frames = [*audio_frames(first, 16000), *audio_frames(second, 22050), TTSStoppedFrame()]
    down, _ = await run_test(tavus.output(), frames_to_send=frames)
    echoes = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert_wire(echoes)
    expected = 0
    for audio, rate in ((first, 16000), (second, 22050)):
        resampler = create_stream_resampler()
        expected += len(await resampler.resample(audio, rate, 24000) + await resampler.flush())
    # Samples within 1 ms of resampling each part alone (40 ms went missing before).
    assert abs(len(decode(echoes)) - expected) <= 2 * 24


async def test_echo_audio_downmixes_stereo():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000)
    left = np.full(320, 1000, dtype=np.int16)
    right = np.full(320, 3000, dtype=np.int16)
    stereo = np.stack([left, right], axis=1).reshape(-1).tobytes()
    frame = OutputAudioRawFrame(audio=stereo, sample_rate=16000, num_channels=2)
    down, _ = await run_test(tavus.output(), frames_to_send=[frame, TTSStoppedFrame()])
    echoes = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert decode(echoes) == np.full(320, 2000, dtype=np.int16).tobytes()


async def test_echo_audio_exact_chunks_close_with_silence():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000)
    iid_probe = str(uuid.uuid4())
    chunk = max_audio_bytes(
        conversation_id=CID, sample_rate=16000, inference_id=iid_probe, max_bytes=CAP
    )
    audio = pcm(chunk * 3 / 32000, 16000)
    assert len(audio) == chunk * 3
    frame = TTSAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1)  # one big frame
    down, _ = await run_test(tavus.output(), frames_to_send=[frame, TTSStoppedFrame()])
    echoes = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert [m["properties"]["done"] for m in echoes] == [False, False, False, True]
    assert decode(echoes[:3]) == audio
    assert decode(echoes[3:]) == bytes(int(16000 * 0.04) * 2)


async def test_echo_audio_closes_after_fallback_without_tts_stopped():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000, echo_done_fallback_s=0.05)
    h = Harness(tavus)
    async with h:
        await h.send(*audio_frames(pcm(0.1, 16000), 16000))
        await h.down.wait_for(lambda: any(m["properties"]["done"] for m in h.echoes()))
    echoes = h.echoes()
    assert echoes[-1]["properties"]["done"] is True
    assert decode(echoes)[: len(pcm(0.1, 16000))] == pcm(0.1, 16000)


# --- interruptions -------------------------------------------------------------------------


def interrupts(messages: Sequence[dict]) -> list[int]:
    return [i for i, m in enumerate(messages) if m["event_type"] == "conversation.interrupt"]


async def test_interrupt_during_echo_audio_drops_the_rest_of_the_utterance():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000)
    audio = pcm(10.0, 16000)
    frames = audio_frames(audio, 16000, context_id="ctx-1")
    # tavus.output() runs in direct mode: frames wait in the queue of the processor before
    # it (here a stand-in for the TTS), where an interruption flushes them.
    tts = QueuedPassThrough()
    h = Harness(tavus, before=[tts])
    async with h:
        await h.send(TTSStartedFrame(context_id="ctx-1"), *frames[:50])  # 1 s goes out
        await h.down.wait_for(lambda: len(h.echoes()) >= 10)
        # Queue the other 9 s behind a paused TTS, then interrupt.
        await tts.pause_processing_frames()
        await h.send(*frames[50:], TTSStoppedFrame(context_id="ctx-1"))
        await h.send(InterruptionFrame())
        await until(lambda: interrupts(h.messages()))
        await tts.resume_processing_frames()
        # Late audio of the interrupted TTS context is dropped too.
        await h.send(*frames[50:55])
        # The next utterance starts fresh.
        second = pcm(0.5, 16000, seed=8)
        await h.send(
            *audio_frames(second, 16000, context_id="ctx-2"), TTSStoppedFrame(context_id="ctx-2")
        )
        await h.down.wait_for(lambda: h.echoes() and h.echoes()[-1]["properties"]["done"])
    messages = h.messages()
    assert_wire(messages)
    (cut,) = interrupts(messages)
    old = messages[0]["properties"]["inference_id"]
    before = [m for m in messages[:cut] if m["properties"]["inference_id"] == old]
    after = messages[cut + 1 :]
    assert before and not any(m["properties"]["done"] for m in before)
    assert all(m["properties"]["inference_id"] != old for m in after)
    assert len(decode(before)) < len(audio) // 2  # most of the 10 s never left
    assert decode(after)[: len(second)] == second
    assert len({m["properties"]["inference_id"] for m in after}) == 1
    assert tavus.stats["echo_dropped"] > 0


async def test_interrupt_in_realtime_pacing_empties_the_send_queue():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000, echo_realtime=True)
    audio = pcm(10.0, 16000)
    h = Harness(tavus)
    async with h:
        await h.send(*audio_frames(audio, 16000), TTSStoppedFrame())
        # Chunks leave at playback speed: after a few, most of the 10 s is still queued.
        await h.down.wait_for(lambda: len(h.echoes()) >= 3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await h.send(InterruptionFrame())
        await until(lambda: interrupts(h.messages()))
        latency = loop.time() - t0
        await asyncio.sleep(0.3)  # a paced sender would have sent more by now
    messages = h.messages()
    (cut,) = interrupts(messages)
    assert cut >= 3
    assert messages[cut + 1 :] == []
    assert len(decode(messages[:cut])) < len(audio) // 4
    assert latency < 0.5


@pytest.mark.parametrize("end", ["EndFrame", "system.shutdown"])
async def test_the_pipeline_ends_promptly_with_realtime_audio_queued(end):
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000, echo_realtime=True)
    audio = pcm(30.0, 16000)
    h = Harness(tavus, before=[tavus.input()])
    await h.__aenter__()
    try:
        await h.send(*audio_frames(audio, 16000), TTSStoppedFrame())
        await h.down.wait_for(lambda: len(h.echoes()) >= 3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if end == "EndFrame":
            await h.worker.queue_frame(EndFrame())
        else:
            await tavus.run(replica_says(tavus, "system.shutdown", reason="max_duration"))
        await asyncio.wait_for(h._run, 10.0)
        took = loop.time() - t0
    finally:
        if not h._run.done():
            await h.__aexit__()
    echoes = h.echoes()
    assert_wire(echoes)
    assert took < 2.0
    # Most of the 30 s never left; the utterance was closed with done=true all the same.
    assert len(decode(echoes)) < len(audio) // 10
    assert echoes[-1]["properties"]["done"] is True
    assert len({m["properties"]["inference_id"] for m in echoes}) == 1
    assert tavus.stats["echo_dropped"] > 0


async def test_no_interrupt_when_replica_silent_and_nothing_in_flight():
    tavus = make_tavus(mode="echo_audio")
    down, _ = await run_test(tavus.output(), frames_to_send=[InterruptionFrame()])
    assert [type(f) for f in down] == [InterruptionFrame]
    assert tavus.stats["interrupt_skipped_idle"] == 1


async def test_interrupt_when_replica_speaking_is_sent_after_forwarding():
    tavus = make_tavus(mode="full")
    replica_says(tavus, "conversation.replica.started_speaking", inference_id="i1")
    down, _ = await run_test(tavus.output(), frames_to_send=[InterruptionFrame()])
    assert [type(f) for f in down] == [InterruptionFrame, TavusMessageUrgentFrame]
    assert down[1].message == {
        "message_type": "conversation",
        "event_type": "conversation.interrupt",
        "conversation_id": CID,
    }


async def test_interrupt_while_text_echo_in_flight_then_new_response_gets_new_id():
    tavus = make_tavus(mode="echo_text")
    h = Harness(tavus)
    async with h:
        await h.send(LLMFullResponseStartFrame(), LLMTextFrame("First part. Second"))
        await h.wait_messages(1)
        await h.send(InterruptionFrame())
        await h.wait_messages(2)
        # Late text of the interrupted response is not echoed.
        await h.send(LLMTextFrame(" part. Third."), LLMFullResponseEndFrame())
        await h.send(
            LLMFullResponseStartFrame(), LLMTextFrame("New answer."), LLMFullResponseEndFrame()
        )
        await h.wait_messages(3)
    messages = h.messages()
    assert [m["event_type"] for m in messages] == [
        "conversation.echo",
        "conversation.interrupt",
        "conversation.echo",
    ]
    assert text_of([messages[2]]) == [("New answer.", True)]
    assert messages[0]["properties"]["inference_id"] != messages[2]["properties"]["inference_id"]


async def test_no_interrupt_sent_back_for_a_remote_interruption():
    tavus = make_tavus(mode="echo_text")
    replica_says(tavus, "conversation.replica.started_speaking", inference_id="i1")
    h = Harness(tavus)
    async with h:
        await h.send(LLMFullResponseStartFrame(), LLMTextFrame("Talking now. More"))
        await h.wait_messages(1)
        # Tavus reports the barge-in (the input then broadcasts the interruption).
        replica_says(
            tavus, "conversation.replica.stopped_speaking", inference_id="i1", interrupted=True
        )
        await h.send(InterruptionFrame())
        await h.down.wait_for(lambda: any(isinstance(f, InterruptionFrame) for f in h.down.frames))
        await h.send(LLMFullResponseEndFrame())
        # The guard is consumed once: the next local interruption does interrupt.
        await h.send(InterruptionFrame())
        await h.wait_messages(2)
    assert [m["event_type"] for m in h.messages()] == [
        "conversation.echo",
        "conversation.interrupt",
    ]
    assert tavus.stats["interrupt_skipped_remote"] == 1


async def test_a_burst_of_interruptions_sends_one_interrupt_per_replica_speaking_span():
    tavus = make_tavus(mode="full")
    h = Harness(tavus)

    def seen() -> int:
        return sum(isinstance(f, InterruptionFrame) for f in h.down.frames)

    async with h:
        await tavus.run(replica_says(tavus, "conversation.replica.started_speaking"))
        # The user talks over the replica; Tavus has not reported the stop yet.
        await h.send(*[InterruptionFrame() for _ in range(1091)])
        await h.down.wait_for(lambda: seen() == 1091)
        assert len(interrupts(h.messages())) == 1
        # An explicit TavusInterruptFrame is always sent.
        await h.send(TavusInterruptFrame())
        await h.wait_messages(2)
        # The replica stops, then speaks again: the new span can be interrupted again.
        await tavus.run(replica_says(tavus, "conversation.replica.stopped_speaking"))
        await tavus.run(replica_says(tavus, "conversation.replica.started_speaking"))
        await h.send(InterruptionFrame(), InterruptionFrame())
        await h.down.wait_for(lambda: seen() == 1093)
    assert [m["event_type"] for m in h.messages()] == ["conversation.interrupt"] * 3
    assert tavus.stats["interrupt_coalesced"] == 1090 + 1


async def test_an_echo_sent_after_an_interrupt_can_be_interrupted_again():
    tavus = make_tavus(mode="echo_text")
    h = Harness(tavus)
    async with h:
        await tavus.run(replica_says(tavus, "conversation.replica.started_speaking"))
        # (Interruptions are system frames: they would overtake the queued TTSSpeakFrame.)
        await h.send(TTSSpeakFrame("First answer."))
        await h.wait_messages(1)
        await h.send(InterruptionFrame(), InterruptionFrame())
        await h.wait_messages(2)
        # The replica is still reported speaking, but this echo is new speech.
        await h.send(TTSSpeakFrame("Second answer."))
        await h.wait_messages(3)
        await h.send(InterruptionFrame(), InterruptionFrame())
        await h.wait_messages(4)
        await h.send(TTSSpeakFrame("Marker."))
        await h.wait_messages(5)
    assert [(m["event_type"], m.get("properties", {}).get("text")) for m in h.messages()] == [
        ("conversation.echo", "First answer."),
        ("conversation.interrupt", None),
        ("conversation.echo", "Second answer."),
        ("conversation.interrupt", None),
        ("conversation.echo", "Marker."),
    ]
    assert tavus.stats["interrupt_coalesced"] == 2


async def test_tavus_interrupt_frame_always_interrupts_and_is_consumed():
    tavus = make_tavus(mode="full")
    down, _ = await run_test(tavus.output(), frames_to_send=[TavusInterruptFrame()])
    assert [f.message["event_type"] for f in down] == ["conversation.interrupt"]


async def test_in_flight_estimate_follows_the_clock():
    now = [100.0]
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            mode="echo_text", conversation_id=CID, wait_for_replica=False
        ),
        clock=lambda: now[0],
    )
    h = Harness(tavus)
    async with h:
        await h.send(TavusEchoFrame(text="x" * 28))  # about 2 s of speech
        await h.wait_messages(1)
        now[0] += 2.5  # inside the grace period
        assert h.output.echo_in_flight()
        now[0] += 1.0
        assert not h.output.echo_in_flight()
        await h.send(InterruptionFrame())
        await h.down.wait_for(lambda: any(isinstance(f, InterruptionFrame) for f in h.down.frames))
    assert [m["event_type"] for m in h.messages()] == ["conversation.echo"]


# --- readiness gating --------------------------------------------------------------------


async def test_held_until_replica_joins_then_released_in_order():
    tavus = make_tavus(mode="echo_text", wait_for_replica=True)
    events = watch(tavus)
    h = Harness(tavus)
    async with h:
        await tavus.send(ix.AppendLLMContext("before start"))
        await h.send(
            TavusRespondFrame(text="hello"),
            TavusContextFrame(context="ctx", action="overwrite"),
            TavusEchoFrame(text="Hi."),
        )
        await until(lambda: tavus.stats["held"] == 4)
        assert h.messages() == []
        await replica_joins(tavus)
        await h.wait_messages(4)
        await h.send(TavusSensitivityFrame(pause="low"))
        await h.wait_messages(5)
    assert [m["event_type"] for m in h.messages()] == [
        "conversation.append_llm_context",
        "conversation.respond",
        "conversation.overwrite_llm_context",
        "conversation.echo",
        "conversation.sensitivity",
    ]
    await until(lambda: len(events.sent) == 5)
    assert events.sent == h.messages()
    # The respond was noted: when Tavus reports it as the user's words, it is marked injected.
    assert tavus.connection.sender.take_injected("Hello")


async def test_held_messages_fail_with_replica_not_ready_after_timeout():
    tavus = make_tavus(mode="full", wait_for_replica=True, ready_timeout_s=0.05)
    events = watch(tavus)
    h = Harness(tavus)
    async with h:
        await h.send(TavusRespondFrame(text="one"), TavusRespondFrame(text="two"))
        await until(lambda: len(events.failed) == 2)
        await h.up.wait_for(lambda: any(isinstance(f, ErrorFrame) for f in h.up.frames))
        await replica_joins(tavus)  # too late: nothing is left to send
        await asyncio.sleep(0.01)
    assert h.messages() == []
    assert [i.text for i, _ in events.failed] == ["one", "two"]
    assert all(isinstance(e, ReplicaNotReadyError) for _, e in events.failed)
    assert len([f for f in h.up.frames if isinstance(f, ErrorFrame)]) == 1


async def test_pending_overflow_is_reported_not_silent():
    tavus = make_tavus(mode="full", wait_for_replica=True, max_pending=2)
    events = watch(tavus)
    h = Harness(tavus)
    async with h:
        await h.send(*(TavusRespondFrame(text=f"m{i}") for i in range(3)))
        await until(lambda: len(events.failed) == 1)
        await h.up.wait_for(lambda: any(isinstance(f, ErrorFrame) for f in h.up.frames))
        await replica_joins(tavus)
        await h.wait_messages(2)
    assert [m["properties"]["text"] for m in h.messages()] == ["m0", "m1"]
    failed, error = events.failed[0]
    assert failed.text == "m2" and isinstance(error, ReplicaNotReadyError)


async def test_interruption_drops_held_echo_but_keeps_other_held_messages():
    tavus = make_tavus(mode="echo_text", wait_for_replica=True)
    h = Harness(tavus)
    async with h:
        await h.send(TavusRespondFrame(text="keep me"), TavusEchoFrame(text="Drop me."))
        await until(lambda: tavus.stats["held"] == 2)
        await h.send(InterruptionFrame())
        await h.down.wait_for(lambda: any(isinstance(f, InterruptionFrame) for f in h.down.frames))
        await replica_joins(tavus)
        await h.wait_messages(1)
    assert [m["event_type"] for m in h.messages()] == ["conversation.respond"]


# --- targeting, urgency, direct frames -----------------------------------------------------


async def test_target_replica_uses_daily_urgent_frame_with_participant_id():
    pid = str(uuid.uuid4())
    tavus = make_tavus(mode="full", target_replica=True, replica_participant_id=None)
    h = Harness(tavus)
    async with h:
        await h.send(TavusRespondFrame(text="broadcast: replica unknown"))
        await h.wait_messages(1)
        tavus.set_replica_participant(pid)
        await h.send(TavusRespondFrame(text="targeted"))
        await h.wait_messages(2)
    first, second = h.transport_frames()
    assert isinstance(first, OutputTransportMessageUrgentFrame)
    assert not isinstance(first, DailyOutputTransportMessageUrgentFrame)
    assert isinstance(second, DailyOutputTransportMessageUrgentFrame)
    assert second.participant_id == pid
    assert second.message["properties"] == {"text": "targeted"}


async def test_non_urgent_send_uses_the_queued_frame():
    tavus = make_tavus(mode="full")
    h = Harness(tavus)
    async with h:
        await h.output.send_interaction(ix.Respond("after audio"), urgent=False)
        await h.wait_messages(1)
    (frame,) = h.transport_frames()
    assert isinstance(frame, OutputTransportMessageFrame)


async def test_direct_frames_become_their_interactions_and_are_consumed():
    tavus = make_tavus(mode="full")
    frames = [
        TavusEchoFrame(text="Say this."),
        TavusRespondFrame(text="What's new?"),
        TavusContextFrame(context="New facts.", action="overwrite"),
        TavusContextFrame(context="More facts."),
        TavusSensitivityFrame(interrupt="high"),
        TavusObjectiveConfirmFrame(objective_name="collect_email"),
        TavusInteractionFrame(interaction=ix.ToolResult("call-1", {"ok": True})),
    ]
    down, _ = await run_test(tavus.output(), frames_to_send=frames)
    assert all(isinstance(f, OutputTransportMessageUrgentFrame) for f in down)
    messages = [f.message for f in down]
    assert_wire(messages)
    assert [(m["event_type"], m.get("properties")) for m in messages] == [
        ("conversation.echo", {"modality": "text", "text": "Say this.", "done": True}),
        ("conversation.respond", {"text": "What's new?"}),
        ("conversation.overwrite_llm_context", {"context": "New facts."}),
        ("conversation.append_llm_context", {"context": "More facts."}),
        ("conversation.sensitivity", {"participant_interrupt_sensitivity": "high"}),
        ("conversation.objective.confirm", {"objective_name": "collect_email"}),
        (
            "conversation.tool_result",
            {"tool_call_id": "call-1", "output": '{"ok": true}', "status": "success"},
        ),
    ]
    assert tavus.stats["conversation.append_llm_context"] == 1


async def test_send_interaction_misuse_raises_local_protocol_error():
    tavus = make_tavus(mode="full")
    output = tavus.output()
    with pytest.raises(LocalProtocolError, match="Interaction"):
        await output.send_interaction("conversation.interrupt")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="cannot be split"):
        await tavus.send(ix.OverwriteLLMContext("x" * 5000))
    with pytest.raises(LocalProtocolError, match="echo text is empty"):
        await tavus.send(ix.Echo(text=" ", done=True))
    with pytest.raises(LocalProtocolError, match="conversation_id"):
        await make_tavus(conversation_id=None).output().send_interaction(ix.Respond("hi"))


async def test_lone_surrogates_are_replaced_in_text_and_refused_elsewhere():
    # A transcript cut mid-emoji can carry a lone surrogate into what the bot sends.
    tavus = make_tavus(mode="echo_text")
    events = watch(tavus)
    bad = ix.ObjectiveConfirm(objective_name="goal\ud83d")
    down, up = await run_test(
        tavus.output(),
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("You said \ud83d."),
            LLMTextFrame(" Right"),
            LLMFullResponseEndFrame(),
            TavusRespondFrame("typed \udc00 text"),
            TavusInteractionFrame(interaction=bad),
            TTSSpeakFrame("Still here."),
        ],
    )
    messages = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert [m["properties"].get("text") for m in messages] == [
        "You said \ufffd.",
        "Right",
        "typed \ufffd text",
        "Still here.",
    ]
    assert_wire(messages)
    ((interaction, error),) = events.failed
    assert interaction is bad and isinstance(error, LocalProtocolError)
    assert "lone surrogate" in str(error)
    assert any(isinstance(f, ErrorFrame) for f in up)
    assert tavus.stats["text_cleaned"] == 2
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        await tavus.send(bad)


async def test_oversized_direct_echo_and_append_are_split():
    tavus = make_tavus(mode="full", max_message_bytes=700)
    long_text = " ".join(f"part{i}." for i in range(200))
    down, _ = await run_test(
        tavus.output(),
        frames_to_send=[
            TavusEchoFrame(text=long_text),
            TavusInteractionFrame(interaction=ix.AppendLLMContext(long_text, "completed")),
        ],
    )
    messages = [f.message for f in down]
    assert_wire(messages, 700)
    echoes = [m for m in messages if m["event_type"] == "conversation.echo"]
    appends = [m for m in messages if m["event_type"] == "conversation.append_llm_context"]
    assert len(echoes) > 1 and len(appends) > 1
    assert len({m["properties"]["inference_id"] for m in echoes}) == 1  # one utterance
    assert [m["properties"]["done"] for m in echoes] == [False] * (len(echoes) - 1) + [True]
    assert "".join(m["properties"]["context"] for m in appends) == long_text
    assert [m["properties"].get("job_status") for m in appends][-1] == "completed"
    assert all("job_status" not in m["properties"] for m in appends[:-1])


# --- context mirroring -------------------------------------------------------------------


MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:..."}},
        ],
    },
    {"role": "assistant", "content": "A cat."},
    {"role": "assistant", "tool_calls": [{"id": "1"}]},
]


async def test_mirror_context_renders_and_forwards():
    tavus = make_tavus(mode="echo_text", mirror_context=True)
    update = LLMMessagesUpdateFrame(messages=MESSAGES, run_llm=False)
    append = LLMMessagesAppendFrame(messages=[{"role": "user", "content": "And now?"}])
    down, _ = await run_test(tavus.output(), frames_to_send=[update, append])
    assert down[0] is not update and isinstance(down[0], OutputTransportMessageUrgentFrame)
    assert down[0].message["properties"] == {
        "context": "system: You are helpful.\nuser: What is this?\nassistant: A cat."
    }
    assert down[1] is update
    assert down[2].message["event_type"] == "conversation.append_llm_context"
    assert down[2].message["properties"] == {"context": "user: And now?"}
    assert down[3] is append


async def test_mirror_context_splits_appends_and_refuses_oversized_overwrite():
    tavus = make_tavus(mode="full", mirror_context=True, max_message_bytes=800)
    events = watch(tavus)
    big = [{"role": "user", "content": f"Fact number {i} is important."} for i in range(80)]
    append = LLMMessagesAppendFrame(messages=big)
    update = LLMMessagesUpdateFrame(messages=big)
    down, up = await run_test(tavus.output(), frames_to_send=[append, update])
    messages = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert_wire(messages, 800)
    assert {m["event_type"] for m in messages} == {"conversation.append_llm_context"}
    assert "".join(
        m["properties"]["context"] for m in messages
    ) == TavusInteractionsOutput.render_messages(big)
    assert append in down and update in down  # both forwarded
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "overwrite" in errors[0].error
    await until(lambda: events.failed)
    ((interaction, error),) = events.failed
    assert isinstance(interaction, ix.OverwriteLLMContext) and isinstance(error, LocalProtocolError)


async def test_mirroring_is_off_by_default():
    tavus = make_tavus(mode="full")
    update = LLMMessagesUpdateFrame(messages=MESSAGES)
    down, _ = await run_test(tavus.output(), frames_to_send=[update])
    assert down == [update]


# --- forwarding ----------------------------------------------------------------------------


@dataclass
class UnknownFrame(DataFrame):
    payload: str = "x"


@pytest.mark.parametrize("mode", ["full", "echo_text", "echo_audio"])
async def test_other_frames_pass_unchanged_both_ways(mode):
    tavus = make_tavus(mode=mode)
    frames = [
        LLMContextFrame(context=LLMContext()),
        FunctionCallResultFrame(function_name="f", tool_call_id="1", arguments={}, result={"a": 1}),
        LLMUpdateSettingsFrame(delta=LLMSettings(system_instruction="be brief")),
        UnknownFrame(),
    ]
    down, _ = await run_test(tavus.output(), frames_to_send=frames)
    assert down == frames
    up_frames = [UnknownFrame(), TTSAudioRawFrame(audio=b"\0\0", sample_rate=16000, num_channels=1)]
    _, up = await run_test(
        tavus.output(), frames_to_send=up_frames, frames_to_send_direction=FrameDirection.UPSTREAM
    )
    assert up == up_frames


async def test_audio_passes_through_outside_echo_audio_mode():
    tavus = make_tavus(mode="echo_text")
    frame = TTSAudioRawFrame(audio=b"\0\0" * 160, sample_rate=16000, num_channels=1)
    down, _ = await run_test(tavus.output(), frames_to_send=[frame])
    assert down == [frame]


async def test_random_token_streams_keep_the_text_and_the_cap():
    rng = random.Random(3)
    tavus = make_tavus(mode="echo_text", max_message_bytes=600)
    sentences = [
        " ".join(
            rng.choice(["alpha", "beta", "3.5", "e.g.", "Mr.", "ok"])
            for _ in range(rng.randint(1, 40))
        )
        + rng.choice([".", "!", "?"])
        for _ in range(12)
    ]
    text = " ".join(sentences)
    tokens, i = [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        tokens.append(text[i : i + n])
        i += n
    echoes, down = await echo_response(tavus, [*map(LLMTextFrame, tokens)])
    assert_wire(echoes, 600)
    assert " ".join(t for t, _ in text_of(echoes)).split() == text.split()
    assert [d for _, d in text_of(echoes)] == [False] * (len(echoes) - 1) + [True]


async def test_echo_audio_before_the_replica_joins_is_held_then_released_in_order():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=16000, wait_for_replica=True)
    audio = pcm(1.0, 16000)
    h = Harness(tavus)
    async with h:
        await h.send(*audio_frames(audio, 16000), TTSStoppedFrame())
        await until(lambda: tavus.stats["held"] >= 11)
        assert h.messages() == []
        await replica_joins(tavus)
        await h.down.wait_for(lambda: h.echoes() and h.echoes()[-1]["properties"]["done"])
    echoes = h.echoes()
    assert_wire(echoes)
    assert decode(echoes) == audio
    assert len({m["properties"]["inference_id"] for m in echoes}) == 1


# --- end to end on the simulator ---------------------------------------------------------


def sim_setup(mode: str, **params):
    from pipecat_tavus_interactions.simulator import (
        ScriptedPersona,
        SimulatedTransport,
        TavusSimulator,
    )

    sim = TavusSimulator(
        pipeline_mode="echo",
        persona=ScriptedPersona(greeting=None),
        speed=100,
        heartbeat_interval_s=None,
    )
    transport = SimulatedTransport(sim)
    tavus = TavusInteractions(
        params=TavusInteractionsParams(mode=mode, conversation_id=sim.conversation_id, **params)
    )
    tavus.attach_transport(transport)
    return sim, transport, tavus


def sim_props(m: dict) -> dict:
    return m.get("properties") or {}


async def test_simulator_speaks_the_streamed_echo_text():
    sim, transport, tavus = sim_setup("echo_text")
    llm = StreamingLLM(ANSWER)
    h = Harness(tavus, before=[transport.input(), tavus.input(), llm], after=[transport.output()])
    async with h:
        await until(lambda: tavus.replica_ready)
        await h.send(LLMRunFrame())
        final = await sim.wait_for_message(
            lambda m: (
                m["event_type"] == "conversation.utterance.streaming" and sim_props(m).get("final")
            ),
            since=0,
            timeout_s=5,
        )
    assert sim_props(final)["speech"] == "Hello there. How are you today? I hope it is going well."
    assert not sim.rejected
    echoes = [i for i in sim.interactions if isinstance(i, ix.Echo)]
    assert [e.done for e in echoes] == [False, False, True]
    stops = [m for m in sim.emitted if m["event_type"] == "conversation.replica.stopped_speaking"]
    assert len(stops) == 1 and sim_props(stops[0])["interrupted"] is False


async def test_simulator_plays_echo_audio_and_stops_on_interrupt():
    sim, transport, tavus = sim_setup("echo_audio", echo_sample_rate=16000)
    h = Harness(tavus, before=[transport.input(), tavus.input()], after=[transport.output()])
    async with h:
        await until(lambda: tavus.replica_ready)
        await h.send(*audio_frames(pcm(1.0, 16000), 16000), TTSStoppedFrame())
        await sim.wait_for_message(
            lambda m: m["event_type"] == "conversation.replica.stopped_speaking",
            since=0,
            timeout_s=5,
        )
        # A 10 s utterance, cut by a Pipecat interruption once the replica speaks.
        mark = sim.emitted_count
        await h.send(*audio_frames(pcm(10.0, 16000, seed=9), 16000))
        await sim.wait_for_message(
            lambda m: m["event_type"] == "conversation.replica.started_speaking",
            since=mark,
            timeout_s=5,
        )
        await until(lambda: tavus.replica_speaking)
        await h.send(InterruptionFrame())
        stop = await sim.wait_for_message(
            lambda m: m["event_type"] == "conversation.replica.stopped_speaking",
            since=mark,
            timeout_s=5,
        )
    assert not sim.rejected
    first, second = list(sim.echo_audio_seconds.items())
    assert first[1] == pytest.approx(1.0, abs=0.05)
    assert sim_props(stop)["interrupted"] is True
    assert stop["inference_id"] == second[0]
    kinds = [type(i).__name__ for i in sim.interactions]
    assert kinds[-1] == "Interrupt" and "Interrupt" not in kinds[:-1]


def test_context_frame_takes_action_and_still_reads_the_old_mode_name():
    assert isinstance(
        TavusContextFrame(context="x", action="overwrite").interaction, ix.OverwriteLLMContext
    )
    assert isinstance(TavusContextFrame(context="x").interaction, ix.AppendLLMContext)
    with pytest.warns(DeprecationWarning, match="action="):
        old = TavusContextFrame(context="x", mode="overwrite")
    assert old.action == "overwrite" and isinstance(old.interaction, ix.OverwriteLLMContext)
    with pytest.raises(LocalProtocolError, match="'overwrite' or 'append'"):
        TavusContextFrame(context="x", action="replace")
