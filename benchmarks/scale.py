"""Scale: many simulated conversations in one process, and memory over 100k turns.

``conversations``
    ``N`` bot pipelines run at once in one process and one event loop, each
    ``SimulatedTransport.input() -> tavus.input() -> probe -> tavus.output() ->
    SimulatedTransport.output()`` with its own simulated replica (full mode, the scripted
    persona with a tool call, heartbeats every simulated second) and a scripted user
    talking without pause, at a speed factor. Event latency is measured per event from
    the moment the simulator hands the message to the transport (the transport's
    ``_on_replica_message``) to the moment ``tavus.input()`` pushes the event's first frame
    (``emit_event_frames=True`` makes that a ``TavusEventFrame`` for every accepted event;
    the probe is direct-mode, so it adds no queue hop). Only events of the measurement
    window (after every pipeline has started) count. CPU time is ``getrusage`` user +
    system over the window; peak memory is the process's maximum RSS. Each ``N`` runs in a
    fresh process (``python -m benchmarks.scale``) so peaks do not carry over.

``memory``
    100k turns fed through the input path (``_handle_message`` as in the inbound
    benchmark, frames counted and discarded) of one conversation, built from a simulator
    recording repeated with shifted ``seq``/``turn_idx``/ids; RSS, Python objects and the
    ledger's size are sampled every 10k turns. Also run in a fresh process, so its RSS is
    the input path's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import resource
import sys
import time
from typing import Any

from loguru import logger
from pipecat.frames.frames import EndFrame, Frame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection

from pipecat_tavus_interactions import TavusEventFrame, TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.simulator import ScriptedUser, SimulatedTransport, TavusSimulator

from .common import (
    Harness,
    Probe,
    pct,
    peak_rss_bytes,
    persona,
    record_wire,
    rss_bytes,
    shifted,
    user_lines,
)
from .inbound import frames_for, make_tavus

DOWN = FrameDirection.DOWNSTREAM


class _StampedTransport(SimulatedTransport):
    """The simulator's transport, noting when each replica message reaches it."""

    def __init__(self, simulator: TavusSimulator, sent_at: dict[int, float]):
        super().__init__(simulator)
        self._sent_at = sent_at

    async def _on_replica_message(self, message: Any, sender: str) -> None:
        if isinstance(message, dict) and isinstance(message.get("seq"), int):
            self._sent_at[message["seq"]] = time.perf_counter()
        await super()._on_replica_message(message, sender)


class _Conversation:
    def __init__(
        self, index: int, speed: float, lines: int, latencies: list[float], window: list[bool]
    ):
        self.lines = lines
        self.sent_at: dict[int, float] = {}
        self.sim = TavusSimulator(
            persona=persona(), speed=speed, seed=index, history=200, tool_wait_s=5.0
        )
        self.transport = _StampedTransport(self.sim, self.sent_at)
        self.tavus = TavusInteractions(
            params=TavusInteractionsParams(
                conversation_id=self.sim.conversation_id,
                emit_event_frames=True,
                heartbeat_timeout_s=None,
            )
        )
        self.tavus.attach_transport(self.transport)

        async def get_weather(params):
            await params.result_callback({"conditions": "sunny", "temp_c": 21})

        self.tavus.register_function("get_weather", get_weather)
        sent_at = self.sent_at

        def on_frame(frame: Frame, now: float) -> bool:
            if isinstance(frame, TavusEventFrame):
                t0 = sent_at.pop(frame.event.seq, None)
                if t0 is not None and window[0]:
                    latencies.append(now - t0)
                return False  # measurement only: not forwarded
            return True

        self.worker = PipelineWorker(
            Pipeline(
                [
                    self.transport.input(),
                    self.tavus.input(),
                    Probe(on_frame),
                    self.tavus.output(),
                    self.transport.output(),
                ]
            ),
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
            check_dangling_tasks=False,
        )
        self.script: asyncio.Task | None = None

    async def talk(self) -> None:
        await self.sim.run_script(ScriptedUser(lines=user_lines(self.lines), reply_timeout_s=30))


def cpu_shares(profile: cProfile.Profile) -> dict[str, float]:
    """Split a profile's own time by who spent it (fractions of the total).

    Groups: ``ours`` (this package but its simulator), ``simulator``, ``pipecat``,
    ``asyncio+stdlib`` (event loop, queues, json...), ``idle`` (waiting in ``epoll``) and
    ``other``.
    """
    groups: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in (
        pstats.Stats(profile).stats.items()  # type: ignore[attr-defined]
    ):
        if "poll" in func and "epoll" in func:
            key = "idle"
        elif "pipecat_tavus_interactions/simulator" in filename:
            key = "simulator"
        elif "pipecat_tavus_interactions" in filename:
            key = "ours"
        elif "/pipecat/" in filename:
            key = "pipecat"
        elif "python3" in filename or filename == "~":
            key = "asyncio+stdlib"
        else:
            key = "other"
        groups[key] = groups.get(key, 0.0) + tottime
    total = sum(groups.values()) or 1.0
    return {k: v / total for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}


