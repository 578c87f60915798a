"""Outbound latency benchmarks: interrupt under queued echo audio, and the first echo text.

Both run ``tavus.output()`` in a real pipeline followed by a direct-mode probe. A frame
"enters" the processor when the benchmark puts it on the processor's own input queue
(``queue_frame``); a message "leaves" when the probe sees it pushed. The interval is what
a frame costs from its arrival at our processor to our message leaving it, Pipecat's
queue hop into the processor included. The baseline is the same interval for a
pass-through processor in the same place, forwarding the same frame.

``interrupt``
    ``echo_audio`` mode, 10 s of TTS audio (24 kHz, 20 ms frames) put through the processor
    with the utterance left open, then ``InterruptionFrame`` -> ``conversation.interrupt``.
    Two cases, which measure different things:

    - *queued*: ``echo_realtime=True``. Chunks are paced at playback speed, so when the
      interruption comes about 9.8 s of the audio is really waiting in the processor's
      pacing queue and must be dropped before (or while) the interrupt goes out. The
      report gives the audio dropped per trial, to show it was there.
    - *already sent*: the default (``echo_realtime=False``). Chunks are handed to the
      transport as fast as they come, so by the time the interruption arrives all 10 s
      have already left; nothing is queued here (at most the sub-chunk remainder of the
      open utterance is dropped). This is the latency of an interrupt on an open
      utterance, not of dropping queued audio.

``first_echo``
    ``echo_text`` mode: ``LLMFullResponseStartFrame`` and the first sentence's tokens are
    sent and processed; then the next token enters (the first moment the sentence is known
    not to be the whole answer: the last one waits for the end of the response, so that the
    closing ``done: true`` message carries text), and the clock stops when the first
    ``conversation.echo`` leaves.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TextFrame,
    TTSAudioRawFrame,
)

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams

from .common import REPLICA_ID, Harness, PassThrough, summarize

RATE = 24000
FRAME_MS = 20


class Watch:
    """Sink callback: records when a matching frame arrives and wakes the waiter."""

    def __init__(self):
        self.predicate = None
        self.at = 0.0
        self.event = asyncio.Event()
        self.messages: list[dict] = []

    def arm(self, predicate) -> None:
        """Wait for the next frame for which ``predicate(frame)`` is true."""
        self.predicate = predicate
        self.event.clear()

    def __call__(self, frame: Frame, now: float) -> None:
        msg = getattr(frame, "message", None)
        if isinstance(msg, dict):
            self.messages.append(msg)
        if self.predicate is not None and self.predicate(frame):
            self.predicate = None
            self.at = now
            self.event.set()

    async def wait(self) -> float:
        """Wait for the armed frame and return when it arrived."""
        await asyncio.wait_for(self.event.wait(), timeout=30)
        return self.at


def _is_event(event_type: str):
    def check(frame: Frame) -> bool:
        msg = getattr(frame, "message", None)
        return isinstance(msg, dict) and msg.get("event_type") == event_type

    return check


def _is_marker(frame: Frame) -> bool:
    return isinstance(frame, TextFrame) and frame.text == "bench-marker"


def _tavus(mode: str, **params: Any) -> TavusInteractions:
    p: dict[str, Any] = {
        "mode": mode,
        "conversation_id": "c-bench",
        "replica_participant_id": REPLICA_ID,
        "heartbeat_timeout_s": None,
        "wait_for_replica": False,
    }
    p.update(params)
    return TavusInteractions(params=TavusInteractionsParams(**p))


def audio_frames(seconds: float, *, rate: int = RATE) -> list[TTSAudioRawFrame]:
    """``seconds`` of a 440 Hz tone as 20 ms TTS frames (PCM16 mono)."""
    import numpy as np

    per = rate * FRAME_MS // 1000
    count = int(seconds * 1000 / FRAME_MS)
    t = np.arange(per * count) / rate
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).tobytes()
    step = per * 2
    return [
        TTSAudioRawFrame(audio=pcm[i : i + step], sample_rate=rate, num_channels=1)
        for i in range(0, len(pcm), step)
    ]


async def _interrupt_trials(trials: int, *, realtime: bool, seconds: float) -> dict[str, Any]:
    watch = Watch()
    tavus = _tavus("echo_audio", echo_realtime=realtime, echo_done_fallback_s=60.0)
    out = tavus.output()
    ours: list[float] = []
    dropped_before = 0
    async with Harness([out], on_frame=watch):
        for _ in range(trials):
            for f in audio_frames(seconds):
                await out.queue_frame(f)
            watch.arm(_is_marker)
            await out.queue_frame(TextFrame("bench-marker"))
            await watch.wait()
            await asyncio.sleep(0.002)  # the pacing task sends its lead and goes to sleep
            watch.arm(_is_event("conversation.interrupt"))
            t0 = time.perf_counter()
            await out.queue_frame(InterruptionFrame())
            ours.append((await watch.wait() - t0) * 1e3)
        dropped = tavus.stats["echo_dropped"] - dropped_before
        sent_chunks = tavus.stats["conversation.echo"]
    chunk_s = max(_audio_bytes(m) for m in watch.messages) / (RATE * 2)
    return {
        "ms": summarize(ours),
        "echo_dropped": dropped,
        "dropped_s_per_trial": dropped * chunk_s / trials,
        "echo_sent": sent_chunks,
        "max_bytes": max(len(_json(m)) for m in watch.messages),
    }


def _audio_bytes(message: dict) -> int:
    b64 = (message.get("properties") or {}).get("audio") or ""
    return len(b64) * 3 // 4 - b64[-2:].count("=")


def _json(message: dict) -> bytes:
    import json

    return json.dumps(message, separators=(",", ":")).encode()


async def _passthrough_trials(trials: int, frame_factory) -> dict[str, float]:
    watch = Watch()
    proc = PassThrough()
    samples: list[float] = []
    async with Harness([proc], on_frame=watch):
        for _ in range(trials):
            frame = frame_factory()
            watch.arm(lambda f, frame=frame: f is frame)
            t0 = time.perf_counter()
            await proc.queue_frame(frame)
            samples.append((await watch.wait() - t0) * 1e3)
            await asyncio.sleep(0)
    return summarize(samples)


async def interrupt(*, trials: int, seconds: float = 10.0) -> dict[str, Any]:
    """``InterruptionFrame`` in -> ``conversation.interrupt`` out, after echo audio.

    Args:
        trials: Interruptions per case.
        seconds: Echo audio put through the processor before each interruption.

    Returns:
        Millisecond summaries for both cases (``queued``: ``echo_realtime=True``;
        ``sent``: the default, audio already handed over) and for the pass-through baseline.
    """
    return {
        "seconds_audio": seconds,
        "trials": trials,
        "queued": await _interrupt_trials(trials, realtime=True, seconds=seconds),
        "sent": await _interrupt_trials(trials, realtime=False, seconds=seconds),
        "passthrough_ms": await _passthrough_trials(trials, InterruptionFrame),
    }


async def first_echo(*, trials: int) -> dict[str, Any]:
    """The token after the first sentence in -> first ``conversation.echo`` out.

    Args:
        trials: Responses.

    Returns:
        Millisecond summaries for ours and the pass-through baseline, and the echo texts
        of the last trial (to show what left).
    """
    watch = Watch()
    tavus = _tavus("echo_text")
    out = tavus.output()
    ours: list[float] = []
    head = ["Sure", ",", " the", " weather", " in", " Paris", " is", " sunny", "!"]
    tail = [" warm", " today", ".", " Anything", " else", "?"]
    async with Harness([out], on_frame=watch):
        for _ in range(trials):
            await out.queue_frame(LLMFullResponseStartFrame())
            for token in head:
                await out.queue_frame(LLMTextFrame(token))
            watch.arm(_is_marker)
            await out.queue_frame(TextFrame("bench-marker"))
            await watch.wait()
            first = len(watch.messages)
            watch.arm(_is_event("conversation.echo"))
            t0 = time.perf_counter()
            await out.queue_frame(LLMTextFrame(" And"))
            ours.append((await watch.wait() - t0) * 1e3)
            for token in tail:
                await out.queue_frame(LLMTextFrame(token))
            watch.arm(lambda f: isinstance(f, LLMFullResponseEndFrame))
            await out.queue_frame(LLMFullResponseEndFrame())
            await watch.wait()
    texts = [m["properties"].get("text") for m in watch.messages[first:]]
    return {
        "trials": trials,
        "ours_ms": summarize(ours),
        "passthrough_ms": await _passthrough_trials(trials, lambda: LLMTextFrame(" And")),
        "last_echoes": texts,
    }


__all__ = ["audio_frames", "first_echo", "interrupt"]
