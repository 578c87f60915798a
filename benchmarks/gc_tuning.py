"""What ``tune_gc()`` changes in a process that holds many pipelines.

Measured: ``N`` conversations (the pipeline of :mod:`.openloop_bot`, started in one
process, as a bot process at scale holds them), then a simulator recording pushed through
all of them, message ``k`` of every conversation before message ``k + 1`` of any (the
interleaving of real conversations); with CPython's default collector settings and after
``tune_gc()`` (collect + freeze + generation-0 threshold 50,000), alternately in the same
process (``gc.unfreeze()`` and the old thresholds restore the default between runs). For
each: CPU per message (``time.process_time``), the collections per generation, the CPU the
collector itself used (``gc.callbacks``, ``process_time`` at start and stop, so other
processes on a shared machine do not count) and its longest pause in CPU time.

Run: ``python -m benchmarks.gc_tuning [--conversations 200] [--messages 400] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from typing import Any

from loguru import logger
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.transports.base_transport import TransportParams

from pipecat_tavus_interactions import tune_gc

from .common import REPLICA_ID, Probe, make_tavus, record_wire, settle
from .openloop_bot import WireInput, WireOutput


class _GcCpu:
    """``gc.callbacks`` entry: per-generation counts, CPU total and longest CPU pause."""

    def __init__(self):
        self.counts = [0, 0, 0]
        self.cpu = 0.0
        self.max_pause = 0.0
        self._c = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._c = time.process_time()
            return
        pause = time.process_time() - self._c
        self.counts[info["generation"]] += 1
        self.cpu += pause
        self.max_pause = max(self.max_pause, pause)


async def _start(n: int, cid: str) -> tuple[list[WireInput], list[PipelineWorker], Any]:
    sources, workers = [], []
    started = 0
    all_started = asyncio.Event()

    for _ in range(n):
        tavus = make_tavus(cid, emit_event_frames=True)
        source = WireInput(TransportParams())
        worker = PipelineWorker(
            Pipeline(
                [source, tavus.input(), Probe(), tavus.output(), WireOutput(TransportParams())]
            ),
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
            check_dangling_tasks=False,
        )

        @worker.event_handler("on_pipeline_started")
        async def _started(_worker, _frame):
            nonlocal started
            started += 1
            if started == n:
                all_started.set()

        sources.append(source)
        workers.append(worker)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(*workers)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(all_started.wait(), 300)
    return sources, workers, task


async def _pass(sources: list[WireInput], messages: list[dict]) -> float:
    """Push every message to every conversation; CPU seconds per message."""
    c0 = time.process_time()
    for message in messages:
        for source in sources:
            await source.push_app_message(message, REPLICA_ID)
        await asyncio.sleep(0)  # let the queues drain between rounds, as time would
    await settle(200)
    return (time.process_time() - c0) / (len(messages) * len(sources))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Start the pipelines, then alternate default and tuned passes; return medians."""
    # About 55 messages a turn; every pass gets fresh messages (a repeat would be dropped).
    recording = await record_wire(turns=2 * args.repeats * args.messages // 50 + 2)
    cid = recording[0]["conversation_id"]
    # Each pass continues the conversation where the previous one stopped (new seq values).
    chunks = [recording[i : i + args.messages] for i in range(0, len(recording), args.messages)]
    sources, workers, task = await _start(args.conversations, cid)
    default_thresholds = gc.get_threshold()
    log = _GcCpu()
    gc.callbacks.append(log)
    runs: dict[str, list[dict[str, Any]]] = {"default": [], "tune_gc": []}
    k = 0
    for _ in range(args.repeats):
        for variant in runs:
            gc.unfreeze()
            gc.set_threshold(*default_thresholds)
            gc.collect()
            if variant == "tune_gc":
                tune_gc()
            log.__init__()
            cpu = await _pass(sources, chunks[k % len(chunks)])
            k += 1
            runs[variant].append(
                {
                    "cpu_us_per_message": cpu * 1e6,
                    "collections": list(log.counts),
                    "gc_cpu_us_per_message": log.cpu
                    / (len(chunks[(k - 1) % len(chunks)]) * len(sources))
                    * 1e6,
                    "gc_max_pause_ms": log.max_pause * 1e3,
                }
            )
    gc.callbacks.remove(log)
    gc.unfreeze()
    gc.set_threshold(*default_thresholds)
    for worker in workers:
        await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 120)

    def med(variant: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[variant]), 2)

    return {
        "conversations": args.conversations,
        "messages_per_pass": args.messages,
        "repeats": args.repeats,
        "median": {
            v: {
                k: med(v, k)
                for k in ("cpu_us_per_message", "gc_cpu_us_per_message", "gc_max_pause_ms")
            }
            for v in runs
        },
        "runs": runs,
    }


def main() -> None:
    """Parse the command line, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=400, help="messages per pass")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    print(json.dumps(asyncio.run(main_async(args)), indent=1))


if __name__ == "__main__":
    main()
