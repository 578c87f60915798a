"""Echo audio: TTS audio frames become ``conversation.echo`` audio chunks under the cap.

This module owns the audio half of echo mode, apart from putting messages on the wire:

- :class:`EchoAudioStream`: one utterance at a time. Frames are downmixed to mono and
  resampled to ``echo_sample_rate`` (PCM16), accumulated, and cut into chunks sized by their
  *encoded* length (:func:`~pipecat_tavus_interactions.protocol.max_audio_bytes`, computed
  once per utterance), so every message stays under ``max_message_bytes``. The utterance
  closes with ``done: true`` on ``TTSStoppedFrame``, at the end of the pipeline, or after
  ``echo_done_fallback_s`` without audio; an empty close carries a short silence.
- :func:`audio_message`: the wire message of one chunk, built directly (it equals
  :func:`~pipecat_tavus_interactions.protocol.build_message`'s, without the intermediate
  object), because a conversation sends one every ~60 ms of speech.
- :class:`RealtimePacer`: with ``echo_realtime``, chunks wait in a queue and leave at
  playback speed (a little ahead of the playback clock), so an interruption finds most of
  a long utterance still here, where it can be dropped.

The output processor routes each chunk (sent now, held until the replica joins, or paced)
and owns interruptions: it calls :meth:`EchoAudioStream.drop`, after which nothing more of
the utterance is sent, even from a send that was suspended when the interruption came.
"""

from __future__ import annotations

import asyncio
import uuid
from binascii import b2a_base64
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessor

from . import interactions as ix
from .exceptions import LocalProtocolError
from .protocol import max_audio_bytes

if TYPE_CHECKING:
    from pipecat.audio.resamplers.base_audio_resampler import BaseAudioResampler

    from .params import TavusInteractionsParams

#: Length of the silence that closes an audio utterance with nothing left to send
#: (Pipecat's Tavus transport closes with 40 ms of silence too).
DONE_SILENCE_S = 0.04
#: In real-time pacing, how far ahead of the playback clock chunks may be sent, so the
#: replica's buffer never runs dry on network jitter.
REALTIME_LEAD_S = 0.2

_ECHO = ix.Echo.EVENT_TYPE

#: Sends one chunk of an utterance: ``send(pcm, inference_id, done)``.
SendChunk = Callable[[bytes | memoryview, str, bool], Awaitable[None]]
#: Reports an interaction that could not be sent: ``report(interaction, error)``.
ReportFailure = Callable[[ix.Interaction, Exception], Awaitable[None]]


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


def audio_message(
    conversation_id: str | None,
    audio: bytes | bytearray | memoryview,
    sample_rate: int,
    inference_id: str,
    done: bool,
    /,
) -> dict[str, Any]:
    """Build the wire message of one echo audio chunk.

    It equals ``build_message(Echo(audio=audio, sample_rate=sample_rate,
    inference_id=inference_id, done=done), conversation_id=conversation_id)``. The chunk is
    not checked: chunk sizes come from ``max_audio_bytes`` for this envelope.

    Args:
        conversation_id: The conversation it is for.
        audio: PCM16 mono audio (any buffer; it is base64-encoded without a copy).
        sample_rate: Sample rate of ``audio``.
        inference_id: The utterance it belongs to.
        done: Whether it closes the utterance.

    Returns:
        The message dict.
    """
    return {
        "message_type": "conversation",
        "event_type": _ECHO,
        "conversation_id": conversation_id,
        "properties": {
            "modality": "audio",
            "audio": b2a_base64(audio, newline=False).decode("ascii"),
            "sample_rate": sample_rate,
            "inference_id": inference_id,
            "done": done,
        },
    }


@dataclass(slots=True, eq=False)
class _Utterance:
    """The state of one open audio utterance."""

    inference_id: str
    context_id: str | None
    in_rate: int
    last_audio: float
    chunk_bytes: int = 0
    pending: bytearray = field(default_factory=bytearray)
    resampler: BaseAudioResampler | None = None
    failed: bool = False
    fallback: asyncio.Task | None = None


