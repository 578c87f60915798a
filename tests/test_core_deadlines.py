"""The core's deadline hint: a driver that skips asking while it is off never misses a deadline.

``TavusConnection.deadline_moved`` lets the Pipecat driver skip ``next_deadline()`` after a
message when its timer is armed. That is only safe if every change that makes a deadline
appear or come earlier sets the hint. Random operation sequences check exactly that: after
each call other than ``tick`` (after which the driver always asks), a deadline earlier than
the last one reported, or a new one where there was none, must come with the hint set.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.core.connection import TavusConnection
from pipecat_tavus_interactions.params import TavusInteractionsParams

REPLICA = "11111111-1111-4111-8111-111111111111"
CID = "c123456"


class Ops:
    """Random calls on one connection, with a clock that only moves forward."""

    def __init__(self, rng: random.Random, **params: Any):
        p = {
            "conversation_id": CID,
            "replica_participant_id": REPLICA,
            "heartbeat_timeout_s": 2.0,
            "mode": "echo_audio",
        }
        p.update(params)
        self.conn = TavusConnection(TavusInteractionsParams(**p))
        self.rng = rng
        self.now = 0.0
        self.seq = 1
        self.turn = 1

    def message(self, event_type: str, props: dict | None = None, **extra: Any) -> dict:
        system = event_type.startswith("system.")
        m: dict[str, Any] = {
            "message_type": "system" if system else "conversation",
            "event_type": event_type,
            "conversation_id": CID,
            "seq": self.seq,
        }
        # Now and then a gap: this message skips a seq, which is held for the window.
        self.seq += self.rng.choice((1, 1, 1, 2))
        if not system:
            m["turn_idx"] = self.turn
        if props is not None:
            m["properties"] = props
        m.update(extra)
        return m

    def step(self) -> str:
        """Make one random call; return its name."""
        self.now += self.rng.choice((0.0, 0.01, 0.05, 0.3, 1.0))
        conn, now = self.conn, self.now
        name = self.rng.choice(
            (
                "joined",
                "present",
                "speak",
                "stop",
                "user",
                "send",
                "audio",
                "close",
                "interrupt",
                "start",
                "left",
                "tick",
            )
        )
        if name == "joined":
            conn.receive(self.message("system.replica_joined"), sender_id=REPLICA, now=now)
        elif name == "present":
            conn.receive(self.message("system.replica_present"), sender_id=REPLICA, now=now)
        elif name == "speak":
            m = self.message("conversation.replica.started_speaking", inference_id="i1")
            conn.receive(m, sender_id=REPLICA, now=now)
        elif name == "stop":
            m = self.message("conversation.replica.stopped_speaking", inference_id="i1")
            conn.receive(m, sender_id=REPLICA, now=now)
        elif name == "user":
            self.turn += 1
            m = self.message("conversation.utterance", {"role": "user", "speech": "hi"})
            conn.receive(m, sender_id=REPLICA, now=now)
        elif name == "send":
            conn.send_reported(ix.Respond("hello"), now=now)
        elif name == "audio":
            conn.echo_audio(bytes(4800), context_id="ctx", now=now)
        elif name == "close":
            conn.echo_audio_close(now=now)
        elif name == "interrupt":
            conn.interrupt(now=now)
        elif name == "start":
            conn.start(now=now)
        elif name == "left":
            conn.participant_left(REPLICA, now=now)
        else:
            conn.tick(now=now)
        return name


@pytest.mark.parametrize("realtime", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_a_deadline_never_comes_earlier_without_the_hint(seed, realtime):
    ops = Ops(random.Random(seed), echo_realtime=realtime)
    conn = ops.conn
    last = conn.next_deadline()
    earlier_seen = 0
    for _ in range(400):
        name = ops.step()
        moved = conn.deadline_moved
        deadline = conn.next_deadline()
        if name != "tick":
            came_earlier = deadline is not None and (last is None or deadline < last)
            earlier_seen += came_earlier
            assert moved or not came_earlier, (
                f"after {name} at {ops.now}: deadline {last} -> {deadline} without the hint"
            )
        assert not conn.deadline_moved  # asking clears it
        last = deadline
    assert earlier_seen > 10  # the sequences really make deadlines appear and come earlier
