"""Run every benchmark and write ``benchmarks/RESULTS.md``.

Usage (from the repository root)::

    python -m benchmarks.run                 # everything, scale included (~25 min on 2 cores)
    python -m benchmarks.run --no-scale      # everything but the open-loop scale runs
    python -m benchmarks.run --quick         # a smoke run; prints, writes nothing

The scale runs are subprocesses of ``python -m benchmarks.scale`` (one per configuration,
each with its own load and bot processes), which can also be run alone. Each other
benchmark measures our cost and its baseline in the same process and run; the report puts
the ratio (or the figure) next to its target (:mod:`.report`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loguru import logger

from . import (
    echo_audio,
    importtime,
    inbound_pipeline,
    inbound_transport,
    latency,
    recording,
    relay_video,
)
from .common import machine, record_wire, wire_mix
from .report import render

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

#: (conversations, bot processes) of the reported open-loop runs.
SCALE_RUNS = [(50, 1), (200, 1), (500, 1), (50, 2), (200, 2), (500, 2)]
#: The bot settings docs/scale.md recommends for many conversations per process.
SCALE_SETTINGS = ("--tune-gc", "--no-observers")
#: The package before the scale work, for the CPU-per-event comparison.
BEFORE = ("--upstream-copy", "--bot-speaking-interval=0.2")


def _step(name: str) -> None:
    print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)


def _subprocess_json(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.scale", *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _scale(n: int, procs: int, seconds: float, *extra: str) -> dict[str, Any]:
    if procs > 1 and importlib.util.find_spec("supervisor") is not None:
        # The deployment shape of docs/scale.md: the bots under supervisord (`bench` extra).
        extra = (*extra, "--supervisor")
    _step(f"scale: {n} conversations, {procs} bot process(es), {seconds:g} s {' '.join(extra)}")
    args = [f"--conversations={n}", f"--procs={procs}", f"--seconds={seconds:g}", *extra]
    return _subprocess_json(*args)


def _slow_fuzz() -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-m", "slow", "-s", "-p", "no:cacheprovider"]
    cmd.append("tests/test_fuzz_input.py")
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    text = out.stdout + out.stderr
    found = re.findall(r"FUZZ-INPUT cases=(\d+) failures=(\d+)", text)
    tail = re.findall(r"^\s*(\d+ (?:passed|failed)[^\n]*)$", text, re.MULTILINE)
    return {
        "cases": sum(int(c) for c, _ in found),
        "failures": sum(int(f) for _, f in found),
        "exit": out.returncode,
        "summary": tail[-1].strip() if tail else "no pytest summary line",
        "seconds": time.perf_counter() - t0,
    }


async def _inbound_stages(messages: list[dict], repeats: int) -> dict[str, Any]:
    """The per-stage breakdown; it imports package internals, so it may not import."""
    try:
        from . import inbound
    except ImportError as e:  # the package's internals moved: the module needs porting
        return {"error": f"{type(e).__name__}: {e}"}
    return await inbound.parse_order_map(messages, repeats=repeats)


async def collect(quick: bool) -> dict[str, Any]:
    """Run the in-process benchmarks and return their figures.

    Args:
        quick: Fewer repeats (a smoke run, not for the report).

    Returns:
        All results, keyed by benchmark.
    """
    r: dict[str, Any] = {"machine": machine(), "quick": quick}
    turns = 20 if quick else 60
    messages = await record_wire(turns=turns)
    r["mix"] = {"turns": turns, "messages": len(messages), "types": wire_mix(messages)}
    _step("inbound parse + order + map (per stage)")
    r["inbound"] = await _inbound_stages(messages, 3 if quick else 15)
    _step("inbound in a pipeline")
    r["pipeline"] = await inbound_pipeline.compare(messages, repeats=3 if quick else 9)
    _step("inbound after a real input transport")
    r["transport_fed"] = await inbound_transport.compare(messages, repeats=3 if quick else 9)
    _step("recording on vs off (CPU per inbound event)")
    r["recording"] = await recording.compare(messages, repeats=3 if quick else 9)
    _step("interrupt latency")
    r["interrupt"] = await latency.interrupt(trials=20 if quick else 300)
    _step("first echo text")
    r["first_echo"] = await latency.first_echo(trials=50 if quick else 500)
    _step("echo audio end to end")
    r["echo_audio"] = await echo_audio.compare(seconds=10.0, repeats=3 if quick else 11)
    _step("relay video forwarding (720p)")
    r["relay_video"] = await relay_video.compare(
        frames=300 if quick else 600, repeats=3 if quick else 7
    )
    return r


def main() -> None:
    """Parse the command line, run, print the report and (full run) write RESULTS.md."""
    parser = argparse.ArgumentParser(description="Run the pipecat-tavus-interactions benchmarks.")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--output", type=Path, default=None, help="where to write the report")
    parser.add_argument("--no-fuzz", action="store_true", help="skip the long fuzz run")
    parser.add_argument("--no-scale", action="store_true", help="skip the open-loop scale runs")
    parser.add_argument("--scale-seconds", type=float, default=60.0, help="scale window")
    parser.add_argument("--json", type=Path, default=None, help="also dump raw results here")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "")
    if args.no_scale:
        command += " --no-scale"
    r = asyncio.run(collect(args.quick))
    _step("import time")
    r["import"] = importtime.measure(runs=3 if args.quick else 9)
    _step("memory over turns")
    r["memory"] = _subprocess_json("--memory-turns", "5000" if args.quick else "100000")
    if not args.no_scale:
        seconds = 5.0 if args.quick else args.scale_seconds
        runs = [(20, 1), (20, 2)] if args.quick else SCALE_RUNS
        r["scale"] = [_scale(n, p, seconds, *SCALE_SETTINGS) for n, p in runs]
        # The same conversations the way the package ran them before the scale work (the
        # upstream copy travelling, BotSpeakingFrame every 0.2 s, default observers and
        # collector): the "today" of the CPU-per-event target, at 200 and 500 on 2 processes.
        before = [runs[-1]] if args.quick else [(200, 2), (500, 2)]
        r["scale_experiments"] = [
            *(_scale(n, p, seconds, *BEFORE) for n, p in before),
            _scale(*runs[-1], seconds),  # package defaults, without the scale settings
        ]
    if not (args.quick or args.no_fuzz):
        _step("slow fuzz (pytest -m slow tests/test_fuzz_input.py)")
        r["fuzz"] = _slow_fuzz()
    if args.json is not None:  # first: the figures survive a failure to render them
        args.json.write_text(json.dumps(r, indent=1, default=str), encoding="utf-8")
    report = render(r, command)
    print(report)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(report, encoding="utf-8")
        print(f"[benchmarks] wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
