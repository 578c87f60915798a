"""Run every benchmark of DESIGN.md section 10 and write ``benchmarks/RESULTS.md``.

Usage (from the repository root)::

    python -m benchmarks.run            # the full run (a few minutes on 2 cores)
    python -m benchmarks.run --quick    # a fast smoke run; prints, writes nothing

Each benchmark measures our cost and its baseline in the same process and run, and the
report puts the ratio (or the figure) next to its target. The full run also runs the long
processor-path fuzz (``pytest -m slow tests/test_fuzz_input.py``) and records its case count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loguru import logger

from . import echo_audio, inbound, latency
from .common import machine, record_wire, wire_mix

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _ok(good: bool) -> str:
    return "met" if good else "**missed**"


def _f(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def _scale_subprocess(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.scale", *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _scale(n: int, *, seconds: float, speed: float, profile: bool = False) -> dict[str, Any]:
    args = ["--conversations", str(n), "--seconds", str(seconds), "--speed", str(speed)]
    return _scale_subprocess(*args, *(["--profile"] if profile else []))


def _slow_fuzz() -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "slow",
        "-s",
        "-p",
        "no:cacheprovider",
        "tests/test_fuzz_input.py",
    ]
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


async def collect(quick: bool, *, fuzz: bool) -> dict[str, Any]:
    """Run the benchmarks and return every figure.

    Args:
        quick: Fewer repeats and smaller scale runs (a smoke run, not for the report).
        fuzz: Also run the long fuzz.

    Returns:
        All results, keyed by benchmark.
    """
    r: dict[str, Any] = {"machine": machine(), "quick": quick}
    turns = 20 if quick else 60
    messages = await record_wire(turns=turns)
    r["mix"] = {"turns": turns, "messages": len(messages), "types": wire_mix(messages)}

    def step(name: str) -> None:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)

    step("inbound parse + order + map")
    r["inbound"] = await inbound.parse_order_map(messages, repeats=3 if quick else 15)
    step("inbound pipeline")
    r["pipeline"] = await inbound.pipeline(messages, repeats=3 if quick else 9)
    step("interrupt latency")
    r["interrupt"] = await latency.interrupt(trials=20 if quick else 300)
    step("first echo text")
    r["first_echo"] = await latency.first_echo(trials=50 if quick else 500)
    step("echo audio encoding")
    r["echo_audio"] = await echo_audio.compare(seconds=10.0, repeats=3 if quick else 11)
    step("scale")
    runs = [(20, 1.0), (50, 10.0)] if quick else [(50, 1.0), (200, 1.0), (500, 1.0), (50, 10.0)]
    seconds = 3.0 if quick else 10.0
    r["scale"] = [_scale(n, seconds=seconds, speed=s) for n, s in runs]
    step("scale, profiled (who uses the CPU)")
    r["scale_profile"] = _scale(20 if quick else 200, seconds=seconds, speed=1.0, profile=True)
    step("memory over turns")
    r["memory"] = _scale_subprocess("--memory-turns", "5000" if quick else "100000")
    if fuzz:
        step("slow fuzz (pytest -m slow tests/test_fuzz_input.py)")
        r["fuzz"] = _slow_fuzz()
    return r


def render(r: dict[str, Any], command: str) -> str:
    """Render the results as the Markdown report."""
    m = r["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}` (from the repository root). Date: {m['date']}.",
        "",
        f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}; pipecat-ai "
        f"{m['pipecat']}; pipecat-tavus-interactions {m['package']}; {m['platform']}.",
        "",
        "Every benchmark times our code and its baseline in the same process and run; the "
        "figures are medians unless marked p99. What each one measures exactly is in the "
        "docstring of its module (`benchmarks/*.py`).",
        "",
    ]
    mix = r["mix"]
    kinds = ", ".join(f"{k} {v}" for k, v in mix["types"].items())
    lines += [
        "## Summary",
        "",
        "| what | ours | baseline | ratio / figure | target | |",
        "|---|---|---|---|---|---|",
    ]
    ib = r["inbound"]
    lines.append(
        f"| inbound parse + order + map, per event | {_f(ib['median_us']['processor'])} us | "
        f"json.loads {_f(ib['median_us']['json'])} us | {_f(ib['ratio'])}x | <= 4x | "
        f"{_ok(ib['ratio'] <= 4)} |"
    )
    pl = r["pipeline"]
    lines.append(
        f"| inbound in a pipeline, per event | {_f(pl['ours_us'])} us | pass-through "
        f"{_f(pl['passthrough_us'])} us | {_f(pl['ratio'])}x | <= 1.5x | "
        f"{_ok(pl['ratio'] <= 1.5)} |"
    )
    it = r["interrupt"]
    worst = max(it["default"]["ms"]["p99"], it["realtime"]["ms"]["p99"])
    lines.append(
        f"| interrupt latency, {it['seconds_queued']:g} s of echo audio queued | p99 "
        f"{_f(worst, 3)} ms (p50 {_f(it['realtime']['ms']['median'], 3)} ms) | pass-through p99 "
        f"{_f(it['passthrough_ms']['p99'], 3)} ms | {_f(worst, 3)} ms | < 1 ms p99 | "
        f"{_ok(worst < 1)} |"
    )
    fe = r["first_echo"]
    lines.append(
        f"| first echo text after the sentence's last token | {_f(fe['ours_ms']['median'], 3)} ms "
        f"(p99 {_f(fe['ours_ms']['p99'], 3)} ms) | pass-through "
        f"{_f(fe['passthrough_ms']['median'], 3)} ms | {_f(fe['ours_ms']['p99'], 3)} ms p99 | "
        f"< 1 ms | {_ok(fe['ours_ms']['p99'] < 1)} |"
    )
    for ea in r["echo_audio"]:
        good = ea["ratio"] <= 1 and ea["ours"]["over_cap"] == 0
        lines.append(
            f"| echo audio encoding, {ea['case']} | {_f(ea['ours_ms_per_s'], 3)} ms per s of audio,"
            f" max message {ea['ours']['max_bytes']} B | Pipecat's Tavus path "
            f"{_f(ea['pipecat_ms_per_s'], 3)} ms, max message {ea['pipecat']['max_bytes']} B | "
            f"{_f(ea['ratio'])}x | <= 1x, every message <= cap | {_ok(good)} |"
        )
    for sc in r["scale"]:
        if sc["conversations"] == 500 and sc["speed"] == 1.0:
            lines.append(
                f"| 500 conversations in one process, real time | p99 {_f(sc['p99_ms'])} ms "
                f"(p50 {_f(sc['p50_ms'])} ms) | | CPU {sc['cpu_util'] * 100:.0f}% of one core | "
                f"p99 < 20 ms | {_ok(sc['p99_ms'] < 20)} |"
            )
    mem = r["memory"]
    rss = [s["rss_mib"] for s in mem["samples"][1:]]
    flat = max(rss) - min(rss) if rss else float("nan")
    lines.append(
        f"| memory over {mem['turns']:,} turns | RSS {min(rss):.1f}-{max(rss):.1f} MiB after the "
        f"first sample | | spread {flat:.1f} MiB | flat | {_ok(flat < 5)} |"
    )
    lines += _misses(r)
    lines += ["", "## Wire mix", ""]
    lines.append(
        f"Recorded from the simulator: {mix['turns']} user turns after the greeting (persona "
        f"with a weather tool, every sixth line a barge-in), a heartbeat every 10 messages: "
        f"{mix['messages']} messages, mean {ib['mean_bytes']:.0f} bytes of JSON: {kinds}."
    )
    lines += [
        "",
        "## Inbound parse + order + map",
        "",
        "Per event, median of "
        f"{ib['repeats']} runs over the {ib['events']} messages (fresh state each run):",
        "",
        "| stage | us per event | x json.loads |",
        "|---|---|---|",
    ]
    labels = {
        "json": "`json.loads` of the message text (baseline)",
        "parse": "`parse_message` (dict in, event model out)",
        "order": "+ `EventOrderer.push`",
        "ledger": "+ `TurnLedger.observe` (the whole pure core)",
        "no_dispatch": "`_handle_message` with `_dispatch` a no-op (parse, order and the "
        "glue before mapping: sender checks, clock, lock, poll timer)",
        "no_handlers": "`_handle_message` without the per-type frame builders (+ ledger, "
        "stats, `on_event`)",
        "processor": "`TavusInteractionsInput._handle_message`, complete (+ frames built and "
        "pushed, handlers called)",
    }
    for key, label in labels.items():
        v = ib["median_us"][key]
        lines.append(f"| {label} | {_f(v)} | {_f(v / ib['median_us']['json'])} |")
    lines += [
        "",
        f"The processor pushed {ib['frames_per_event']:.2f} frames per message (twins, "
        "duplicate forms and heartbeats push none).",
        "",
        "## Inbound in a pipeline",
        "",
        f"`worker -> tavus.input() -> tavus.output() -> sink` versus two pass-throughs, "
        f"{pl['events']} messages queued at once, then a marker; median "
        f"of {pl['repeats']} runs each: ours {_f(pl['ours_us'])} us per message, "
        f"pass-through {_f(pl['passthrough_us'])} us per message, ratio {_f(pl['ratio'])}x.",
        "",
        "## Interrupt latency",
        "",
        f"{it['trials']} trials per case; each puts {it['seconds_queued']:g} s of 24 kHz TTS "
        "audio through `tavus.output()` (echo_audio), then an `InterruptionFrame`.",
        "",
        "| case | p50 ms | p99 ms | max ms | echo chunks dropped by the interrupts |",
        "|---|---|---|---|---|",
    ]
    for key, label in (
        ("default", "default (chunks sent as they come; utterance open)"),
        ("realtime", "echo_realtime=True (chunks waiting in the pacing queue)"),
    ):
        c = it[key]
        lines.append(
            f"| {label} | {_f(c['ms']['median'], 3)} | {_f(c['ms']['p99'], 3)} | "
            f"{_f(c['ms']['max'], 3)} | {c['echo_dropped']} |"
        )
    pt = it["passthrough_ms"]
    lines.append(
        f"| baseline: pass-through forwarding the InterruptionFrame | {_f(pt['median'], 3)} | "
        f"{_f(pt['p99'], 3)} | {_f(pt['max'], 3)} | |"
    )
    lines += [
        "",
        "## First echo text",
        "",
        f"{fe['trials']} responses: ours p50 {_f(fe['ours_ms']['median'], 3)} ms, p99 "
        f"{_f(fe['ours_ms']['p99'], 3)} ms, max {_f(fe['ours_ms']['max'], 3)} ms; pass-through "
        f"forwarding the same token p50 {_f(fe['passthrough_ms']['median'], 3)} ms, p99 "
        f"{_f(fe['passthrough_ms']['p99'], 3)} ms. Echo texts of the last response: "
        + "; ".join(f"`{t}`" for t in fe["last_echoes"])
        + ".",
        "",
        "## Echo audio encoding",
        "",
        "| case | ours ms per s of audio | Pipecat ms per s | ratio | ours: messages, max B, over "
        "4096 | Pipecat: messages, max B, over 4096 |",
        "|---|---|---|---|---|---|",
    ]
    for ea in r["echo_audio"]:
        o, p = ea["ours"], ea["pipecat"]
        lines.append(
            f"| {ea['case']} | {_f(ea['ours_ms_per_s'], 3)} | {_f(ea['pipecat_ms_per_s'], 3)} | "
            f"{_f(ea['ratio'])}x | {o['messages']}, {o['max_bytes']}, {o['over_cap']} | "
            f"{p['messages']}, {p['max_bytes']}, {p['over_cap']} |"
        )
    lines += [
        "",
        "Pipecat's path sends 100 ms chunks; at 24 kHz a chunk is 4800 bytes of PCM, 6400 of "
        "base64, so its messages are over Daily's documented 4 KB app-message limit. Ours are "
        "sized by their encoded length and all stay at or under `max_message_bytes`.",
        "",
        "## Scale",
        "",
        "| conversations | speed | events measured | events/s | p50 ms | p99 ms | max ms | CPU s "
        "(window) | CPU of one core | peak RSS MiB | turns completed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in r["scale"]:
        lines.append(
            f"| {sc['conversations']} | {sc['speed']:g}x | {sc['events']} | "
            f"{sc['events_per_s']:.0f} | {_f(sc['p50_ms'])} | {_f(sc['p99_ms'])} | "
            f"{_f(sc['max_ms'])} | {_f(sc['cpu_s'])} | {sc['cpu_util'] * 100:.0f}% | "
            f"{sc['peak_rss_mib']:.0f} | {sc['turns']} |"
        )
    sp = r["scale_profile"]
    shares = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sp["cpu_shares"].items())
    busy = {k: v for k, v in sp["cpu_shares"].items() if k != "idle"}
    busy_total = sum(busy.values()) or 1.0
    lines += [
        "",
        f"Who uses the CPU: {sp['conversations']} conversations at {sp['speed']:g}x under "
        f"`cProfile` for {sp['window_s']} s (own time per function, grouped by file): "
        f"{shares}. Of the busy time, this package (simulator excluded) is "
        f"{busy.get('ours', 0) / busy_total * 100:.0f}%, Pipecat's frame machinery "
        f"{busy.get('pipecat', 0) / busy_total * 100:.0f}%, asyncio and the standard library "
        f"{busy.get('asyncio+stdlib', 0) / busy_total * 100:.0f}%, the simulator "
        f"{busy.get('simulator', 0) / busy_total * 100:.0f}%. Per measured event the "
        "unprofiled runs above spend "
        + ", ".join(
            f"{sc['cpu_s'] / max(1, sc['events']) * 1e6:.0f} us of CPU ({sc['conversations']} at "
            f"{sc['speed']:g}x)"
            for sc in r["scale"]
        )
        + ".",
    ]
    lines += [
        "",
        f"## Memory over {mem['turns']:,} turns",
        "",
        f"{mem['events']:,} events through one input processor ({_f(mem['us_per_event'])} us "
        f"per event, sampling included); {mem['completed_turns']:,} turns completed.",
        "",
        "| turns fed | RSS MiB | Python objects | ledger records | orderer held |",
        "|---|---|---|---|---|",
    ]
    for s in mem["samples"]:
        lines.append(
            f"| {s['turns']:,} | {s['rss_mib']:.1f} | {s['objects']:,} | {s['ledger_records']} | "
            f"{s['orderer_held']} |"
        )
    if "fuzz" in r:
        fz = r["fuzz"]
        lines += [
            "",
            "## Long fuzz of the input path",
            "",
            f"`pytest -m slow tests/test_fuzz_input.py`: {fz['cases']:,} cases, "
            f"{fz['failures']} failures, exit code {fz['exit']} ({fz['summary']}), "
            f"{fz['seconds']:.0f} s.",
        ]
    return "\n".join(lines) + "\n"


def _misses(r: dict[str, Any]) -> list[str]:
    """Why each missed target was missed, and what would fix it (figures from this run)."""
    out: list[str] = []
    ib = r["inbound"]
    us = ib["median_us"]
    if ib["ratio"] > 4:
        out += [
            "",
            f"**Inbound parse + order + map ({_f(ib['ratio'])}x, target 4x).** The pure core "
            f"(`parse_message`, `EventOrderer`, `TurnLedger`) costs {_f(us['ledger'])} us per "
            f"event, {_f(us['ledger'] / us['json'])}x `json.loads`: inside the target. The rest "
            "is the input processor's glue (`input.py`, not a core module): "
            f"{_f(us['no_dispatch'] - us['order'])} us before mapping (the `asyncio.Lock` taken "
            "for every message, re-arming the poll timer, sender and conversation checks, the "
            f"clock), {_f(us['no_handlers'] - us['no_dispatch'])} us of dispatch (ledger, "
            f"stats, `on_event`) and {_f(us['processor'] - us['no_handlers'])} us building and "
            f"pushing frames, where Pipecat's own costs dominate: a frame's construction takes "
            f"{_f(ib['pipecat_frame_us'])} us and `time_now_iso8601()`, called for every "
            f"(interim) transcription frame, {_f(ib['iso_timestamp_us'])} us. What would fix "
            "it: take the lock and re-arm the poll timer only while events are held (the "
            "in-order fast path needs neither), stamp transcription frames from one timestamp "
            "per message batch (or the event's own Tavus timestamp), and bring the dict path "
            f"of `parse_message` (now {_f(us['parse'] / us['json'])}x `json.loads`) closer to "
            "`json.loads`. In a real pipeline the same processor costs less than a "
            "pass-through (see the next row): it consumes the messages it maps.",
        ]
    for sc in r["scale"]:
        if sc["conversations"] == 500 and sc["speed"] == 1.0 and sc["p99_ms"] >= 20:
            ok = [x for x in r["scale"] if x["speed"] == 1.0 and x["p99_ms"] < 20]
            best = max(ok, key=lambda x: x["conversations"]) if ok else None
            shares = r["scale_profile"]["cpu_shares"]
            busy = sum(v for k, v in shares.items() if k != "idle") or 1.0
            line = (
                f"**500 conversations (p99 {_f(sc['p99_ms'])} ms, target 20 ms).** One Python "
                f"process runs on one core, and 500 real-time conversations need "
                f"{sc['cpu_util'] * 100:.0f}% of it: at {sc['events_per_s']:.0f} events/s each "
                f"event costs {sc['cpu_s'] / max(1, sc['events']) * 1e6:.0f} us of CPU, so "
                "events queue behind each other. "
            )
            if best is not None:
                line += (
                    f"{best['conversations']} conversations use "
                    f"{best['cpu_util'] * 100:.0f}% of the core and meet the target (p99 "
                    f"{_f(best['p99_ms'])} ms). "
                )
            line += (
                f"This package is {shares.get('ours', 0) / busy * 100:.0f}% of the busy CPU; "
                f"Pipecat's frame machinery {shares.get('pipecat', 0) / busy * 100:.0f}% and "
                f"asyncio {shares.get('asyncio+stdlib', 0) / busy * 100:.0f}% (queues, tasks, "
                "timers: every frame hop is two queue operations, an observer notification and "
                "a task switch). What would fix it: one process per core (two processes of 250 "
                "on this machine), and fewer frames per event: each app message enters the "
                "pipeline twice (Daily's downstream and upstream copies), and each speaking "
                "replica adds a `BotSpeakingFrame` every `bot_speaking_interval_s` (0.2 s)."
            )
            out += ["", line]
    if out:
        out = ["", "## Targets missed: why, and what would fix them", *out]
    return out


def main() -> None:
    """Parse the command line, run, print the report and (full run) write RESULTS.md."""
    parser = argparse.ArgumentParser(description="Run the pipecat-tavus-interactions benchmarks.")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (~1 minute)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the report (default: benchmarks/RESULTS.md for a full run, "
        "nowhere for --quick)",
    )
    parser.add_argument("--no-fuzz", action="store_true", help="skip the long fuzz run")
    parser.add_argument("--json", type=Path, default=None, help="also dump raw results here")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "")
    results = asyncio.run(collect(args.quick, fuzz=not (args.quick or args.no_fuzz)))
    report = render(results, command)
    print(report)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(report, encoding="utf-8")
        print(f"[benchmarks] wrote {output}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