class EchoAudioStream:
    """Echo audio of one output processor: at most one utterance at a time."""

    def __init__(
        self,
        *,
        owner: FrameProcessor,
        params: TavusInteractionsParams,
        count: Callable[[str], None],
        conversation_id: Callable[[], str | None],
        now: Callable[[], float],
        send: SendChunk,
        report_failure: ReportFailure,
    ):
        """Create an idle stream.

        Args:
            owner: The processor whose task manager runs the silence fallback timer.
            params: The configuration (``echo_sample_rate``, ``max_message_bytes``,
                ``echo_done_fallback_s``).
            count: Counts an event in the facade's stats (``echo_dropped``: an audio frame
                dropped).
            conversation_id: Returns the current conversation id.
            now: Monotonic clock of the fallback timer (asyncio's clock: it sleeps there).
            send: Sends one chunk.
            report_failure: Reports an utterance that cannot be sent at all.
        """
        self._owner = owner
        self._params = params
        self._count = count
        self._conversation_id = conversation_id
        self._now = now
        self._send = send
        self._report_failure = report_failure
        self._utt: _Utterance | None = None
        # TTS contexts of interrupted utterances: their late frames are dropped.
        self._dead_contexts: deque[str] = deque(maxlen=16)
        self._chunk_cache: dict[tuple[str, int, int], int] = {}

    @property
    def inference_id(self) -> str | None:
        """The ``inference_id`` of the open utterance, or ``None``."""
        utt = self._utt
        return None if utt is None else utt.inference_id

    def is_dead_context(self, context_id: str | None) -> bool:
        """Tell whether ``context_id`` is a TTS context of an interrupted utterance.

        Args:
            context_id: A TTS context id (``None`` is never dead).

        Returns:
            True when frames of that context must be dropped.
        """
        return context_id is not None and context_id in self._dead_contexts

    async def add(self, frame: OutputAudioRawFrame) -> None:
        """Add one audio frame, sending every chunk it completes.

        Args:
            frame: TTS audio (any rate and channel count); opens an utterance if none is.
        """
        # Hot path: a 20 ms frame arrives 50 times a second per conversation.
        dead = self._dead_contexts
        if dead and getattr(frame, "context_id", None) in dead:
            self._count("echo_dropped")
            return
        utt = self._utt
        if utt is None:
            utt = await self._open(frame)
        if utt.failed:
            self._count("echo_dropped")
            return
        utt.last_audio = self._now()
        audio = frame.audio
        if frame.num_channels != 1 or len(audio) % 2:
            audio = to_mono_pcm16(audio, frame.num_channels)
        rate = self._params.echo_sample_rate
        if frame.sample_rate != rate:
            if utt.resampler is None or frame.sample_rate != utt.in_rate:
                utt.resampler = create_stream_resampler()
                utt.in_rate = frame.sample_rate
            audio = await utt.resampler.resample(audio, frame.sample_rate, rate)
            if self._utt is not utt:  # interrupted while resampling
                return
        pending = utt.pending
        if len(pending) + len(audio) < utt.chunk_bytes:
            pending += audio
            return
        await self._feed(utt, audio)

    async def _open(self, frame: OutputAudioRawFrame) -> _Utterance:
        utt = _Utterance(
            inference_id=str(uuid.uuid4()),
            context_id=getattr(frame, "context_id", None),
            in_rate=frame.sample_rate,
            last_audio=self._now(),
        )
        self._utt = utt
        # Also closes a failed utterance, so it does not count as in flight for ever.
        utt.fallback = self._owner.create_task(self._fallback(utt), "echo_fallback")
        try:
            utt.chunk_bytes = self._chunk_bytes(self._params.echo_sample_rate, utt.inference_id)
        except LocalProtocolError as e:
            utt.failed = True
            echo = ix.Echo(audio=b"", inference_id=utt.inference_id, done=False)
            await self._report_failure(echo, e)
            return utt
        logger.debug(f"{self._owner}: echo audio utterance {utt.inference_id} started")
        return utt

    def _chunk_bytes(self, rate: int, iid: str) -> int:
        # Generated ids are UUID strings: the envelope size depends on their length only.
        conversation_id = self._conversation_id() or ""
        key = (conversation_id, rate, len(iid))
        n = self._chunk_cache.get(key)
        if n is None:
            n = max_audio_bytes(
                conversation_id=conversation_id,
                sample_rate=rate,
                inference_id=iid,
                max_bytes=self._params.max_message_bytes,
            )
            self._chunk_cache[key] = n
        return n

    async def _feed(self, utt: _Utterance, audio: bytes) -> None:
        """Send every whole chunk of ``utt.pending + audio``; keep the rest pending."""
        chunk = utt.chunk_bytes
        iid = utt.inference_id
        send = self._send
        view = memoryview(audio)
        pos = 0
        pending = utt.pending
        if pending:
            pos = chunk - len(pending)
            pending += view[:pos]
            # The full buffer leaves as it is (no copy); a new one collects what follows.
            utt.pending = bytearray()
            await send(memoryview(pending), iid, False)
            if self._utt is not utt:
                return
        end = len(view)
        while end - pos >= chunk:
            await send(view[pos : pos + chunk], iid, False)
            if self._utt is not utt:  # interrupted while the chunk was pushed
                return
            pos += chunk
        if pos < end:
            utt.pending += view[pos:]

    async def close(self, reason: str) -> None:
        """Close the open utterance: send what is pending, the last chunk with ``done``.

        Args:
            reason: Why it closes (for the log).
        """
        utt = self._utt
        if utt is None:
            return
        self._utt = None
        task, utt.fallback = utt.fallback, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if utt.failed:
            return
        iid = utt.inference_id
        tail = utt.pending
        utt.pending = bytearray()
        if utt.resampler is not None:
            tail += await utt.resampler.flush()
        if len(tail) % 2:
            del tail[-1]
        chunk = utt.chunk_bytes
        view = memoryview(tail)
        while len(view) > chunk:
            await self._send(view[:chunk], iid, False)
            view = view[chunk:]
        if not len(view):
            silence = int(self._params.echo_sample_rate * DONE_SILENCE_S) * 2
            view = memoryview(bytes(min(silence, chunk)))
        await self._send(view, iid, True)
        logger.debug(f"{self._owner}: echo audio utterance {iid} closed ({reason})")

    def drop(self) -> int:
        """Forget the open utterance (an interruption); its late TTS frames are dropped too.

        Returns:
            1 when audio was pending (not sent yet), else 0.
        """
        utt = self._utt
        if utt is None:
            return 0
        self._utt = None
        if utt.context_id is not None:
            self._dead_contexts.append(utt.context_id)
        task, utt.fallback = utt.fallback, None
        if task is not None:
            task.cancel()
        return int(bool(utt.pending))

    async def stop(self) -> None:
        """Cancel the fallback timer (the pipeline ends); the utterance stays as it is."""
        utt = self._utt
        task = None if utt is None else utt.fallback
        if task is not None:
            utt.fallback = None
            if task is not asyncio.current_task():
                await self._owner.cancel_task(task)

    async def _fallback(self, utt: _Utterance) -> None:
        while self._utt is utt:
            delay = utt.last_audio + self._params.echo_done_fallback_s - self._now()
            if delay <= 0:
                utt.fallback = None
                await self.close("no audio for echo_done_fallback_s")
                return
            await asyncio.sleep(delay)


