"""Echo audio end to end: TTS frames in -> echo messages handed to the transport, same audio.

Both paths start from the same list of ``TTSAudioRawFrame`` (10 s of a tone, 20 ms frames)
and a ``TTSStoppedFrame``, all queued at once on the processor (``queue_frame``) in a
started pipeline. The wall clock stops when the ``done: true`` message has been handed to
the transport; the CPU clock (process time) stops after that, once the pipeline's observers
(Pipecat's defaults) have handled every frame event queued for them
(:func:`.common.drain_observers`): a direct-mode processor never yields while it works, so
that share of its cost would otherwise fall after the window. Runs are interleaved; medians.

Ours: ``tavus.output()`` (direct mode, as shipped) in ``echo_audio`` mode, followed by a
real ``BaseOutputTransport`` (as ``transport.output()`` follows it in a bot) whose
``send_message`` records the message: that call is the hand-off point, as the stand-in
Daily client's ``send_message`` is for Pipecat's path. However the message gets there (our
output hands urgent messages to the ready transport's ``send_message`` directly; a pushed
frame would go through the transport's queue) is charged to ours.

Pipecat: ``TavusVideoService`` (Pipecat 1.14's own Tavus path, ``services/tavus/video.py``)
in the same position. Its real code runs: ``process_frame`` queues each frame on its
``TavusTransportClient``, whose send task resamples, cuts 100 ms chunks, base64-encodes and
builds each ``conversation.echo`` message (``encode_audio_and_send``) and calls
``TavusTransportClient.send_message``. Only what needs the network is replaced: ``setup``
builds the client without the REST call and the Daily join, and the client's Daily client
is a stand-in whose ``send_message`` records the frame (the hand-off point, where daily-python
would serialise and send); ending the conversation is a no-op.

Floor: the least any implementation must do for the same audio, with no frames and no
queues: resample (Pipecat's stream resampler, only when the rates differ, one call per
message's worth of input, as ours batches it; a call per 20 ms frame costs more), cut the audio
into the chunk size our path uses, and per chunk base64-encode it, build the message dict
and ``json.dumps`` it (the paths above stop before serialisation, which the transport does;
the floor includes it).

Core alone (a breakdown, not a baseline): the same audio given straight to the package's
conversation core (``TavusConnection.echo_audio``, then ``echo_audio_close``), no frames and
no queues: chunking, base64 and the message dicts, the part of our path that is ours.

Every message of both paths is measured with ``encoded_size`` (compact UTF-8 JSON) against
the 4096-byte cap (Daily's documented app-message limit, our ``max_message_bytes``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from binascii import b2a_base64
from typing import Any

from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import Frame, StartFrame, TTSStoppedFrame
from pipecat.services.ai_service import AIService
from pipecat.services.tavus.video import TavusVideoService
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.tavus.transport import TavusCallbacks, TavusParams, TavusTransportClient

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.core.connection import TavusConnection
from pipecat_tavus_interactions.protocol import encoded_size

from .common import REPLICA_ID, Harness, drain_observers, settle
from .latency import audio_frames

CAP = 4096


class _Recorder:
    """The hand-off point: collects messages and wakes the waiter on ``done: true``."""

    def __init__(self):
        self.messages: list[dict] = []
        self.done = asyncio.Event()
        self.at = 0.0
        self.cpu_at = 0.0

    def take(self, message: Any) -> None:
        if not (isinstance(message, dict) and message.get("event_type") == "conversation.echo"):
            return
        self.messages.append(message)
        if message["properties"].get("done"):
            self.at = time.perf_counter()
            self.cpu_at = time.process_time()
            self.done.set()


class _FakeDaily:
    """Stands in for the ``DailyTransportClient`` inside Pipecat's ``TavusTransportClient``."""

    def __init__(self, out_rate: int, recorder: _Recorder):
        self.out_sample_rate = out_rate
        self._recorder = recorder

    async def send_message(self, frame) -> None:
        self._recorder.take(frame.message)

    async def join(self) -> None:
        return None

    async def leave(self) -> None:
        return None


