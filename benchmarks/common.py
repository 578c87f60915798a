"""Shared machinery of the benchmarks: wire recordings, pipeline harness, statistics, machine.

- :func:`record_wire` runs the package's simulator (no pipeline) through a scripted
  conversation and returns the clean wire messages it emitted: utterances with their
  ``pal``/``replica`` twins, streaming snapshots, speaking events in both forms, tool calls,
  barge-ins, plus a ``system.replica_present`` heartbeat every few messages. It is the
  realistic message mix every inbound benchmark uses.
- :class:`Harness` runs a real Pipecat pipeline (``PipelineWorker`` + ``WorkerRunner``,
  RTVI off) with a direct-mode :class:`Probe` as its last processor, so a benchmark can
  queue frames into any processor and timestamp what comes out with no extra queue hop.
- :func:`summarize` and :func:`pct` turn samples into medians and percentiles.
- :func:`machine` describes the machine the figures come from.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import Any

from pipecat.frames.frames import EndFrame, Frame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.protocol import build_message
from pipecat_tavus_interactions.simulator import (
    PersonaRule,
    ScriptedPersona,
    ScriptedUser,
    TavusSimulator,
    ToolCallSpec,
    UserLine,
)
from pipecat_tavus_interactions.simulator.wire import WireBuilder

REPLICA_ID = "11111111-1111-4111-8111-111111111111"


# --- statistics ---------------------------------------------------------------------------


def pct(values: Iterable[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values``, nearest-rank."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = max(0, min(len(data) - 1, round(q / 100 * (len(data) - 1))))
    return data[k]


def summarize(values: list[float]) -> dict[str, float]:
    """Return count, median, p99 and max of ``values``."""
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p99": pct(values, 99),
        "max": max(values) if values else float("nan"),
    }


def per_event_us(total_s: float, count: int) -> float:
    """Return microseconds per event."""
    return total_s / count * 1e6


# --- machine ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """Describe the machine, interpreter and library versions the figures come from."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "pipecat": version("pipecat-ai"),
        "package": version("pipecat-tavus-interactions"),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size (``VmHWM``), in bytes.

    Unlike ``getrusage``'s ``ru_maxrss``, this does not include the parent's size at fork.
    """
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> int:
    """Return the current resident set size of this process, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


# --- the wire mix -------------------------------------------------------------------------

USER_LINES = (
    "Hello there, who am I talking to?",
    "What is the weather in Paris today?",
    "Tell me something interesting about the city.",
    "And what about the weather in Lisbon?",
    "Thanks, that is really helpful to know.",
    "Actually wait, stop, I have another question.",
)


def persona() -> ScriptedPersona:
    """The scripted persona of every recording: replies, and a tool call on weather."""
    return ScriptedPersona(
        rules=[
            PersonaRule(
                pattern=r"weather in (?P<city>\w+)",
                regex=True,
                tool_call=ToolCallSpec(name="get_weather", arguments={"city": "{city}"}),
                reply="The weather in {city} is {result}. Anything else I can check for you?",
            ),
            PersonaRule(
                pattern="interesting",
                reply="It has over two thousand years of history, and a famous tower that "
                "was meant to be temporary. People still argue about it today.",
            ),
        ],
        default_reply="Sure, I can help with that. What would you like to know next?",
        greeting="Hello! I am your assistant. How can I help you today?",
    )


def user_lines(turns: int) -> list[UserLine]:
    """``turns`` user lines cycling through :data:`USER_LINES`; every sixth barges in."""
    lines = []
    for i in range(turns):
        text = USER_LINES[i % len(USER_LINES)]
        barge = 4 if i % len(USER_LINES) == len(USER_LINES) - 1 else None
        lines.append(UserLine(text=text, pause_s=0.2, barge_in_after_words=barge))
    return lines


