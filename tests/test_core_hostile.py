"""Hostile and drifting input through the conversation core (issue "Hardening", inbound).

Each test is a defect that was reproduced on the code before the fix: one bad value from the
wire must never poison the rest of the conversation, and nothing is dropped silently.
"""

from __future__ import annotations

import time

import pytest
from test_core_connection import (
    P1,
    REPLICA,
    TR,
    U1,
    Wire,
    asked,
    calls,
    make,
    ready,
    recv,
    render,
    speak,
    tool_call,
)

RESULT = {"temp_c": 21}


# --- turn_idx: the conversation's own order, not the raw number ---------------------------


@pytest.mark.parametrize("absurd", [2**63, 1e300, -(2**40), 10**6])
def test_one_absurd_turn_idx_does_not_make_later_results_stale(absurd):
    conn, w = asked()
    junk = w("conversation.utterance.streaming", {"role": "pal", "speech": "x"}, inf=P1)
    junk["turn_idx"] = absurd
    assert recv(conn, junk, 1.2)[0] == ("accepted", "conversation.utterance.streaming")
    # The call of the real current turn is answered as a tool_result, not appended as stale.
    assert recv(conn, tool_call(w), 1.5)[-1] == ("run_tool", "get_weather", "tc_1")
    sent = render(conn.tool_finished("tc_1", status="success", result=RESULT, now=2.0))
    assert sent == [TR]
    assert calls(conn) == [("get_weather", "tc_1", "success", "tool_result")]
    # The next turn is an ordinary new turn, and its tool call is not stale either.
    nxt = w("conversation.utterance", {"role": "user", "speech": "And Rome?"}, inf=U1, turn=6)
    assert ("turn", 5) in recv(conn, nxt, 3.0)
    assert recv(conn, tool_call(w, "tc_2", turn=6), 3.5)[-1] == ("run_tool", "get_weather", "tc_2")
    assert render(conn.tool_finished("tc_2", status="success", result=RESULT, now=4.0))[0][1] == (
        "conversation.tool_result"
    )
    assert conn.ledger.turn_idx_ignored == 1


def test_a_turn_idx_restart_becomes_a_new_turn_numbering():
    conn, w = asked()
    w.turn = 40
    recv(conn, _user(w, "turn forty"), 1.8)
    out = []
    for k in range(3):  # a restarted replica numbers its turns from 0 again
        msg = w("conversation.utterance", {"role": "user", "speech": f"hello {k}"}, turn=0)
        out += recv(conn, msg, 2.0 + k) or []
    assert ("turn", 40) in out  # the old turn completed once the restart was clear
    assert conn.ledger.current_turn_idx == 0
    assert recv(conn, tool_call(w, "tc_9", turn=0), 6.0)[-1] == ("run_tool", "get_weather", "tc_9")
    sent = render(conn.tool_finished("tc_9", status="success", result=RESULT, now=7.0))
    assert sent[0][1] == "conversation.tool_result"  # not stale: the current turn's call


# --- seq restarts ---------------------------------------------------------------------------


def _user(w: Wire, text: str, **kw):
    return w("conversation.utterance", {"role": "user", "speech": text}, inf=U1, **kw)


def test_a_seq_restart_by_a_little_is_a_new_counter_not_duplicates():
    conn = ready(make(), w := Wire(seq=500, turn=3))
    for k in range(5):
        recv(conn, _user(w, f"before {k}"), 1.0)
    w.seq = 499  # a new replica session counts again from just below, stamped later

    def later(text: str) -> dict:
        msg = _user(w, text, turn=1)
        msg["timestamp"] += 600.0
        return msg

    got = recv(conn, later("after restart"), 2.0)
    assert ("utterance", "user", "after restart", 1) in got
    assert recv(conn, later("and on"), 2.1)[-1] == ("utterance", "user", "and on", 1)
    assert recv(conn, later("still on"), 2.2)[-1] == ("utterance", "user", "still on", 1)
    assert conn.orderer.stats["restarts"] == 1
    assert conn.orderer.stats["duplicate_seq"] == 0


