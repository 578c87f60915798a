"""The load of the open-loop scale benchmark: timed replica messages on a fixed schedule.

- :func:`record_timed` runs the package's simulator (full mode, the scripted persona with
  its weather tool, heartbeats every simulated second, a stand-in bot answering tool calls
  at once) through a scripted conversation at ``speed`` x real time and returns each wire
  message with its *simulated* offset in seconds (from the simulator's own ``timestamp``):
  the arrival times of a real-time conversation.
- :func:`accepted_positions` replays the recording through one ``tavus.input()`` (public
  API, ``emit_event_frames=True``) and returns which messages become an accepted event
  (a ``TavusEventFrame``); twins, second speaking forms and the like do not. Only those
  are measured by the bots.
- :class:`Schedule` lays ``N`` conversations on a fixed timeline: conversation ``i`` plays
  the recording from a seeded random phase, repeating it (``seq``, ``turn_idx`` and ids
  shifted, :func:`.common.shifted`) for as long as needed. Each message gets a scheduled
  send time ``t0 + offset``; nothing about the schedule depends on the bots.
- :func:`send_schedule` is the sender: a plain loop (no asyncio, garbage collector off) that
  sends every message due, by its scheduled time, to the bot process that owns its
  conversation over a non-blocking unix socket, buffering per bot so a slow bot cannot
  delay another's messages. The scheduled time travels with the message, so lateness of
  the sender is counted against the bot's latency, never hidden.

Record framing: ``<I d I B`` (conversation index in the bot, scheduled ``time.monotonic()``,
payload length, 1 when the message is measured) + the JSON text of the message.
"""

from __future__ import annotations

import bisect
import heapq
import json
import random
import socket
import struct
import time
from typing import Any

from pipecat.frames.frames import Frame

from pipecat_tavus_interactions import TavusEventFrame
from pipecat_tavus_interactions.simulator import ScriptedUser, TavusSimulator

from .common import (
    Harness,
    answer_tool_call,
    frames_for,
    make_tavus,
    persona,
    settle,
    shifted,
    user_lines,
)

HEADER = struct.Struct("<IdIB")
END = 0xFFFFFFFF


async def record_timed(
    *, turns: int, speed: float = 50.0, seed: int = 0
) -> list[tuple[float, dict]]:
    """Record a conversation with its real-time schedule.

    Args:
        turns: User turns after the greeting.
        speed: Simulator speed factor for the recording (the offsets are simulated time,
            so they do not depend on it beyond the event loop's jitter times ``speed``).
        seed: Simulator seed.

    Returns:
        ``(offset_s, message)`` in wire order, offsets from the first message.
    """
    sim: TavusSimulator

    async def bot(message: Any, _sender: str) -> None:
        await answer_tool_call(sim, message)

    sim = TavusSimulator(
        persona=persona(),
        speed=speed,
        heartbeat_interval_s=1.0,
        seed=seed,
        history=turns * 200 + 1000,
        send=bot,
    )
    await sim.start()
    await sim.run_script(ScriptedUser(lines=user_lines(turns), reply_timeout_s=5.0))
    await sim.close()
    messages = sim.emitted
    first = messages[0]["timestamp"]
    return [(m["timestamp"] - first, m) for m in messages]


async def accepted_positions(messages: list[dict]) -> list[bool]:
    """Which messages of a recording ``tavus.input()`` turns into an accepted event."""
    accepted: set[int] = set()

    def on_frame(frame: Frame, _now: float) -> bool | None:
        if isinstance(frame, TavusEventFrame):
            if frame.event.seq is not None:
                accepted.add(frame.event.seq)
            return False
        return None

    tavus = make_tavus(messages[0]["conversation_id"], emit_event_frames=True)
    async with Harness([tavus.input(), tavus.output()], on_frame=on_frame) as h:
        for f in frames_for(messages):
            await h.worker.queue_frame(f)
        for _ in range(50):
            await settle()
    return [m.get("seq") in accepted for m in messages]


