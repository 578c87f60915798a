"""Inbound in a pipeline: ``tavus.input()`` versus a processor that only consumes Tavus messages.

Here the messages are queued on the worker, so the processor under test sits after the
pipeline's source, with no input transport before it. A bot puts ``tavus.input()`` right
after ``transport.input()``; :mod:`.inbound_transport` measures that position (the
target's row). This one is kept as an informative line.

Measured: per-message CPU time (``time.process_time``, so other processes on a shared
machine do not count; wall time is reported beside it) of
``worker -> tavus.input() -> tavus.output() -> sink``
(full mode, ``get_weather`` registered, the facade of :func:`.common.make_tavus`) over a
simulator recording. All messages are queued on the worker at once as
``DailyInputTransportMessageFrame`` from the replica (Daily's downstream copy), then a
non-Tavus marker message; the clock stops when the marker reaches the sink (a direct-mode
probe). Tool results and the frames our input maps leave through the same pipeline.

Baseline (the fair one): ``worker -> TavusConsumer -> tavus.output() -> sink``, the same
pipeline with our input replaced by a processor in the same position that only consumes
the Tavus messages: it drops every ``InputTransportMessageFrame`` whose message looks like
a Tavus event (``event_type`` starting with ``conversation.``/``system.`` or
``message_type`` ``conversation``/``system``) and forwards everything else. Anything that
consumes the data channel pays at least this; what ours adds is parsing, ordering, the
ledger and the frames it pushes (about 0.3 per message).

``tavus.input()`` runs in Pipecat's direct mode (no queue hops of its own), so the consumer
is measured twice, queued (Pipecat's default) and in direct mode; the target's baseline
(``consumer_us``, ``ratio``) is the cheaper of the two, and both are reported
(``consumer_queued_us``/``ratio_queued``, ``consumer_direct_us``/``ratio_direct``).

Breakdown line, not the target's baseline: :class:`FramesReplayer` in the same position
consumes each Tavus message and pushes the frames ours pushed for that message (noted in a
run of ours, rebuilt fresh before each run's clock starts), so it costs what delivering the
same frames costs with no mapping at all; ``ratio_same_frames`` is what our parsing,
ordering, ledger and frame building add on top.

Extra line, not the target's baseline: two pass-throughs in the same two positions, which
forward every message down the pipeline (the old, misleading comparison: forwarding costs
more than our input, which consumes most messages).

The CPU clock stops once the marker is at the sink and the pipeline's observers have
handled every frame event queued for them (:func:`.common.drain_observers`), so work a
direct-mode processor leaves to the observer tasks is counted. Runs of ours and the
baselines are interleaved; medians are reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import EndFrame, Frame, InputTransportMessageFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame

from .common import Harness, PassThrough, drain_observers, frames_for, make_tavus, settle

_TAVUS_TYPES = ("conversation", "system")
_TAVUS_PREFIXES = ("conversation.", "system.")


def _is_tavus(frame: Frame) -> bool:
    return isinstance(frame, InputTransportMessageFrame) and _is_tavus_message(frame.message)


def _is_tavus_message(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    event_type = message.get("event_type")
    return message.get("message_type") in _TAVUS_TYPES or (
        isinstance(event_type, str) and event_type.startswith(_TAVUS_PREFIXES)
    )


class TavusConsumer(FrameProcessor):
    """Drops the app messages that look like Tavus events, forwards every other frame."""

    def __init__(self, *, direct: bool = False, **kwargs: Any):
        """Create the consumer.

        Args:
            direct: Run in Pipecat's direct mode (as ``tavus.input()`` does).
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(enable_direct_mode=direct, **kwargs)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Consume a Tavus message; forward anything else."""
        await super().process_frame(frame, direction)
        if not _is_tavus(frame):
            await self.push_frame(frame, direction)


class FramesReplayer(FrameProcessor):
    """Consumes each Tavus message and pushes the frames ours pushed for it, prebuilt.

    The same work as ``tavus.input()`` minus the mapping: no parsing, ordering, ledger or
    frame building (the frames are built before the clock starts), only the Pipecat cost of
    delivering the same frames from the same position. Direct mode, as ``tavus.input()``.
    """

    def __init__(self, frames: list[list[Frame]], **kwargs: Any):
        """Create the replayer.

        Args:
            frames: For each Tavus message in arrival order, the frames to push for it.
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(enable_direct_mode=True, **kwargs)
        self._frames = iter(frames)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Push the next message's frames instead of a Tavus message; forward the rest."""
        await super().process_frame(frame, direction)
        if not _is_tavus(frame):
            await self.push_frame(frame, direction)
            return
        for out in next(self._frames, ()):
            await self.push_frame(out)


async def _frames_of_ours(messages: list[dict]) -> list[list[Frame]]:
    """Run ours once and note the frames ``tavus.input()`` pushed for each Tavus message.

    A frame pushed from a tool handler's task (after its message) goes with the latest one.
    """
    tavus = make_tavus(messages[0]["conversation_id"])
    inp = tavus.input()
    pushed: list[list[Frame]] = []
    push, process = inp.push_frame, inp.process_frame

    async def noting_process(frame: Frame, direction: FrameDirection) -> None:
        if _is_tavus(frame) and direction is FrameDirection.DOWNSTREAM:
            pushed.append([])
        await process(frame, direction)

    async def noting_push(frame: Frame, direction=FrameDirection.DOWNSTREAM) -> None:
        if pushed and direction is FrameDirection.DOWNSTREAM and not _is_tavus(frame):
            pushed[-1].append(frame)
        await push(frame, direction)

    inp.process_frame = noting_process  # type: ignore[method-assign]
    inp.push_frame = noting_push  # type: ignore[method-assign]
    await _time_pipeline(lambda: [inp, tavus.output()], messages)
    # Frames the harness itself sends down (the marker, EndFrame) are not the mapping's.
    for frames in pushed:
        frames[:] = [f for f in frames if not isinstance(f, EndFrame | InputTransportMessageFrame)]
    return pushed


