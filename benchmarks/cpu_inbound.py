"""CPU per inbound message through a bot pipeline shaped like the scale benchmark's.

Measured: ``time.process_time`` (CPU of this process, so other processes on a shared machine
do not count) per replica message, for a simulator recording pushed the way Daily pushes it
(``broadcast_frame`` from a ``BaseInputTransport``) through::

    WireInput -> tavus.input() -> probe -> tavus.output() -> WireOutput

(the pipeline of :mod:`.openloop_bot`), all messages queued at once, a marker message last;
the clock stops when the marker reaches the probe. Variants run interleaved in one process,
so they are compared back to back:

- ``package``: the package as it is (``tavus.input()`` takes each Tavus message from the
  transport in place: no frame is built for it, either way);
- ``upstream copy``: the same, with the transport's ``broadcast_frame`` restored after
  setup, so every message is broadcast as Daily's is without ``tavus.input()``'s wrap: a
  frame downstream to ``tavus.input()`` and one upstream to the pipeline's source (what the
  package did before the scale work);
- ``no observers``: ``package`` in a worker without the default observers
  (``enable_turn_tracking=False``, ``idle_timeout_secs=None``): what ``docs/scale.md``
  recommends for bots that do not use them.

``BotSpeakingFrame`` ticks are paced by real time and do not appear here: the scale
benchmark's ``--bot-speaking-interval`` shows their share.

Run: ``python -m benchmarks.cpu_inbound [--repeats 7] [--turns 60] [--profile VARIANT]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import statistics
import sys
import time
from typing import Any

from loguru import logger
from pipecat.frames.frames import EndFrame, Frame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.transports.base_transport import TransportParams

from .common import REPLICA_ID, Probe, make_tavus, record_wire, settle
from .openloop_bot import WireInput, WireOutput

VARIANTS = ("package", "upstream copy", "no observers")


async def _run_once(variant: str, messages: list[dict], profile: cProfile.Profile | None) -> float:
    """CPU seconds per message of one pass of ``messages`` through ``variant``."""
    tavus = make_tavus(messages[0]["conversation_id"], emit_event_frames=True)
    source, sink = WireInput(TransportParams()), WireOutput(TransportParams())
    done = asyncio.Event()

    def on_frame(frame: Frame, _now: float) -> bool:
        message = getattr(frame, "message", None)
        if isinstance(message, dict) and message.get("type") == "bench-marker":
            done.set()
        return True

    extra: dict[str, Any] = {}
    if variant == "no observers":
        extra = {"enable_turn_tracking": False, "idle_timeout_secs": None}
    worker = PipelineWorker(
        Pipeline([source, tavus.input(), Probe(on_frame), tavus.output(), sink]),
        cancel_on_idle_timeout=False,
        enable_rtvi=False,
        check_dangling_tasks=False,
        **extra,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker, _frame):
        started.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(started.wait(), 10)
    if variant == "upstream copy" and "broadcast_frame" in vars(source):
        del source.broadcast_frame
    await settle()
    gc.collect()
    if profile is not None:
        profile.enable()
    c0 = time.process_time()
    for message in messages:
        await source.push_app_message(message, REPLICA_ID)
    await source.push_app_message({"type": "bench-marker"}, "someone-else")
    await asyncio.wait_for(done.wait(), 120)
    cpu = time.process_time() - c0
    if profile is not None:
        profile.disable()
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 30)
    return cpu / len(messages)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Record, then run the variants interleaved; return medians (us per message)."""
    messages = await record_wire(turns=args.turns)
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    profile = cProfile.Profile() if args.profile else None
    for _ in range(args.repeats):
        for variant in VARIANTS:
            prof = profile if variant == args.profile else None
            samples[variant].append(await _run_once(variant, messages, prof) * 1e6)
    med = {v: statistics.median(s) for v, s in samples.items()}
    result: dict[str, Any] = {
        "messages": len(messages),
        "repeats": args.repeats,
        "cpu_us_per_message": {v: round(m, 2) for v, m in med.items()},
        "ratio_to_upstream_copy": {v: round(m / med["upstream copy"], 3) for v, m in med.items()},
        "samples": {v: [round(x, 1) for x in s] for v, s in samples.items()},
    }
    if profile is not None:
        stats = pstats.Stats(profile, stream=sys.stderr)
        stats.sort_stats(args.sort).print_stats(args.top)
    return result


def main() -> None:
    """Parse the command line, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--profile", choices=VARIANTS, help="cProfile this variant (stderr)")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