def test_the_replica_joining_again_starts_a_new_seq_counter():
    params = {"replica_participant_id": None, "replica_user_name": "tavus-replica"}
    conn = make(**params)
    conn.start(now=0.0)
    w = Wire(seq=100, turn=3)
    conn.participant_joined(_named(REPLICA), now=0.5)
    recv(conn, _user(w, "one"), 1.0)
    conn.participant_left(REPLICA, now=1.5)
    conn.participant_joined(_named(REPLICA), now=1.8)
    w.seq = 3
    joined = w("system.replica_joined", {"replica_id": "r2"})
    got = recv(conn, joined, 2.0)
    assert got[:2] == [("turn", 3), ("accepted", "system.replica_joined")]
    assert recv(conn, _user(w, "two", turn=1), 2.1)[-1] == ("utterance", "user", "two", 1)


def test_a_reordered_replica_joined_is_late_not_a_restart():
    conn = make()
    conn.start(now=0.0)
    w = Wire(seq=10)
    joined = w("system.replica_joined", {"replica_id": "r1"})
    first = _user(w, "hi")
    recv(conn, first, 1.0)
    assert ("joined",) in recv(conn, joined, 1.1)
    assert conn.orderer.stats["restarts"] == 0


def test_a_real_copy_of_a_seq_is_still_a_duplicate():
    conn = ready(make(), w := Wire(seq=10, turn=3))
    msg = _user(w, "hi")
    recv(conn, msg, 1.0)
    recv(conn, _user(w, "more"), 1.1)
    assert recv(conn, dict(msg), 1.2) == []
    assert conn.orderer.stats["duplicate_seq"] == 1
    assert conn.orderer.stats["restarts"] == 0


# --- field-level leniency --------------------------------------------------------------------


def test_a_stop_with_a_bad_duration_still_stops_the_replica():
    conn = ready(make(), w := Wire(seq=1))
    speak(conn, w)
    stop = w("conversation.replica.stopped_speaking", {"duration": "1.25x"}, inf=P1)
    got = recv(conn, stop, 2.0)
    assert ("protocol_error", "bad_field") in got
    assert ("speaking", False) in got
    assert conn.speaking is False
    assert conn.stats["field_dropped_duration"] == 1
    assert conn.ledger.get(3).spans[-1].open is False
    recv(conn, w("conversation.replica.started_speaking", inf="p2"), 3.0)
    recv(conn, w("conversation.replica.stopped_speaking", {"duration": "1.5"}, inf="p2"), 4.0)
    assert conn.ledger.get(3).spans[-1].duration == 1.5  # a number sent as text is read


def test_a_role_agnostic_stop_without_role_stops_the_one_speaking():
    conn = ready(make(), w := Wire(seq=1))
    speak(conn, w)
    got = recv(conn, w("conversation.stopped_speaking", {}, inf=P1), 2.0)
    assert ("speaking", False) in got
    assert conn.speaking is False
    # With nobody speaking, a role-less start is ambiguous: reported, not guessed.
    got = recv(conn, w("conversation.stopped_speaking", {}, inf=P1), 3.0)
    assert got[-1] == ("protocol_error", "missing_field")


def test_an_utterance_with_speech_null_and_an_unknown_role_are_kept_and_counted():
    conn = ready(make(), w := Wire(seq=1))
    got = recv(conn, w("conversation.utterance", {"role": "pal", "speech": None}, inf=P1), 1.0)
    assert ("utterance", "pal", "", 3) in got
    got = recv(conn, w("conversation.utterance", {"role": "narrator", "speech": "hm"}), 1.1)
    assert ("accepted", "conversation.utterance") in got  # surfaced as an unknown event
    assert conn.stats["field_dropped_speech"] == 1
    assert conn.stats["field_dropped_role"] == 1


def test_an_interrupted_utterance_is_modelled():
    conn = ready(make(), w := Wire(seq=1))
    effects = conn.receive(
        w("conversation.utterance", {"role": "pal", "speech": "Hel", "interrupted": True}, inf=P1),
        sender_id=REPLICA,
        now=1.0,
    )
    assert effects[0].event.interrupted is True


# --- memory and cost --------------------------------------------------------------------------