class _OfflineTavusVideoService(TavusVideoService):
    """Pipecat's ``TavusVideoService`` with the REST call and the Daily room stubbed out."""

    def __init__(self, out_rate: int, recorder: _Recorder):
        super().__init__(api_key="offline", replica_id="r-bench", session=None)  # type: ignore[arg-type]
        self._bench_out_rate = out_rate
        self._bench_recorder = recorder

    async def setup(self, setup):
        await AIService.setup(self, setup)

        async def _noop(*_args) -> None:
            return None

        client = TavusTransportClient(
            bot_name="Pipecat",
            callbacks=TavusCallbacks(
                on_joined=_noop, on_participant_joined=_noop, on_participant_left=_noop
            ),
            api_key="offline",
            replica_id="r-bench",
            session=None,  # type: ignore[arg-type]
            params=TavusParams(audio_out_faster_than_realtime=True),
        )
        # What TavusTransportClient.setup would have set, minus the network.
        client._task_manager = setup.task_manager
        client._conversation_id = "c-bench"
        client._client = _FakeDaily(self._bench_out_rate, self._bench_recorder)  # type: ignore[assignment]
        self._client = client

    async def cleanup(self):
        if self._client is not None:
            await self._client.cancel_send_task()
        await AIService.cleanup(self)

    async def _end_conversation(self):
        return None


class _SendingOutput(BaseOutputTransport):
    """A real output transport whose ``send_message`` is the hand-off point (records)."""

    def __init__(self, recorder: _Recorder):
        super().__init__(TransportParams())
        self._recorder = recorder

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def send_message(self, frame) -> None:
        self._recorder.take(frame.message)


async def _run(processor, recorder: _Recorder, frames: list[Frame], after=()):
    async with Harness([processor, *after]) as h:
        await settle()
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        for f in frames:
            await processor.queue_frame(f)
        await processor.queue_frame(TTSStoppedFrame())
        await asyncio.wait_for(recorder.done.wait(), timeout=60)
        await drain_observers(h.worker)
        wall, cpu = recorder.at - t0, time.process_time() - c0
        await settle()
    return wall, cpu


async def _pipecat_once(frames: list[Frame], out_rate: int) -> tuple[float, float, list[dict]]:
    recorder = _Recorder()
    service = _OfflineTavusVideoService(out_rate, recorder)
    wall, cpu = await _run(service, recorder, frames)
    return wall, cpu, recorder.messages


def _params(out_rate: int) -> TavusInteractionsParams:
    """Echo audio to a known replica, sent at once (no heartbeat, no waiting for a join)."""
    return TavusInteractionsParams(
        mode="echo_audio",
        conversation_id="c-bench",
        replica_participant_id=REPLICA_ID,
        heartbeat_timeout_s=None,
        wait_for_replica=False,
        echo_sample_rate=out_rate,
    )


async def _ours_once(frames: list[Frame], out_rate: int) -> tuple[float, float, list[dict]]:
    recorder = _Recorder()
    tavus = TavusInteractions(params=_params(out_rate))

    wall, cpu = await _run(tavus.output(), recorder, frames, [_SendingOutput(recorder)])
    return wall, cpu, recorder.messages


async def _floor_once(frames: list[Frame], out_rate: int, chunk: int) -> float:
    """Resample (if needed), chunk, base64 + dict + ``json.dumps`` per chunk; CPU seconds."""
    gc.collect()
    c0 = time.process_time()
    resampler = create_stream_resampler(clear_after_secs=None)
    pcm = bytearray()
    held = bytearray()
    for f in frames:
        if f.sample_rate == out_rate:
            pcm.extend(f.audio)
            continue
        held.extend(f.audio)  # one resampler call per message's worth of input, as ours
        if len(held) * out_rate >= chunk * f.sample_rate:
            pcm.extend(await resampler.resample(bytes(held), f.sample_rate, out_rate))
            held.clear()
    if held:
        pcm.extend(await resampler.resample(bytes(held), frames[-1].sample_rate, out_rate))
    pcm.extend(await resampler.flush())  # the tail (nothing when nothing was resampled)
    view = memoryview(pcm)
    dumps = json.dumps
    for i in range(0, len(pcm), chunk):
        message = {
            "message_type": "conversation",
            "event_type": "conversation.echo",
            "conversation_id": "c-bench",
            "properties": {
                "modality": "audio",
                "inference_id": "i-bench",
                "audio": b2a_base64(view[i : i + chunk], newline=False).decode("ascii"),
                "done": i + chunk >= len(pcm),
                "sample_rate": out_rate,
            },
        }
        dumps(message, separators=(",", ":"))
    return time.process_time() - c0