class Schedule:
    """``N`` conversations replaying one timed recording from seeded random phases."""

    def __init__(
        self,
        timed: list[tuple[float, dict]],
        accepted: list[bool],
        conversations: int,
        procs: int,
        seed: int = 1,
    ):
        """Lay out the conversations.

        Args:
            timed: The output of :func:`record_timed`.
            accepted: The output of :func:`accepted_positions` for its messages.
            conversations: How many conversations.
            procs: Bot processes; conversation ``i`` goes to process ``i % procs`` as its
                local conversation ``i // procs``.
            seed: Seed of the phases.
        """
        self.offsets = [t for t, _ in timed]
        self.messages = [m for _, m in timed]
        self.accepted = accepted
        self.period = self.offsets[-1] + 1.0
        self.span = max(m.get("turn_idx", 0) for m in self.messages) + 1
        self.n = conversations
        self.procs = procs
        rng = random.Random(seed)
        self.phases = [rng.uniform(0, self.period) for _ in range(conversations)]
        self._payloads: dict[int, list[bytes]] = {}

    def payloads(self, k: int) -> list[bytes]:
        """The JSON texts of the ``k``-th repeat of the recording (cached)."""
        if k not in self._payloads:
            copy = shifted(self.messages, k, self.span)
            self._payloads[k] = [json.dumps(m).encode() for m in copy]
        return self._payloads[k]

    def first_positions(self) -> list[tuple[float, int, int, int]]:
        """Heap entries ``(offset from t0, conversation, repeat, index)``, one per conversation."""
        heap = []
        for i, phase in enumerate(self.phases):
            j = bisect.bisect_left(self.offsets, phase)
            if j == len(self.offsets):
                heap.append((self.period - phase, i, 1, 0))
            else:
                heap.append((self.offsets[j] - phase, i, 0, j))
        heapq.heapify(heap)
        return heap

    def offered(self, start: float, end: float) -> dict[str, list[int]]:
        """Messages and measured events scheduled in ``[start, end)`` s from t0, per process."""
        prefix = [0]
        for acc in self.accepted:
            prefix.append(prefix[-1] + acc)
        msgs = [0] * self.procs
        events = [0] * self.procs
        for i, phase in enumerate(self.phases):
            for k in range(int(end // self.period) + 2):
                base = k * self.period - phase
                lo = bisect.bisect_left(self.offsets, start - base)
                hi = bisect.bisect_left(self.offsets, end - base)
                if hi > lo:
                    msgs[i % self.procs] += hi - lo
                    events[i % self.procs] += prefix[hi] - prefix[lo]
        return {"messages": msgs, "events": events}


def send_schedule(
    schedule: Schedule, socks: list[socket.socket], t0: float, until: float
) -> dict[str, Any]:
    """Send every message scheduled before ``until`` (s from ``t0``), on time; then END.

    Args:
        schedule: The conversations.
        socks: One connected socket per bot process (set non-blocking here).
        t0: ``time.monotonic()`` of offset 0.
        until: Offset (seconds) of the last message to send.

    Returns:
        Messages sent and the sender's own lateness (actual send - scheduled), in ms.
    """
    for s in socks:
        s.setblocking(False)
    buffers = [bytearray() for _ in socks]
    heap = schedule.first_positions()
    procs = schedule.procs
    offsets, accepted, period = schedule.offsets, schedule.accepted, schedule.period
    pack = HEADER.pack
    late: list[float] = []
    sent = 0
    n_msgs = len(offsets)
    while heap and heap[0][0] <= until or any(buffers):
        now = time.monotonic()
        rel = now - t0
        while heap and heap[0][0] <= rel and heap[0][0] <= until:
            off, i, k, j = heapq.heappop(heap)
            payload = schedule.payloads(k)[j]
            buffers[i % procs] += pack(i // procs, t0 + off, len(payload), accepted[j])
            buffers[i % procs] += payload
            late.append(rel - off)
            sent += 1
            j += 1
            if j == n_msgs:
                j, k = 0, k + 1
            heapq.heappush(heap, (k * period + offsets[j] - schedule.phases[i], i, k, j))
        for s, buf in zip(socks, buffers, strict=True):
            if buf:
                try:
                    n = s.send(buf)
                except BlockingIOError:
                    n = 0
                del buf[:n]
        wait = (heap[0][0] + t0 - time.monotonic()) if heap else 0.001
        if any(buffers):
            wait = min(wait, 0.0005)
        if wait > 0:
            time.sleep(wait)
    for s in socks:
        s.setblocking(True)
        s.sendall(HEADER.pack(END, 0.0, 0, 0))
    late.sort()
    return {
        "sent": sent,
        "late_p50_ms": late[len(late) // 2] * 1e3 if late else 0.0,
        "late_p99_ms": late[int(len(late) * 0.99)] * 1e3 if late else 0.0,
        "late_max_ms": late[-1] * 1e3 if late else 0.0,
    }


__all__ = ["END", "HEADER", "Schedule", "accepted_positions", "record_timed", "send_schedule"]
