"""Video forwarding: the relay's path versus ``TavusVideoService``'s, on the same 720p frames.

Both processors get the replica's frames from Daily's video renderer callback and push an
``OutputImageRawFrame`` downstream. Measured: CPU time (``time.process_time``) to forward
``frames`` frames of 1280x720 RGB through each path, from the Daily-shaped callback to a
sink probe, reported as CPU seconds per second of 30 fps video, and the ratio relay / service.

- Ours: ``DailyReplicaRoom``'s renderer callback -> ``RoomVideo`` ->
  ``TavusReplicaRelay`` -> ``OutputImageRawFrame`` -> sink.
- Baseline: ``TavusVideoService._on_participant_video_frame`` -> ``OutputImageRawFrame``
  -> sink (Pipecat's own code, unchanged).

Same position (the processor right before the sink), same work (the same frame object, the
same pipeline, the output transport reported ready). Neither joins a room: the service's
``setup`` does not build its Tavus client and the room's ``join`` only keeps its callbacks;
the forwarding code measured is the real one. Runs are interleaved; medians are reported.

    python -m benchmarks.relay_video            # prints the figures as JSON
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import OutputImageRawFrame, OutputTransportReadyFrame
from pipecat.services.tavus.video import TavusVideoService

from pipecat_tavus_interactions import TavusInteractionsParams, TavusReplicaRelay
from pipecat_tavus_interactions.api import Conversation
from pipecat_tavus_interactions.relay_room import DailyReplicaRoom

from .common import Harness, settle

WIDTH, HEIGHT, FPS = 1280, 720, 30


@dataclass
class VideoFrame:
    """The fields of daily-python's ``VideoFrame`` that both paths read."""

    buffer: bytes
    width: int
    height: int
    color_format: str = "RGB"


class OfflineVideoService(TavusVideoService):
    """``TavusVideoService`` without its Tavus client: nothing is created or joined."""

    async def setup(self, setup):
        """Set up as a processor, skipping the client (and its network calls)."""
        await super(TavusVideoService, self).setup(setup)


class OfflineRoom(DailyReplicaRoom):
    """``DailyReplicaRoom`` that keeps its callbacks but joins nothing."""

    async def join(self, callbacks, *, sample_rate, microphone):
        """Keep the callbacks; join nothing."""
        self._callbacks = callbacks

    async def leave(self):
        """Nothing to leave."""
        self._callbacks = None


def _service() -> tuple[Any, Any]:
    service = OfflineVideoService(api_key="bench", replica_id="r", session=None)
    return service, service._on_participant_video_frame


def _relay() -> tuple[Any, Any]:
    conversation = Conversation(conversation_id="c-bench", conversation_url="https://x/c")
    room = OfflineRoom(conversation=conversation)
    params = TavusInteractionsParams(mode="echo_audio", conversation_id="c-bench")
    return TavusReplicaRelay(room=room, params=params), room._video


async def _run(make, frames: int) -> float:
    """CPU seconds to forward ``frames`` frames through one path."""
    frame = VideoFrame(bytes(WIDTH * HEIGHT * 3), WIDTH, HEIGHT)
    seen = 0
    done = asyncio.Event()

    def count(f, _now):
        nonlocal seen
        if isinstance(f, OutputImageRawFrame):
            seen += 1
            if seen == frames:
                done.set()
            return False
        return None

    processor, callback = make()
    async with Harness([processor], on_frame=count) as h:
        await h.worker.queue_frame(OutputTransportReadyFrame())
        await settle()
        gc.collect()
        t0 = time.process_time()
        for _ in range(frames):
            await callback("replica", frame, "camera")
        await done.wait()
        cpu = time.process_time() - t0
    return cpu


async def compare(*, frames: int = 600, repeats: int = 7) -> dict[str, Any]:
    """Forward ``frames`` 720p frames through each path, ``repeats`` times, interleaved.

    Returns:
        CPU seconds per second of 30 fps video for each path (median), and their ratio.
    """
    ours, base = [], []
    for _ in range(repeats):
        base.append(await _run(_service, frames))
        ours.append(await _run(_relay, frames))
    video_s = frames / FPS
    relay_cpu = statistics.median(ours) / video_s
    service_cpu = statistics.median(base) / video_s
    return {
        "frames": frames,
        "size": f"{WIDTH}x{HEIGHT}",
        "fps": FPS,
        "relay_cpu_per_video_s": relay_cpu,
        "service_cpu_per_video_s": service_cpu,
        "ratio": relay_cpu / service_cpu,
    }


def main() -> None:
    """Run the comparison and print it."""
    from loguru import logger

    logger.remove()
    print(json.dumps(asyncio.run(compare()), indent=2))


if __name__ == "__main__":
    main()
