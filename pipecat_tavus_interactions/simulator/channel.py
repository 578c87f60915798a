"""The simulated replica's outbound channel: stamp, record, apply chaos, deliver in order.

:meth:`ReplicaChannel.emit` is synchronous: it stamps ``seq`` (one counter per conversation)
and ``timestamp``, records the clean message, lets waiters see it, runs it through the
:class:`~.chaos.ChaosStream` and puts the resulting deliveries on an outbox. One task drains
the outbox through the connected ``send`` callback, so the wire order always equals the
emission order (plus chaos), even when the replica's activities and heartbeat run
concurrently, and a ``send`` that calls back into the replica cannot deadlock it.

Records are bounded (``history`` entries each) so a long soak keeps flat memory.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from .chaos import Chaos, Delivery

__all__ = ["ReplicaChannel", "SendCallback", "SignalCallback"]

#: ``async send(message, sender_id)``: put one app message on the wire.
SendCallback = Callable[[Any, str], Awaitable[None]]
#: ``async on_signal(kind, value)``: out-of-band room events (``"user_speech"``, ``"left"``).
SignalCallback = Callable[[str, Any], Awaitable[None]]

Predicate = Callable[[dict[str, Any]], bool]


class ReplicaChannel:
    """Ordered, recorded, optionally chaotic delivery of the replica's messages."""

    def __init__(
        self,
        *,
        sender_id: str,
        conversation_id: str,
        clock: Callable[[], float],
        chaos: Chaos | None,
        history: int,
    ):
        """Create the channel.

        Args:
            sender_id: Participant id of the replica.
            conversation_id: The conversation id (for forged chaos messages).
            clock: Returns the ``timestamp`` to stamp (epoch seconds).
            chaos: Fault knobs, or ``None`` for a clean channel.
            history: How many emitted/delivered messages to keep.
        """
        self.sender_id = sender_id
        self._clock = clock
        self.chaos = (
            chaos.stream(sender_id=sender_id, conversation_id=conversation_id) if chaos else None
        )
        self._seq = 0
        self._count = 0
        self._emitted: deque[dict[str, Any]] = deque(maxlen=history)
        self._delivered: deque[Delivery] = deque(maxlen=history)
        self._waiters: list[tuple[Predicate, asyncio.Future]] = []
        self._outbox: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._send: SendCallback | None = None
        self._on_signal: SignalCallback | None = None
        self._closed = False
        self._sealed = False

    def connect(self, send: SendCallback | None, on_signal: SignalCallback | None = None) -> None:
        """Set where deliveries (and room signals) go.

        Args:
            send: Receives each delivered message and its sender id.
            on_signal: Receives room signals in order with the messages.
        """
        self._send = send
        self._on_signal = on_signal

    @property
    def emitted(self) -> list[dict[str, Any]]:
        """The clean emitted messages (before chaos), oldest first (bounded)."""
        return list(self._emitted)

    @property
    def emitted_count(self) -> int:
        """How many messages were emitted so far (not bounded by ``history``)."""
        return self._count

    @property
    def delivered(self) -> list[Delivery]:
        """What actually went on the wire, in order (bounded)."""
        return list(self._delivered)

    def emit(self, messages: list[dict[str, Any]]) -> None:
        """Stamp, record and queue messages for delivery, in order.

        Args:
            messages: Messages built by :class:`~.wire.WireBuilder` (stamped in place).
        """
        if self._sealed:
            return  # the replica has left: nothing more reaches the room
        for msg in messages:
            self._seq += 1
            msg["seq"] = self._seq
            msg["timestamp"] = round(self._clock(), 6)
            self._emitted.append(msg)
            self._count += 1
            if self._waiters:
                self._notify(msg)
            if self.chaos is None:
                self._put(Delivery(self.sender_id, msg))
            else:
                for d in self.chaos.push(msg):
                    self._put(d)

    def seal(self) -> None:
        """Emit nothing more (the replica left); queued deliveries and signals still go."""
        self._sealed = True

    def signal(self, kind: str, value: Any) -> None:
        """Queue a room signal, delivered after every message emitted before it.

        Args:
            kind: ``"user_speech"`` (value: the text) or ``"left"`` (value: the reason).
            value: The signal's value.
        """
        self.flush_chaos()
        if not self._closed:
            self._outbox_queue().put_nowait(("signal", kind, value))

    def flush_chaos(self) -> None:
        """Release every message the re-order window holds."""
        if self.chaos is not None:
            for d in self.chaos.flush():
                self._put(d)

    async def drain(self) -> None:
        """Wait until every queued delivery has been handed to ``send``."""
        if self._outbox is not None:
            await self._outbox.join()

    async def close(self) -> None:
        """Stop delivering for good (queued deliveries are dropped)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._outbox = None
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    def history_since(self, since: int) -> list[dict[str, Any]]:
        """Return the recorded messages emitted at or after the absolute index ``since``."""
        first = self._count - len(self._emitted)
        return list(self._emitted)[max(0, since - first) :]

    async def wait_for(
        self, predicate: Predicate, *, since: int | None = None, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Wait for an emitted message matching ``predicate``.

        Args:
            predicate: Called with each clean emitted message.
            since: Absolute emission index to search from (default: only new messages).
            timeout_s: Wall-clock seconds to wait, or ``None`` for no limit.

        Returns:
            The first matching message.

        Raises:
            TimeoutError: Nothing matched within ``timeout_s``.
        """
        if since is not None:
            for msg in self.history_since(since):
                if predicate(msg):
                    return msg
        fut = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _notify(self, msg: dict[str, Any]) -> None:
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate(msg):
                fut.set_result(msg)

    def _outbox_queue(self) -> asyncio.Queue:
        if self._outbox is None:
            self._outbox = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._deliver_loop())
        return self._outbox

    def _put(self, delivery: Delivery) -> None:
        if self._closed:
            return
        self._delivered.append(delivery)
        self._outbox_queue().put_nowait(("message", delivery, None))

    async def _deliver_loop(self) -> None:
        queue = self._outbox
        assert queue is not None
        while True:
            kind, a, b = await queue.get()
            try:
                if kind == "message" and self._send is not None:
                    # A JSON round trip: the peer gets its own copy, as over a network.
                    await self._send(_wire_copy(a.message), a.sender_id)
                elif kind == "signal" and self._on_signal is not None:
                    await self._on_signal(a, b)
            except Exception as e:  # a faulty peer must not stop the replica
                logger.warning(f"{self}: delivery failed: {type(e).__name__}: {e}")
            finally:
                queue.task_done()

    def __str__(self) -> str:
        return f"ReplicaChannel({self.sender_id[:8]})"


def _wire_copy(message: Any) -> Any:
    if isinstance(message, str | int | float | bool) or message is None:
        return message
    return json.loads(json.dumps(message))
