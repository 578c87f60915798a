"""TavusConnection without Pipecat: a wire log in, the exact effects out.

Plain synchronous tests of the sans-I/O core. Time is just the numbers passed in; every
effect list is rendered to compact tuples (:func:`render`) and asserted whole.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.core import effects as fx
from pipecat_tavus_interactions.core.connection import TavusConnection
from pipecat_tavus_interactions.core.tools import APPENDED_NOTE
from pipecat_tavus_interactions.params import TavusInteractionsParams

REPLICA = "11111111-1111-4111-8111-111111111111"
BROWSER = "22222222-2222-4222-8222-222222222222"
CID = "c123456"
U1 = "aaaaaaaa-8306-491b-a284-791f56c8383f"  # user inferences
U2 = "bbbbbbbb-8306-491b-a284-791f56c8383f"
P1 = "cccccccc-8306-491b-a284-791f56c8383f"  # replica inferences
T0 = 1746000000.0


def make(**params: Any) -> TavusConnection:
    p = {"conversation_id": CID, "replica_participant_id": REPLICA, "heartbeat_timeout_s": None}
    p.update(params)
    return TavusConnection(TavusInteractionsParams(**p))


class Wire:
    """Builds Tavus messages with increasing ``seq`` (and ``turn_idx`` for conversation.*)."""

    def __init__(self, seq: int = 1, turn: int = 3):
        self.seq = seq
        self.turn = turn

    def __call__(self, event_type: str, props: dict | None = None, *, inf=None, turn=None):
        system = event_type.startswith("system.")
        m: dict[str, Any] = {
            "message_type": "system" if system else "conversation",
            "event_type": event_type,
            "conversation_id": CID,
            "seq": self.seq,
            "timestamp": T0 + self.seq / 8,
        }
        self.seq += 1
        if not system:
            m["turn_idx"] = self.turn if turn is None else turn
        if inf is not None:
            m["inference_id"] = inf
        if props is not None:
            m["properties"] = props
        return m


def _utterance(e: fx.Utterance) -> tuple:
    flags = [f for f in ("spoken", "interrupted", "injected") if getattr(e, f)]
    return ("utterance", e.role, e.text, e.turn_idx, *flags)


def _transmit(e: fx.Transmit) -> tuple:
    m = e.message
    assert (m["message_type"], m["conversation_id"]) == ("conversation", CID)
    return ("transmit", m["event_type"], m.get("properties"))


_RENDER = {
    fx.EventAccepted: lambda e: ("accepted", e.event.event_type),
    fx.UserTranscript: lambda e: ("transcript", e.text, e.final),
    fx.Utterance: _utterance,
    fx.ReplicaSpeaking: lambda e: ("speaking", e.speaking),
    fx.ReplicaSpeakingTick: lambda e: ("tick",),
    fx.UserTurn: lambda e: ("user_turn", e.speaking),
    fx.ReplicaInterrupted: lambda e: ("interrupted", e.turn_idx, e.inference_id, e.broadcast),
    fx.RunTool: lambda e: ("run_tool", e.call.name, e.call.call_id),
    fx.TurnCompleted: lambda e: ("turn", e.turn.turn_idx),
    fx.ReplicaJoined: lambda e: ("joined",),
    fx.ReplicaLeft: lambda e: ("left", e.reason, e.expected),
    fx.Shutdown: lambda e: ("shutdown", e.end_pipeline),
    fx.ProtocolErrorReported: lambda e: ("protocol_error", e.error.reason),
    fx.Transmit: _transmit,
    fx.SendFailed: lambda e: (
        "send_failed",
        e.interaction.EVENT_TYPE,
        type(e.error).__name__,
        e.report,
    ),
}


def render(effects: list | None) -> list[tuple] | None:
    """Effects as comparable tuples (``None`` stays ``None``: not a Tavus message)."""
    return None if effects is None else [_RENDER[type(e)](e) for e in effects]


def recv(conn: TavusConnection, message: Any, now: float, sender: str | None = REPLICA):
    return render(conn.receive(message, sender_id=sender, now=now))


def ready(conn: TavusConnection, w: Wire, now: float = 0.0) -> TavusConnection:
    """Start the connection and let the replica join."""
    assert conn.start(now=now) == []
    joined = recv(conn, w("system.replica_joined", {"replica_id": "r1"}), now)
    assert joined == [("accepted", "system.replica_joined"), ("joined",)]
    return conn


def speak(conn: TavusConnection, w: Wire, now: float = 1.0) -> list[tuple]:
    """The replica starts speaking (turn 3 unless ``w`` says otherwise)."""
    return recv(conn, w("conversation.replica.started_speaking", inf=P1), now)


# --- 1. a chaotic turn gives the same effects as a clean one --------------------------


def turn_log() -> list[dict]:
    """One user turn and the reply, as Tavus sends it: twins and both speaking forms."""
    w = Wire(seq=10)
    reply = "Hello! How can I help?"
    stop = {"duration": 1.5, "interrupted": False}
    return [
        w("conversation.user.started_speaking", inf=U1),  # 10
        w("conversation.started_speaking", {"role": "user"}, inf=U1),  # 11 other form
        w(
            "conversation.utterance.streaming",  # 12
            {"role": "user", "speech": "Hi", "content_index": 0, "final": False},
            inf=U1,
        ),
        w("conversation.user.stopped_speaking", inf=U1),  # 13
        w(
            "conversation.stopped_speaking",  # 14 other form
            {"role": "user", "duration": 1.0, "interrupted": False},
            inf=U1,
        ),
        w("conversation.utterance", {"role": "user", "speech": "Hi there"}, inf=U1),  # 15
        w("conversation.utterance", {"role": "pal", "speech": reply}, inf=P1),  # 16
        w("conversation.utterance", {"role": "replica", "speech": reply}, inf=P1),  # 17 twin
        w("conversation.replica.started_speaking", inf=P1),  # 18
        w("conversation.started_speaking", {"role": "pal"}, inf=P1),  # 19 other form
        w("conversation.started_speaking", {"role": "replica"}, inf=P1),  # 20 twin
        *[
            w(
                "conversation.utterance.streaming",  # 21, 22 (twins), 23, 24 (twins)
                {"role": role, "speech": text, "content_index": i, "final": i == 1},
                inf=P1,
            )
            for i, text in enumerate(("Hello!", reply))
            for role in ("pal", "replica")
        ],
        w("conversation.replica.stopped_speaking", stop, inf=P1),  # 25
        w("conversation.stopped_speaking", {"role": "pal", **stop}, inf=P1),  # 26 other form
        w("conversation.stopped_speaking", {"role": "replica", **stop}, inf=P1),  # 27 twin
    ]


CLEAN_TURN = [
    ("accepted", "conversation.user.started_speaking"),
    ("user_turn", True),
    ("accepted", "conversation.utterance.streaming"),
    ("transcript", "Hi", False),
    ("accepted", "conversation.user.stopped_speaking"),
    ("user_turn", False),
    ("accepted", "conversation.utterance"),
    ("transcript", "Hi there", True),
    ("utterance", "user", "Hi there", 3),
    ("accepted", "conversation.utterance"),
    ("utterance", "pal", "Hello! How can I help?", 3),
    ("accepted", "conversation.replica.started_speaking"),
    ("speaking", True),
    ("accepted", "conversation.utterance.streaming"),
    ("accepted", "conversation.utterance.streaming"),
    ("utterance", "pal", "Hello! How can I help?", 3, "spoken"),
    ("accepted", "conversation.replica.stopped_speaking"),
    ("speaking", False),
    ("turn", 3),
]


def test_clean_turn_gives_one_effect_per_transition_and_completes_the_turn():
    conn = make()
    out = [e for m in turn_log() for e in conn.receive(m, sender_id=REPLICA, now=0.0)]
    assert render(out) == CLEAN_TURN
    record = out[-1].turn
    assert (record.user_text, record.replica_spoken_text) == ("Hi there", "Hello! How can I help?")
    assert [(s.role, s.open) for s in record.spans] == [("user", False), ("pal", False)]


def test_chaotic_delivery_of_the_same_turn_gives_the_same_effects_and_record():
    params = {"reorder_window_ms": 250, "bot_speaking_interval_s": 10.0}
    clean = make(**params)
    log = turn_log()
    clean_out = [e for m in log for e in clean.receive(m, sender_id=REPLICA, now=0.0)]

    conn = make(**params)
    by_seq = {m["seq"]: m for m in log}
    out: list = []

    def deliver(*seqs: int, now: float) -> list[tuple]:
        got = [e for s in seqs for e in conn.receive(by_seq[s], sender_id=REPLICA, now=now)]
        out.extend(got)
        return render(got)

    def tick(now: float) -> list[tuple]:
        assert conn.next_deadline() == now  # the reorder window of the oldest held event
        got = conn.tick(now=now)
        out.extend(got)
        return render(got)

    assert deliver(10, 11, 12, now=0.0) == CLEAN_TURN[:4]
    assert deliver(14, now=0.0) == []  # seq 13 missing: 14 held
    assert deliver(13, now=0.0) == CLEAN_TURN[4:6]  # the gap filled later: 13, then 14
    assert deliver(13, 15, 15, now=0.0) == CLEAN_TURN[6:9]  # duplicate seqs add nothing
    assert deliver(16, 18, now=0.0) == CLEAN_TURN[9:11]  # 17 missing: 18 held
    assert tick(0.25) == CLEAN_TURN[11:13]  # 17 given up: 18 released
    assert deliver(17, now=0.5) == []  # the late replica twin of the utterance
    assert deliver(20, 22, 21, now=0.5) == []  # 19 missing: 20-22 held
    assert tick(0.75) == CLEAN_TURN[13:14]  # 19 given up: 20 (twin) and 22 (twin) dropped
    assert deliver(24, 23, now=1.0) == CLEAN_TURN[14:16]
    assert deliver(27, 26, 25, 25, now=1.0) == CLEAN_TURN[16:]
    # The other form of the start, arriving after the stop, does not start a new span.
    assert deliver(19, now=1.25) == []
    assert (conn.speaking, conn.next_deadline(), conn.orderer.stats["late"]) == (False, None, 2)

    assert render(out) == render(clean_out)
    assert render(out).count(("speaking", True)) == render(out).count(("speaking", False)) == 1
    assert out[-1].turn.summary() == clean_out[-1].turn.summary()


# --- 2. barge-in and local interrupts ---------------------------------------------------


def test_barge_in_reported_by_tavus_is_one_interruption_and_is_not_sent_back():
    conn = ready(make(), w := Wire(seq=1))
    assert speak(conn, w) == [
        ("accepted", "conversation.replica.started_speaking"),
        ("speaking", True),
    ]
    stop = {"interrupted": True, "duration": 0.9}
    barge = [
        w("conversation.user.started_speaking", inf=U2, turn=4),
        w(
            "conversation.utterance.streaming",
            {"role": "pal", "speech": "Sure, our", "content_index": 2, "final": True}
            | {"is_interrupted": True},
            inf=P1,
        ),
        w("conversation.stopped_speaking", {"role": "pal", **stop}, inf=P1),
        w("conversation.replica.stopped_speaking", stop, inf=P1),
    ]
    out = [e for m in barge for e in conn.receive(m, sender_id=REPLICA, now=2.0)]
    assert render(out) == [
        ("accepted", "conversation.user.started_speaking"),
        ("user_turn", True),
        ("accepted", "conversation.utterance.streaming"),
        ("utterance", "pal", "Sure, our", 3, "spoken", "interrupted"),
        ("interrupted", 3, P1, True),
        ("accepted", "conversation.stopped_speaking"),
        ("speaking", False),
        ("turn", 3),
    ]
    assert conn.ledger.get(3).replica_interrupted is True
    # The pipeline's own InterruptionFrame comes back as a local interrupt: not sent.
    assert conn.interrupt(now=2.1) == []
    assert (conn.stats["interrupt_skipped_remote"], conn.stats["interrupt_skipped_idle"]) == (1, 0)
    assert render(conn.interrupt(now=5.0, force=True)) == [
        ("transmit", "conversation.interrupt", None)
    ]
    assert conn.stats["conversation.interrupt"] == 1


def test_local_interrupt_while_the_replica_speaks_sends_one_urgent_interrupt():
    conn = ready(make(), w := Wire(seq=1))
    speak(conn, w)
    out = conn.interrupt(now=1.5)
    assert render(out) == [("transmit", "conversation.interrupt", None)]
    assert (out[0].urgent, out[0].participant_id) == (True, None)
    assert conn.stats["interrupt_skipped_remote"] == 0


def test_local_interrupt_with_nothing_playing_sends_nothing():
    conn = ready(make(), Wire(seq=1))  # a clock that starts at 0, as time is just numbers
    assert conn.echo_in_flight(now=0.5) is False  # nothing was ever echoed
    assert conn.interrupt(now=0.5) == []
    assert conn.stats["interrupt_skipped_idle"] == 1


# --- 3. tool calls and the delivery policies ----------------------------------------------

RESULT = {"temp_c": 21}
RESULT_TEXT = json.dumps(RESULT)
APPEND = ("transmit", "conversation.append_llm_context")
CONTEXT = {"context": f"Result of tool get_weather: {RESULT_TEXT}"}
NUDGE = ("transmit", "conversation.respond")
NUDGE_TEXT = {"text": "The get_weather lookup finished; please tell me what it found."}
TOOL_RESULT = {"tool_call_id": "tc_1", "output": RESULT_TEXT, "status": "success"}


def wire_size(message: dict) -> int:
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())


BIG = " ".join(f"word{k}" for k in range(300))  # ~2.4 KB: over a 512-byte cap


def tool_call(w: Wire, call_id: str | None = "tc_1", args: str = '{"city": "Paris"}', **kw):
    props = {"name": "get_weather", "arguments": args}
    if call_id is not None:
        props["tool_call_id"] = call_id
    return w("conversation.tool_call", props, inf=P1, **kw)


def asked(policy: str = "auto", **params: Any) -> tuple[TavusConnection, Wire]:
    """A ready connection where the user of turn 5 asked for the weather."""
    conn = ready(make(tool_result_delivery=policy, **params), w := Wire(seq=1, turn=5))
    user = w("conversation.utterance", {"role": "user", "speech": "Weather in Paris?"}, inf=U1)
    assert recv(conn, user, 1.0)[-1] == ("utterance", "user", "Weather in Paris?", 5)
    return conn, w


def calls(conn: TavusConnection, turn: int = 5) -> list[tuple]:
    return [
        (c.name, c.tool_call_id, c.status, c.delivery) for c in conn.ledger.get(turn).tool_calls
    ]


TR = ("transmit", "conversation.tool_result", TOOL_RESULT)
AR = [(*APPEND, CONTEXT), (*NUDGE, NUDGE_TEXT)]
ECHOED = ("transmit", "conversation.echo", {"modality": "text", "text": RESULT_TEXT, "done": True})
RESPONDED = (*NUDGE, {"text": f"get_weather returned: {RESULT_TEXT}"})


@pytest.mark.parametrize(
    ("policy", "call_id", "delivery", "sent"),
    [
        ("auto", "tc_1", "tool_result", [TR]),
        ("auto", None, "append_and_respond", AR),  # legacy: no tool_call_id
        ("tool_result", None, "append_and_respond", AR),  # nothing to pair a result with
        ("tool_result", "tc_1", "tool_result", [TR]),
        ("append", "tc_1", "append", [(*APPEND, CONTEXT)]),
        ("append_and_respond", "tc_1", "append_and_respond", AR),
        ("echo", "tc_1", "echo", [ECHOED]),
        ("respond", "tc_1", "respond", [RESPONDED]),
        ("none", "tc_1", "none", []),
    ],
)
def test_tool_result_goes_back_by_each_delivery_policy(policy, call_id, delivery, sent):
    conn, w = asked(policy)
    run_id = call_id or "tavus-call-1"  # a legacy call without id gets one of ours
    assert recv(conn, tool_call(w, call_id), 1.5) == [
        ("accepted", "conversation.tool_call"),
        ("run_tool", "get_weather", run_id),
    ]
    assert render(conn.tool_finished(run_id, status="success", result=RESULT, now=2.0)) == sent
    assert calls(conn) == [("get_weather", run_id, "success", delivery)]
    assert conn.ledger.get(5).tool_calls[0].result == RESULT


def test_a_result_after_a_newer_user_turn_is_only_appended():
    conn, w = asked()
    assert recv(conn, tool_call(w), 1.5)[-1] == ("run_tool", "get_weather", "tc_1")
    newer = w("conversation.utterance", {"role": "user", "speech": "Never mind"}, turn=6)
    assert recv(conn, newer, 2.0) == [
        ("accepted", "conversation.utterance"),
        ("transcript", "Never mind", True),
        ("utterance", "user", "Never mind", 6),
        ("turn", 5),  # superseded
    ]
    assert render(conn.tool_finished("tc_1", status="success", result=RESULT, now=3.0)) == [
        (*APPEND, CONTEXT)
    ]
    assert calls(conn) == [("get_weather", "tc_1", "success", "stale_append")]
    assert conn.stats["tool_results_stale"] == 1


def test_a_result_too_large_for_tool_result_is_appended_in_pieces_with_a_short_note():
    conn, w = asked(max_message_bytes=512)
    recv(conn, tool_call(w), 1.5)
    out = conn.tool_finished("tc_1", status="success", result=BIG, now=2.0)
    rendered = render(out)
    assert len(rendered) >= 4
    assert [r[:2] for r in rendered[:-1]] == [APPEND] * (len(rendered) - 1)
    assert "".join(r[2]["context"] for r in rendered[:-1]) == f"Result of tool get_weather: {BIG}"
    assert rendered[-1] == (
        "transmit",
        "conversation.tool_result",
        {"tool_call_id": "tc_1", "output": APPENDED_NOTE, "status": "success"},
    )
    assert all(wire_size(e.message) <= 512 for e in out)
    assert calls(conn) == [("get_weather", "tc_1", "success", "tool_result_appended")]


def test_a_long_echoed_result_is_one_utterance_done_only_on_its_last_piece():
    conn, w = asked("echo", max_message_bytes=512)
    recv(conn, tool_call(w), 1.5)
    out = conn.tool_finished("tc_1", status="success", result=BIG, now=2.0)
    props = [p for _, event_type, p in render(out) if event_type == "conversation.echo"]
    assert len(props) == len(out) >= 3
    assert len({p["inference_id"] for p in props}) == 1
    assert [p["done"] for p in props] == [False] * (len(props) - 1) + [True]
    assert "".join(p["text"] for p in props) == BIG
    assert all(wire_size(e.message) <= 512 for e in out)
    assert calls(conn) == [("get_weather", "tc_1", "success", "echo")]


def error_result(text: str) -> list[tuple]:
    props = {"tool_call_id": "tc_1", "output": text, "status": "error"}
    return [("transmit", "conversation.tool_result", props)]


def test_an_error_outcome_goes_back_as_an_error_tool_result():
    conn, w = asked()
    recv(conn, tool_call(w), 1.5)
    out = conn.tool_finished("tc_1", status="error", error="service down", now=2.0)
    assert render(out) == error_result("service down")
    call = conn.ledger.get(5).tool_calls[0]
    assert (call.status, call.error, call.delivery) == ("error", "service down", "tool_result")


def test_invalid_json_arguments_give_a_call_that_carries_its_error():
    conn, w = asked()
    out = conn.receive(tool_call(w, args='{"city": "Par'), sender_id=REPLICA, now=1.5)
    assert render(out) == [
        ("accepted", "conversation.tool_call"),
        ("run_tool", "get_weather", "tc_1"),
    ]
    call = out[1].call
    assert call.error is not None and call.error.startswith("invalid arguments for get_weather")
    assert call.arguments == {}
    # The driver runs no handler and reports that error as the outcome.
    out = conn.tool_finished("tc_1", status="error", error=call.error, now=2.0)
    assert render(out) == error_result(call.error)
    assert calls(conn) == [("get_weather", "tc_1", "error", "tool_result")]


def test_a_repeated_tool_call_runs_once():
    conn, w = asked()
    first = tool_call(w)
    assert recv(conn, first, 1.5)[-1] == ("run_tool", "get_weather", "tc_1")
    assert recv(conn, {**first, "seq": w.seq}, 1.6) == []  # re-delivered under a new seq
    legacy = {k: v for k, v in tool_call(w, None).items() if k not in ("seq", "turn_idx")}
    assert recv(conn, legacy, 1.7)[-1] == ("run_tool", "get_weather", "tavus-call-1")
    assert recv(conn, legacy, 1.8) == [("accepted", "conversation.tool_call")]
    assert conn.stats["tool_call_repeats"] == 1
    assert [c[1] for c in calls(conn)] == ["tc_1", "tavus-call-1"]


# --- 4. the held queue ---------------------------------------------------------------------


def test_sends_before_the_replica_joins_are_held_and_released_in_order():
    conn = make()
    assert conn.send(ix.Respond("first"), now=1.0) == []
    assert conn.send(ix.AppendLLMContext("second"), now=1.5) == []
    assert conn.start(now=2.0) == []  # the transport alone is not enough
    assert conn.next_deadline() == 16.0  # first held + ready_timeout_s
    joined = Wire()("system.replica_joined", {"replica_id": "r1"})
    assert recv(conn, joined, 3.0) == [
        ("accepted", "system.replica_joined"),
        ("transmit", "conversation.respond", {"text": "first"}),
        ("transmit", "conversation.append_llm_context", {"context": "second"}),
        ("joined",),
    ]
    assert conn.next_deadline() is None
    assert render(conn.send(ix.Respond("third"), now=4.0)) == [
        ("transmit", "conversation.respond", {"text": "third"})
    ]


def test_held_sends_fail_together_when_the_replica_never_joins():
    conn = make()
    conn.start(now=0.0)
    assert conn.send(ix.Respond("first"), now=1.0) == []
    assert conn.send(ix.AppendLLMContext("second"), now=4.0) == []
    assert conn.next_deadline() == 16.0
    assert conn.tick(now=15.5) == []
    assert render(conn.tick(now=16.0)) == [
        ("send_failed", "conversation.respond", "ReplicaNotReadyError", False),
        ("send_failed", "conversation.append_llm_context", "ReplicaNotReadyError", True),
    ]
    assert conn.next_deadline() is None


def test_overflowing_the_held_queue_fails_at_once_and_reports_once():
    conn = make(max_pending=2)
    assert conn.send(ix.Respond("one"), now=1.0) == []
    assert conn.send(ix.Respond("two"), now=1.0) == []
    assert render(conn.send(ix.Respond("three"), now=1.0)) == [
        ("send_failed", "conversation.respond", "ReplicaNotReadyError", True)
    ]
    assert render(conn.send(ix.Respond("four"), now=1.0)) == [
        ("send_failed", "conversation.respond", "ReplicaNotReadyError", False)
    ]
    conn.start(now=2.0)
    sent = recv(conn, Wire()("system.replica_joined"), 3.0)
    assert [s[2] for s in sent if s[0] == "transmit"] == [{"text": "one"}, {"text": "two"}]


# --- 5. the replica leaving mid-span ---------------------------------------------------------


def test_replica_leaving_while_speaking_stops_the_span_then_leaves():
    conn = ready(make(), w := Wire(seq=1))
    speak(conn, w)
    assert render(conn.participant_left(REPLICA, now=2.0)) == [
        ("speaking", False),
        ("turn", 3),
        ("left", "participant_left", False),
    ]
    assert (conn.speaking, conn.ready, conn.next_deadline()) == (False, False, None)
    assert [(s.role, s.open) for s in conn.ledger.get(3).spans] == [("pal", False)]
    assert conn.participant_left(REPLICA, now=3.0) == []


def test_heartbeat_loss_while_speaking_stops_the_span_then_leaves():
    conn = make(heartbeat_timeout_s=2.0, bot_speaking_interval_s=10.0)
    conn.start(now=0.0)
    w = Wire(seq=1)
    assert recv(conn, w("system.replica_present", {"attempt": 1}), 0.5) == [
        ("accepted", "system.replica_present"),
        ("joined",),  # the first heartbeat says the replica is there
    ]
    speak(conn, w)
    assert conn.next_deadline() == 3.0  # last message + heartbeat_timeout_s
    beat = recv(conn, w("system.replica_present", {"attempt": 2}), 1.5)
    assert beat == [("accepted", "system.replica_present")]
    assert (conn.next_deadline(), conn.tick(now=3.25)) == (3.5, [])  # alive: still speaking
    assert render(conn.tick(now=3.501)) == [
        ("speaking", False),
        ("turn", 3),
        ("left", "heartbeat_lost", False),
    ]
    assert (conn.speaking, conn.ready, conn.next_deadline()) == (False, False, None)
    assert conn.ledger.get(3).spans[0].open is False


# --- 6. sender checks ----------------------------------------------------------------------


def test_a_tavus_message_from_another_participant_is_dropped():
    conn = ready(make(), w := Wire(seq=1))
    fake = tool_call(w)
    assert recv(conn, fake, 1.0, sender=BROWSER) == [("protocol_error", "foreign_sender")]
    assert conn.stats["dropped_foreign_sender"] == 1
    assert conn.tools.pending == 0 and conn.ledger.current_turn_idx is None


def test_a_non_tavus_app_message_is_not_ours():
    conn = ready(make(), Wire(seq=1))
    assert recv(conn, {"type": "chat", "text": "hi"}, 1.0, sender=BROWSER) is None
    assert recv(conn, '{"type": "chat"}', 1.0, sender=None) is None


UTTERANCE = {"message_type": "conversation", "event_type": "conversation.utterance"}
HI = {"role": "user", "speech": "hi"}
TOOL_CALL = {"message_type": "conversation", "event_type": "conversation.tool_call"}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ('{"event_type": "conversation.utterance", ', "bad_json"),
        (TOOL_CALL | {"conversation_id": CID, "properties": {"arguments": "{}"}}, "missing_field"),
        (UTTERANCE | {"conversation_id": "c9", "properties": HI}, "other_conversation"),
    ],
)
def test_malformed_or_foreign_conversation_messages_are_reported(message, reason):
    conn = ready(make(), Wire(seq=1))
    assert recv(conn, message, 1.0) == [("protocol_error", reason)]
    assert conn.stats[f"dropped_{reason}"] == 1


# --- 7. our own respond coming back ----------------------------------------------------------


def test_our_respond_coming_back_is_an_injected_utterance_without_transcript():
    conn = ready(make(), w := Wire(seq=1, turn=4))
    sent = conn.send(ix.Respond("What are your pricing plans?"), now=1.0)
    assert render(sent) == [
        ("transmit", "conversation.respond", {"text": "What are your pricing plans?"})
    ]
    back = w("conversation.utterance", {"role": "user", "speech": " what are your  PRICING plans?"})
    assert recv(conn, back, 1.5) == [
        ("accepted", "conversation.utterance"),
        ("utterance", "user", " what are your  PRICING plans?", 4, "injected"),
    ]
    assert conn.ledger.get(4).user_injected is True
    # Only once: the user really saying it next turn is the user's.
    again = w("conversation.utterance", {"role": "user", "speech": "What are your pricing plans?"})
    assert recv(conn, {**again, "turn_idx": 5}, 2.0) == [
        ("accepted", "conversation.utterance"),
        ("transcript", "What are your pricing plans?", True),
        ("utterance", "user", "What are your pricing plans?", 5),
        ("turn", 4),
    ]


# --- 8. speaking ticks --------------------------------------------------------------------------


def test_speaking_ticks_while_the_replica_speaks_and_stop_after():
    conn = ready(make(bot_speaking_interval_s=0.25), w := Wire(seq=1))
    assert conn.next_deadline() is None
    speak(conn, w, 10.0)
    assert conn.next_deadline() == 10.25
    assert conn.tick(now=10.125) == []
    assert render(conn.tick(now=10.25)) == [("tick",)]
    assert conn.next_deadline() == 10.5
    assert render(conn.tick(now=10.5)) == [("tick",)]
    stop = w("conversation.replica.stopped_speaking", {"duration": 0.6}, inf=P1)
    assert recv(conn, stop, 10.625) == [
        ("accepted", "conversation.replica.stopped_speaking"),
        ("speaking", False),
        ("turn", 3),
    ]
    assert conn.next_deadline() is None
    assert conn.tick(now=10.75) == []


# --- the clock contract: tick at next_deadline() does what is due ------------------------------


def _held_event(conn: TavusConnection, w: Wire) -> None:
    w.seq += 1  # one seq lost: the next event waits for the reorder window
    speak(conn, w)


@pytest.mark.parametrize(
    ("setup", "due"),
    [
        (_held_event, 1.25),  # the reorder window (250 ms)
        (speak, 1.5),  # bot_speaking_interval_s
        (lambda c, w: recv(c, w("system.replica_present", {"attempt": 2}), 1.0), 3.0),
    ],
)
def test_tick_at_next_deadline_does_the_work_that_is_due(setup, due):
    params = {"reorder_window_ms": 250, "bot_speaking_interval_s": 0.5, "heartbeat_timeout_s": 2}
    conn = make(**params)
    conn.start(now=0.0)
    recv(conn, (w := Wire())("system.replica_present", {"attempt": 1}), 0.5)
    setup(conn, w)
    assert conn.next_deadline() == due
    assert conn.tick(now=due) != []
    assert conn.next_deadline() != due  # else a driver on a stepped clock spins here


# --- every tool call is answered exactly once, whatever its result ---------------------------

_circular: list = []
_circular.append(_circular)
_deep: list = []
_cursor = _deep
for _ in range(5000):
    _cursor.append([])
    _cursor = _cursor[0]


@pytest.mark.parametrize(
    "result",
    [{1, 2}, b"\xff", object(), _circular, _deep, "lone \ud800 surrogate"],
    ids=["set", "bytes", "object", "circular", "5000-deep", "surrogate"],
)
def test_a_result_that_cannot_be_sent_is_answered_once_with_an_error(result):
    conn = make()
    w = Wire()
    ready(conn, w)
    call = w("conversation.tool_call", {"name": "f", "arguments": "{}", "tool_call_id": "t1"})
    assert recv(conn, call, 1.0)[-1] == ("run_tool", "f", "t1")
    out = render(conn.tool_finished("t1", status="success", result=result, now=2.0))
    error = {
        "tool_call_id": "t1",
        "output": "the tool's result could not be sent",
        "status": "error",
    }
    assert out == [("transmit", "conversation.tool_result", error)]
    (record,) = conn.ledger.get(3).tool_calls
    assert record.status == "error" and record.error.startswith("the tool's result could not")
    assert conn.stats["tool_results_unsendable"] == 1
    # Settled once: a second outcome for the same call changes nothing.
    assert conn.tool_finished("t1", status="success", result="late", now=3.0) == []
