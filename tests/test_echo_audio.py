"""Tests of echo_audio: chunking under the cap, utterance lifecycle, messages, pacing."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import numpy as np
import pytest
from pipecat.frames.frames import OutputAudioRawFrame, TTSAudioRawFrame
from pipecat_tavus_interactions.echo_audio import (
    DONE_SILENCE_S,
    EchoAudioStream,
    RealtimePacer,
    audio_message,
    to_mono_pcm16,
)

from pipecat_tavus_interactions import echo_audio
from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.protocol import build_message, encoded_size, max_audio_bytes

CID = "c0ffee12"
CAP = 4096


def pcm(seconds: float, rate: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-12000, 12000, int(seconds * rate), dtype=np.int16).tobytes()


def frames(audio: bytes, rate: int, *, ms: int = 20, context_id=None) -> list[TTSAudioRawFrame]:
    step = rate * 2 * ms // 1000
    return [
        TTSAudioRawFrame(
            audio=audio[i : i + step], sample_rate=rate, num_channels=1, context_id=context_id
        )
        for i in range(0, len(audio), step)
    ]


class Owner:
    """Runs the stream's fallback timer as a plain asyncio task."""

    def __init__(self):
        self.tasks: list[asyncio.Task] = []

    def create_task(self, coroutine, name=None):
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.append(task)
        return task

    async def cancel_task(self, task, timeout=1.0):  # noqa: ASYNC109 (BaseObject's signature)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def __str__(self):
        return "Owner"


class Wire:
    """The stream's sink: records each chunk; ``on_send`` runs inside a send."""

    def __init__(self, **params):
        params.setdefault("mode", "echo_audio")
        params.setdefault("conversation_id", CID)
        self.params = TavusInteractionsParams(**params)
        self.stats: Counter = Counter()
        self.owner = Owner()
        self.chunks: list[tuple[bytes, str, bool]] = []
        self.failures: list[tuple[ix.Interaction, Exception]] = []
        self.on_send = None
        self.closed = asyncio.Event()
        self.stream = EchoAudioStream(
            owner=self.owner,
            params=self.params,
            count=lambda name: self.stats.update([name]),
            conversation_id=lambda: self.params.conversation_id,
            now=asyncio.get_running_loop().time,
            send=self.send,
            report_failure=self.report,
        )

    async def send(self, audio, iid: str, done: bool) -> None:
        self.chunks.append((bytes(audio), iid, done))
        if done:
            self.closed.set()
        if self.on_send is not None:
            self.on_send()

    async def report(self, interaction, error) -> None:
        self.failures.append((interaction, error))

    async def add(self, *audio_frames) -> None:
        for frame in audio_frames:
            await self.stream.add(frame)

    def audio(self) -> bytes:
        return b"".join(c for c, _, _ in self.chunks)

    def messages(self) -> list[dict]:
        rate = self.params.echo_sample_rate
        return [audio_message(CID, c, rate, i, d) for c, i, d in self.chunks]


def chunk_size(rate: int) -> int:
    iid = "00000000-0000-4000-8000-000000000000"
    return max_audio_bytes(conversation_id=CID, sample_rate=rate, inference_id=iid, max_bytes=CAP)


# --- messages and downmixing ------------------------------------------------------------------


@pytest.mark.parametrize("done", [False, True])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_audio_message_equals_build_message(kind, done):
    audio = pcm(0.05, 24000)
    message = audio_message(CID, kind(audio), 24000, "utt-1", done)
    echo = ix.Echo(audio=audio, sample_rate=24000, inference_id="utt-1", done=done)
    assert message == build_message(echo, conversation_id=CID)


def test_stereo_is_averaged_to_mono():
    left = np.array([1000, -3, 7, 32767], dtype=np.int16)
    right = np.array([3000, -4, 8, 32767], dtype=np.int16)
    stereo = np.stack([left, right], axis=1).reshape(-1).tobytes()
    mono = np.frombuffer(to_mono_pcm16(stereo, 2), dtype=np.int16)
    assert mono.tolist() == [2000, -4, 8, 32767]  # rounded half to even, no overflow