class RealtimePacer:
    """Echo chunks waiting to leave at playback speed (``echo_realtime``)."""

    def __init__(self, *, now: Callable[[], float], lead_s: float = REALTIME_LEAD_S):
        """Create an empty pacer.

        Args:
            now: Monotonic clock in seconds (asyncio's clock: the pacer sleeps there).
            lead_s: How far ahead of the playback clock a chunk may leave.
        """
        self._now = now
        self._lead_s = lead_s
        self._queue: deque[tuple[ix.Echo, dict[str, Any], float]] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._next_at = 0.0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, echo: ix.Echo, message: dict[str, Any], seconds: float) -> None:
        """Queue one built chunk.

        Args:
            echo: The chunk's interaction.
            message: Its wire message.
            seconds: How long it plays.
        """
        self._queue.append((echo, message, seconds))
        self._idle.clear()
        self._wakeup.set()

    def drop(self) -> deque[tuple[ix.Echo, dict[str, Any], float]]:
        """Drop every queued chunk (an interruption) and restart the playback clock.

        Returns:
            The dropped queue, for the caller to release after more urgent work.
        """
        dropped, self._queue = self._queue, deque()
        self._next_at = 0.0
        self._idle.set()
        return dropped

    def clear(self) -> None:
        """Forget every queued chunk (the pipeline is cancelled)."""
        self._queue.clear()

    async def wait_idle(self) -> None:
        """Wait until every queued chunk has been submitted."""
        await self._idle.wait()

    async def run(self, submit: Callable[[ix.Echo, dict[str, Any]], Awaitable[None]]) -> None:
        """Submit queued chunks at playback speed, for ever (run it as a task).

        Args:
            submit: Sends one chunk.
        """
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = self._next_at - self._lead_s - self._now()
            if wait > 0:
                # Re-check the queue after sleeping: an interruption may have emptied it.
                await asyncio.sleep(wait)
                continue
            echo, message, seconds = self._queue.popleft()
            self._next_at = max(self._next_at, self._now()) + seconds
            await submit(echo, message)


__all__ = [
    "DONE_SILENCE_S",
    "REALTIME_LEAD_S",
    "EchoAudioStream",
    "RealtimePacer",
    "audio_message",
    "to_mono_pcm16",
]
