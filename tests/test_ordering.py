"""EventOrderer: seq re-ordering, gap windows, duplicates, twins and speaking forms."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from pipecat_tavus_interactions import events as ev
from pipecat_tavus_interactions.core.ordering import EventOrderer
from pipecat_tavus_interactions.protocol import parse_message

CONV = "c123456"
INF_USER = "0b7c2e1a-5f4d-4a59-9d0e-1f6a2c3b4d5e"
INF_A = "83294d9f-8306-491b-a284-791f56c8383f"
INF_B = "5d1f0c3a-2b7e-4c8d-9a6f-3e2d1c0b9a87"
T0 = 1746000000.0


def msg(
    event_type: str,
    seq: int | None = None,
    *,
    turn: int | None = None,
    inf: str | None = None,
    ts: float | None = None,
    props: dict[str, Any] | None = None,
    message_type: str = "conversation",
) -> ev.Event:
    """Parse a realistic Tavus message with the real parser."""
    m: dict[str, Any] = {
        "message_type": message_type,
        "event_type": event_type,
        "conversation_id": CONV,
    }
    if inf is not None:
        m["inference_id"] = inf
    if seq is not None:
        m["seq"] = seq
    if turn is not None:
        m["turn_idx"] = turn
    if ts is not None:
        m["timestamp"] = ts
    if props is not None:
        m["properties"] = props
    return parse_message(m)


def utterance(seq, role, speech, *, turn=3, inf=INF_A):
    return msg(
        "conversation.utterance", seq, turn=turn, inf=inf, props={"role": role, "speech": speech}
    )


def streaming(seq, role, speech, index, *, final=False, interrupted=False, turn=3, inf=INF_A):
    props = {"role": role, "speech": speech, "content_index": index, "final": final}
    if interrupted:
        props["is_interrupted"] = True
    return msg("conversation.utterance.streaming", seq, turn=turn, inf=inf, props=props)


def replica_started(seq, *, turn=3, inf=INF_A):
    return msg("conversation.replica.started_speaking", seq, turn=turn, inf=inf)


def replica_stopped(seq, *, turn=3, inf=INF_A, interrupted=False, duration=2.5):
    props = {"duration": duration, "interrupted": interrupted}
    return msg("conversation.replica.stopped_speaking", seq, turn=turn, inf=inf, props=props)


def started(seq, role, *, turn=3, inf=INF_A):
    return msg("conversation.started_speaking", seq, turn=turn, inf=inf, props={"role": role})


def stopped(seq, role, *, turn=3, inf=INF_A, interrupted=False, duration=2.5):
    props = {"role": role, "interrupted": interrupted, "duration": duration}
    return msg("conversation.stopped_speaking", seq, turn=turn, inf=inf, props=props)


def heartbeat(seq=None, attempt=1):
    return msg("system.replica_present", seq, props={"attempt": attempt}, message_type="system")


def seqs(events: list[ev.Event]) -> list[int | None]:
    return [e.seq for e in events]


# --- ordering -------------------------------------------------------------------------


def test_in_order_events_pass_straight_through_without_holding():
    o = EventOrderer()
    for i in range(1, 51):
        e = utterance(i, "user", f"line {i}", turn=i)
        assert o.push(e, now=i * 0.01) == [e]
        assert o.next_deadline() is None
    stats = o.stats
    assert stats["released"] == 50
    assert stats["held"] == 0
    assert stats["gaps_released"] == 0
    assert stats["pending"] == 0


def test_first_seq_sets_the_baseline():
    o = EventOrderer()
    first = heartbeat(1000)
    assert o.push(first, 0.0) == [first]
    nxt = heartbeat(1001, attempt=2)
    assert o.push(nxt, 0.0) == [nxt]


def test_swapped_pair_is_reordered():
    o = EventOrderer(window_s=0.05)
    o.push(heartbeat(9), 0.0)
    second = utterance(11, "pal", "It is sunny.")
    first = utterance(10, "user", "What's the weather?")
    assert o.push(second, now=1.0) == []
    assert o.next_deadline() == pytest.approx(1.05)
    assert o.push(first, now=1.01) == [first, second]
    assert o.next_deadline() is None
    assert o.stats["held"] == 1
    assert o.stats["gaps_released"] == 0


def test_gap_is_released_after_the_window_by_poll():
    o = EventOrderer(window_s=0.05)
    o.push(heartbeat(1), 0.0)
    e3 = heartbeat(3, attempt=3)
    e4 = heartbeat(4, attempt=4)
    assert o.push(e3, now=10.0) == []
    assert o.push(e4, now=10.02) == []
    assert o.next_deadline() == pytest.approx(10.05)
    assert o.poll(10.049) == []
    assert o.poll(10.05) == [e3, e4]
    assert o.next_deadline() is None
    assert o.stats["gaps_released"] == 1
    # The missing seq turns up later: released at once, counted as late, and only once.
    e2 = heartbeat(2, attempt=2)
    assert o.push(e2, now=10.2) == [e2]
    assert o.stats["late"] == 1
    assert o.push(heartbeat(2, attempt=2), now=10.3) == []
    assert o.stats["duplicate_seq"] == 1
    # Ordering resumes after the gap.
    e5 = heartbeat(5, attempt=5)
    assert o.push(e5, now=10.4) == [e5]


def test_each_event_waits_at_most_the_window_across_two_gaps():
    o = EventOrderer(window_s=0.05)
    o.push(heartbeat(1), 0.0)
    e5 = heartbeat(5)
    e3 = heartbeat(3)
    assert o.push(e5, now=1.0) == []  # gap 2..4
    assert o.push(e3, now=1.03) == []  # gap 2 in front of 3, gap 4 in front of 5
    # Both gaps are due when the oldest held event (seq 5, held since 1.0) times out.
    assert o.poll(1.05) == [e3, e5]
    assert o.stats["gaps_released"] == 2


def test_a_filled_gap_releases_the_contiguous_run_only():
    o = EventOrderer(window_s=0.05)
    o.push(heartbeat(1), 0.0)
    e3, e4, e6 = heartbeat(3), heartbeat(4), heartbeat(6)
    for e in (e6, e4, e3):
        assert o.push(e, 0.0) == []
    e2 = heartbeat(2)
    assert o.push(e2, 0.01) == [e2, e3, e4]
    assert o.pending == 1
    e5 = heartbeat(5)
    assert o.push(e5, 0.02) == [e5, e6]
    assert o.stats["gaps_released"] == 0


def test_events_without_seq_pass_through_and_are_counted():
    o = EventOrderer()
    o.push(heartbeat(1), 0.0)
    o.push(heartbeat(3), 0.0)  # a gap is open
    no_seq = heartbeat(None, attempt=7)
    assert o.push(no_seq, 0.0) == [no_seq]
    assert o.stats["no_seq"] == 1


def test_flush_releases_everything_held_in_order():
    o = EventOrderer()
    o.push(heartbeat(1), 0.0)
    held = [heartbeat(7), heartbeat(4), heartbeat(5)]
    for e in held:
        assert o.push(e, 0.0) == []
    assert seqs(o.flush()) == [4, 5, 7]
    assert o.pending == 0
    assert o.next_deadline() is None
    assert o.stats["gaps_released"] == 2


def test_events_below_the_baseline_are_late_once():
    o = EventOrderer()
    o.push(heartbeat(100), 0.0)
    e99 = heartbeat(99)
    assert o.push(e99, 0.0) == [e99]
    assert o.push(heartbeat(99), 0.0) == []
    assert o.stats["late"] == 1
    assert o.stats["duplicate_seq"] == 1


def test_a_restarted_seq_counter_becomes_the_new_baseline():
    o = EventOrderer(restart_distance=1000)
    o.push(heartbeat(50_000), 0.0)
    held = heartbeat(50_002)
    assert o.push(held, 0.0) == []
    restarted = heartbeat(1)
    assert o.push(restarted, 0.0) == [held, restarted]
    nxt = heartbeat(2)
    assert o.push(nxt, 0.0) == [nxt]
    assert o.stats["restarts"] == 1


# --- de-duplication --------------------------------------------------------------------


def test_same_seq_twice_is_dropped_whether_released_or_held():
    o = EventOrderer()
    e1 = utterance(1, "user", "hello", turn=1)
    assert o.push(e1, 0.0) == [e1]
    assert o.push(utterance(1, "user", "hello", turn=1), 0.0) == []
    e3 = heartbeat(3)
    assert o.push(e3, 0.0) == []
    assert o.push(heartbeat(3), 0.0) == []
    e2 = heartbeat(2)
    assert o.push(e2, 0.0) == [e2, e3]
    assert o.stats["duplicate_seq"] == 2


def test_pal_and_replica_twins_with_different_seqs_collapse_to_one():
    o = EventOrderer()
    pal = utterance(10, "pal", "It is 72 degrees in Austin.")
    twin = utterance(11, "replica", "It is 72 degrees in Austin.")
    assert o.push(pal, 0.0) == [pal]
    assert o.push(twin, 0.0) == []
    s_pal = streaming(12, "pal", "It is 72", 0)
    s_twin = streaming(13, "replica", "It is 72", 0)
    assert o.push(s_pal, 0.0) == [s_pal]
    assert o.push(s_twin, 0.0) == []
    assert o.stats["duplicate_twin"] == 2
    assert o.stats["duplicate_seq"] == 0


def test_the_twin_with_the_lower_seq_wins_whatever_the_arrival_order():
    o = EventOrderer()
    o.push(heartbeat(9), 0.0)
    replica_first = utterance(11, "replica", "Sure, one moment.")
    pal = utterance(10, "pal", "Sure, one moment.")
    assert o.push(replica_first, 0.0) == []
    released = o.push(pal, 0.001)
    assert released == [pal]
    assert released[0].wire_role == "pal"


def test_role_specific_and_role_agnostic_forms_collapse_to_one_transition():
    o = EventOrderer()
    stream = [
        replica_started(20),
        started(21, "pal"),
        started(22, "replica"),
        streaming(23, "pal", "Hi", 0, final=True),
        replica_stopped(24),
        stopped(25, "pal"),
        stopped(26, "replica"),
    ]
    out = [e for x in stream for e in o.push(x, 0.0)]
    assert [type(e) for e in out] == [
        ev.ReplicaStartedSpeakingEvent,
        ev.UtteranceStreamingEvent,
        ev.ReplicaStoppedSpeakingEvent,
    ]
    assert o.stats["duplicate_form"] == 2
    assert o.stats["duplicate_twin"] == 2


def test_whichever_form_comes_first_in_seq_order_is_kept():
    o = EventOrderer()
    o.push(heartbeat(29), 0.0)
    agnostic = started(30, "pal")
    specific = replica_started(31)
    assert o.push(specific, 0.0) == []
    assert o.push(agnostic, 0.0) == [agnostic]


def test_user_speaking_forms_collapse_even_when_their_inference_ids_differ():
    # Speculative inference changes the user's id while they talk.
    o = EventOrderer()
    a = msg("conversation.user.started_speaking", 40, turn=4, inf=INF_USER)
    b = started(41, "user", turn=4, inf="ffffffff-0000-4000-8000-000000000000")
    assert o.push(a, 0.0) == [a]
    assert o.push(b, 0.0) == []
    c = msg("conversation.user.stopped_speaking", 42, turn=4, inf=INF_USER)
    d = stopped(43, "user", turn=4, inf=INF_USER)
    assert o.push(c, 0.0) == [c]
    assert o.push(d, 0.0) == []
    assert o.stats["duplicate_form"] == 2


def test_forms_without_inference_id_collapse_by_speaking_state_alternation():
    o = EventOrderer()
    a = replica_started(50, inf=None)
    b = started(51, "pal", inf=INF_A)
    assert o.push(a, 0.0) == [a]
    assert o.push(b, 0.0) == []
    c = replica_stopped(52, inf=None)
    d = stopped(53, "pal", inf=None)
    assert o.push(c, 0.0) == [c]
    assert o.push(d, 0.0) == []


def test_a_late_form_after_an_intervening_transition_is_still_a_duplicate():
    o = EventOrderer()
    a = replica_started(60)
    b = replica_stopped(61)
    late_form = started(62, "pal")
    assert o.push(a, 0.0) == [a]
    assert o.push(b, 0.0) == [b]
    assert o.push(late_form, 0.0) == []
    assert o.stats["duplicate_form"] == 1


def test_two_replica_spans_in_one_turn_are_both_kept():
    o = EventOrderer()
    stream = []
    seq = 70
    for inf in (INF_A, INF_B):  # filler, then the answer
        for make in (
            lambda s, i=inf: replica_started(s, inf=i),
            lambda s, i=inf: started(s, "pal", inf=i),
            lambda s, i=inf: started(s, "replica", inf=i),
            lambda s, i=inf: replica_stopped(s, inf=i),
            lambda s, i=inf: stopped(s, "pal", inf=i),
            lambda s, i=inf: stopped(s, "replica", inf=i),
        ):
            stream.append(make(seq))
            seq += 1
    out = [e for x in stream for e in o.push(x, 0.0)]
    assert [(e.speaking, e.inference_id) for e in out] == [
        (True, INF_A),
        (False, INF_A),
        (True, INF_B),
        (False, INF_B),
    ]


def test_two_replica_spans_without_a_stop_between_them_are_both_kept():
    o = EventOrderer()
    a = replica_started(80, inf=INF_A)
    b = replica_started(81, inf=INF_B)
    assert o.push(a, 0.0) == [a]
    assert o.push(b, 0.0) == [b]


def test_user_speaking_again_in_the_same_turn_is_kept():
    o = EventOrderer()
    stream = [
        msg("conversation.user.started_speaking", 90, turn=5),
        msg("conversation.user.stopped_speaking", 91, turn=5),
        msg("conversation.user.started_speaking", 92, turn=5),
        msg("conversation.user.stopped_speaking", 93, turn=5),
    ]
    out = [e for x in stream for e in o.push(x, 0.0)]
    assert out == stream


def test_legitimate_repeats_of_content_are_kept():
    o = EventOrderer()
    stream = [
        utterance(100, "user", "Yes.", turn=6, inf="11111111-1111-4111-8111-111111111111"),
        utterance(101, "user", "Yes.", turn=7, inf="22222222-2222-4222-8222-222222222222"),
        utterance(102, "user", "Yes.", turn=8, inf=None),
        utterance(103, "user", "Yes.", turn=9, inf=None),
        streaming(104, "pal", "Okay", 0, turn=9),
        streaming(105, "pal", "Okay", 1, turn=9),  # a snapshot with no new words
        streaming(106, "pal", "Okay", 2, turn=9, final=True),
        msg("conversation.tool_call", 107, turn=9, inf=INF_A, props={"name": "f"}),
        msg("conversation.tool_call", 108, turn=9, inf=INF_A, props={"name": "f"}),
    ]
    out = [e for x in stream for e in o.push(x, 0.0)]
    assert out == stream
    # Without any anchor (old deployments, no seq either) identical content is never merged.
    plain = [utterance(None, "user", "Yes.", turn=None, inf=None) for _ in range(2)]
    assert [e for x in plain for e in o.push(x, 0.0)] == plain


def test_a_tool_call_redelivered_with_the_same_id_is_dropped():
    o = EventOrderer()
    props = {"name": "get_weather", "arguments": '{"city": "Austin"}', "tool_call_id": "call_1"}
    first = msg("conversation.tool_call", 110, turn=3, inf=INF_A, props=props)
    again = msg("conversation.tool_call", 111, turn=3, inf=INF_A, props=props)
    assert o.push(first, 0.0) == [first]
    assert o.push(again, 0.0) == []


# --- bounded memory ---------------------------------------------------------------------


def test_dedup_memory_is_bounded_and_forgets_oldest_first():
    o = EventOrderer(dedup_memory=8)
    o.push(utterance(1, "pal", "first", turn=1), 0.0)
    for i in range(2, 9):  # seven more keys: "first" is still remembered
        o.push(utterance(i, "user", f"u{i}", turn=i), 0.0)
    assert o.push(utterance(9, "replica", "first", turn=1), 0.0) == []
    for i in range(10, 19):  # nine more: "first" is forgotten
        o.push(utterance(i, "user", f"u{i}", turn=i), 0.0)
    late_twin = utterance(19, "replica", "first", turn=1)
    assert o.push(late_twin, 0.0) == [late_twin]


def test_dedup_memory_stays_flat_over_many_events():
    o = EventOrderer(dedup_memory=256)
    events = [streaming(i, "pal", f"w{i}", i, turn=i // 50) for i in range(1, 20_001)]
    tracemalloc.start()
    try:
        for e in events[:2_000]:
            o.push(e, 0.0)
        early, _ = tracemalloc.get_traced_memory()
        for e in events[2_000:]:
            o.push(e, 0.0)
        late, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert o.stats["released"] == 20_000
    assert late - early < 16 * 1024


def test_given_up_gaps_are_remembered_within_dedup_memory_only():
    o = EventOrderer(dedup_memory=4)
    o.push(heartbeat(1), 0.0)
    now = 0.0
    for s in range(3, 23, 2):  # ten gaps: 2, 4, ..., 20
        o.push(heartbeat(s), now)
        now += 1.0
        o.poll(now)
    assert o.stats["gaps_released"] == 10
    # The four newest gaps are still known: their seqs are late, not duplicates.
    e20 = heartbeat(20)
    assert o.push(e20, now) == [e20]
    # The oldest were forgotten: a seq from them now counts as a copy.
    assert o.push(heartbeat(2), now) == []
    assert o.stats["late"] == 1


def test_held_events_are_bounded_and_overflow_releases_the_oldest_gap():
    o = EventOrderer(max_held=4, window_s=10.0)
    o.push(heartbeat(1), 0.0)
    held = [heartbeat(s) for s in (3, 4, 5, 6)]
    for e in held:
        assert o.push(e, 0.0) == []
    e8 = heartbeat(8)
    assert o.push(e8, 0.0) == held  # the fifth held event forces the gap at 2 open
    assert o.pending == 1
    assert o.stats["overflow"] == 1
    e7 = heartbeat(7)
    assert o.push(e7, 0.0) == [e7, e8]