async def conversations(
    n: int, *, seconds: float, speed: float, profile: bool = False
) -> dict[str, Any]:
    """Run ``n`` simulated conversations at once for ``seconds`` of measurement.

    Args:
        n: Conversations (pipelines) in this process.
        seconds: Wall seconds of the measurement window, after all have started.
        speed: Simulator speed factor (1.0 is real time).
        profile: Run the window under ``cProfile`` and report who used the CPU (the
            profiler slows everything down: latencies of such a run are not comparable).

    Returns:
        Events measured, events per second, latency percentiles in ms, CPU seconds and
        utilisation over the window, peak RSS in MiB (and CPU shares when profiled).
    """
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    latencies: list[float] = []
    window = [False]
    # A turn takes a few simulated seconds: enough lines to keep every user talking.
    lines = int((seconds + 10) * speed) + 10
    convs = [_Conversation(i, speed, lines, latencies, window) for i in range(n)]
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(*[c.worker for c in convs])
    run = asyncio.create_task(runner.run())
    t_start = time.perf_counter()
    for c in convs:
        await c.sim.wait_started()
    for c in convs:
        c.script = asyncio.create_task(c.talk())
    startup = time.perf_counter() - t_start
    await asyncio.sleep(min(2.0, seconds / 4))  # warm-up: every conversation is talking
    profiler = cProfile.Profile() if profile else None
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    window[0] = True
    if profiler is not None:
        profiler.enable()
    await asyncio.sleep(seconds)
    if profiler is not None:
        profiler.disable()
    window[0] = False
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in convs:
        if c.script is not None:
            c.script.cancel()
    await asyncio.gather(*[c.script for c in convs if c.script], return_exceptions=True)
    for c in convs:
        await c.worker.queue_frame(EndFrame())
    await asyncio.wait_for(run, timeout=120)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    lat_ms = [x * 1e3 for x in latencies]
    shares = cpu_shares(profiler) if profiler is not None else None
    return {
        "profiled": profile,
        "cpu_shares": shares,
        "conversations": n,
        "speed": speed,
        "window_s": round(wall, 2),
        "startup_s": round(startup, 2),
        "events": len(lat_ms),
        "events_per_s": len(lat_ms) / wall,
        "p50_ms": pct(lat_ms, 50),
        "p99_ms": pct(lat_ms, 99),
        "max_ms": max(lat_ms) if lat_ms else float("nan"),
        "cpu_s": cpu,
        "cpu_util": cpu / wall,
        "peak_rss_mib": peak_rss_bytes() / 2**20,
        "turns": sum(c.tavus.ledger.completed_count for c in convs),
    }


async def memory(*, turns: int, sample_every: int = 10_000) -> dict[str, Any]:
    """Feed ``turns`` turns through one input processor; sample memory as it goes.

    Args:
        turns: Turns to feed (after the greeting of the first copy).
        sample_every: Turns between samples.

    Returns:
        The samples (turns, RSS MiB, Python objects, ledger records, orderer held) and the
        per-event cost.
    """
    base_turns = 60
    recording = await record_wire(turns=base_turns)
    span = base_turns + 1  # turn_idx 0..60 per copy
    tavus = make_tavus(recording[0]["conversation_id"], max_turns=100)
    inp = tavus.input()
    samples: list[dict[str, Any]] = []
    events = 0
    async with Harness([inp, tavus.output()]):
        count = [0]

        async def push(frame: Frame, direction: FrameDirection = DOWN) -> None:
            count[0] += 1

        inp.push_frame = push  # type: ignore[method-assign]
        handle = inp._handle_message
        next_sample = 0
        fed = 0
        k = 0
        t0 = time.perf_counter()
        while fed < turns:
            for f in frames_for(shifted(recording, k, span)):
                await handle(f, DOWN)
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
                        "orderer_held": inp.orderer.pending,
                    }
                )
                next_sample += sample_every
        elapsed = time.perf_counter() - t0
        del inp.push_frame  # let the pipeline's EndFrame through again
    return {
        "turns": fed,
        "events": events,
        "us_per_event": elapsed / events * 1e6,
        "completed_turns": tavus.ledger.completed_count,
        "samples": samples,
    }


def main() -> None:
    """Run one scale measurement and print it as JSON (used by ``benchmarks.run``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--profile", action="store_true", help="report CPU shares (slower)")
    parser.add_argument(
        "--memory-turns", type=int, default=0, help="run the memory benchmark instead"
    )
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    if args.memory_turns:
        every = max(1, args.memory_turns // 10)
        result = asyncio.run(memory(turns=args.memory_turns, sample_every=every))
    else:
        result = asyncio.run(
            conversations(
                args.conversations, seconds=args.seconds, speed=args.speed, profile=args.profile
            )
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