def test_a_turn_keeps_bounded_text_however_much_arrives():
    from pipecat_tavus_interactions.core.turns import MAX_TURN_TEXT

    conn = ready(make(), w := Wire(seq=1))
    for k in range(200):
        recv(conn, _user(w, "x" * 4000 + str(k)), 1.0)
        recv(
            conn,
            w("conversation.utterance", {"role": "pal", "speech": "y" * 4000}, inf=f"i{k}"),
            1.0,
        )
    record = conn.ledger.get(3)
    assert len(record.user_text) <= MAX_TURN_TEXT
    assert len(record.replica_intended_text) <= MAX_TURN_TEXT


def _cost_per_call(n: int) -> float:
    conn, w = asked()
    start = time.process_time()
    for k in range(n):
        recv(conn, tool_call(w, f"tc_{k}"), 1.5)
        conn.tool_finished(f"tc_{k}", status="success", result=RESULT, now=2.0)
    return (time.process_time() - start) / n


def test_per_call_ledger_work_does_not_grow_with_the_calls_in_a_turn():
    # Was quadratic: 1,000 calls in a turn delayed the next utterance by 1.1 s.
    small, large = _cost_per_call(200), _cost_per_call(3000)
    assert large < small * 3, (small, large)


def test_streaming_snapshots_cost_the_same_however_many_came_before():
    conn = ready(make(), w := Wire(seq=1))

    def snap(k: int, inf: str) -> dict:
        props = {"role": "pal", "speech": f"w{k}", "content_index": k, "final": False}
        return w("conversation.utterance.streaming", props, inf=inf)

    def cost(n: int, offset: int) -> float:
        start = time.process_time()
        for k in range(n):
            conn.receive(snap(offset + k, f"inf-{offset + k}"), sender_id=REPLICA, now=1.0)
        return (time.process_time() - start) / n

    first = cost(300, 0)
    for k in range(300, 5000):
        conn.receive(snap(k, f"inf-{k}"), sender_id=REPLICA, now=1.0)
    later = cost(300, 5000)
    assert later < first * 3, (first, later)


# --- identity ---------------------------------------------------------------------------


def _named(pid: str, name: str = "tavus-replica") -> dict:
    return {"id": pid, "info": {"userId": "", "userName": name}}


def test_the_replica_does_not_move_to_a_second_participant_with_its_name():
    conn = make(replica_participant_id=None, replica_user_name="tavus-replica")
    assert conn.participant_joined(_named("real"), now=0.0) == []
    got = render(conn.participant_joined(_named("impostor"), now=1.0))
    assert got == [("protocol_error", "second_replica")]
    assert conn.replica_participant_id == "real"
    w = Wire(seq=1)
    forged = tool_call(w, "tc_x")
    assert recv(conn, forged, 1.5, sender="impostor") == [("protocol_error", "foreign_sender")]
    # Once the real replica has left, a newcomer with the name may take its place.
    conn.participant_left("real", now=2.0)
    assert conn.participant_joined(_named("impostor"), now=3.0) == []
    assert conn.replica_participant_id == "impostor"


def test_the_replica_leaving_mid_utterance_closes_its_span_once():
    conn = ready(make(bot_speaking_interval_s=0.2), w := Wire(seq=1))
    speak(conn, w, 1.0)
    got = render(conn.participant_left(REPLICA, now=1.5))
    assert got.count(("speaking", False)) == 1
    assert conn.next_deadline() is None  # no more BotSpeakingFrame ticks
    assert render(conn.tick(now=5.0)) == []


def test_a_turn_keeps_at_most_max_turn_tool_calls_records_and_answers_every_call():
    from pipecat_tavus_interactions.core.ledger_calls import MAX_TURN_TOOL_CALLS

    conn, w = asked()
    answered = 0
    for k in range(MAX_TURN_TOOL_CALLS + 200):
        recv(conn, tool_call(w, f"tc_{k}"), 1.5)
        sent = render(conn.tool_finished(f"tc_{k}", status="success", result=RESULT, now=2.0))
        answered += sum(1 for e in sent if e[1] == "conversation.tool_result")
    assert answered == MAX_TURN_TOOL_CALLS + 200
    assert len(conn.ledger.get(5).tool_calls) == MAX_TURN_TOOL_CALLS
    assert conn.ledger.tool_calls_unrecorded == 200
