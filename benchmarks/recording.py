"""The flight recorder's cost: CPU per inbound event with ``record_path`` on versus off.

Measured: process CPU time (``time.process_time``: every thread, the recorder's writer
included) per message of ``worker -> tavus.input() -> tavus.output() -> sink`` over a
simulator recording (the facade of :func:`.common.make_tavus`), from queuing the messages
until a marker message reaches the sink and, with recording on, the writer has written
every line and closed the file. Baseline: the same pipeline without ``record_path``. Runs
alternate (off, on, off, on, ...); medians are reported, with their ratio (target <= 1.10).

    python -m benchmarks.recording            # 60 turns, 9 runs of each
    python -m benchmarks.recording --quick
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.frames.frames import Frame
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame

from .common import Harness, frames_for, make_tavus, record_wire, settle


async def _cpu_per_event(messages: list[dict], record_path: Path | None) -> float:
    """CPU microseconds per message for one run."""
    done = asyncio.Event()

    def on_frame(frame: Frame, _now: float) -> None:
        msg = getattr(frame, "message", None)
        if isinstance(msg, dict) and msg.get("type") == "bench-marker":
            done.set()

    extra: dict[str, Any] = {"record_path": record_path} if record_path else {}
    tavus = make_tavus(messages[0]["conversation_id"], **extra)
    frames = frames_for(messages)
    end = DailyInputTransportMessageFrame(message={"type": "bench-marker"}, participant_id="x")
    async with Harness([tavus.input(), tavus.output()], on_frame=on_frame) as h:
        await settle()
        gc.collect()
        t0 = time.process_time()
        for f in frames:
            await h.worker.queue_frame(f)
        await h.worker.queue_frame(end)
        await asyncio.wait_for(done.wait(), timeout=120)
        if tavus.recorder is not None:
            tavus.recorder.close(tavus.stats)  # every line encoded, written and flushed
        elapsed = time.process_time() - t0
        await settle()
    return elapsed / len(messages) * 1e6


async def compare(messages: list[dict], *, repeats: int) -> dict[str, Any]:
    """Medians of CPU per inbound event with recording off and on, and their ratio.

    Args:
        messages: A wire recording.
        repeats: Runs of each (alternating).
    """
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rec.jsonl"
        for _ in range(repeats):
            off.append(await _cpu_per_event(messages, None))
            on.append(await _cpu_per_event(messages, path))
        lines = path.read_text().count("\n")
    med_off, med_on = sorted(off)[len(off) // 2], sorted(on)[len(on) // 2]
    return {
        "events": len(messages),
        "repeats": repeats,
        "off_us": med_off,
        "on_us": med_on,
        "ratio": med_on / med_off,
        "lines_per_run": lines,
    }


def main() -> None:
    """Run and print the figures as JSON (the ratio on its own line first)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns and runs")
    args = parser.parse_args()
    logger.remove()
    logger.add(lambda m: print(m, end=""), level="ERROR")
    turns, repeats = (20, 3) if args.quick else (60, 9)

    async def run() -> dict[str, Any]:
        messages = await record_wire(turns=turns)
        return await compare(messages, repeats=repeats)

    r = asyncio.run(run())
    print(f"recording on/off CPU per inbound event: {r['ratio']:.3f}x (target <= 1.10)")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