class _Marker:
    """Sink callback: notes when the marker message arrives."""

    def __init__(self):
        self.event = asyncio.Event()
        self.at = 0.0
        self.cpu_at = 0.0

    def __call__(self, frame: Frame, now: float) -> None:
        msg = getattr(frame, "message", None)
        if isinstance(msg, dict) and msg.get("type") == "bench-marker":
            self.at = now
            self.cpu_at = time.process_time()
            self.event.set()


async def _time_pipeline(
    factory: Callable[[], list[FrameProcessor]], messages: list[dict]
) -> tuple[float, float]:
    """Wall and CPU seconds from the first message queued to the marker at the sink."""
    marker = _Marker()
    frames = frames_for(messages)
    end = DailyInputTransportMessageFrame(message={"type": "bench-marker"}, participant_id="x")
    async with Harness(factory(), on_frame=marker) as h:
        await settle()
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for f in frames:
            await h.worker.queue_frame(f)
        await h.worker.queue_frame(end)
        await asyncio.wait_for(marker.event.wait(), timeout=120)
        await drain_observers(h.worker)
        elapsed = marker.at - t0, time.process_time() - c0
        await settle()
    return elapsed


async def compare(messages: list[dict], *, repeats: int) -> dict[str, Any]:
    """Per-message CPU (and wall) time of ours, the consume-only baseline, two pass-throughs.

    Args:
        messages: A wire recording.
        repeats: Runs of each (interleaved).

    Returns:
        Per-message medians in microseconds (``*_us`` CPU, ``*_wall_us`` wall) and the
        ratios of the CPU medians to each baseline.
    """
    cid = messages[0]["conversation_id"]
    n = len(messages)

    def ours() -> list[FrameProcessor]:
        tavus = make_tavus(cid)
        return [tavus.input(), tavus.output()]

    def consumer() -> list[FrameProcessor]:
        return [TavusConsumer(), make_tavus(cid).output()]

    def consumer_direct() -> list[FrameProcessor]:
        return [TavusConsumer(direct=True), make_tavus(cid).output()]

    def passthrough() -> list[FrameProcessor]:
        return [PassThrough(), PassThrough()]

    noted = await _frames_of_ours(messages)

    def same_frames() -> list[FrameProcessor]:
        # Fresh frames (new ids) for every run, built before the clock starts.
        fresh = [[dataclasses.replace(f) for f in frames] for frames in noted]
        return [FramesReplayer(fresh), make_tavus(cid).output()]

    factories = {
        "ours": ours,
        "consumer": consumer,
        "consumer_direct": consumer_direct,
        "passthrough": passthrough,
        "same_frames": same_frames,
    }
    samples: dict[str, list[float]] = {k: [] for k in factories}
    walls: dict[str, list[float]] = {k: [] for k in factories}
    for _ in range(repeats):
        for key, factory in factories.items():
            wall, cpu = await _time_pipeline(factory, messages)
            samples[key].append(cpu / n * 1e6)
            walls[key].append(wall / n * 1e6)
    med = {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
    # The target's baseline is the stricter (cheaper) of the two consumers.
    baseline = min(med["consumer"], med["consumer_direct"])
    return {
        "events": n,
        "repeats": repeats,
        **{f"{k}_wall_us": sorted(v)[len(v) // 2] for k, v in walls.items()},
        "ours_us": med["ours"],
        "consumer_us": baseline,
        "consumer_queued_us": med["consumer"],
        "consumer_direct_us": med["consumer_direct"],
        "passthrough_us": med["passthrough"],
        "ratio": med["ours"] / baseline,
        "ratio_queued": med["ours"] / med["consumer"],
        "ratio_direct": med["ours"] / med["consumer_direct"],
        "ratio_passthrough": med["ours"] / med["passthrough"],
        "same_frames_us": med["same_frames"],
        "ratio_same_frames": med["ours"] / med["same_frames"],
        "frames_per_message": sum(len(f) for f in noted) / n,
    }


def cli(compare_fn: Callable[..., Any], description: str) -> None:
    """Parse ``--turns``/``--repeats``, record the wire, run ``compare_fn`` and print JSON.

    Args:
        compare_fn: ``compare(messages, *, repeats)`` of a benchmark module.
        description: The command's one-line description.
    """
    import argparse
    import json
    import sys

    from loguru import logger

    from .common import record_wire

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--turns", type=int, default=60, help="user turns in the recording")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")

    async def _main() -> dict[str, Any]:
        messages = await record_wire(turns=args.turns)
        return await compare_fn(messages, repeats=args.repeats)

    print(json.dumps(asyncio.run(_main()), indent=1))


def main() -> None:
    """Run the comparison alone and print JSON: ``python -m benchmarks.inbound_pipeline``."""
    cli(compare, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()


__all__ = ["TavusConsumer", "compare"]
