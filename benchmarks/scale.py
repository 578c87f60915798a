"""Scale, open loop: N real-time conversations in P bot processes, the load in another process.

Usage (from the repository root)::

    python -m benchmarks.scale --conversations 500 --procs 2 --seconds 60
    python -m benchmarks.scale --conversations 500 --procs 2 --seconds 60 --supervisor
    python -m benchmarks.scale --memory-turns 100000     # the memory benchmark instead
    python -m benchmarks.scale --stop-time 250           # SIGTERM stop of a supervised bot

What runs: this process records a real-time conversation from the simulator and lays
``N`` copies of it on a fixed timeline (:mod:`.openloop_load`). ``P`` bot processes
(:mod:`.openloop_bot`) each listen on a unix socket of their own: with ``--supervisor``
supervisord starts and supervises them (``deploy/supervisord.conf``: one process per core,
restarted if it dies, stopped with SIGTERM), otherwise this process starts them. This process
opens a session on each bot, conversation ``i`` in process ``i % P``, each running its
conversations as real Pipecat pipelines with ``TavusInteractions`` in full mode. Once every
bot has started its pipelines, this process becomes the load: it sends each replica message
at its scheduled time over a unix socket, whatever state the bots are in (open loop: a
saturated bot gets the same offered load, and the lateness shows up in its latencies
instead of being absorbed by a sender that waits).

Measured, per process and combined: per-event latency (the event's first frame out of
``tavus.input()`` minus the message's *scheduled* send time, same ``time.monotonic()``
clock) for every accepted event scheduled inside the window of ``--seconds`` (after
``--warmup`` seconds); events not out when the drain ends count as missing, with a lower
bound of their latency. Offered versus achieved event rate, CPU per event out
(``getrusage`` of the bot over the window / events out in the window), garbage collections
in the window (count per generation, p99 and max pause), peak RSS. The transport's share
of the latency (scheduled -> arrival in the bot) and the sender's own lateness are reported
apart, so the load can be seen to keep up.

The memory benchmark (``--memory-turns``) is in :mod:`.memory`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loguru import logger

from .common import pct
from .openloop_load import Schedule, accepted_positions, record_timed, send_schedule

ROOT = Path(__file__).resolve().parent.parent
#: The process manager's configuration (supervisord), used by ``--supervisor``.
SUPERVISOR_CONF = ROOT / "deploy" / "supervisord.conf"
#: The supervisord program of the bot processes (``deploy/supervisord.conf``).
PROGRAM = "tavus-bot"


def _readline(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("bot closed the connection")
        data += chunk
    sock.settimeout(None)
    return data


def connect(path: str, timeout: float = 120.0) -> socket.socket:
    """Connect to a bot's unix socket, waiting (up to ``timeout``) for the bot to listen."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the bot is still importing, or being restarted


