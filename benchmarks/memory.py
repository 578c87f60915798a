"""Memory over many turns: one conversation's input path fed 100k turns, sampled as it goes.

Measured: ``tavus.input()`` of one facade (full mode, :func:`.common.make_tavus`), started in
a real pipeline, is handed every message of a simulator recording through its public
``process_frame`` (as ``DailyInputTransportMessageFrame`` from the replica), the recording
repeated with shifted ``seq``/``turn_idx``/ids (:func:`.common.shifted`) until ``turns`` turns
have been fed; the frames it pushes are counted and discarded (``push_frame`` replaced),
and tool handlers run as tasks between repeats. Every ``sample_every`` turns (after
``gc.collect()``): RSS, live Python objects, and the ledger's record count
(``tavus.ledger``). Run in a fresh process (``python -m benchmarks.scale --memory-turns
N``), so the RSS is this path's alone. Baseline: the first sample; the target is flat.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection

from .common import Harness, frames_for, make_tavus, record_wire, rss_bytes, shifted

DOWN = FrameDirection.DOWNSTREAM


async def memory(*, turns: int, sample_every: int = 10_000) -> dict[str, Any]:
    """Feed ``turns`` turns through one input processor; sample memory as it goes.

    Args:
        turns: Turns to feed (after the greeting of the first copy).
        sample_every: Turns between samples.

    Returns:
        The samples (turns, RSS MiB, Python objects, ledger records) and the per-event cost.
    """
    base_turns = 60
    recording = await record_wire(turns=base_turns)
    span = base_turns + 1  # turn_idx 0..60 per copy
    tavus = make_tavus(recording[0]["conversation_id"], max_turns=100)
    inp = tavus.input()
    samples: list[dict[str, Any]] = []
    events = 0
    async with Harness([inp, tavus.output()]):
        pushed = [0]

        async def push(frame: Frame, direction: FrameDirection = DOWN) -> None:
            pushed[0] += 1

        inp.push_frame = push  # type: ignore[method-assign]
        process = inp.process_frame
        next_sample = 0
        fed = 0
        k = 0
        t0 = time.perf_counter()
        while fed < turns:
            for f in frames_for(shifted(recording, k, span)):
                await process(f, DOWN)
                events += 1
            fed += span
            k += 1
            await asyncio.sleep(0)  # let tool tasks and the output run
            if fed >= next_sample:
                gc.collect()
                samples.append(
                    {
                        "turns": fed,
                        "rss_mib": rss_bytes() / 2**20,
                        "objects": len(gc.get_objects()),
                        "ledger_records": len(tavus.ledger.turns),
                    }
                )
                next_sample += sample_every
        elapsed = time.perf_counter() - t0
        del inp.push_frame  # let the pipeline's EndFrame through again
    return {
        "turns": fed,
        "events": events,
        "frames_pushed": pushed[0],
        "us_per_event": elapsed / events * 1e6,
        "completed_turns": tavus.ledger.completed_count,
        "samples": samples,
    }


__all__ = ["memory"]
