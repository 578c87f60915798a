"""Echo audio conversion: TTS frames of any rate and layout to PCM16 mono at the wire rate.

The conversation core chunks and sends echo audio (:mod:`~pipecat_tavus_interactions.core.echo`);
this module does the part that needs Pipecat's resampler, which is asynchronous:
:class:`EchoResampler` downmixes and resamples each ``OutputAudioRawFrame``, with one stream
resampler per utterance (so an utterance's tail is flushed, and the next one starts clean).
When the input rate changes in the middle of an utterance, what the old resampler still
holds is flushed ahead of the new audio (about 40 ms would otherwise be lost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pipecat.audio.utils import create_stream_resampler

if TYPE_CHECKING:
    from pipecat.audio.resamplers.base_audio_resampler import BaseAudioResampler
    from pipecat.frames.frames import OutputAudioRawFrame

_OPENING = object()  # the utterance is being opened: its id is not known yet


def to_mono_pcm16(audio: bytes, channels: int) -> bytes:
    """Return whole PCM16 samples of ``audio``, averaged down to one channel.

    Args:
        audio: Interleaved PCM16 little-endian audio (a trailing odd byte is dropped).
        channels: How many channels are interleaved in ``audio``.

    Returns:
        Mono PCM16 audio (the channel mean, rounded); a trailing partial frame is dropped.
    """
    if len(audio) % 2:
        audio = audio[:-1]
    if channels > 1:
        samples = np.frombuffer(audio, dtype=np.int16)
        samples = samples[: len(samples) - len(samples) % channels]
        mono = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
        audio = np.round(mono).astype(np.int16).tobytes()
    return audio


class EchoResampler:
    """Converts TTS audio frames to the echo wire format, one resampler per utterance."""

    def __init__(self, sample_rate: int):
        """Create a converter.

        Args:
            sample_rate: The echo wire sample rate.
        """
        self._rate = sample_rate
        self._resampler: BaseAudioResampler | None = None
        self._in_rate = 0
        self._owner: object = None  # the utterance id the resampler belongs to

    async def convert(self, frame: OutputAudioRawFrame, utterance_id: str | None) -> bytes:
        """Return ``frame``'s audio as PCM16 mono at the wire rate.

        Args:
            frame: TTS audio (any rate and channel count).
            utterance_id: The open utterance's id, or ``None`` when this frame opens one.
        """
        audio = frame.audio
        if frame.num_channels != 1 or len(audio) % 2:
            audio = to_mono_pcm16(audio, frame.num_channels)
        rate = frame.sample_rate
        if self._resampler is not None and rate != self._in_rate and utterance_id is not None:
            # The rate changed mid-utterance: what the old resampler holds comes first.
            head = await self.flush(utterance_id)
            if head:
                return head + await self.convert(frame, utterance_id)
        if rate == self._rate:
            return audio
        owner = self._owner
        if utterance_id is None:
            self._renew(rate, _OPENING)
        elif owner is _OPENING and self._in_rate == rate:
            self._owner = utterance_id
        elif self._resampler is None or owner != utterance_id or self._in_rate != rate:
            self._renew(rate, utterance_id)
        return await self._resampler.resample(audio, rate, self._rate)

    def _renew(self, rate: int, owner: object) -> None:
        self._resampler = create_stream_resampler()
        self._in_rate = rate
        self._owner = owner

    async def flush(self, utterance_id: str | None) -> bytes:
        """Return what the utterance's resampler still holds, and forget it.

        Args:
            utterance_id: The utterance being closed.
        """
        resampler = self._resampler
        owner = self._owner
        if resampler is None or utterance_id is None or owner not in (utterance_id, _OPENING):
            return b""
        self._resampler = None
        self._owner = None
        return await resampler.flush()


__all__ = ["EchoResampler", "to_mono_pcm16"]
