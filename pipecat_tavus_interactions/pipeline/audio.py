"""Echo audio conversion: TTS frames of any rate and layout to PCM16 mono at the wire rate.

The conversation core chunks and sends echo audio (:mod:`~pipecat_tavus_interactions.core.echo`);
this module does the part that needs Pipecat's resampler, which is asynchronous:
:class:`EchoResampler` downmixes and resamples ``OutputAudioRawFrame`` audio, with one stream
resampler per utterance (so an utterance's tail is flushed, and the next one starts clean).
When the input rate changes in the middle of an utterance, what the old resampler still
holds is flushed ahead of the new audio (about 40 ms would otherwise be lost).

Each resampler call has a large fixed cost, so frames are resampled in batches, about once
per message instead of once per 20 ms frame, and no message leaves later than it would with
a call per frame. The stream resampler (soxr) returns its output in blocks: it holds input
until what it holds reaches a threshold, then returns one or more blocks. Its output depends
on how much input it was given, not on how that input was cut (up to the rounding of a
sample). So a frame is held back while a call could not complete the message the core is
filling (the caller says how many bytes that takes): either what the resampler would hold is
at most the most it was seen to hold without returning anything, or the most a call could
return (what it would hold, less that, plus the largest block seen) is short of the message.
Until a resampler's first message is complete, every frame is resampled as it comes.
Flushing returns the held input, resampled, followed by the resampler's tail.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from pipecat.audio.utils import create_stream_resampler

if TYPE_CHECKING:
    from pipecat.audio.resamplers.base_audio_resampler import BaseAudioResampler
    from pipecat.frames.frames import OutputAudioRawFrame

# Wire bytes (32 samples) taken off what the resampler was seen to hold without output, so
# that a threshold that moves by a sample or two with the rate's phase is never crossed unseen.
_QUIET_MARGIN = 64


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


def frame_pcm16(frame: OutputAudioRawFrame) -> bytes:
    """Return ``frame``'s audio as whole mono PCM16 samples (see :func:`to_mono_pcm16`).

    Args:
        frame: Audio of any channel count.
    """
    audio = frame.audio
    if frame.num_channels != 1 or len(audio) % 2:
        return to_mono_pcm16(audio, frame.num_channels)
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
        self._owner: str | None = None  # the utterance id the resampler belongs to
        self._held = bytearray()  # mono input at _in_rate, not resampled yet
        self._in = 0  # input bytes resampled since the resampler started
        self._out = 0  # wire bytes returned since the resampler started
        self._eager = 0  # until _out reaches this, every frame is resampled
        # What the resampler was seen to hold (in wire bytes) without returning anything,
        # and the largest output of one call: see the module docstring.
        self._quiet = -math.inf
        self._block = math.inf

    def holds(self, utterance_id: str | None) -> bool:
        """Tell whether a resampler is open for ``utterance_id`` (it has audio to flush).

        Args:
            utterance_id: The open utterance's id.
        """
        return self._resampler is not None and self._owner == utterance_id

    async def convert(self, frame: OutputAudioRawFrame, utterance_id: str, room: int = 0) -> bytes:
        """Return the audio to send for ``frame``: PCM16 mono at the wire rate.

        Audio at the wire rate is returned at once. Other rates are resampled, in batches:
        the frame is held (and ``b""`` returned) while a resampler call could not return
        ``room`` bytes (see the module docstring), except until the resampler's first
        message is complete.

        Args:
            frame: TTS audio (any rate and channel count).
            utterance_id: The open utterance's id.
            room: How many wire bytes complete the message being filled (0: convert now).
        """
        audio = frame_pcm16(frame)
        rate = frame.sample_rate
        if self._resampler is not None and rate != self._in_rate and self._owner == utterance_id:
            # The rate changed mid-utterance: what the old resampler holds comes first.
            head = await self.flush(utterance_id)
            return head + await self.convert(frame, utterance_id, room - len(head))
        if rate == self._rate:
            return audio
        if self._resampler is None or self._owner != utterance_id:
            # A new utterance (what an interrupted one held is dropped with it).
            self._renew(rate, utterance_id, room)
        held = self._held
        held += audio
        # What the resampler would hold, in wire bytes, before a call now returns anything.
        holds = (self._in + len(held)) * self._rate / rate - self._out
        if self._out >= self._eager and (
            holds <= self._quiet or holds - self._quiet + self._block < room
        ):
            return b""
        self._in += len(held)
        out = await self._resampler.resample(bytes(held), rate, self._rate)
        held.clear()
        if out:
            self._out += len(out)
            if self._block == math.inf or len(out) > self._block:
                self._block = len(out)
        elif holds - _QUIET_MARGIN > self._quiet:
            self._quiet = holds - _QUIET_MARGIN
        return out

    def _renew(self, rate: int, owner: str, room: int) -> None:
        # No idle reset: the resampler lives for one utterance, and batches leave gaps
        # between calls; a reset would drop the audio it holds.
        self._resampler = create_stream_resampler(clear_after_secs=None)
        self._in_rate = rate
        self._owner = owner
        self._held = bytearray()
        self._in = 0
        self._out = 0
        self._eager = room
        self._quiet = -math.inf
        self._block = math.inf

    async def flush(self, utterance_id: str | None) -> bytes:
        """Return what the utterance's resampler still holds, resampled, and forget it.

        Args:
            utterance_id: The utterance being closed.

        Returns:
            The held input, resampled, then the resampler's tail; ``b""`` when nothing is
            open for ``utterance_id``.
        """
        resampler = self._resampler
        if resampler is None or utterance_id is None or self._owner != utterance_id:
            return b""
        held = self._held
        out = await resampler.resample(bytes(held), self._in_rate, self._rate) if held else b""
        self.reset()
        return out + await resampler.flush()

    def reset(self) -> None:
        """Forget the open resampler and the audio it holds (the pipeline is cancelled)."""
        self._resampler = None
        self._owner = None
        self._held = bytearray()


__all__ = ["EchoResampler", "frame_pcm16", "to_mono_pcm16"]