async def answer_tool_call(sim: TavusSimulator, message: Any) -> None:
    """Stand in for a bot: answer the replica's tool call with a fixed weather result."""
    if message.get("event_type") == "conversation.tool_call":
        call_id = message["properties"]["tool_call_id"]
        result = ix.ToolResult(call_id, "sunny and 21 degrees", "success")
        await sim.receive(build_message(result, conversation_id=sim.conversation_id))


async def record_wire(*, turns: int, seed: int = 0, heartbeat_every: int = 10) -> list[dict]:
    """Run the simulator through ``turns`` user turns and return its clean wire messages.

    The replica answers its own tool calls through a stand-in bot (a ``tool_result`` is
    sent back at once). Heartbeats are inserted after every ``heartbeat_every`` messages
    (about one a second in a real conversation) and ``seq`` is renumbered, so the stream
    is reproducible (the simulator's own heartbeat runs on a timer).

    Args:
        turns: User turns after the greeting.
        seed: Simulator seed (ids).
        heartbeat_every: Messages between two heartbeats (0: none).

    Returns:
        The messages, in wire order, as dicts.
    """
    ticks = itertools.count()
    sim: TavusSimulator

    async def bot(message: Any, _sender: str) -> None:
        await answer_tool_call(sim, message)

    sim = TavusSimulator(
        persona=persona(),
        speed=1e6,
        heartbeat_interval_s=None,
        seed=seed,
        clock=lambda: 1_760_000_000.0 + next(ticks) * 0.25,
        history=turns * 200 + 1000,
        send=bot,
    )
    await sim.start()
    await sim.run_script(ScriptedUser(lines=user_lines(turns), reply_timeout_s=5.0))
    await sim.close()
    clean = sim.emitted
    if not heartbeat_every:
        return clean
    wire = WireBuilder(conversation_id=sim.conversation_id, rng=random.Random(seed))
    out: list[dict] = []
    attempt = 0
    for k, msg in enumerate(clean, 1):
        out.append(msg)
        if k % heartbeat_every == 0:
            attempt += 1
            beat = wire.replica_present(attempt)[0]
            beat["timestamp"] = msg["timestamp"]
            out.append(beat)
    for seq, msg in enumerate(out, 1):
        msg["seq"] = seq
    return out


