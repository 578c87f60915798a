"""Echo audio conversion (pipeline/audio.py): downmix, and one resampler per utterance.

Batching (``room``) is tested in test_echo_batching.py; here every frame converts at once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pipecat.audio.resamplers import soxr_stream_resampler
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import OutputAudioRawFrame, TTSAudioRawFrame

from pipecat_tavus_interactions.pipeline.audio import EchoResampler, to_mono_pcm16


@pytest.fixture(autouse=True)
def no_idle_reset(monkeypatch):
    """Pipecat's stream resampler forgets its history after 0.2 s of wall-clock idleness;
    a slow test run must not change what these tests compare."""
    monkeypatch.setattr(soxr_stream_resampler, "time", SimpleNamespace(time=lambda: 0.0))


def pcm(seconds: float, rate: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-12000, 12000, int(seconds * rate), dtype=np.int16).tobytes()


def frame(audio: bytes, rate: int, channels: int = 1) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(audio=audio, sample_rate=rate, num_channels=channels)


async def reference(audio: bytes, in_rate: int, out_rate: int) -> bytes:
    """Pipecat's stream resampler, fresh, over the whole audio and flushed."""
    resampler = create_stream_resampler()
    return await resampler.resample(audio, in_rate, out_rate) + await resampler.flush()


# --- to_mono_pcm16 -----------------------------------------------------------------------


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


# --- EchoResampler -----------------------------------------------------------------------


async def test_audio_at_the_wire_rate_passes_through():
    converter = EchoResampler(16000)
    audio = pcm(0.1, 16000)
    assert await converter.convert(frame(audio, 16000), "utt-1") == audio
    assert await converter.convert(frame(audio, 16000), "utt-1") == audio
    assert await converter.flush("utt-1") == b""


async def test_other_rates_are_resampled_and_the_tail_flushed_at_the_close():
    converter = EchoResampler(24000)
    audio = pcm(1.0, 16000)
    frames = [frame(audio[i : i + 640], 16000) for i in range(0, len(audio), 640)]
    out = await converter.convert(frames[0], "utt-1")
    for f in frames[1:]:
        out += await converter.convert(f, "utt-1")
    tail = await converter.flush("utt-1")
    assert tail  # the resampler held some back
    # One stream over the whole utterance: as long as resampling it in one go.
    assert len(out + tail) == len(await reference(audio, 16000, 24000))
    assert abs(len(out + tail) / 2 / 24000 - 1.0) < 0.01
    assert await converter.flush("utt-1") == b""  # flushed once


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_stereo_frames_become_mono(rate):
    samples = np.random.default_rng(3).integers(-12000, 12000, (1600, 2), dtype=np.int16)
    stereo = OutputAudioRawFrame(audio=samples.tobytes(), sample_rate=rate, num_channels=2)
    mono = to_mono_pcm16(samples.tobytes(), 2)
    out = await EchoResampler(24000).convert(stereo, "utt-1")
    assert out == await EchoResampler(24000).convert(frame(mono, rate), "utt-1")
    if rate == 24000:
        assert out == mono


async def test_a_new_utterance_gets_a_fresh_resampler():
    converter = EchoResampler(24000)
    loud = np.full(8000, 20000, dtype=np.int16).tobytes()
    await converter.convert(frame(loud, 16000), "utt-1")
    await converter.convert(frame(loud, 16000), "utt-1")
    # utt-1 is interrupted (never flushed); utt-2 opens with audio of its own.
    speech = pcm(0.4, 16000)
    first, rest = frame(speech[:6400], 16000), frame(speech[6400:], 16000)
    out = await converter.convert(first, "utt-2")
    out += await converter.convert(rest, "utt-2")
    assert await converter.flush("utt-1") == b""  # not utt-1's resampler any more
    out += await converter.flush("utt-2")
    # Exactly what a converter that never heard utt-1 makes of it.
    fresh = EchoResampler(24000)
    expected = await fresh.convert(first, "utt-2")
    expected += await fresh.convert(rest, "utt-2")
    assert out == expected + await fresh.flush("utt-2")


async def test_the_tail_of_a_one_frame_utterance_is_flushed():
    converter = EchoResampler(24000)
    audio = pcm(1.0, 16000)
    out = await converter.convert(frame(audio, 16000), "utt-1")
    out += await converter.flush("utt-1")
    assert len(out) == len(await reference(audio, 16000, 24000))


@pytest.mark.parametrize(("first", "second"), [(16000, 22050), (22050, 24000), (16000, 8000)])
async def test_a_rate_change_mid_utterance_keeps_the_old_resamplers_tail(first, second):
    converter = EchoResampler(24000)
    a, b = pcm(0.5, first, seed=1), pcm(0.5, second, seed=2)
    out = await converter.convert(frame(a[:3200], first), "utt-1")
    out += await converter.convert(frame(a[3200:], first), "utt-1")
    out += await converter.convert(frame(b, second), "utt-1")  # a TTS switched voices
    out += await converter.flush("utt-1")
    # Each part as long as resampling it alone: nothing of the first part is lost.
    expected = await reference(a, first, 24000)
    if second != 24000:
        expected += await reference(b, second, 24000)
    else:
        expected += b
    assert len(out) == len(expected)
    ours, theirs = np.frombuffer(out, np.int16), np.frombuffer(expected, np.int16)
    assert np.abs(ours.astype(int) - theirs).max() <= 2  # rounding of chunked resampling
