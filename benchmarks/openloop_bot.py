"""One bot process of the open-loop scale benchmark: a long-lived server of N-pipeline sessions.

Started by :mod:`.scale` or by supervisord (``deploy/supervisord.conf``)::

    python -m benchmarks.openloop_bot --listen=RUN_DIR/tavus-bot-0.sock --proc=0

It listens on its own unix socket and serves one session per connection, one at a time: the
first line asks for ``N`` conversations (and the bot-side options below); the bot starts
``N`` real Pipecat pipelines (one ``PipelineWorker`` each, one ``WorkerRunner``, one event
loop), answers with a hello once all of them started, takes the window, reads the load,
writes its result line and cancels the pipelines. A ``{"ping": true}`` line is answered with
``{"proc", "pid"}``. Each pipeline::

    WireInput -> tavus.input() -> probe -> tavus.output() -> WireOutput

SIGTERM (a process manager's stop) or SIGINT: the bot stops listening, interrupts the running
session, cancels its pipelines (``WorkerRunner.cancel``: a ``CancelFrame`` through each),
writes ``{"stopped": "SIGTERM", "pipelines": N, "finished": N}`` on the session's socket,
removes its socket file and exits 0. A stale socket file left by a killed bot is replaced
when the bot is started again.

``WireInput`` is a ``BaseInputTransport`` that pushes each replica message the way
``DailyTransport`` does: ``broadcast_frame(DailyInputTransportMessageFrame, ...)`` (one
copy downstream, one upstream), sender = the replica's participant id. ``WireOutput`` is a
``BaseOutputTransport`` whose ``send_message`` counts the interactions the bot sends
(tool results). ``tavus`` is full mode with ``emit_event_frames=True``, the replica's
participant id known up front, ``get_weather`` answering at once, the heartbeat watchdog
off and interactions not held for a join (conversations start mid-recording).

Transport overhead (stated, not hidden): one reader task reads the socket in 256 KiB
reads, unpacks each 17-byte header and ``json.loads`` the message (Daily's native client
hands Python a decoded dict; here that decode is ours to pay, about 2 us per message),
then calls ``push_app_message``. Arrival time minus scheduled time is reported apart
("transport delay": the sender's lateness + the socket + this reader waiting its turn).

Latency of an event = when its ``TavusEventFrame`` (pushed first for an accepted event)
reaches the direct-mode probe right after ``tavus.input()``, minus the message's scheduled
send time; both are ``time.monotonic()`` (``CLOCK_MONOTONIC``, shared by every process on
Linux; the coordinator checks it at the handshake). Events scheduled inside the window
count; after the last one the bot keeps running until every one of them came out, or the
drain limit passed: those still missing count with ``drain end - scheduled`` (a lower
bound) and are reported as missing.

Also recorded over the window: CPU (``getrusage`` of this process, user + system),
every garbage collection (``gc.callbacks``: generation, pause, and its CPU time, which other
processes on a shared machine cannot inflate), event frames out, peak RSS.

Session options (set by :mod:`.scale`): ``tune_gc`` calls
``pipecat_tavus_interactions.tune_gc()`` once the pipelines started; ``no_observers`` builds
the workers without the default observers (``enable_turn_tracking=False,
idle_timeout_secs=None``, see ``docs/scale.md``); ``upstream_copy`` undoes ``tavus.input()``'s
wrap of the transport (so each Tavus message is broadcast both ways as frames again) and
builds both processors queued instead of in direct mode (the package as it was, for
comparison); ``gc_freeze`` and
``bot_speaking_interval`` as named.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import sys
import time
from typing import Any

from loguru import logger
from pipecat.frames.frames import Frame, OutputTransportMessageFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame

from pipecat_tavus_interactions import TavusEventFrame, tune_gc
from pipecat_tavus_interactions.pipeline.input import TavusInteractionsInput
from pipecat_tavus_interactions.pipeline.output import TavusInteractionsOutput

from .common import REPLICA_ID, Probe, make_tavus, pct, peak_rss_bytes
from .openloop_load import END, HEADER


class WireInput(BaseInputTransport):
    """Pushes replica messages into the pipeline as Daily does (downstream and upstream)."""

    async def start(self, frame):
        """Start and report the transport ready."""
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def push_app_message(self, message: Any, sender: str) -> None:
        """Broadcast one app message."""
        await self.broadcast_frame(
            DailyInputTransportMessageFrame, message=message, participant_id=sender
        )


class WireOutput(BaseOutputTransport):
    """Counts the app messages the bot sends."""

    def __init__(self, params: TransportParams, **kwargs):
        """Create the output."""
        super().__init__(params, **kwargs)
        self.sent = 0

    async def start(self, frame):
        """Start and report the transport ready."""
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def send_message(self, frame: OutputTransportMessageFrame):
        """Count the message (nothing leaves the process)."""
        self.sent += 1


class _Conversation:
    def __init__(
        self,
        cid: str,
        out: list[tuple[float, float]],
        tavus_params: dict[str, Any],
        worker_params: dict[str, Any],
    ):
        self.scheduled: dict[int, float] = {}
        self.tavus = make_tavus(cid, emit_event_frames=True, **tavus_params)
        self.input = WireInput(TransportParams())
        self.output = WireOutput(TransportParams())
        scheduled = self.scheduled

        def on_frame(frame: Frame, now: float) -> bool:
            if isinstance(frame, TavusEventFrame):
                s = scheduled.pop(frame.event.seq, None)
                if s is not None:
                    out.append((s, time.monotonic()))
                return False  # measurement only
            return True

        self.worker = PipelineWorker(
            Pipeline(
                [self.input, self.tavus.input(), Probe(on_frame), self.tavus.output(), self.output]
            ),
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
            check_dangling_tasks=False,
            **worker_params,
        )


class _GcLog:
    def __init__(self):
        # (start, generation, seconds, CPU seconds): CPU is what a shared machine cannot inflate
        self.pauses: list[tuple[float, int, float, float]] = []
        self._t = 0.0
        self._c = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.monotonic()
            self._c = time.process_time()
        else:
            self.pauses.append(
                (
                    self._t,
                    info["generation"],
                    time.monotonic() - self._t,
                    time.process_time() - self._c,
                )
            )


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _reader(reader: asyncio.StreamReader, convs: list[_Conversation], arrivals: list) -> None:
    buf = b""
    size = HEADER.size
    unpack = HEADER.unpack_from
    loads = json.loads
    while True:
        chunk = await reader.read(1 << 18)
        if not chunk:
            return
        now = time.monotonic()
        buf += chunk
        pos = 0
        while len(buf) - pos >= size:
            local, scheduled, length, measured = unpack(buf, pos)
            if local == END:
                return
            if len(buf) - pos - size < length:
                break
            message = loads(buf[pos + size : pos + size + length])
            pos += size + length
            conv = convs[local]
            if measured:
                conv.scheduled[message["seq"]] = scheduled
                arrivals.append((scheduled, now))
            await conv.input.push_app_message(message, REPLICA_ID)
        buf = buf[pos:]


def _summary(lat_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": pct(lat_ms, 50),
        "p99_ms": pct(lat_ms, 99),
        "p999_ms": pct(lat_ms, 99.9),
        "max_ms": max(lat_ms) if lat_ms else float("nan"),
    }


@contextlib.contextmanager
def _queued_processors(queued: bool):
    """Build ``tavus.input()``/``tavus.output()`` queued (not direct mode), as they were before."""
    saved = TavusInteractionsInput.DIRECT_MODE, TavusInteractionsOutput.DIRECT_MODE
    if queued:
        TavusInteractionsInput.DIRECT_MODE = TavusInteractionsOutput.DIRECT_MODE = False
    try:
        yield
    finally:
        TavusInteractionsInput.DIRECT_MODE, TavusInteractionsOutput.DIRECT_MODE = saved


class _Session:
    """One benchmark session: ``N`` pipelines, started, fed, measured, then cancelled."""

    def __init__(self, request: dict[str, Any], proc: int):
        self.request = request
        self.proc = proc
        self.gclog = _GcLog()
        self.out: list[tuple[float, float]] = []
        self.arrivals: list[tuple[float, float]] = []
        tavus_params: dict[str, Any] = {}
        if request.get("bot_speaking_interval"):
            tavus_params["bot_speaking_interval_s"] = request["bot_speaking_interval"]
        worker_params: dict[str, Any] = {}
        if request.get("no_observers"):
            # docs/scale.md: a bot that uses neither turn tracking nor the idle timeout.
            worker_params = {"enable_turn_tracking": False, "idle_timeout_secs": None}
        with _queued_processors(bool(request.get("upstream_copy"))):
            self.convs = [
                _Conversation(request["cid"], self.out, tavus_params, worker_params)
                for _ in range(request["conversations"])
            ]
        self.runner = WorkerRunner(handle_sigint=False)
        self.run_task: asyncio.Task | None = None
        self.finished = 0

    async def start(self) -> None:
        """Start every pipeline and wait until all of them started."""
        started = 0
        all_started = asyncio.Event()
        for c in self.convs:

            @c.worker.event_handler("on_pipeline_started")
            async def _started(_worker, _frame):
                nonlocal started
                started += 1
                if started == len(self.convs):
                    all_started.set()

            @c.worker.event_handler("on_pipeline_finished")
            async def _finished(_worker, _frame):
                self.finished += 1

        await self.runner.add_workers(*[c.worker for c in self.convs])
        self.run_task = asyncio.create_task(self.runner.run())
        await asyncio.wait_for(all_started.wait(), timeout=300)
        gc.callbacks.append(self.gclog)
        if self.request.get("upstream_copy"):
            # The package before it took Tavus messages from the transport (comparison).
            for c in self.convs:
                if "broadcast_frame" in vars(c.input):
                    del c.input.broadcast_frame
        if self.request.get("gc_freeze"):
            gc.collect()
            gc.freeze()
        if self.request.get("tune_gc"):
            tune_gc()

    async def stop(self, reason: str) -> int:
        """Cancel every pipeline (idempotent); return how many pipelines have finished."""
        if self.run_task is not None and not self.run_task.done():
            await self.runner.cancel(reason=reason)
            try:
                await asyncio.wait_for(self.run_task, timeout=60)
            except TimeoutError:
                _say(f"proc {self.proc}: pipelines still running 60 s after the cancel")
        if self.gclog in gc.callbacks:
            gc.callbacks.remove(self.gclog)
        return self.finished

    async def measure(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Hand-shake, run the window, write the result line."""
        writer.write(
            json.dumps(
                {"proc": self.proc, "pid": os.getpid(), "monotonic": time.monotonic()}
            ).encode()
            + b"\n"
        )
        await writer.drain()
        control = json.loads(await reader.readline())
        w0, w1, drain = control["w0"], control["w1"], control["drain_s"]
        read_task = asyncio.create_task(_reader(reader, self.convs, self.arrivals))

        async def at(t: float) -> tuple[float, float]:
            await asyncio.sleep(max(0.0, t - time.monotonic()))
            return time.monotonic(), _cpu()

        (a0, cpu0), (a1, cpu1) = await at(w0), await at(w1)
        await read_task
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 (a poll over many dicts)
            w0 <= s < w1 for c in self.convs for s in c.scheduled.values()
        ):
            await asyncio.sleep(0.1)
        result = self._result(w0, w1, a0, a1, cpu1 - cpu0, time.monotonic())
        writer.write(json.dumps(result).encode() + b"\n")
        await writer.drain()

    def _result(
        self, w0: float, w1: float, a0: float, a1: float, cpu: float, drain_end: float
    ) -> dict[str, Any]:
        convs = self.convs
        lat_ms = [(o - s) * 1e3 for s, o in self.out if w0 <= s < w1]
        missing = [
            (drain_end - s) * 1e3 for c in convs for s in c.scheduled.values() if w0 <= s < w1
        ]
        transport_ms = [(a - s) * 1e3 for s, a in self.arrivals if w0 <= s < w1]
        out_in_window = sum(1 for _s, o in self.out if a0 <= o < a1)
        pauses = [(g, p * 1e3) for t, g, p, _c in self.gclog.pauses if a0 <= t < a1]
        gc_cpu_ms = sum(c * 1e3 for t, _g, _p, c in self.gclog.pauses if a0 <= t < a1)
        wall = a1 - a0
        return {
            "proc": self.proc,
            "pid": os.getpid(),
            "conversations": len(convs),
            "window_s": wall,
            "events_measured": len(lat_ms),
            "missing": len(missing),
            "latencies_ms": [round(x, 3) for x in lat_ms + missing],
            **_summary(lat_ms + missing),
            "transport": _summary(transport_ms),
            "events_out_in_window": out_in_window,
            "achieved_events_per_s": out_in_window / wall,
            "cpu_s": cpu,
            "cpu_util": cpu / wall,
            "cpu_us_per_event": cpu / max(1, out_in_window) * 1e6,
            "gc": {
                "count": [sum(1 for g, _ in pauses if g == gen) for gen in range(3)],
                "p99_ms": pct([p for _, p in pauses], 99),
                "max_ms": max((p for _, p in pauses), default=0.0),
                "total_ms": sum(p for _, p in pauses),
                "cpu_ms": gc_cpu_ms,
                "max_by_gen_ms": [
                    max((p for g, p in pauses if g == gen), default=0.0) for gen in (0, 1, 2)
                ],
            },
            "sent_interactions": sum(c.output.sent for c in convs),
            "turns": sum(c.tavus.ledger.completed_count for c in convs),
            "peak_rss_mib": peak_rss_bytes() / 2**20,
            **{k: bool(self.request.get(k)) for k in OPTIONS},
        }


