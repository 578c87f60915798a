"""Echo audio encoding: our output processor versus Pipecat's Tavus echo path, same audio.

Pipecat 1.14's ``TavusTransportClient`` (``pipecat.transports.tavus.transport``) sends echo
audio from its send task (``_send_task_handler``): it takes each queued audio frame,
resamples it to the client's output rate, accumulates 100 ms chunks and calls
``encode_audio_and_send`` (base64 + the message dict) for each; a ``TTSStoppedFrame``
flushes the rest and sends 40 ms of silence with ``done: true``. This benchmark runs that
real code: a subclass only replaces the two methods that need a Daily call
(``out_sample_rate`` returns the output rate, ``send_message`` appends the frame), and the
benchmark runs ``_send_task_handler`` as a task over a queue holding the frames and the
``TTSStoppedFrame``. No network is involved.

Ours: ``tavus.output()`` in ``echo_audio`` mode, started in a real pipeline, with
``push_frame`` replaced by ``list.append``; every frame and the ``TTSStoppedFrame`` are
passed to its ``process_frame`` in turn. Both paths start from the same
``TTSAudioRawFrame`` list and end when the ``done: true`` message has been produced.

Every message of both paths is measured with ``encoded_size`` (compact UTF-8 JSON).
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from pipecat.frames.frames import Frame, TTSStoppedFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.tavus.transport import TavusCallbacks, TavusTransportClient

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.protocol import encoded_size

from .common import REPLICA_ID, Harness
from .latency import audio_frames

DOWN = FrameDirection.DOWNSTREAM


class _OfflineTavusClient(TavusTransportClient):
    """Pipecat's client with the Daily call replaced by a list (nothing else changed)."""

    def __init__(self, *, out_rate: int):
        async def _noop(*_args) -> None:
            return None

        super().__init__(
            bot_name="bench",
            callbacks=TavusCallbacks(
                on_joined=_noop, on_participant_joined=_noop, on_participant_left=_noop
            ),
            api_key="offline",
            replica_id="r-bench",
            session=None,  # type: ignore[arg-type]  # never used: no conversation is created
        )
        self._conversation_id = "c-bench"
        self._out_rate = out_rate
        self.sent: list[dict] = []
        self.done = asyncio.Event()

    @property
    def out_sample_rate(self) -> int:
        return self._out_rate

    async def send_message(self, frame) -> None:
        self.sent.append(frame.message)
        if frame.message["properties"]["done"]:
            self.done.set()


async def _pipecat_once(frames: list[Frame], out_rate: int) -> tuple[float, list[dict]]:
    client = _OfflineTavusClient(out_rate=out_rate)
    client._audio_queue = asyncio.Queue()
    gc.collect()
    t0 = time.perf_counter()
    for f in frames:
        client._audio_queue.put_nowait(f)
    client._audio_queue.put_nowait(TTSStoppedFrame())
    task = asyncio.create_task(client._send_task_handler())
    await client.done.wait()
    elapsed = time.perf_counter() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed, client.sent


async def _ours_once(frames: list[Frame], out_rate: int) -> tuple[float, list[dict]]:
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            mode="echo_audio",
            conversation_id="c-bench",
            replica_participant_id=REPLICA_ID,
            heartbeat_timeout_s=None,
            wait_for_replica=False,
            echo_sample_rate=out_rate,
        )
    )
    out = tavus.output()
    sent: list[dict] = []
    async with Harness([out]):

        async def push(frame: Frame, direction: FrameDirection = DOWN) -> None:
            message = getattr(frame, "message", None)
            if message is not None:
                sent.append(message)

        out.push_frame = push  # type: ignore[method-assign]
        gc.collect()
        t0 = time.perf_counter()
        for f in frames:
            await out.process_frame(f, DOWN)
        await out.process_frame(TTSStoppedFrame(), DOWN)
        elapsed = time.perf_counter() - t0
        del out.push_frame  # let the pipeline's EndFrame through again
    return elapsed, sent


def _sizes(messages: list[dict], cap: int) -> dict[str, Any]:
    sizes = [encoded_size(m) for m in messages]
    return {
        "messages": len(sizes),
        "max_bytes": max(sizes),
        "over_cap": sum(s > cap for s in sizes),
        "audio_bytes": sum(_audio_len(m) for m in messages),
        "done_last": bool(messages[-1]["properties"]["done"])
        and not any(m["properties"]["done"] for m in messages[:-1]),
    }


def _audio_len(message: dict) -> int:
    b64 = message["properties"]["audio"]
    return len(b64) * 3 // 4 - b64[-2:].count("=")


async def compare(*, seconds: float, repeats: int, cap: int = 4096) -> list[dict[str, Any]]:
    """Time both paths on the same audio, without and with resampling.

    Args:
        seconds: Length of the utterance.
        repeats: Runs per path and case (interleaved); medians are reported.
        cap: The message cap to check sizes against (``max_message_bytes``).

    Returns:
        One result per case: ms per second of audio for both paths, their ratio, and the
        message size report of each path.
    """
    cases = [
        ("24 kHz TTS -> 24 kHz echo", 24000, 24000),
        ("16 kHz TTS -> 24 kHz echo", 16000, 24000),
    ]
    results = []
    for label, in_rate, out_rate in cases:
        frames = audio_frames(seconds, rate=in_rate)
        ours: list[float] = []
        theirs: list[float] = []
        ours_msgs: list[dict] = []
        their_msgs: list[dict] = []
        for _ in range(repeats):
            t, their_msgs = await _pipecat_once(frames, out_rate)
            theirs.append(t / seconds * 1e3)
            t, ours_msgs = await _ours_once(frames, out_rate)
            ours.append(t / seconds * 1e3)
        m_ours = sorted(ours)[len(ours) // 2]
        m_theirs = sorted(theirs)[len(theirs) // 2]
        results.append(
            {
                "case": label,
                "seconds": seconds,
                "repeats": repeats,
                "ours_ms_per_s": m_ours,
                "pipecat_ms_per_s": m_theirs,
                "ratio": m_ours / m_theirs,
                "ours": _sizes(ours_msgs, cap),
                "pipecat": _sizes(their_msgs, cap),
            }
        )
    return results


__all__ = ["compare"]
