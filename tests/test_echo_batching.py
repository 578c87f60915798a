"""Echo audio at another rate than the wire's is resampled in batches (pipeline/audio.py).

What a user sees must not change: the same audio (up to the rounding of a sample), every
message leaving with the same TTS frame as when each frame was resampled on its own, and
nothing lost at any way an utterance can end (``TTSStoppedFrame``, ``EndFrame``, the fallback
close, an interruption). What changes is how often the resampler runs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np
import pytest
from pipecat.audio.resamplers import soxr_stream_resampler
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    DataFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageUrgentFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.tests.utils import run_test
from test_output import (
    CAP,
    CID,
    REPLICA,
    Harness,
    assert_wire,
    audio_frames,
    decode,
    interrupts,
    make_tavus,
    pcm,
    until,
)

from pipecat_tavus_interactions import TavusInteractions
from pipecat_tavus_interactions.core.connection import TavusConnection
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.pipeline.audio import to_mono_pcm16
from pipecat_tavus_interactions.protocol import max_audio_bytes

WIRE = 24000
# Resampling the same audio cut differently gives the same number of samples, each within
# this much of the other (the resampler rounds to int16 at each call's boundary).
SAMPLE_TOLERANCE = 2


@pytest.fixture(autouse=True)
def no_idle_reset(monkeypatch):
    """The reference resamplers here run in one go; Pipecat's idle reset (0.2 s of wall
    clock) must not fire in them on a slow machine."""
    monkeypatch.setattr(soxr_stream_resampler, "time", type("T", (), {"time": lambda: 0.0}))


@dataclass
class Mark(DataFrame):
    """Sent after each audio frame: where it comes out shows which frame a message followed."""

    index: int = 0


def chunk_bytes() -> int:
    return max_audio_bytes(
        conversation_id=CID, sample_rate=WIRE, inference_id=str(uuid.uuid4()), max_bytes=CAP
    )


async def per_frame(frames: list[OutputAudioRawFrame]) -> tuple[list[int], bytes]:
    """Today's reference: one resampler call per frame (mono), then the tail.

    Returns:
        The wire bytes out after each frame (cumulative), and all of it with the tail.
    """
    resampler = create_stream_resampler()
    out, after = b"", []
    for f in frames:
        audio = to_mono_pcm16(f.audio, f.num_channels)
        if f.sample_rate == WIRE:
            out += await resampler.flush() + audio
            resampler = create_stream_resampler()
        else:
            out += await resampler.resample(audio, f.sample_rate, WIRE)
        after.append(len(out))
    return after, out + await resampler.flush()


def assert_same_audio(got: bytes, expected: bytes) -> None:
    assert len(got) == len(expected)
    ours, theirs = np.frombuffer(got, np.int16), np.frombuffer(expected, np.int16)
    assert np.abs(ours.astype(int) - theirs).max() <= SAMPLE_TOLERANCE


async def assert_one_utterance_of(echoes: list[dict], frames: list[OutputAudioRawFrame]) -> None:
    """One utterance, closed once at its last message, carrying all of ``frames``' audio."""
    assert [m["properties"]["done"] for m in echoes] == [False] * (len(echoes) - 1) + [True]
    assert len({m["properties"]["inference_id"] for m in echoes}) == 1
    assert_same_audio(decode(echoes), (await per_frame(frames))[1])


def echoes_of(down: list[Frame]) -> list[dict]:
    return [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]


def sent_after_each_mark(down: list[Frame]) -> list[int]:
    counts, sent = [], 0
    for f in down:
        if isinstance(f, OutputTransportMessageUrgentFrame):
            sent += 1
        elif isinstance(f, Mark):
            counts.append(sent)
    return counts


def with_marks(frames: list[Frame]) -> list[Frame]:
    out: list[Frame] = []
    for i, f in enumerate(frames):
        out += [f, Mark(index=i)]
    return out


# --- the same audio, each message with the same frame ------------------------------------


