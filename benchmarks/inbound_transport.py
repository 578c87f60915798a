"""Inbound after a real input transport: ``tavus.input()`` in its place versus a consumer there.

:mod:`.inbound_pipeline` queues the messages on the worker, so the processor under test sits
after the pipeline's source. A bot puts ``tavus.input()`` right after ``transport.input()``,
which hands each app message to ``broadcast_frame`` as Daily does: one frame downstream, one
upstream. This module measures that position:

``up probe -> source -> X -> tavus.output() -> sink``

``source`` is a ``BaseInputTransport`` (the scale benchmark's ``WireInput``) that broadcasts
each recorded message, sender = the replica, the way ``DailyTransport`` does. All messages
are handed over at once, then a non-Tavus marker message; the clock (process time) stops
when the marker's downstream copy is at the sink, its upstream copy at the up probe (so the
upstream copies of the messages before it have been delivered too) and the observers have
drained (:func:`.common.drain_observers`). Runs are interleaved; medians are reported.

X is, per line:

- ours: ``tavus.input()`` (full mode, the facade of :func:`.common.make_tavus`): it takes the
  Tavus messages in place (no frame is built for them, no upstream copy is made);
- consumer (the target's baseline): a processor in the same position that only consumes the
  Tavus messages, written the simplest way (drop the message frame in ``process_frame``,
  :class:`.inbound_pipeline.TavusConsumer`), queued and in direct mode, the cheaper one
  counting. Like any processor there that does not wrap the transport, it receives the
  downstream copy as a frame and the transport's upstream copy travels to the pipeline's
  source;
- same frames (a breakdown): the consumer that also pushes, per message, the frames ours
  pushed for it, prebuilt (:class:`.inbound_pipeline.FramesReplayer`);
- in place (the floor, informative): a direct-mode processor that wraps the transport's
  ``broadcast_frame`` as ours does and drops each Tavus message there, doing nothing else:
  what consuming costs when nothing is built, parsed or pushed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import Frame, InputTransportMessageFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_transport import TransportParams

from .common import REPLICA_ID, Harness, Probe, drain_observers, make_tavus, settle
from .inbound_pipeline import FramesReplayer, TavusConsumer, _frames_of_ours, _is_tavus_message, cli
from .openloop_bot import WireInput

MARKER = {"type": "bench-marker"}


class InPlaceConsumer(FrameProcessor):
    """Wraps the transport before it and drops each Tavus message there (the floor)."""

    def __init__(self, **kwargs: Any):
        """Create the consumer (direct mode, as ``tavus.input()``)."""
        super().__init__(enable_direct_mode=True, **kwargs)

    async def setup(self, setup):
        """Wrap the input transport's ``broadcast_frame`` (on the instance)."""
        await super().setup(setup)
        transport = self.previous
        assert isinstance(transport, BaseInputTransport)
        broadcast = transport.broadcast_frame

        async def broadcast_frame(frame_cls: type[Frame], **kwargs: Any) -> None:
            if issubclass(frame_cls, InputTransportMessageFrame) and _is_tavus_message(
                kwargs.get("message")
            ):
                return
            await broadcast(frame_cls, **kwargs)

        transport.broadcast_frame = broadcast_frame  # type: ignore[method-assign]

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Forward every frame (Tavus messages never reach it)."""
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class _Marks:
    """Notes when the marker's copies arrive: downstream at the sink, upstream at the top."""

    def __init__(self):
        self.down = asyncio.Event()
        self.up = asyncio.Event()

    def _is_marker(self, frame: Frame) -> bool:
        return getattr(frame, "message", None) == MARKER

    def at_sink(self, frame: Frame, now: float) -> None:
        if self._is_marker(frame):
            self.down.set()

    def at_top(self, frame: Frame, now: float) -> None:
        if self._is_marker(frame):
            self.up.set()


async def _time_fed(x: Callable[[], list[FrameProcessor]], messages: list[dict]) -> float:
    """CPU seconds from the first message handed to the transport to both marker copies."""
    marks = _Marks()
    source = WireInput(TransportParams())
    async with Harness([Probe(marks.at_top), source, *x()], on_frame=marks.at_sink) as h:
        await settle()
        gc.collect()
        c0 = time.process_time()
        for m in messages:
            await source.push_app_message(m, REPLICA_ID)
        await source.push_app_message(MARKER, "browser")
        await asyncio.wait_for(marks.down.wait(), timeout=120)
        await asyncio.wait_for(marks.up.wait(), timeout=120)
        await drain_observers(h.worker)
        cpu = time.process_time() - c0
        await settle()
    return cpu


async def compare(messages: list[dict], *, repeats: int) -> dict[str, Any]:
    """Per-message CPU of ours and the baselines after a real input transport.

    Args:
        messages: A wire recording.
        repeats: Runs of each (interleaved).

    Returns:
        Per-message CPU medians in microseconds and the ratios of ours to each.
    """
    cid = messages[0]["conversation_id"]
    n = len(messages)
    noted = await _frames_of_ours(messages)

    def ours() -> list[FrameProcessor]:
        tavus = make_tavus(cid)
        return [tavus.input(), tavus.output()]

    def same_frames() -> list[FrameProcessor]:
        fresh = [[dataclasses.replace(f) for f in frames] for frames in noted]
        return [FramesReplayer(fresh), make_tavus(cid).output()]

    factories: dict[str, Callable[[], list[FrameProcessor]]] = {
        "ours": ours,
        "consumer_queued": lambda: [TavusConsumer(), make_tavus(cid).output()],
        "consumer_direct": lambda: [TavusConsumer(direct=True), make_tavus(cid).output()],
        "same_frames": same_frames,
        "in_place": lambda: [InPlaceConsumer(), make_tavus(cid).output()],
    }
    samples: dict[str, list[float]] = {k: [] for k in factories}
    for _ in range(repeats):
        for key, factory in factories.items():
            samples[key].append(await _time_fed(factory, messages) / n * 1e6)
    med = {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
    consumer = min(med["consumer_queued"], med["consumer_direct"])
    return {
        "events": n,
        "repeats": repeats,
        **{f"{k}_us": v for k, v in med.items()},
        "consumer_us": consumer,
        "ratio": med["ours"] / consumer,
        "ratio_same_frames": med["ours"] / med["same_frames"],
        "ratio_in_place": med["ours"] / med["in_place"],
    }


def main() -> None:
    """Run the comparison alone and print JSON: ``python -m benchmarks.inbound_transport``."""
    cli(compare, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()


__all__ = ["InPlaceConsumer", "compare"]