def ping(path: str, timeout: float = 120.0) -> dict[str, Any]:
    """``{"proc", "pid"}`` of the bot listening on ``path`` (waits for it to listen)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(path, max(0.0, deadline - time.monotonic())) as sock:
                sock.sendall(b'{"ping": true}\n')
                return json.loads(_readline(sock, timeout))
        except (ConnectionResetError, BrokenPipeError, ConnectionError):
            if time.monotonic() > deadline:  # a bot dying as we connected: ask the next one
                raise
            time.sleep(0.05)


class SpawnedBots:
    """``P`` bot processes started by this process (the shape before ``--supervisor``)."""

    def __init__(self, procs: int, run_dir: str):
        """Start the bots; each listens on ``run_dir/tavus-bot-<p>.sock``."""
        self.paths = [os.path.join(run_dir, f"{PROGRAM}-{p}.sock") for p in range(procs)]
        self.children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.openloop_bot",
                    f"--listen={path}",
                    f"--proc={p}",
                ],
                cwd=ROOT,
            )
            for p, path in enumerate(self.paths)
        ]
        self.manager_pids: list[int] = []

    def close(self) -> None:
        """Stop the bots (SIGTERM: each cancels its pipelines and exits)."""
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=90)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


class SupervisedBots:
    """``P`` bot processes started and supervised by supervisord (``deploy/supervisord.conf``).

    The benchmark starts supervisord in the foreground with the repository's configuration
    and stops it at the end (SIGTERM: supervisord stops each bot with SIGTERM, which cancels
    the bot's pipelines, then exits). supervisord, not this process, starts the bots and
    starts again any that exits.
    """

    def __init__(self, procs: int, run_dir: str):
        """Start supervisord with ``procs`` bots, its sockets and logs in ``run_dir``."""
        self.run_dir = run_dir
        self.env = {
            **os.environ,
            "TAVUS_BOT_PROCS": str(procs),
            "TAVUS_BOT_RUN": run_dir,
            "TAVUS_BOT_PYTHON": sys.executable,
        }
        self.paths = [os.path.join(run_dir, f"{PROGRAM}-{p}.sock") for p in range(procs)]
        cmd = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(SUPERVISOR_CONF)]
        log = open(os.path.join(run_dir, "supervisord.out"), "wb")  # noqa: SIM115
        with log:
            self.supervisord = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log)
        self.manager_pids = [self.supervisord.pid]

    def ctl(self, *args: str) -> str:
        """Run ``supervisorctl`` against this supervisord; its output."""
        cmd = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISOR_CONF)]
        out = subprocess.run([*cmd, *args], env=self.env, capture_output=True, text=True)
        return out.stdout + out.stderr

    def log(self, proc: int) -> str:
        """What bot ``proc`` wrote (supervisord's log of it)."""
        with open(os.path.join(self.run_dir, f"{PROGRAM}-{proc}.log"), encoding="utf-8") as f:
            return f.read()

    def close(self) -> int:
        """Stop supervisord and its bots; supervisord's exit status."""
        if self.supervisord.poll() is None:
            self.supervisord.terminate()
        try:
            return self.supervisord.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.supervisord.kill()
            return self.supervisord.wait()


def _ticks_busy() -> tuple[int, int]:
    """``(busy, total)`` clock ticks of all CPUs since boot (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _ticks_of(pid: int) -> int:
    """User + system clock ticks of process ``pid`` (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def _prepare(turns: int) -> tuple[list[tuple[float, dict]], list[bool]]:
    timed = await record_timed(turns=turns)
    accepted = await accepted_positions([m for _, m in timed])
    return timed, accepted


def start_sessions(
    paths: list[str], conversations: int, cid: str, options: dict[str, Any]
) -> tuple[list[socket.socket], list[dict[str, Any]]]:
    """Open a session on every bot (conversation ``i`` in bot ``i % P``) and wait for its start.

    Returns:
        The connected sockets and each bot's hello (``proc``, ``pid``, ``monotonic``), sent
        once all its pipelines have started.
    """
    procs = len(paths)
    socks = [connect(path) for path in paths]
    for p, s in enumerate(socks):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        n = len(range(p, conversations, procs))
        s.sendall(json.dumps({"conversations": n, "cid": cid, **options}).encode() + b"\n")
    hellos = [json.loads(_readline(s, 600)) for s in socks]
    return socks, hellos


def measure(
    bots: SpawnedBots | SupervisedBots,
    timed: list[tuple[float, dict]],
    accepted: list[bool],
    conversations: int,
    *,
    seconds: float,
    warmup: float,
    drain: float,
    options: dict[str, Any],
    lead: float = 1.0,
) -> dict[str, Any]:
    """One open-loop measurement against running bots (see the module docstring).

    The load starts ``lead`` seconds after every bot said its pipelines started.
    """
    procs = len(bots.paths)
    schedule = Schedule(timed, accepted, conversations, procs)
    socks, hellos = start_sessions(
        bots.paths, conversations, timed[0][1]["conversation_id"], options
    )
    clock_ms = [(time.monotonic() - h["monotonic"]) * 1e3 for h in hellos]
    t0 = time.monotonic() + lead
    w0, w1 = t0 + warmup, t0 + warmup + seconds
    for s in socks:
        s.sendall(json.dumps({"w0": w0, "w1": w1, "drain_s": drain}).encode() + b"\n")
    gc.disable()
    ours = [os.getpid(), *bots.manager_pids, *(h["pid"] for h in hellos)]
    busy0, mine0 = _ticks_busy(), sum(_ticks_of(pid) for pid in ours)
    ru0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    load = send_schedule(schedule, socks, t0, w1 - t0)
    ru1, c1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    busy1, mine1 = _ticks_busy(), sum(_ticks_of(pid) for pid in ours)
    gc.enable()
    # CPU used by processes other than this benchmark's, as cores (a noisy machine shows).
    hz = os.sysconf("SC_CLK_TCK")
    others_cores = ((busy1[0] - busy0[0]) - (mine1 - mine0)) / hz / max(1e-9, c1 - c0)
    load["cpu_util"] = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / max(
        1e-9, c1 - c0
    )
    results = [json.loads(_readline(s, drain + 300)) for s in socks]
    for s in socks:
        s.close()
    offered = schedule.offered(w0 - t0, w1 - t0)
    for r in results:
        r["offered_events_per_s"] = offered["events"][r["proc"]] / seconds
        r["offered_messages_per_s"] = offered["messages"][r["proc"]] / seconds
    return _combined(results, offered, seconds, warmup, clock_ms, others_cores, load, schedule)


def _combined(
    results: list[dict[str, Any]],
    offered: dict[str, list[int]],
    seconds: float,
    warmup: float,
    clock_ms: list[float],
    others_cores: float,
    load: dict[str, Any],
    schedule: Schedule,
) -> dict[str, Any]:
    lat = [x for r in results for x in r["latencies_ms"]]
    for r in results:
        del r["latencies_ms"]
    events_out = sum(r["events_out_in_window"] for r in results)
    cpu = sum(r["cpu_s"] for r in results)
    return {
        "seconds": seconds,
        "warmup_s": warmup,
        "recording": {
            "messages": len(schedule.messages),
            "period_s": schedule.period,
            "measured_per_period": sum(schedule.accepted),
        },
        "clock_check_ms": clock_ms,
        "other_processes_cores": max(0.0, others_cores),
        "load": load,
        "offered_events_per_s": sum(offered["events"]) / seconds,
        "offered_messages_per_s": sum(offered["messages"]) / seconds,
        "achieved_events_per_s": sum(r["achieved_events_per_s"] for r in results),
        "events_measured": sum(r["events_measured"] for r in results),
        "missing": sum(r["missing"] for r in results),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "p999_ms": pct(lat, 99.9),
        "max_ms": max(lat) if lat else float("nan"),
        "cpu_us_per_event": cpu / max(1, events_out) * 1e6,
        "gc_count": [sum(r["gc"]["count"][g] for r in results) for g in range(3)],
        "gc_max_ms": max(r["gc"]["max_ms"] for r in results),
        "gc_cpu_ms_per_s": sum(r["gc"]["cpu_ms"] for r in results) / seconds,
        "per_proc": results,
    }


def open_loop(
    conversations: int,
    *,
    procs: int,
    seconds: float,
    warmup: float = 5.0,
    drain: float = 20.0,
    turns: int = 60,
    gc_freeze: bool = False,
    bot_speaking_interval: float = 0.0,
    tune_gc: bool = False,
    no_observers: bool = False,
    upstream_copy: bool = False,
    supervisor: bool = False,
) -> dict[str, Any]:
    """Run one open-loop measurement (see the module docstring).

    Args:
        conversations: Conversations in all.
        procs: Bot processes.
        seconds: Measurement window.
        warmup: Seconds of load before the window.
        drain: At most this long after the window for its events to come out.
        turns: User turns of the recorded conversation (about 8 s each).
        gc_freeze: Bots call ``gc.collect(); gc.freeze()`` once their pipelines started
            (an experiment: not what the package does).
        bot_speaking_interval: Override ``bot_speaking_interval_s`` (0: the default).
        tune_gc: Bots call ``pipecat_tavus_interactions.tune_gc()`` once started.
        no_observers: Bots' workers without the default observers (``docs/scale.md``).
        upstream_copy: Bots undo ``tavus.input()``'s wrap of the transport (each Tavus
            message is broadcast both ways as frames again) and build both processors
            queued, not in direct mode (the package as it was, for
            comparison).
        supervisor: supervisord starts and supervises the bot processes
            (``deploy/supervisord.conf``); otherwise this process starts them.

    Returns:
        The figures per process and combined.
    """
    timed, accepted = asyncio.run(_prepare(turns))
    options = {
        "gc_freeze": gc_freeze,
        "bot_speaking_interval": bot_speaking_interval,
        "tune_gc": tune_gc,
        "no_observers": no_observers,
        "upstream_copy": upstream_copy,
    }
    with tempfile.TemporaryDirectory(prefix="tavus-bench-") as run_dir:
        bots = SupervisedBots(procs, run_dir) if supervisor else SpawnedBots(procs, run_dir)
        try:
            result = measure(
                bots,
                timed,
                accepted,
                conversations,
                seconds=seconds,
                warmup=warmup,
                drain=drain,
                options=options,
            )
        finally:
            bots.close()
    shape = "supervisord" if supervisor else "spawned by the benchmark"
    options["bot_speaking_interval_s"] = options.pop("bot_speaking_interval") or None
    return {"conversations": conversations, "procs": procs, "bots": shape, **options, **result}


def stop_time(conversations: int) -> dict[str, Any]:
    """How long a supervised bot running ``conversations`` started pipelines takes to stop.

    One bot under supervisord (``deploy/supervisord.conf``) starts the pipelines of a session
    (no load); then ``supervisorctl stop`` is timed: SIGTERM, the bot cancels every pipeline,
    reports them on the session's socket and exits, supervisord sees it gone.
    """
    with tempfile.TemporaryDirectory(prefix="tavus-stop-") as run_dir:
        bots = SupervisedBots(1, run_dir)
        try:
            ping(bots.paths[0])
            t = time.monotonic()
            socks, _ = start_sessions(bots.paths, conversations, "c-stop-time", {"tune_gc": True})
            started_s = time.monotonic() - t
            t = time.monotonic()
            out = bots.ctl("stop", f"{PROGRAM}:{PROGRAM}-0")
            stop_s = time.monotonic() - t
            report = json.loads(_readline(socks[0], 60))
            socks[0].close()
        finally:
            status = bots.close()
    return {
        "conversations": conversations,
        "start_s": started_s,
        "stop_s": stop_s,
        "supervisorctl": out.strip(),
        "bot_report": report,
        "supervisord_exit": status,
    }


def _print_human(r: dict[str, Any]) -> None:
    print(
        f"[scale] {r['conversations']} conversations, {r['procs']} bot process(es) "
        f"({r['bots']}), "
        f"{r['seconds']:g} s: offered {r['offered_events_per_s']:.0f} events/s, achieved "
        f"{r['achieved_events_per_s']:.0f}; p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} "
        f"ms, max {r['max_ms']:.2f} ms, missing {r['missing']}; CPU "
        f"{r['cpu_us_per_event']:.0f} us/event; GC {r['gc_count']} max {r['gc_max_ms']:.1f} ms; "
        f"other processes used {r['other_processes_cores']:.2f} cores",
        file=sys.stderr,
    )
    for p in r["per_proc"]:
        print(
            f"[scale]   proc {p['proc']}: {p['conversations']} conv, p99 {p['p99_ms']:.2f} ms, "
            f"CPU {p['cpu_util'] * 100:.0f}%, transport p99 {p['transport']['p99_ms']:.2f} ms",
            file=sys.stderr,
        )


def main() -> None:
    """Run one measurement and print it as JSON on the last line of stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--procs", type=int, default=1, help="bot processes")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=20.0)
    parser.add_argument("--turns", type=int, default=60, help="turns of the recording")
    parser.add_argument("--gc-freeze", action="store_true", help="experiment: bots gc.freeze()")
    parser.add_argument(
        "--bot-speaking-interval", type=float, default=0.0, help="experiment: override"
    )
    parser.add_argument("--tune-gc", action="store_true", help="bots call tune_gc()")
    parser.add_argument(
        "--no-observers", action="store_true", help="bots' workers without default observers"
    )
    parser.add_argument(
        "--upstream-copy",
        action="store_true",
        help="comparison: Tavus messages travel as frames both ways",
    )
    parser.add_argument(
        "--supervisor",
        action="store_true",
        help="supervisord starts and supervises the bots (deploy/supervisord.conf)",
    )
    parser.add_argument(
        "--stop-time",
        type=int,
        default=0,
        help="time the SIGTERM stop of one supervised bot with this many pipelines instead",
    )
    parser.add_argument(
        "--memory-turns", type=int, default=0, help="run the memory benchmark instead"
    )
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    if args.memory_turns:
        from .memory import memory

        every = max(1, args.memory_turns // 10)
        result = asyncio.run(memory(turns=args.memory_turns, sample_every=every))
    elif args.stop_time:
        result = stop_time(args.stop_time)
    else:
        result = open_loop(
            args.conversations,
            procs=args.procs,
            seconds=args.seconds,
            warmup=args.warmup,
            drain=args.drain,
            turns=args.turns,
            gc_freeze=args.gc_freeze,
            bot_speaking_interval=args.bot_speaking_interval,
            tune_gc=args.tune_gc,
            no_observers=args.no_observers,
            upstream_copy=args.upstream_copy,
            supervisor=args.supervisor,
        )
        _print_human(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