@pytest.mark.parametrize(
    ("rate", "frame_ms"), [(8000, 20), (16000, 20), (22050, 20), (44100, 10), (48000, 40)]
)
async def test_each_message_leaves_with_the_frame_it_would_unbatched(rate, frame_ms):
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=WIRE)
    frames = audio_frames(pcm(3.0, rate), rate, frame_ms=frame_ms, context_id="ctx")
    down, _ = await run_test(
        tavus.output(),
        frames_to_send=[
            TTSStartedFrame(context_id="ctx"),
            *with_marks(frames),
            TTSStoppedFrame(context_id="ctx"),
        ],
    )
    after, expected = await per_frame(frames)
    chunk = chunk_bytes()
    # Resampling every frame, the core sends a chunk as soon as it has one.
    assert sent_after_each_mark(down) == [n // chunk for n in after]
    echoes = echoes_of(down)
    assert_wire(echoes)
    assert [m["properties"]["done"] for m in echoes] == [False] * (len(echoes) - 1) + [True]
    assert len({m["properties"]["inference_id"] for m in echoes}) == 1
    assert_same_audio(decode(echoes), expected)


async def test_the_resampler_runs_about_once_per_message(monkeypatch):
    calls = []
    resample = soxr_stream_resampler.SOXRStreamAudioResampler.resample

    async def counted(self, audio, in_rate, out_rate):
        calls.append(len(audio))
        return await resample(self, audio, in_rate, out_rate)

    monkeypatch.setattr(soxr_stream_resampler.SOXRStreamAudioResampler, "resample", counted)
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=WIRE)
    frames = audio_frames(pcm(4.0, 16000), 16000)
    down, _ = await run_test(tavus.output(), frames_to_send=[*frames, TTSStoppedFrame()])
    echoes = echoes_of(down)
    assert len(frames) == 200
    # One call a frame would be 200; a batch a message is about 66 (plus a few probes).
    assert len(calls) <= 1.2 * len(echoes)
    assert_same_audio(decode(echoes), (await per_frame(frames))[1])


# --- every way an utterance ends -----------------------------------------------------------


async def test_the_fallback_close_carries_the_held_audio_and_the_tail():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=WIRE, echo_done_fallback_s=0.3)
    frames = audio_frames(pcm(0.5, 16000), 16000, context_id="ctx")
    h = Harness(tavus)
    async with h:
        await h.send(*frames)  # and no TTSStoppedFrame
        await h.down.wait_for(lambda: any(m["properties"]["done"] for m in h.echoes()))
    await assert_one_utterance_of(h.echoes(), frames)


async def test_held_audio_keeps_the_utterance_open_until_the_fallback_delay_after_it():
    # Time is injected: a frame every 0.2 s of it, the fallback at 0.3 s, and the core's
    # deadline checked after each frame (as its timer would). Batched, the core is handed
    # audio only every few frames, so it must count the held frames as audio.
    now = [100.0]
    params = dict(mode="echo_audio", echo_sample_rate=WIRE, echo_done_fallback_s=0.3)
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id=CID, wait_for_replica=False, replica_participant_id=REPLICA, **params
        ),
        clock=lambda: now[0],
    )
    frames = audio_frames(pcm(0.3, 16000), 16000)
    h = Harness(tavus)
    async with h:
        for i, f in enumerate(frames):
            await h.send(f, Mark(index=i))
            await h.down.wait_for(
                lambda i=i: any(getattr(x, "index", -1) == i for x in h.down.frames)
            )
            await tavus.run(tavus.connection.tick(now=now[0]))
            assert not any(m["properties"]["done"] for m in h.echoes())
            now[0] += 0.2
        # Past this processor's own close (just before the core's), not the core's.
        now[0] += 0.29 - 0.2
        await h.down.wait_for(lambda: any(m["properties"]["done"] for m in h.echoes()))
    await assert_one_utterance_of(h.echoes(), frames)


async def test_the_pipeline_end_closes_with_the_held_audio_and_the_tail():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=WIRE)
    frames = audio_frames(pcm(0.45, 16000), 16000)
    h = Harness(tavus)
    async with h:
        await h.send(*frames)  # the EndFrame follows, no TTSStoppedFrame
    echoes = h.echoes()
    assert echoes[-1]["properties"]["done"] is True
    assert_same_audio(decode(echoes), (await per_frame(frames))[1])


