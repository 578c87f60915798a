"""TurnLedger: per-turn records, completion rules, bounded memory, order independence."""

from __future__ import annotations

import json
import random
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from pipecat_tavus_interactions import events as ev
from pipecat_tavus_interactions.core.ordering import EventOrderer
from pipecat_tavus_interactions.core.records import ToolCallRecord, TurnRecord
from pipecat_tavus_interactions.core.turns import TurnLedger
from pipecat_tavus_interactions.protocol import parse_message

CONV = "c123456"
T0 = 1746000000.0


def inference(n: int) -> str:
    return f"{n:08x}-8306-491b-a284-791f56c8383f"


class Wire:
    """Writes a conversation the way Tavus sends it (reference section 6).

    Every event gets the next ``seq`` and a ``timestamp``; replica-side utterances, streaming
    and role-agnostic speaking events come as pal + replica twins; every speaking transition
    comes in both forms (role-specific and role-agnostic).
    """

    def __init__(self, seq: int = 1, t: float = T0):
        self.seq = seq
        self.t = t
        self.messages: list[dict[str, Any]] = []

    def emit(self, event_type, *, turn, inf=None, props=None, message_type="conversation"):
        m: dict[str, Any] = {
            "message_type": message_type,
            "event_type": event_type,
            "conversation_id": CONV,
            "seq": self.seq,
            "timestamp": round(self.t, 3),
        }
        if turn is not None:
            m["turn_idx"] = turn
        if inf is not None:
            m["inference_id"] = inf
        if props is not None:
            m["properties"] = props
        self.seq += 1
        self.messages.append(m)
        return m

    def tick(self, dt: float) -> None:
        self.t += dt

    def user_speaks(self, turn, text, *, inf, analysis=None, words_at=(0.4, 0.4)):
        start = self.t
        self.emit("conversation.user.started_speaking", turn=turn, inf=inf)
        self.emit("conversation.started_speaking", turn=turn, inf=inf, props={"role": "user"})
        words = text.split()
        for i, dt in enumerate(words_at):
            self.tick(dt)
            final = i == len(words_at) - 1
            part = text if final else " ".join(words[: max(1, len(words) // 2)])
            props = {"role": "user", "speech": part, "content_index": i, "final": final}
            self.emit("conversation.utterance.streaming", turn=turn, inf=inf, props=props)
        self.tick(0.1)
        duration = round(self.t - start, 3)
        self.emit("conversation.user.stopped_speaking", turn=turn, inf=inf)
        self.emit(
            "conversation.stopped_speaking",
            turn=turn,
            inf=inf,
            props={"role": "user", "duration": duration, "interrupted": False},
        )
        props = {"role": "user", "speech": text}
        if analysis is not None:
            props["user_audio_analysis"] = analysis
        self.emit("conversation.utterance", turn=turn, inf=inf, props=props)

    def tool_call(self, turn, name, arguments, *, inf, call_id=None):
        self.tick(0.05)
        props = {"name": name, "arguments": json.dumps(arguments)}
        if call_id is not None:
            props["tool_call_id"] = call_id
        return self.emit("conversation.tool_call", turn=turn, inf=inf, props=props)

    def replica_says(
        self,
        turn,
        text,
        *,
        inf,
        spoken_words: int | None = None,
        before_stop: Callable[[], None] | None = None,
        stop_turn=None,
        stop: bool = True,
    ):
        """The replica's reply: utterance, started, snapshots, stopped (twins and forms)."""
        self.tick(0.3)
        for role in ("pal", "replica"):
            self.emit(
                "conversation.utterance", turn=turn, inf=inf, props={"role": role, "speech": text}
            )
        self.tick(0.2)
        start = self.t
        self.emit("conversation.replica.started_speaking", turn=turn, inf=inf)
        for role in ("pal", "replica"):
            self.emit("conversation.started_speaking", turn=turn, inf=inf, props={"role": role})
        words = text.split()
        interrupted = spoken_words is not None
        n = len(words) if spoken_words is None else spoken_words
        for i in range(1, n + 1):
            self.tick(0.3)
            final = i == n
            props = {"speech": " ".join(words[:i]), "content_index": i - 1, "final": final}
            if final and interrupted:
                props["is_interrupted"] = True
            for role in ("pal", "replica"):
                event = "conversation.utterance.streaming"
                self.emit(event, turn=turn, inf=inf, props={"role": role, **props})
        if before_stop is not None:
            before_stop()
        if not stop:
            return
        self.tick(0.1)
        duration = round(self.t - start, 3)
        stop = {"duration": duration, "interrupted": interrupted}
        turn = turn if stop_turn is None else stop_turn
        self.emit("conversation.replica.stopped_speaking", turn=turn, inf=inf, props=stop)
        for role in ("pal", "replica"):
            props = {"role": role, **stop}
            self.emit("conversation.stopped_speaking", turn=turn, inf=inf, props=props)

    def heartbeat(self, attempt):
        self.emit(
            "system.replica_present",
            turn=None,
            props={"attempt": attempt},
            message_type="system",
        )


class Run:
    """Feeds wire messages through the real parser, an EventOrderer and a TurnLedger."""

    def __init__(self, *, max_turns: int = 100, tool_results: bool = False):
        self.orderer = EventOrderer(window_s=0.05)
        self.ledger = TurnLedger(max_turns=max_turns)
        self.completed: list[TurnRecord] = []
        self.tool_results = tool_results
        self.now = 0.0

    def feed(self, messages, *, dt: float = 0.002) -> list[TurnRecord]:
        done: list[TurnRecord] = []
        for m in messages:
            self.now += dt
            released = self.orderer.push(parse_message(m), self.now)
            released += self.orderer.poll(self.now)
            done += self._observe(released)
        self.completed += done
        return done

    def finish(self) -> list[TurnRecord]:
        done = self._observe(self.orderer.flush())
        done += self.ledger.flush(self.now)
        self.completed += done
        return done

    def _observe(self, released: list[ev.Event]) -> list[TurnRecord]:
        done: list[TurnRecord] = []
        for e in released:
            done += self.ledger.observe(e, self.now)
            if self.tool_results and isinstance(e, ev.ToolCallEvent):
                done += self.ledger.record_tool_result(
                    e.turn_idx,
                    e.tool_call_id or e.name,
                    status="success",
                    result={"echo": e.arguments},
                    finished_at=self.now + 0.01,
                    delivery="tool_result",
                )
        return done


def completed_idx(records: list[TurnRecord]) -> list[int]:
    return [r.turn_idx for r in records]


# --- a full typical turn ------------------------------------------------------------------


def test_typical_turn_with_a_tool_call_fills_every_field():
    w = Wire(seq=40)
    w.user_speaks(3, "What's the weather in Austin?", inf=inference(1), analysis="sounds curious")
    user_stop_ts = w.messages[-3]["timestamp"]
    call = w.tool_call(3, "get_weather", {"city": "Austin"}, inf=inference(1), call_id="call_1")
    w.replica_says(3, "It is 72 degrees and sunny.", inf=inference(2))
    started_msg = next(
        m for m in w.messages if m["event_type"] == "conversation.replica.started_speaking"
    )
    stopped_msg = next(
        m for m in w.messages if m["event_type"] == "conversation.replica.stopped_speaking"
    )

    run = Run()
    assert run.feed(w.messages) == []  # the tool call is still pending
    turn = run.ledger.get(3)
    assert turn is not None and not turn.completed
    assert turn.user_text == "What's the weather in Austin?"
    assert turn.user_audio_analysis == "sounds curious"
    assert turn.user_injected is False
    assert turn.replica_intended_text == "It is 72 degrees and sunny."
    assert turn.replica_spoken_text == "It is 72 degrees and sunny."
    assert turn.replica_interrupted is False
    assert turn.user_stopped_ts == user_stop_ts
    assert turn.replica_started_ts == started_msg["timestamp"]
    assert turn.response_latency_s == pytest.approx(started_msg["timestamp"] - user_stop_ts)
    assert turn.first_seq == 40
    assert turn.last_seq == stopped_msg["seq"]

    [user_span, pal_span] = turn.spans
    assert (user_span.role, user_span.started_ts, user_span.stopped_ts) == (
        "user",
        w.messages[0]["timestamp"],
        user_stop_ts,
    )
    assert user_span.duration == pytest.approx(user_stop_ts - w.messages[0]["timestamp"])
    assert pal_span.role == "pal"
    assert pal_span.inference_id == inference(2)
    assert pal_span.started_ts == started_msg["timestamp"]
    assert pal_span.stopped_ts == stopped_msg["timestamp"]
    assert pal_span.duration == stopped_msg["properties"]["duration"]
    assert pal_span.interrupted is False

    [tool] = turn.tool_calls
    assert (tool.name, tool.tool_call_id, tool.arguments, tool.seq) == (
        "get_weather",
        "call_1",
        {"city": "Austin"},
        call["seq"],
    )
    assert tool.status == "pending" and tool.started_at is not None and tool.duration_s is None

    done = run.ledger.record_tool_result(
        3,
        "call_1",
        status="success",
        result={"temp_f": 72},
        finished_at=tool.started_at + 0.25,
        delivery="tool_result",
    )
    assert done == [turn] and turn.completed
    assert (tool.status, tool.result, tool.delivery) == ("success", {"temp_f": 72}, "tool_result")
    assert tool.duration_s == pytest.approx(0.25)
    assert run.ledger.completed_count == 1
    # Twins and the second forms were dropped before the ledger saw them.
    stats = run.orderer.stats
    assert turn.event_count == stats["released"] == len(w.messages) - 13
    # twins: 1 utterance, 6 snapshots, 2 role-agnostic; forms: 2 user, 2 replica
    assert (stats["duplicate_twin"], stats["duplicate_form"]) == (9, 4)


def test_summary_leaves_out_our_clock_and_event_count():
    w = Wire()
    w.user_speaks(1, "Hi there", inf=inference(1))
    w.tool_call(1, "lookup", {"q": "x"}, inf=inference(1), call_id="c1")
    w.replica_says(1, "Hello!", inf=inference(2))
    a, b = Run(tool_results=True), Run(tool_results=True)
    a.feed(w.messages, dt=0.001)
    b.feed(w.messages, dt=0.003)
    ra, rb = a.ledger.get(1), b.ledger.get(1)
    assert ra.tool_calls[0].started_at != rb.tool_calls[0].started_at
    assert ra.summary() == rb.summary()
    assert "event_count" not in ra.summary()
    assert ra.summary()["tool_calls"][0]["status"] == "success"


# --- completion rules ---------------------------------------------------------------------


def test_turn_completes_when_the_replica_stops_after_the_reply():
    w = Wire()
    w.user_speaks(1, "Hello", inf=inference(1))
    w.replica_says(1, "Hi, how can I help?", inf=inference(2))
    run = Run()
    done = run.feed(w.messages)
    assert completed_idx(done) == [1]
    # A newer turn starting does not complete it a second time.
    w2 = Wire(seq=w.seq, t=w.t + 1)
    w2.user_speaks(2, "Tell me a joke", inf=inference(3))
    assert run.feed(w2.messages) == []
    assert run.ledger.completed_count == 1


def test_turn_completes_when_a_newer_turn_starts():
    w = Wire()
    w.user_speaks(1, "Hello", inf=inference(1))
    # The reply is generated but never spoken: only the next turn can complete turn 1.
    for role in ("pal", "replica"):
        w.emit(
            "conversation.utterance",
            turn=1,
            inf=inference(2),
            props={"role": role, "speech": "Hi!"},
        )
    run = Run()
    assert run.feed(w.messages) == []
    w2 = Wire(seq=w.seq, t=w.t + 1)
    w2.heartbeat(1)  # not tied to a turn: completes nothing
    w2.user_speaks(2, "Are you there?", inf=inference(3))
    done = run.feed(w2.messages)
    assert completed_idx(done) == [1]
    assert run.ledger.current_turn_idx == 2


def test_newer_turn_waits_for_the_reply_being_spoken_until_the_replica_moves_on():
    w = Wire()
    w.user_speaks(1, "Hello", inf=inference(1))
    w.replica_says(1, "Hi! I can help with", inf=inference(2), stop=False)  # its stop is lost
    w.user_speaks(2, "Are you there?", inf=inference(3))
    run = Run()
    assert run.feed(w.messages) == []  # turn 2 started, but the replica is still on turn 1
    w2 = Wire(seq=w.seq, t=w.t + 1)
    w2.replica_says(2, "Yes, I am here.", inf=inference(4))
    start_at = next(
        i
        for i, m in enumerate(w2.messages)
        if m["event_type"] == "conversation.replica.started_speaking"
    )
    assert run.feed(w2.messages[:start_at]) == []
    assert completed_idx(run.feed(w2.messages[start_at : start_at + 1])) == [1]
    assert completed_idx(run.feed(w2.messages[start_at + 1 :])) == [2]
    assert run.ledger.completed_count == 2


def test_a_turn_waiting_for_its_reply_completes_when_yet_another_turn_starts():
    w = Wire()
    w.user_speaks(1, "Hello", inf=inference(1))
    w.replica_says(1, "Hi! I can help with", inf=inference(2), stop=False)
    w.user_speaks(2, "Hm", inf=inference(3))
    run = Run()
    assert run.feed(w.messages) == []
    w2 = Wire(seq=w.seq, t=w.t + 1)
    w2.user_speaks(3, "Hello?", inf=inference(4))
    assert completed_idx(run.feed(w2.messages)) == [1, 2]


def test_stray_replica_stop_does_not_complete_an_empty_turn():
    run = Run()
    w = Wire()
    w.emit(
        "conversation.replica.stopped_speaking",
        turn=5,
        inf=inference(1),
        props={"duration": None, "interrupted": False},
    )
    assert run.feed(w.messages) == []
    turn = run.ledger.get(5)
    # A stop without a start closes nothing but is recorded.
    [span] = turn.spans
    assert (span.role, span.started_ts, span.duration, span.open) == ("pal", None, None, False)
    assert span.stopped_ts == w.messages[0]["timestamp"]
    assert not turn.completed


def test_pending_tool_call_defers_completion_to_its_result():
    w = Wire()
    w.user_speaks(1, "Book a table", inf=inference(1))
    w.tool_call(1, "book_table", {"people": 2}, inf=inference(1))  # legacy: no tool_call_id
    w.replica_says(1, "One moment please.", inf=inference(2))  # filler while the tool runs
    run = Run()
    assert run.feed(w.messages) == []
    done = run.ledger.record_tool_result(
        1, "book_table", status="success", result="booked", finished_at=run.now
    )
    assert completed_idx(done) == [1]
    # Recording it again (or the next turn starting) never completes it twice.
    assert run.ledger.record_tool_result(1, "book_table", status="success", result="booked") == []
    w2 = Wire(seq=w.seq, t=w.t + 1)
    w2.user_speaks(2, "Thanks", inf=inference(3))
    assert run.feed(w2.messages) == []
    assert run.ledger.completed_count == 1


def test_result_while_the_replica_speaks_again_waits_for_its_stop():
    w = Wire()
    w.user_speaks(1, "Book a table", inf=inference(1))
    w.tool_call(1, "book_table", {"people": 2}, inf=inference(1), call_id="call_9")
    w.replica_says(1, "One moment please.", inf=inference(2))
    run = Run()
    assert run.feed(w.messages) == []
    answer = Wire(seq=w.seq, t=w.t + 1)
    answer.replica_says(1, "Your table is booked.", inf=inference(3))
    stop_at = next(
        i
        for i, m in enumerate(answer.messages)
        if m["event_type"] == "conversation.replica.stopped_speaking"
    )
    assert run.feed(answer.messages[:stop_at]) == []
    assert run.ledger.record_tool_result(1, "call_9", status="success", result="ok") == []
    assert completed_idx(run.feed(answer.messages[stop_at:])) == [1]
    turn = run.ledger.get(1)
    assert turn.replica_intended_text == "One moment please. Your table is booked."
    assert turn.replica_spoken_text == "One moment please. Your table is booked."
    assert [s.inference_id for s in turn.spans if s.role == "pal"] == [inference(2), inference(3)]


def test_pending_tool_call_without_result_completes_with_the_next_turn():
    w = Wire()
    w.user_speaks(1, "Check my order", inf=inference(1))
    w.tool_call(1, "order_status", {}, inf=inference(1), call_id="c7")
    w.replica_says(1, "Checking.", inf=inference(2))
    w.user_speaks(2, "Never mind", inf=inference(3))
    run = Run()
    assert completed_idx(run.feed(w.messages)) == [1]
    # The late result updates the completed record and completes nothing.
    assert run.ledger.record_tool_result(1, "c7", status="stale", result=None) == []
    assert run.ledger.get(1).tool_calls[0].status == "stale"


def test_flush_completes_open_turns_once():
    w = Wire()
    w.user_speaks(1, "Hello", inf=inference(1))
    run = Run()
    assert run.feed(w.messages) == []
    assert completed_idx(run.ledger.flush(run.now)) == [1]
    assert run.ledger.flush(run.now) == []
    assert run.ledger.completed_count == 1


def test_late_event_updates_a_completed_turn_without_completing_it_again():
    ledger = TurnLedger()
    w = Wire()
    w.user_speaks(1, "Hello", inf=inference(1))
    w.replica_says(1, "Hi!", inf=inference(2))
    w.user_speaks(2, "Bye", inf=inference(3))
    late = w.emit(
        "conversation.perception_tool_call",
        turn=1,
        props={"name": "notify_if_id_shown", "modality": "vision", "arguments": {"shown": True}},
    )
    done = []
    for m in w.messages:
        done += ledger.observe(parse_message(m), 0.0)
    assert completed_idx(done) == [1]
    turn = ledger.get(1)
    assert turn.last_seq == late["seq"]
    assert turn.tool_calls[-1].name == "notify_if_id_shown"
    assert ledger.completed_count == 1


def test_first_sight_of_an_older_turn_is_complete_at_once():
    ledger = TurnLedger()
    w = Wire()
    w.user_speaks(4, "Newer", inf=inference(1))
    w.user_speaks(3, "Older", inf=inference(2))
    done = []
    for m in w.messages:
        done += ledger.observe(parse_message(m), 0.0)
    assert completed_idx(done) == [3]
    assert ledger.get(3).user_text == "Older"
    assert [r.turn_idx for r in ledger.turns] == [3, 4]
    assert ledger.current_turn_idx == 4


# --- interruption, spans, grouping ------------------------------------------------------


def test_barge_in_completes_the_turn_with_its_interruption_recorded():
    w = Wire()
    w.user_speaks(1, "Tell me a long story", inf=inference(1))
    w.replica_says(
        1,
        "Once upon a time there was a dragon who loved tea",
        inf=inference(2),
        spoken_words=4,
        before_stop=lambda: w.emit("conversation.user.started_speaking", turn=2, inf=inference(3)),
        stop_turn=2,
    )
    run = Run()
    at_completion = []
    for m in w.messages:
        for record in run.feed([m]):
            at_completion.append(record.summary())
    [turn1] = at_completion
    assert turn1["turn_idx"] == 1
    # The user's new turn started first; completion waited for the interrupted stop.
    assert turn1["replica_interrupted"] is True
    assert turn1["replica_intended_text"] == "Once upon a time there was a dragon who loved tea"
    assert turn1["replica_spoken_text"] == "Once upon a time"
    pal_span = turn1["spans"][-1]
    assert pal_span["interrupted"] is True and pal_span["stopped_ts"] is not None
    assert [s.role for s in run.ledger.get(2).spans] == ["user"]
    assert run.ledger.completed_count == 1


def test_legacy_replica_interrupted_event_marks_the_turn():
    ledger = TurnLedger()
    w = Wire()
    w.user_speaks(1, "Hello", inf=inference(1))
    w.emit("conversation.replica.started_speaking", turn=1, inf=inference(2))
    w.emit("conversation.replica_interrupted", turn=None, inf=inference(2))
    for m in w.messages:
        ledger.observe(parse_message(m), 0.0)
    turn = ledger.get(1)
    assert turn.replica_interrupted is True
    assert turn.spans[-1].interrupted is True


def test_streaming_keeps_the_newest_snapshot_and_never_unfinalises():
    ledger = TurnLedger()

    def snap(index, speech, final=False):
        props = {"role": "pal", "speech": speech, "content_index": index, "final": final}
        return parse_message(
            {
                "event_type": "conversation.utterance.streaming",
                "turn_idx": 1,
                "inference_id": inference(1),
                "properties": props,
            }
        )

    ledger.observe(snap(1, "Hello there"), 0.0)
    ledger.observe(snap(0, "Hello"), 0.0)  # stale
    assert ledger.get(1).replica_spoken_text == "Hello there"
    ledger.observe(snap(2, "Hello there friend", final=True), 0.0)
    ledger.observe(snap(3, "Hello there friend and"), 0.0)  # after final: ignored
    assert ledger.get(1).replica_spoken_text == "Hello there friend"


def test_events_without_turn_idx_join_the_current_turn_and_system_events_none():
    ledger = TurnLedger()
    w = Wire()
    w.user_speaks(7, "Hi", inf=inference(1))
    for m in w.messages:
        ledger.observe(parse_message(m), 0.0)
    ledger.observe(
        parse_message(
            {
                "event_type": "conversation.utterance",
                "inference_id": inference(2),
                "properties": {"role": "replica", "speech": "Hello!"},
            }
        ),
        0.0,
    )
    before = ledger.get(7).event_count
    ledger.observe(
        parse_message(
            {
                "message_type": "system",
                "event_type": "system.replica_joined",
                "properties": {"replica_id": "r79e1c033f"},
            }
        ),
        0.0,
    )
    assert ledger.get(7).replica_intended_text == "Hello!"
    assert ledger.get(7).event_count == before
    assert [r.turn_idx for r in ledger.turns] == [7]


def test_without_any_turn_idx_the_ledger_numbers_turns_itself():
    w = Wire()
    w.user_speaks(None, "First question", inf=None)
    w.replica_says(None, "First answer.", inf=None)
    w.user_speaks(None, "Second question", inf=None)
    w.replica_says(None, "Second answer.", inf=None)
    for m in w.messages:  # an old deployment: no seq either
        del m["seq"]
    run = Run()
    done = run.feed(w.messages)
    assert completed_idx(done) == [0, 1]
    assert [r.user_text for r in run.ledger.turns] == ["First question", "Second question"]
    assert [r.replica_spoken_text for r in run.ledger.turns] == ["First answer.", "Second answer."]


def test_several_user_utterances_in_one_turn_are_joined():
    ledger = TurnLedger()
    for text in ("I want", "a large pizza"):
        ledger.observe(
            parse_message(
                {
                    "event_type": "conversation.utterance",
                    "turn_idx": 2,
                    "properties": {"role": "user", "speech": text},
                }
            ),
            0.0,
        )
    ledger.mark_injected(2)
    turn = ledger.get(2)
    assert turn.user_text == "I want a large pizza"
    assert turn.user_injected is True


def test_bridge_record_replaces_the_observed_call_instead_of_adding_one():
    ledger = TurnLedger()
    event = parse_message(
        {
            "event_type": "conversation.tool_call",
            "seq": 12,
            "turn_idx": 1,
            "inference_id": inference(1),
            "properties": {"name": "lookup", "arguments": '{"q": "tea"}'},
        }
    )
    ledger.observe(event, 5.0)
    bridge = ToolCallRecord(
        name="lookup", tool_call_id="tavus-call-1", arguments={"q": "tea"}, seq=12
    )
    ledger.record_tool_call(1, bridge)
    [call] = ledger.get(1).tool_calls
    assert call is bridge and call.started_at == 5.0
    ledger.record_tool_result(1, "tavus-call-1", status="error", error="boom", finished_at=6.0)
    assert (call.status, call.error, call.duration_s) == ("error", "boom", 1.0)


def test_bridge_record_first_then_event_is_not_doubled():
    ledger = TurnLedger()
    ledger.observe(
        parse_message(
            {
                "event_type": "conversation.utterance",
                "turn_idx": 1,
                "properties": {"role": "user", "speech": "hi"},
            }
        ),
        0.0,
    )
    ledger.record_tool_call(1, ToolCallRecord(name="f", tool_call_id="x1", seq=3, started_at=1.0))
    ledger.observe(
        parse_message(
            {
                "event_type": "conversation.tool_call",
                "seq": 3,
                "turn_idx": 1,
                "properties": {"name": "f", "tool_call_id": "x1"},
            }
        ),
        2.0,
    )
    [call] = ledger.get(1).tool_calls
    assert call.started_at == 1.0


# --- bounded memory ---------------------------------------------------------------------


def test_only_the_last_max_turns_are_kept_and_late_events_for_dropped_ones_are_ignored():
    ledger = TurnLedger(max_turns=3)
    for t in range(1, 11):
        ledger.observe(
            parse_message(
                {
                    "event_type": "conversation.utterance",
                    "turn_idx": t,
                    "properties": {"role": "user", "speech": f"q{t}"},
                }
            ),
            0.0,
        )
    assert [r.turn_idx for r in ledger.turns] == [8, 9, 10]
    late = parse_message(
        {
            "event_type": "conversation.utterance",
            "turn_idx": 2,
            "properties": {"role": "user", "speech": "late"},
        }
    )
    assert ledger.observe(late, 0.0) == []
    assert ledger.get(2) is None
    assert ledger.completed_count == 9


def test_a_deferred_turn_dropped_for_room_is_still_completed_once():
    w = Wire()
    w.user_speaks(1, "Tell me a story", inf=inference(1))
    w.replica_says(
        1,
        "Once upon a time",
        inf=inference(2),
        spoken_words=2,
        before_stop=lambda: w.user_speaks(2, "Stop", inf=inference(3)),
    )
    run = Run(max_turns=1)
    assert completed_idx(run.feed(w.messages)) == [1]
    assert [r.turn_idx for r in run.ledger.turns] == [2]
    assert run.ledger.completed_count == 1


def test_memory_stays_flat_over_100k_turns():
    # The same two events, 100k times: without turn_idx the ledger numbers the turns itself
    # (the same record path as with turn_idx), and the event objects cost nothing here.
    user = parse_message(
        {
            "event_type": "conversation.utterance",
            "properties": {"role": "user", "speech": "What time is it?"},
        }
    )
    stop = parse_message(
        {
            "event_type": "conversation.replica.stopped_speaking",
            "properties": {"duration": 1.5, "interrupted": False},
        }
    )
    ledger = TurnLedger(max_turns=100)
    observe = ledger.observe

    def turns(n: int) -> None:
        for _ in range(n):
            observe(user, 0.0)
            observe(stop, 0.0)

    tracemalloc.start()
    try:
        turns(10_000)
        peak_10k = tracemalloc.get_traced_memory()[1]
        turns(90_000)
        peak_100k = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ledger.completed_count == 100_000
    assert ledger.current_turn_idx == 99_999
    assert [r.turn_idx for r in ledger.turns] == list(range(99_900, 100_000))
    assert peak_100k - peak_10k < 16 * 1024, (peak_10k, peak_100k)


# --- order independence -------------------------------------------------------------------


def conversation(turns: int, seed: int) -> list[dict[str, Any]]:
    """A 20-turn conversation with tool calls, fillers, barge-ins and repeated user text."""
    rng = random.Random(seed)
    w = Wire(seq=1000)
    w.emit(
        "system.replica_joined",
        turn=None,
        props={"replica_id": "r79e1c033f"},
        message_type="system",
    )
    n = 0
    for t in range(1, turns + 1):
        n += 1
        user_inf = inference(n)
        text = "Yes." if t % 5 == 0 else f"Question number {t} about topic {rng.randint(1, 99)}"
        w.user_speaks(t, text, inf=user_inf, analysis="calm" if t % 3 == 0 else None)
        if t % 4 == 1:
            w.tool_call(t, "lookup", {"topic": t}, inf=user_inf, call_id=f"call_{t}")
            n += 1
            w.replica_says(t, "Let me check that.", inf=inference(n))
        n += 1
        reply = " ".join(f"word{rng.randint(0, 50)}" for _ in range(rng.randint(2, 6)))
        if t % 6 == 0 and t < turns:
            nxt = t + 1
            w.replica_says(
                t,
                reply + " and more",
                inf=inference(n),
                spoken_words=2,
                before_stop=lambda nxt=nxt: w.emit(
                    "conversation.user.started_speaking", turn=nxt, inf=inference(9000 + nxt)
                ),
                stop_turn=nxt,
            )
        else:
            w.replica_says(t, reply, inf=inference(n))
        w.heartbeat(t)
        w.tick(1.0)
    return w.messages


def chaos(messages: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Re-order locally (a few positions) and duplicate about one message in five."""
    keyed = []
    for i, m in enumerate(messages):
        keyed.append((i + rng.uniform(0, 6), m))
        if rng.random() < 0.2:
            keyed.append((i + rng.uniform(0, 8), m))
    keyed.sort(key=lambda x: x[0])
    return [m for _, m in keyed]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_and_duplicated_stream_gives_the_same_ledger(seed):
    messages = conversation(20, seed)
    clean = Run(tool_results=True)
    clean.feed(messages)
    clean.finish()

    shuffled = chaos(messages, random.Random(seed))
    assert shuffled != messages
    rough = Run(tool_results=True)
    rough.feed(shuffled)
    rough.finish()

    stats = rough.orderer.stats
    assert stats["held"] > 0 and stats["duplicate_seq"] > 0
    assert stats["gaps_released"] == 0  # every gap filled inside the window
    assert clean.orderer.stats["duplicate_twin"] > 0
    assert clean.orderer.stats["duplicate_form"] > 0

    assert sorted(completed_idx(clean.completed)) == list(range(1, 21))
    assert sorted(completed_idx(rough.completed)) == list(range(1, 21))
    clean_summaries = [r.summary() for r in clean.ledger.turns]
    rough_summaries = [r.summary() for r in rough.ledger.turns]
    assert rough_summaries == clean_summaries
    # The summaries carry the content, not just empty records.
    by_turn = {s["turn_idx"]: s for s in clean_summaries}
    assert by_turn[5]["user_text"] == "Yes."
    assert by_turn[6]["replica_interrupted"] is True
    assert by_turn[1]["tool_calls"][0]["status"] == "success"
    assert all(s["response_latency_s"] is not None for s in clean_summaries)