def _core_once(frames: list[Frame], out_rate: int) -> float:
    """The package's core alone on the same audio (no frames, no queues); CPU seconds."""
    conn = TavusConnection(_params(out_rate))
    conn.start(now=0.0)
    gc.collect()
    c0 = time.process_time()
    for i, f in enumerate(frames):
        conn.echo_audio(f.audio, context_id=None, now=i * 0.02)
    conn.echo_audio_close(now=len(frames) * 0.02)
    return time.process_time() - c0


def _audio_len(message: dict) -> int:
    b64 = message["properties"]["audio"]
    return len(b64) * 3 // 4 - b64[-2:].count("=")


def _sizes(messages: list[dict]) -> dict[str, Any]:
    sizes = [encoded_size(m) for m in messages]
    return {
        "messages": len(sizes),
        "max_bytes": max(sizes),
        "over_cap": sum(s > CAP for s in sizes),
        "audio_bytes": sum(_audio_len(m) for m in messages),
        "max_chunk_bytes": max(_audio_len(m) for m in messages),
        "done_last": bool(messages[-1]["properties"]["done"])
        and not any(m["properties"]["done"] for m in messages[:-1]),
    }


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def compare(*, seconds: float, repeats: int) -> list[dict[str, Any]]:
    """Time ours, Pipecat's Tavus path and the floor on the same audio, two rate cases.

    Args:
        seconds: Length of the utterance.
        repeats: Runs per path and case (interleaved); medians are reported.

    Returns:
        One result per case: CPU and wall ms per second of audio for each path, the ratio
        ours/Pipecat (CPU), and the message size report of both paths.
    """
    cases = [
        ("24 kHz TTS -> 24 kHz echo", 24000, 24000),
        ("16 kHz TTS -> 24 kHz echo", 16000, 24000),
    ]
    results = []
    for label, in_rate, out_rate in cases:
        frames = audio_frames(seconds, rate=in_rate)
        cpu: dict[str, list[float]] = {"ours": [], "pipecat": [], "floor": [], "core": []}
        wall: dict[str, list[float]] = {"ours": [], "pipecat": []}
        msgs: dict[str, list[dict]] = {}
        for _ in range(repeats):
            w, c, msgs["pipecat"] = await _pipecat_once(frames, out_rate)
            wall["pipecat"].append(w / seconds * 1e3)
            cpu["pipecat"].append(c / seconds * 1e3)
            w, c, msgs["ours"] = await _ours_once(frames, out_rate)
            wall["ours"].append(w / seconds * 1e3)
            cpu["ours"].append(c / seconds * 1e3)
            chunk = _sizes(msgs["ours"])["max_chunk_bytes"]
            cpu["floor"].append(await _floor_once(frames, out_rate, chunk) / seconds * 1e3)
            if in_rate == out_rate:  # the core takes audio at the wire rate
                cpu["core"].append(_core_once(frames, out_rate) / seconds * 1e3)
        med = {k: _median(v) for k, v in cpu.items() if v}
        results.append(
            {
                "case": label,
                "seconds": seconds,
                "repeats": repeats,
                "cpu_ms_per_s": med,
                "wall_ms_per_s": {k: _median(v) for k, v in wall.items()},
                "ratio": med["ours"] / med["pipecat"],
                "ratio_floor": med["ours"] / med["floor"],
                "ours": _sizes(msgs["ours"]),
                "pipecat": _sizes(msgs["pipecat"]),
            }
        )
    return results


def main() -> None:
    """Run the comparison alone and print JSON: ``python -m benchmarks.echo_audio``."""
    import argparse
    import sys

    from loguru import logger

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    print(json.dumps(asyncio.run(compare(seconds=args.seconds, repeats=args.repeats)), indent=1))


if __name__ == "__main__":
    main()


__all__ = ["compare"]