async def test_an_interruption_drops_the_held_audio_and_the_next_utterance_starts_clean():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=WIRE)
    first = audio_frames(pcm(0.33, 16000, seed=1), 16000, context_id="ctx-1")
    second = audio_frames(pcm(0.5, 16000, seed=2), 16000, context_id="ctx-2")
    h = Harness(tavus)
    async with h:
        await h.send(TTSStartedFrame(context_id="ctx-1"), *first)
        await h.down.wait_for(lambda: len(h.echoes()) >= 2)
        await h.send(InterruptionFrame())
        await until(lambda: interrupts(h.messages()))
        # The next utterance, with the interrupted TTS context's stop arriving late in it.
        await h.send(*second[:10], TTSStoppedFrame(context_id="ctx-1"))
        await h.send(*second[10:], TTSStoppedFrame(context_id="ctx-2"))
        await h.down.wait_for(lambda: h.echoes()[-1]["properties"]["done"])
    messages = h.messages()
    (cut,) = interrupts(messages)
    before, after = messages[:cut], messages[cut + 1 :]
    assert {m["properties"]["inference_id"] for m in before}.isdisjoint(
        {m["properties"]["inference_id"] for m in after}
    )
    assert len({m["properties"]["inference_id"] for m in after}) == 1
    assert [m["properties"]["done"] for m in after] == [False] * (len(after) - 1) + [True]
    # Exactly the second utterance, as if the first had never been: nothing of it leaks
    # in, and the late stop of ctx-1 does not cut ctx-2's resampler in two.
    assert_same_audio(decode(after), (await per_frame(second))[1])
    first_out, _ = await per_frame(first)
    assert len(decode(before)) < first_out[-1]  # the held rest of ctx-1 never left


async def test_a_rate_change_to_the_wire_rate_flushes_first_with_stereo_and_odd_frames():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=WIRE)
    rng = np.random.default_rng(5)
    stereo = [
        OutputAudioRawFrame(
            audio=rng.integers(-9000, 9000, 640, dtype=np.int16).tobytes() + b"\x01",
            sample_rate=16000,
            num_channels=2,
        )
        for _ in range(12)
    ]  # 20 ms of stereo, with a stray byte each
    wire = audio_frames(pcm(0.2, WIRE, seed=9), WIRE)
    frames = [*stereo, *wire]
    down, _ = await run_test(
        tavus.output(), frames_to_send=[*with_marks(frames), TTSStoppedFrame()]
    )
    after, expected = await per_frame(frames)
    echoes = echoes_of(down)
    assert sent_after_each_mark(down) == [n // chunk_bytes() for n in after]
    got = decode(echoes)
    head = len(expected) - len(pcm(0.2, WIRE, seed=9))
    assert_same_audio(got[:head], expected[:head])  # the 16 kHz part, with its tail
    assert got[head:] == pcm(0.2, WIRE, seed=9)  # then the wire-rate audio, as it came


async def test_realtime_pacing_sends_the_batched_audio_at_playback_speed():
    tavus = make_tavus(mode="echo_audio", echo_sample_rate=WIRE, echo_realtime=True)
    frames = audio_frames(pcm(1.0, 16000), 16000)
    h = Harness(tavus)
    async with h:
        started = time.monotonic()
        await h.send(*frames, TTSStoppedFrame())
        await h.down.wait_for(lambda: any(m["properties"]["done"] for m in h.echoes()))
        took = time.monotonic() - started
    # 1 s of audio sent at most 0.2 s ahead of playback, minus the last chunk's length.
    assert took >= 0.6
    assert_same_audio(decode(h.echoes()), (await per_frame(frames))[1])


# --- the core's side: held audio keeps the utterance alive -------------------------------


def test_the_core_says_what_completes_a_chunk_and_empty_audio_keeps_the_utterance_open():
    params = TavusInteractionsParams(
        mode="echo_audio", conversation_id=CID, echo_sample_rate=WIRE, echo_done_fallback_s=1.0
    )
    conn = TavusConnection(params, now=0.0)
    assert conn.echo_audio_room is None  # nothing open
    assert conn.echo_audio(b"", context_id="ctx", now=0.0) == []  # opens, sends nothing
    assert conn.echo_audio_id is not None
    conn.echo_audio(b"\x00" * 100, context_id="ctx", now=0.1)
    assert conn.echo_audio_room == chunk_bytes() - 100
    conn.echo_audio(b"", context_id="ctx", now=0.9)  # a frame held back
    assert conn.next_deadline() == pytest.approx(1.9)
    assert conn.tick(now=1.5) == []  # not closed a fallback delay after the last audio added
    assert not conn.echo_audio_interrupted("ctx")
    conn.interrupt(now=1.6)
    assert conn.echo_audio_interrupted("ctx") and not conn.echo_audio_interrupted(None)
    assert conn.echo_audio_room is None
