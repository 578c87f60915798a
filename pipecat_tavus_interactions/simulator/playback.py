"""Play a recording's replica side into a live bot pipeline, to reproduce a conversation offline.

:class:`RecordingPlayer` stands where a :class:`~.replica.TavusSimulator` stands: give it to
:class:`~.transport.SimulatedTransport` and build the user's own bot on that transport. When
the bot joins, the player sends every message the recording received (from the replica, and
from any other sender in the room), exactly as it travelled and with its sender, at its
recorded time (divided by ``speed``); the replica leaves the room when it left in the
recording. What the bot sends is kept in :attr:`RecordingPlayer.received`. The bot's own
ledger then shows whether it still handles that conversation the same way::

    player = RecordingPlayer.load("conversation.jsonl")
    transport = SimulatedTransport(player)
    tavus = TavusInteractions(params=player.params())
    pipeline = Pipeline([transport.input(), tavus.input(), ..., tavus.output(),
                         transport.output()])
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..core.recording import Recording, Step, message_from_record, parse
from ..core.replay import params_from_header
from ..params import TavusInteractionsParams

__all__ = ["RecordingPlayer"]


@dataclass(frozen=True, slots=True)
class _Persona:
    name: str


def _replica(recording: Recording) -> tuple[str | None, dict[str, Any]]:
    """The replica's participant id and participant dict, as the recording knows them."""
    match = str(recording.header.get("params", {}).get("replica_user_id_match", "tavus-replica"))
    for step in recording.steps:
        participant = step.record.get("args", {}).get("participant")
        if step.name == "participant_joined" and isinstance(participant, dict):
            if match in str(participant.get("info", {}).get("userId", "")):
                return participant.get("id"), participant
    senders = Counter(s.record.get("from") for s in recording.steps if s.name == "receive")
    pid = senders.most_common(1)[0][0] if senders else None
    return pid, {}


def _event_type(message: Any) -> str:
    return str(message.get("event_type")) if isinstance(message, dict) else "?"


class RecordingPlayer:
    """The replica side of a recording, played at its times (see the module doc).

    Before each message, the player waits until the bot has sent (counted by
    ``event_type``) everything it had sent by then in the recording, as a replica waits for
    a tool result; recorded gaps are kept after such a wait.

    Attributes:
        received: Every message the bot sent to the replica, in order.
        done: Set when everything was played.
    """

    def __init__(
        self,
        recording: Recording,
        *,
        speed: float = 1.0,
        reply_timeout_s: float = 10.0,
        history: int = 10_000,
    ):
        """Prepare the playback.

        Args:
            recording: The parsed recording.
            speed: Time factor: every recorded gap is divided by it.
            reply_timeout_s: How long to wait for a message the bot had sent at that point
                of the recording before going on without it.
            history: Bound of the transport's message records.
        """
        self.recording = recording
        self.speed = speed
        self.history = history
        pid, participant = _replica(recording)
        self.participant_id = pid or "00000000-0000-4000-8000-000000000000"
        info = participant.get("info", {})
        self.persona = _Persona(str(info.get("userName", "Replica")))
        user_id = str(info.get("userId", "tavus-replica-recorded"))
        self.replica_id = user_id.removeprefix("tavus-replica-")
        self.conversation_id = recording.header.get("params", {}).get("conversation_id")
        self.pipeline_mode = "full"
        self.reply_timeout_s = reply_timeout_s
        self.received: list[Any] = []
        #: ``(event_type, expected, sent)`` for messages the bot did not send in time.
        self.missing: list[tuple[str, int, int]] = []
        self.done = asyncio.Event()
        self._sent: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._send: Any = None
        self._on_left: Any = None
        self._task: asyncio.Task | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> RecordingPlayer:
        """Read a recording file and prepare its playback (``kwargs`` as for the class)."""
        with open(path, encoding="utf-8") as f:
            return cls(parse(f), **kwargs)

    def params(self, **changes: Any) -> TavusInteractionsParams:
        """The configuration the recording was made with, with ``changes`` applied."""
        base = params_from_header(self.recording.header)
        return base.model_copy(update=changes)

    @property
    def foreign_participant_ids(self) -> list[str]:
        """Other senders of Tavus-looking messages in the recording (they join the room)."""
        senders = {s.record.get("from") for s in self.recording.steps if s.name == "receive"}
        return sorted(str(s) for s in senders if s and s != self.participant_id)

    def connect(self, send: Any, *, on_user_speech: Any = None, on_left: Any = None) -> None:
        """Connect the transport (``async send(message, sender_id)``, ``async on_left(r)``)."""
        self._send = send
        self._on_left = on_left

    async def start(self) -> None:
        """The bot joined: start playing (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._play())

    def _left_step(self) -> Step | None:
        for step in self.recording.steps:
            args = step.record.get("args", {})
            if (
                step.name == "participant_left"
                and args.get("participant_id") == self.participant_id
            ):
                return step
        return None

    async def _play(self) -> None:
        """Send each inbound message at its time, after the bot's earlier replies arrived."""
        left = self._left_step()
        steps = self.recording.steps
        origin = steps[0].t if steps else 0.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        expected: Counter[str] = Counter()
        for step in steps:
            if step.name == "receive" or step is left:
                start += await self._wait_replies(expected)
                delay = (step.t - origin) / self.speed - (loop.time() - start)
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._deliver(step, step is left)
            for out in step.outs:
                expected[_event_type(out.get("msg"))] += 1
        self.done.set()

    async def _deliver(self, step: Step, left: bool) -> None:
        if left:
            if self._on_left is not None:
                await self._on_left("left")
        elif self._send is not None:
            await self._send(message_from_record(step.record), step.record.get("from"))

    async def _wait_replies(self, expected: Counter[str]) -> float:
        """Wait until the bot sent what it had sent by now in the recording.

        A real replica does not answer a tool call before the result arrives; waiting for
        the bot's messages keeps that order on a slow machine. A message the bot never
        sends is given up after ``reply_timeout_s`` and noted in :attr:`missing`.

        Returns:
            The seconds waited (later messages keep their recorded gaps after it).
        """
        if all(self._sent[k] >= n for k, n in expected.items()):
            return 0.0
        loop = asyncio.get_running_loop()
        began = loop.time()
        self._changed.clear()
        while not all(self._sent[k] >= n for k, n in expected.items()):
            remaining = self.reply_timeout_s - (loop.time() - began)
            try:
                await asyncio.wait_for(self._changed.wait(), max(remaining, 0.0))
            except TimeoutError:
                for kind, n in expected.items():
                    if self._sent[kind] < n:
                        self.missing.append((kind, n, self._sent[kind]))
                        self._sent[kind] = n  # give it up once
                break
            self._changed.clear()
        return loop.time() - began

    async def receive(self, message: Any, *, sender_id: str | None = None) -> None:
        """Take a message the bot sent to the replica (kept in :attr:`received`)."""
        self.received.append(message)
        self._sent[_event_type(message)] += 1
        self._changed.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of recorded time."""
        await asyncio.sleep(seconds / self.speed)

    async def close(self) -> None:
        """Stop playing (the bot left the room)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