def test_partial_samples_and_frames_are_dropped():
    assert to_mono_pcm16(b"\x01\x02\x03", 1) == b"\x01\x02"
    three_samples = np.array([10, 20, 30], dtype=np.int16).tobytes()
    assert to_mono_pcm16(three_samples, 2) == np.array([15], dtype=np.int16).tobytes()


# --- chunking --------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_chunks_are_full_sized_under_the_cap_and_the_last_closes(rate):
    wire = Wire(echo_sample_rate=rate)
    audio = pcm(2.0, rate)
    await wire.add(*frames(audio, rate))
    await wire.stream.close("tts_stopped")
    size = chunk_size(rate)
    assert [len(c) for c, _, _ in wire.chunks[:-1]] == [size] * (len(wire.chunks) - 1)
    assert [d for _, _, d in wire.chunks] == [False] * (len(wire.chunks) - 1) + [True]
    assert wire.audio() == audio
    assert len({i for _, i, _ in wire.chunks}) == 1
    assert max(encoded_size(m) for m in wire.messages()) <= CAP
    # Full chunks use the cap: one more sample would not fit.
    assert CAP - encoded_size(wire.messages()[0]) < 4


async def test_the_chunk_size_is_computed_once_not_per_chunk(monkeypatch):
    calls = []

    def counting(**kwargs):
        calls.append(kwargs)
        return max_audio_bytes(**kwargs)

    monkeypatch.setattr(echo_audio, "max_audio_bytes", counting)
    wire = Wire(echo_sample_rate=24000)
    for seed in (1, 2):
        await wire.add(*frames(pcm(1.0, 24000, seed=seed), 24000))
        await wire.stream.close("tts_stopped")
    assert len({i for _, i, _ in wire.chunks}) == 2
    assert len(wire.chunks) > 30
    assert len(calls) == 1  # two utterances, one conversation: one computation


async def test_one_big_frame_is_cut_without_losing_a_byte():
    wire = Wire(echo_sample_rate=16000)
    audio = pcm(0.5, 16000)
    await wire.add(TTSAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1))
    await wire.stream.close("tts_stopped")
    assert wire.audio() == audio


async def test_an_empty_close_sends_a_short_silence():
    wire = Wire(echo_sample_rate=24000)
    audio = pcm(chunk_size(24000) * 2 / 48000, 24000)
    await wire.add(TTSAudioRawFrame(audio=audio, sample_rate=24000, num_channels=1))
    await wire.stream.close("tts_stopped")
    assert [d for _, _, d in wire.chunks] == [False, False, True]
    assert wire.chunks[-1][0] == bytes(int(24000 * DONE_SILENCE_S) * 2)


async def test_other_rates_are_resampled_and_flushed_at_the_close():
    wire = Wire(echo_sample_rate=24000)
    await wire.add(*frames(pcm(1.0, 16000), 16000))
    await wire.stream.close("tts_stopped")
    assert abs(len(wire.audio()) / 2 / 24000 - 1.0) < 0.01


async def test_stereo_frames_are_sent_as_mono():
    wire = Wire(echo_sample_rate=16000)
    stereo = np.full(640, 500, dtype=np.int16).tobytes()
    await wire.add(OutputAudioRawFrame(audio=stereo, sample_rate=16000, num_channels=2))
    await wire.stream.close("tts_stopped")
    assert wire.audio() == np.full(320, 500, dtype=np.int16).tobytes()


# --- lifecycle -------------------------------------------------------------------------------


async def test_a_drop_during_a_send_stops_the_utterance_and_its_late_frames():
    wire = Wire(echo_sample_rate=16000)
    audio = pcm(1.0, 16000)
    first, late = frames(audio, 16000, context_id="ctx-1")[:25], frames(audio, 16000)[25:]
    await wire.add(*first[:5])
    dropped = []
    wire.on_send = lambda: dropped.append(wire.stream.drop())
    after = 0
    for frame in first[5:]:  # the first chunk sent from here is interrupted
        after += bool(dropped)
        await wire.add(frame)
    wire.on_send = None
    assert len(dropped) == 1 and wire.stream.inference_id is None
    assert after > 0
    sent = len(wire.chunks)
    await wire.add(*frames(audio, 16000, context_id="ctx-1")[25:30])  # late, same context
    assert len(wire.chunks) == sent
    assert wire.stats["echo_dropped"] == after + 5
    assert wire.stream.is_dead_context("ctx-1") and not wire.stream.is_dead_context(None)
    await wire.stream.close("tts_stopped")  # nothing open: nothing sent
    assert len(wire.chunks) == sent
    # Audio of another context opens a fresh utterance.
    await wire.add(*late[:10])
    await wire.stream.close("tts_stopped")
    assert wire.chunks[-1][2] is True
    assert len({i for _, i, _ in wire.chunks}) == 2