def _say(line: str) -> None:
    """A lifecycle line on stderr (the process manager's log)."""
    print(f"[openloop_bot] {line}", file=sys.stderr, flush=True)


class BotServer:
    """A long-lived bot process: serves sessions on a unix socket until SIGTERM or SIGINT."""

    def __init__(self, path: str, proc: int):
        """Create the server.

        Args:
            path: The unix socket to listen on (a stale file left by a killed bot is replaced).
            proc: This process's number (the process manager's ``process_num``).
        """
        self.path = path
        self.proc = proc
        self.sessions = 0
        self._current: asyncio.Task | None = None  # the connection running a session
        self._work: asyncio.Task | None = None  # its start + measurement
        self._stopping: str | None = None  # the signal that stops this process
        self._one_session = asyncio.Lock()

    async def serve(self) -> None:
        """Serve until SIGTERM/SIGINT; then cancel the running session's pipelines and exit."""
        stop = asyncio.Event()
        got: list[signal.Signals] = []

        def on_signal(sig: signal.Signals) -> None:
            got.append(sig)
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        with contextlib.suppress(FileNotFoundError):  # left by a killed bot
            os.unlink(self.path)
        server = await asyncio.start_unix_server(self._handle, self.path)
        _say(f"proc {self.proc} (pid {os.getpid()}): listening on {self.path}")
        await stop.wait()
        name = got[0].name
        self._stopping = name  # no new session starts
        server.close()
        if self._current is not None and not self._current.done():
            # A session is running: interrupt its work (not its clean-up) and wait for it.
            if self._work is not None and not self._work.done():
                self._work.cancel()
            await asyncio.wait([self._current])
        os.unlink(self.path)
        _say(f"proc {self.proc}: {name}, served {self.sessions} session(s), exiting")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline() or b"{}")
            if request.get("ping"):
                writer.write(json.dumps({"proc": self.proc, "pid": os.getpid()}).encode() + b"\n")
            elif not isinstance(request.get("conversations"), int):
                error = 'a session request needs "conversations": N'
                writer.write(json.dumps({"error": error}).encode() + b"\n")
            else:
                async with self._one_session:  # the previous session's pipelines are gone
                    if self._stopping is not None:
                        writer.write(json.dumps({"error": self._stopping}).encode() + b"\n")
                        return
                    self._current = asyncio.current_task()
                    self.sessions += 1
                    await self._session(request, reader, writer)
            await writer.drain()
        finally:
            writer.close()

    async def _session(
        self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session = _Session(request, self.proc)
        _say(f"proc {self.proc}: session of {len(session.convs)} conversations")
        self._work = asyncio.create_task(self._run(session, reader, writer))
        try:
            await asyncio.wait([self._work])
            if not self._work.cancelled():
                self._work.result()  # raise what went wrong
                return
            # SIGTERM (the process manager's stop) or SIGINT: end the pipelines, say so.
            why = self._stopping or "cancelled"
            finished = await session.stop(why)
            _say(f"proc {self.proc}: {why}: {finished} of {len(session.convs)} pipelines ended")
            report = {"stopped": why, "pipelines": len(session.convs), "finished": finished}
            writer.write(json.dumps(report).encode() + b"\n")
        finally:
            await session.stop("session over")

    @staticmethod
    async def _run(
        session: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await session.start()
        await session.measure(reader, writer)


#: Bot-side settings a session request may turn on.
OPTIONS = ("gc_freeze", "tune_gc", "no_observers", "upstream_copy")


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description="one bot process of the open-loop benchmark")
    parser.add_argument("--listen", required=True, help="unix socket to serve sessions on")
    parser.add_argument("--proc", type=int, default=0, help="this process's number")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    asyncio.run(BotServer(args.listen, args.proc).serve())


if __name__ == "__main__":
    main()