def wire_mix(messages: list[dict]) -> dict[str, int]:
    """Count messages per ``event_type`` (for the report)."""
    counts: dict[str, int] = {}
    for m in messages:
        counts[m["event_type"]] = counts.get(m["event_type"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def shifted(messages: list[dict], k: int, turn_span: int) -> list[dict]:
    """Copy of a recording as the ``k``-th repeat of itself in one long conversation.

    ``seq``, ``turn_idx``, ``inference_id`` and ``tool_call_id`` are offset so the copies
    are new events to the orderer, the ledger and the tool bookkeeping, not duplicates.
    """
    if k == 0:
        return messages
    n = len(messages)
    out = []
    for m in messages:
        c = dict(m)
        c["seq"] = m["seq"] + k * n
        if "turn_idx" in m:
            c["turn_idx"] = m["turn_idx"] + k * turn_span
        if "inference_id" in m:
            c["inference_id"] = f"{m['inference_id']}-{k}"
        props = m.get("properties")
        if props and "tool_call_id" in props:
            c["properties"] = {**props, "tool_call_id": f"{props['tool_call_id']}-{k}"}
        out.append(c)
    return out


def json_texts(messages: list[dict]) -> list[str]:
    """The JSON text of each message, as it travels on the data channel."""
    return [json.dumps(m) for m in messages]


def make_tavus(conversation_id: str, **params: Any) -> TavusInteractions:
    """A facade configured for a simulator recording (the replica is known up front).

    The replica's participant id is :data:`REPLICA_ID` (what :func:`frames_for` sends as),
    the heartbeat watchdog is off and interactions are not held for a join event (a
    replayed recording may start mid-conversation); ``get_weather`` answers at once.
    """
    p: dict[str, Any] = {
        "conversation_id": conversation_id,
        "replica_participant_id": REPLICA_ID,
        "heartbeat_timeout_s": None,
        "wait_for_replica": False,
    }
    p.update(params)
    tavus = TavusInteractions(params=TavusInteractionsParams(**p))

    async def get_weather(params):
        await params.result_callback({"conditions": "sunny", "temp_c": 21})

    tavus.register_function("get_weather", get_weather)
    return tavus


def frames_for(messages: list[dict]) -> list[DailyInputTransportMessageFrame]:
    """The transport frames Daily would push for ``messages`` (downstream copies)."""
    return [DailyInputTransportMessageFrame(message=m, participant_id=REPLICA_ID) for m in messages]


# --- pipeline harness ---------------------------------------------------------------------


class Probe(FrameProcessor):
    """A direct-mode processor that calls ``on_frame(frame, now)`` and forwards the frame.

    Direct mode runs it inside the previous processor's ``push_frame``: the timestamp is
    the moment the frame left that processor, with no queue hop of its own.
    """

    def __init__(self, on_frame: Callable[[Frame, float], bool | None] | None = None, **kwargs):
        """Create the probe.

        Args:
            on_frame: Called with every frame (both directions) and ``perf_counter()``;
                returning ``False`` drops the frame (a frame that exists only to be
                measured), anything else forwards it.
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(enable_direct_mode=True, **kwargs)
        self.on_frame = on_frame

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Report the frame, then forward it (unless ``on_frame`` returned ``False``)."""
        await super().process_frame(frame, direction)
        if self.on_frame is not None and self.on_frame(frame, time.perf_counter()) is False:
            return
        await self.push_frame(frame, direction)


class PassThrough(FrameProcessor):
    """The baseline processor: forwards every frame, does nothing else."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Forward the frame."""
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Harness:
    """Run ``processors`` in a real pipeline followed by a :class:`Probe` sink.

    Example::

        async with Harness([tavus.input()], on_frame=record) as h:
            await h.processors[0].queue_frame(frame)
    """

    def __init__(
        self,
        processors: list[FrameProcessor],
        *,
        on_frame: Callable[[Frame, float], None] | None = None,
    ):
        """Create the harness (the pipeline starts in ``__aenter__``).

        Args:
            processors: The processors under test, in pipeline order.
            on_frame: Called by the sink probe for every frame that reaches it.
        """
        self.processors = processors
        self.sink = Probe(on_frame)
        self.worker = PipelineWorker(
            Pipeline([*processors, self.sink]),
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
            check_dangling_tasks=False,
        )
        self._runner = WorkerRunner(handle_sigint=False)
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Harness:
        started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def _started(_worker, _frame):
            started.set()

        await self._runner.add_workers(self.worker)
        self._task = asyncio.create_task(self._runner.run())
        await asyncio.wait_for(started.wait(), timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.queue_frame(EndFrame())
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout=30)


async def drain_observers(worker: PipelineWorker) -> None:
    """Wait until the worker's observers have handled every event queued for them.

    Pipecat hands each processed and pushed frame to every observer through a queue and a
    task per observer, so part of the CPU a frame costs is spent after it has gone by. A
    processor in direct mode never yields while it works, so without this that part would
    fall outside a measurement window that closes when the last frame arrives.
    """
    proxies = getattr(getattr(worker, "_observer", None), "_proxies", None) or {}
    for _ in range(1_000_000):  # bounded: each round lets every observer task run once
        if all(proxy.queue.empty() for proxy in proxies.values()):
            return
        await asyncio.sleep(0)


async def settle(rounds: int = 20) -> None:
    """Let the event loop run pending callbacks (tasks created by handlers, queue hops)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


__all__ = [
    "REPLICA_ID",
    "Harness",
    "drain_observers",
    "PassThrough",
    "Probe",
    "frames_for",
    "json_texts",
    "make_tavus",
    "machine",
    "pct",
    "per_event_us",
    "persona",
    "peak_rss_bytes",
    "record_wire",
    "rss_bytes",
    "settle",
    "shifted",
    "summarize",
    "user_lines",
    "wire_mix",
]