async def test_a_drop_while_a_big_frame_is_cut_sends_nothing_more_of_it():
    wire = Wire(echo_sample_rate=16000)
    wire.on_send = wire.stream.drop
    await wire.add(TTSAudioRawFrame(audio=pcm(1.0, 16000), sample_rate=16000, num_channels=1))
    assert len(wire.chunks) == 1


async def test_drop_reports_whether_audio_was_pending():
    wire = Wire(echo_sample_rate=16000)
    assert wire.stream.drop() == 0
    await wire.add(*frames(pcm(0.04, 16000), 16000))
    assert wire.stream.drop() == 1
    assert wire.chunks == []


async def test_the_fallback_closes_an_utterance_left_open():
    wire = Wire(echo_sample_rate=16000, echo_done_fallback_s=0.02)
    audio = pcm(0.1, 16000)
    await wire.add(*frames(audio, 16000))
    await asyncio.wait_for(wire.closed.wait(), 2.0)
    assert wire.stream.inference_id is None
    assert wire.audio() == audio and wire.chunks[-1][2] is True


async def test_stop_cancels_the_fallback_timer_and_keeps_the_utterance():
    wire = Wire(echo_sample_rate=16000, echo_done_fallback_s=0.02)
    await wire.add(*frames(pcm(0.1, 16000), 16000))
    iid = wire.stream.inference_id
    await wire.stream.stop()
    assert all(t.done() for t in wire.owner.tasks)
    assert wire.stream.inference_id == iid and not wire.closed.is_set()


async def test_an_utterance_that_cannot_be_sent_is_reported_once_and_dropped():
    wire = Wire(echo_sample_rate=16000, conversation_id=None)
    await wire.add(*frames(pcm(0.2, 16000), 16000))
    ((interaction, error),) = wire.failures
    assert isinstance(interaction, ix.Echo) and "conversation_id" in str(error)
    assert wire.stats["echo_dropped"] == 10  # every frame
    await wire.stream.close("tts_stopped")
    assert wire.chunks == [] and wire.stream.inference_id is None


# --- real-time pacing ----------------------------------------------------------------------------


def echo(n: int) -> tuple[ix.Echo, dict]:
    e = ix.Echo(audio=bytes(2 * n), sample_rate=16000, inference_id="p", done=False)
    return e, build_message(e, conversation_id=CID)


async def test_the_pacer_sends_in_order_and_no_faster_than_playback():
    loop = asyncio.get_running_loop()
    pacer = RealtimePacer(now=loop.time, lead_s=0.0)
    sent: list[tuple[float, ix.Echo]] = []

    async def submit(e, message):
        sent.append((loop.time(), e))

    chunks = [echo(k + 1) for k in range(4)]
    for e, m in chunks:
        pacer.put(e, m, 0.03)
    assert len(pacer) == 4
    task = loop.create_task(pacer.run(submit))
    await asyncio.wait_for(pacer.wait_idle(), 2.0)
    task.cancel()
    assert [e for _, e in sent] == [e for e, _ in chunks]
    assert sent[-1][0] - sent[0][0] >= 3 * 0.03 - 0.005
    assert len(pacer) == 0


async def test_a_dropped_pacer_is_idle_and_hands_back_its_queue():
    pacer = RealtimePacer(now=asyncio.get_running_loop().time)
    for k in range(3):
        pacer.put(*echo(k + 1), 0.5)
    dropped = pacer.drop()
    assert len(dropped) == 3 and len(pacer) == 0
    await asyncio.wait_for(pacer.wait_idle(), 0.5)
    pacer.put(*echo(1), 0.5)
    pacer.clear()
    assert len(pacer) == 0
