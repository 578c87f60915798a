"""The simulated Tavus replica, its scripted persona and user, and its seeded chaos.

Everything runs in simulated time (``speed`` 30-200x) and waits on the simulator's own
completion events, never on wall-clock luck.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter

import pytest

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.exceptions import ConfigurationError, RemoteProtocolError
from pipecat_tavus_interactions.protocol import build_message, parse_message
from pipecat_tavus_interactions.simulator import (
    Chaos,
    PersonaRule,
    ScriptedPersona,
    ScriptedUser,
    TavusSimulator,
    ToolCallSpec,
    UserLine,
)
from pipecat_tavus_interactions.simulator.chaos import ChaosStream

REPLY = "Sure thing, happy to help today."
LONG_REPLY = "one two three four five six seven eight nine ten eleven twelve"


def fake_clock(start: float = 1_746_000_000.0):
    counter = itertools.count()
    return lambda: start + next(counter) * 0.01


def make_sim(**kwargs) -> TavusSimulator:
    kwargs.setdefault("persona", ScriptedPersona(default_reply=REPLY))
    kwargs.setdefault("speed", 200)
    kwargs.setdefault("heartbeat_interval_s", None)
    kwargs.setdefault("clock", fake_clock())
    return TavusSimulator(**kwargs)


def wire(sim: TavusSimulator, interaction: ix.Interaction) -> dict:
    return build_message(interaction, conversation_id=sim.conversation_id)


def kinds(messages: list[dict]) -> list[tuple[str, str | None]]:
    return [(m["event_type"], (m.get("properties") or {}).get("role")) for m in messages]


def props(m: dict) -> dict:
    return m.get("properties") or {}


def pal_streaming(messages: list[dict]) -> list[dict]:
    return [
        m
        for m in messages
        if m["event_type"] == "conversation.utterance.streaming" and props(m)["role"] == "pal"
    ]


def of_type(messages: list[dict], event_type: str) -> list[dict]:
    return [m for m in messages if m["event_type"] == event_type]


def user_turn(words: int) -> list[tuple[str, str | None]]:
    return [
        ("conversation.user.started_speaking", None),
        ("conversation.started_speaking", "user"),
        *[("conversation.utterance.streaming", "user")] * words,
        ("conversation.user.stopped_speaking", None),
        ("conversation.stopped_speaking", "user"),
        ("conversation.utterance", "user"),
    ]


def replica_turn(words: int) -> list[tuple[str, str | None]]:
    return [
        ("conversation.utterance", "pal"),
        ("conversation.utterance", "replica"),
        ("conversation.replica.started_speaking", None),
        ("conversation.started_speaking", "pal"),
        ("conversation.started_speaking", "replica"),
        *[
            ("conversation.utterance.streaming", "pal"),
            ("conversation.utterance.streaming", "replica"),
        ]
        * words,
        ("conversation.replica.stopped_speaking", None),
        ("conversation.stopped_speaking", "pal"),
        ("conversation.stopped_speaking", "replica"),
    ]


# --- one typical turn ---------------------------------------------------------------------


async def test_typical_turn_matches_reference_section_6():
    sim = make_sim()
    async with sim:
        await sim.user_says("Hello there")
        await sim.wait_idle()
    msgs = sim.emitted
    assert kinds(msgs) == [("system.replica_joined", None)] + user_turn(2) + replica_turn(6)
    turn = msgs[1:]

    seqs = [m["seq"] for m in msgs]
    assert seqs == sorted(set(seqs)), "seq strictly increasing"
    assert {m["turn_idx"] for m in turn} == {1}
    assert all(m["conversation_id"] == sim.conversation_id for m in msgs)
    stamps = [m["timestamp"] for m in msgs]
    assert stamps == sorted(stamps) and isinstance(stamps[0], float)

    user_stream = [m for m in turn if kinds([m])[0] == ("conversation.utterance.streaming", "user")]
    assert [props(m)["speech"] for m in user_stream] == ["Hello", "Hello there"]
    assert [props(m)["final"] for m in user_stream] == [False, True]

    stream = pal_streaming(turn)
    assert [props(m)["content_index"] for m in stream] == list(range(6))
    assert [props(m)["final"] for m in stream] == [False] * 5 + [True]
    assert props(stream[-1])["speech"] == REPLY
    assert props(stream[-1])["is_interrupted"] is False
    for m in stream:  # every pal snapshot is followed by its replica twin
        twin = turn[turn.index(m) + 1]
        assert props(twin) == {**props(m), "role": "replica"}
        assert twin["inference_id"] == m["inference_id"]

    reply_ids = {
        m["inference_id"] for m in turn[turn.index(of_type(turn, "conversation.utterance")[1]) :]
    }
    assert len(reply_ids) == 1 and len(next(iter(reply_ids))) == 36  # one UUID for the reply

    stopped = of_type(turn, "conversation.replica.stopped_speaking")[0]
    assert props(stopped) == {"duration": 2.0, "interrupted": False}  # 6 words at 3 wps
    user_stopped = [m for m in turn if kinds([m])[0] == ("conversation.stopped_speaking", "user")]
    assert props(user_stopped[0])["duration"] == pytest.approx(2 / 3, abs=1e-3)

    # The package's own parser reads every message as the event it claims to be.
    for m in msgs:
        assert type(parse_message(m)).__name__ != "UnknownEvent"


async def test_durations_do_not_depend_on_speed():
    durations = []
    for speed in (50, 200):
        sim = make_sim(speed=speed)
        async with sim:
            await sim.user_says("Hi")
            await sim.wait_idle()
        durations.append(props(of_type(sim.emitted, "conversation.replica.stopped_speaking")[0]))
    assert durations[0] == durations[1] == {"duration": 2.0, "interrupted": False}


async def test_ids_are_reproducible_from_the_seed():
    runs = []
    for seed in (7, 7, 8):
        sim = make_sim(seed=seed)
        async with sim:
            await sim.user_says("Hi")
            await sim.wait_idle()
        runs.append(
            (sim.conversation_id, sim.participant_id, [m.get("inference_id") for m in sim.emitted])
        )
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0] and runs[0][2] != runs[2][2]
    assert runs[0][0].startswith("c-sim-")


# --- respond and interrupt ------------------------------------------------------------------


async def test_respond_increments_turn_idx_and_echoes_a_user_utterance():
    sim = make_sim()
    async with sim:
        await sim.user_says("Hi")
        await sim.wait_idle()
        mark = sim.emitted_count
        assert await sim.receive(wire(sim, ix.Respond("What are your prices?"))) == ix.Respond(
            "What are your prices?"
        )
        await sim.wait_idle()
    new = sim.emitted[mark:]
    assert kinds(new) == [("conversation.utterance", "user")] + replica_turn(6)
    assert props(new[0])["speech"] == "What are your prices?"
    assert {m["turn_idx"] for m in new} == {2}
    assert sim.turn_idx == 2


async def test_respond_while_speaking_interrupts_then_responds():
    sim = make_sim(speed=30, persona=ScriptedPersona(default_reply=LONG_REPLY))
    async with sim:
        mark = sim.emitted_count
        await sim.user_says("Hi")
        await sim.wait_for_message(
            lambda m: (
                m["event_type"] == "conversation.utterance.streaming"
                and len(props(m)["speech"].split()) == 2
            ),
            since=mark,
        )
        await sim.receive(wire(sim, ix.Respond("Actually, stop")))
        await sim.wait_idle()
    msgs = sim.emitted[mark:]
    cut = of_type(msgs, "conversation.replica.stopped_speaking")[0]
    assert props(cut)["interrupted"] is True and cut["turn_idx"] == 1
    injected = [m for m in msgs if kinds([m])[0] == ("conversation.utterance", "user")][1]
    assert props(injected)["speech"] == "Actually, stop" and injected["turn_idx"] == 2
    assert msgs.index(injected) > msgs.index(cut)  # interrupt first, then respond
    last = of_type(msgs, "conversation.replica.stopped_speaking")[1]
    assert props(last)["interrupted"] is False and last["turn_idx"] == 2


async def test_interrupt_keeps_only_spoken_words():
    sim = make_sim(speed=30, persona=ScriptedPersona(default_reply=LONG_REPLY))
    async with sim:
        mark = sim.emitted_count
        await sim.user_says("Hi")
        await sim.wait_for_message(
            lambda m: (
                m["event_type"] == "conversation.utterance.streaming"
                and len(props(m)["speech"].split()) == 3
            ),
            since=mark,
        )
        await sim.receive(wire(sim, ix.Interrupt()))
        await sim.wait_idle()
    msgs = sim.emitted[mark:]
    stream = pal_streaming(msgs)
    spoken = len(stream) - 1  # every non-final snapshot is one more word spoken
    assert 3 <= spoken < len(LONG_REPLY.split())
    final = stream[-1]
    assert props(final)["final"] is True and props(final)["is_interrupted"] is True
    assert props(final)["speech"] == " ".join(LONG_REPLY.split()[:spoken])
    assert [props(m)["content_index"] for m in stream] == list(range(len(stream)))
    assert props(of_type(msgs, "conversation.utterance")[1])["speech"] == LONG_REPLY  # intended
    stops = msgs[-3:]
    assert kinds(stops) == [
        ("conversation.replica.stopped_speaking", None),
        ("conversation.stopped_speaking", "pal"),
        ("conversation.stopped_speaking", "replica"),
    ]
    assert all(props(m)["interrupted"] is True for m in stops)
    assert props(stops[0])["duration"] == pytest.approx(spoken / 3, abs=1e-3)


async def test_interrupt_cancels_a_reply_waiting_for_a_tool():
    persona = ScriptedPersona(
        rules=[PersonaRule(pattern="weather", reply="{result}", tool_call=ToolCallSpec(name="w"))]
    )
    sim = make_sim(persona=persona, tool_wait_s=30)
    async with sim:
        await sim.user_says("weather please")
        await sim.wait_for_message(lambda m: m["event_type"] == "conversation.tool_call", since=0)
        await sim.receive(wire(sim, ix.Interrupt()))
        await sim.wait_idle()  # returns at once: the 30 s tool wait was cancelled
    assert kinds(sim.emitted)[-1] == ("conversation.tool_call", None)
    assert not sim.is_speaking


# --- echo ---------------------------------------------------------------------------------


async def test_echo_text_is_spoken_with_replica_events_only():
    sim = make_sim(pipeline_mode="echo")
    async with sim:
        await sim.receive(wire(sim, ix.Echo(text="Hello from the bot", inference_id="inf-1")))
        await sim.wait_idle()
    msgs = sim.emitted[1:]
    assert kinds(msgs) == replica_turn(4)
    assert {m["inference_id"] for m in msgs} == {"inf-1"}
    assert props(pal_streaming(msgs)[-1])["speech"] == "Hello from the bot"
    assert not [m for m in msgs if props(m).get("role") == "user"]


async def test_echo_chunks_with_the_same_inference_id_append():
    sim = make_sim(pipeline_mode="echo")
    async with sim:
        await sim.receive(wire(sim, ix.Echo(text="First part.", inference_id="i1", done=False)))
        await sim.wait_for_message(
            lambda m: m["event_type"] == "conversation.utterance.streaming", since=0
        )
        await sim.receive(wire(sim, ix.Echo(text="Second part.", inference_id="i1", done=True)))
        await sim.wait_idle()
    msgs = sim.emitted
    assert len(of_type(msgs, "conversation.replica.started_speaking")) == 1
    stops = of_type(msgs, "conversation.replica.stopped_speaking")
    assert len(stops) == 1 and props(stops[0]) == {
        "duration": round(4 / 3, 3),
        "interrupted": False,
    }
    assert props(pal_streaming(msgs)[-1])["speech"] == "First part. Second part."
    assert props(pal_streaming(msgs)[-1])["final"] is True


async def test_echo_audio_lasts_its_pcm_duration():
    sim = make_sim(pipeline_mode="echo")
    pcm = bytes(2 * 12_000)  # 12,000 samples = 0.5 s at 24 kHz
    async with sim:
        await sim.receive(wire(sim, ix.Echo(audio=pcm, sample_rate=24_000, inference_id="a")))
        await sim.receive(wire(sim, ix.Echo(audio=bytes(3200), inference_id="b")))  # 16 kHz
        await sim.wait_idle()
    assert sim.echo_audio_seconds == {"a": 0.5, "b": 0.1}
    msgs = sim.emitted[1:]
    assert not of_type(msgs, "conversation.utterance") and not pal_streaming(msgs)
    stops = of_type(msgs, "conversation.replica.stopped_speaking")
    # "b" has another inference_id: it preempted "a" at once.
    assert [m["inference_id"] for m in stops] == ["a", "b"]
    assert props(stops[0])["interrupted"] is True
    assert props(stops[1]) == {"duration": 0.1, "interrupted": False}


async def test_echo_audio_append_preempt_and_done():
    sim = make_sim(pipeline_mode="echo", speed=50)
    chunk = bytes(2 * 1600)  # 0.1 s at 16 kHz
    async with sim:
        for done in (False, False, True):
            await sim.receive(wire(sim, ix.Echo(audio=chunk, inference_id="u1", done=done)))
        await sim.wait_idle()
        mark = sim.emitted_count
        await sim.receive(wire(sim, ix.Echo(audio=chunk * 10, inference_id="u2", done=False)))
        await sim.wait_for_message(
            lambda m: m["event_type"] == "conversation.replica.started_speaking", since=mark
        )
        await sim.receive(wire(sim, ix.Echo(audio=chunk, done=True)))  # no id: preempts
        await sim.wait_idle()
    stops = of_type(sim.emitted, "conversation.replica.stopped_speaking")
    assert props(stops[0]) == {"duration": 0.3, "interrupted": False}  # three chunks, one span
    assert stops[0]["inference_id"] == "u1"
    assert stops[1]["inference_id"] == "u2" and props(stops[1])["interrupted"] is True
    assert props(stops[2]) == {"duration": 0.1, "interrupted": False}
    assert sim.echo_audio_seconds == pytest.approx({"u1": 0.3, "u2": 1.0, None: 0.1})


async def test_echo_without_done_ends_after_idle_time():
    sim = make_sim(pipeline_mode="echo", echo_idle_s=1.0)
    async with sim:
        await sim.receive(wire(sim, ix.Echo(text="Dangling words", inference_id="x", done=False)))
        await sim.wait_idle()
    stream = pal_streaming(sim.emitted)
    assert [props(m)["final"] for m in stream] == [False, False, True]
    assert props(stream[-1])["is_interrupted"] is False
    assert (
        props(of_type(sim.emitted, "conversation.replica.stopped_speaking")[0])["interrupted"]
        is False
    )


async def test_echo_mode_has_no_user_events_and_ignores_respond():
    heard = []

    async def on_user_speech(text):
        heard.append(text)

    sim = make_sim(pipeline_mode="echo")
    sim.connect(None, on_user_speech=on_user_speech)
    async with sim:
        await sim.user_says("Can you hear me")
        await sim.receive(wire(sim, ix.Respond("ignored")))
        await sim.wait_idle()
    assert kinds(sim.emitted) == [("system.replica_joined", None)]
    assert heard == ["Can you hear me"]
    assert sim.interactions == [ix.Respond("ignored")]


# --- tools and context --------------------------------------------------------------------

WEATHER = ScriptedPersona(
    rules=[
        PersonaRule(
            pattern=r"weather in (?P<city>\w+)",
            regex=True,
            tool_call=ToolCallSpec(name="get_weather", arguments={"city": "{city}", "units": "c"}),
            reply="In {city} it is {result}.",
        )
    ],
    default_reply="Noted: {context}",
)


async def test_tool_call_waits_for_the_result_and_speaks_it():
    answered_at = []

    async def bot(message, sender):
        if message["event_type"] == "conversation.tool_call":
            answered_at.append(sim.emitted_count)
            result = ix.ToolResult(message["properties"]["tool_call_id"], "sunny and 21 C")
            asyncio.get_running_loop().create_task(sim.receive(wire(sim, result)))

    sim = make_sim(persona=WEATHER, send=bot)
    async with sim:
        await sim.user_says("What's the weather in Paris?")
        await sim.wait_idle()
    msgs = sim.emitted
    call = of_type(msgs, "conversation.tool_call")[0]
    assert props(call)["name"] == "get_weather"
    assert isinstance(props(call)["arguments"], str)
    assert json.loads(props(call)["arguments"]) == {"city": "Paris", "units": "c"}
    assert props(call)["tool_call_id"].startswith("call_")
    user_utt = [m for m in msgs if kinds([m])[0] == ("conversation.utterance", "user")][0]
    assert call["turn_idx"] == 1 and call["inference_id"] == user_utt["inference_id"]
    assert msgs.index(call) == msgs.index(user_utt) + 1
    reply = of_type(msgs, "conversation.utterance")[1]
    assert props(reply)["speech"] == "In Paris it is sunny and 21 C."
    assert msgs.index(reply) >= answered_at[0]  # nothing was said before the result came
    assert sim.context == ["sunny and 21 C"]


async def test_append_context_answers_a_tool_call_and_context_feeds_later_replies():
    async def bot(message, sender):
        if message["event_type"] == "conversation.tool_call":
            append = ix.AppendLLMContext("rainy", job_status="completed")
            asyncio.get_running_loop().create_task(sim.receive(wire(sim, append)))

    sim = make_sim(persona=WEATHER, send=bot)
    async with sim:
        await sim.user_says("weather in Oslo")
        await sim.wait_idle()
        await sim.receive(wire(sim, ix.AppendLLMContext("The user is Ana.")))
        await sim.user_says("ok")
        await sim.wait_idle()
        await sim.receive(wire(sim, ix.OverwriteLLMContext("Fresh start.")))
        await sim.user_says("ok")
        await sim.wait_idle()
    replies = [
        props(m)["speech"]
        for m in sim.emitted
        if kinds([m])[0] == ("conversation.utterance", "pal")
    ]
    assert replies == [
        "In Oslo it is rainy.",
        "Noted: rainy The user is Ana.",
        "Noted: Fresh start.",
    ]


async def test_tool_error_and_timeout_use_the_persona_fallbacks():
    async def bot(message, sender):
        if message["event_type"] == "conversation.tool_call" and message["turn_idx"] == 1:
            result = ix.ToolResult(message["properties"]["tool_call_id"], "no such city", "error")
            asyncio.get_running_loop().create_task(sim.receive(wire(sim, result)))

    sim = make_sim(persona=WEATHER, send=bot, tool_wait_s=0.05)
    async with sim:
        await sim.user_says("weather in Atlantis")
        await sim.wait_idle()
        await sim.user_says("weather in Paris")  # the bot does not answer this one
        await sim.wait_idle()
    replies = [
        props(m)["speech"]
        for m in sim.emitted
        if kinds([m])[0] == ("conversation.utterance", "pal")
    ]
    assert replies == [
        "Sorry, that did not work: no such city",
        "Sorry, I could not get that in time.",
    ]


# --- system events ------------------------------------------------------------------------


async def test_joined_heartbeats_and_shutdown():
    left = []

    async def on_left(reason):
        left.append(reason)

    sim = make_sim(heartbeat_interval_s=1.0, speed=100)
    sim.connect(None, on_left=on_left)
    async with sim:
        for attempt in (1, 2, 3):
            beat = await sim.wait_for_message(
                lambda m, a=attempt: (
                    m["event_type"] == "system.replica_present" and props(m)["attempt"] == a
                ),
                since=0,
            )
            assert beat["message_type"] == "system" and "turn_idx" not in beat
        await sim.shutdown(reason="max_call_duration reached")
        count = sim.emitted_count
        await sim.sleep(3.0)  # three heartbeat periods: none may come after the shutdown
    joined = sim.emitted[0]
    assert joined["event_type"] == "system.replica_joined"
    assert props(joined) == {"replica_id": "r-sim"}
    last = sim.emitted[-1]
    assert last["event_type"] == "system.shutdown"
    assert props(last) == {"replica_id": "r-sim", "shutdown_reason": "max_call_duration reached"}
    assert sim.emitted_count == count
    assert left == ["max_call_duration reached"]
    assert await sim.receive(wire(sim, ix.Respond("anyone?"))) is None
    assert sim.rejected[-1][1] == "replica_not_present"


async def test_default_shutdown_reason():
    sim = make_sim()
    async with sim:
        await sim.shutdown()
    assert props(sim.emitted[-1])["shutdown_reason"] == "end_conversation_endpoint_hit"


# --- bad input ----------------------------------------------------------------------------


async def test_malformed_interactions_are_recorded_never_raised():
    sim = make_sim()
    before = await sim.receive(wire(sim, ix.Respond("too early")))
    async with sim:
        bad = [
            "{not json",
            [1, 2],
            {"message_type": "conversation", "event_type": "conversation.respond"},
            {"event_type": "conversation.echo", "properties": {"modality": "smell"}},
            {"event_type": "conversation.dance", "conversation_id": sim.conversation_id},
            {**wire(sim, ix.Respond("hi")), "conversation_id": "c-other"},
        ]
        for message in bad:
            assert await sim.receive(message) is None
        await sim.wait_idle()
    assert before is None
    reasons = [reason for _, reason in sim.rejected]
    assert reasons == [
        "replica_not_present",
        "bad_json",
        "not_an_object",
        "missing_field",
        "bad_value",
        "bad_value",
        "wrong_conversation",
    ]
    assert len(sim.received) == 7 and sim.interactions == []
    assert kinds(sim.emitted) == [("system.replica_joined", None)]


async def test_user_says_checks_its_input():
    sim = make_sim()
    with pytest.raises(RuntimeError):
        await sim.user_says("nobody is there")
    async with sim:
        with pytest.raises(ValueError):
            await sim.user_says("   ")


# --- scripted persona and user ------------------------------------------------------------


def test_persona_rules_match_case_insensitively_and_fill_placeholders():
    persona = ScriptedPersona(
        rules=[
            PersonaRule(pattern="PRICE", reply="It costs {result} {unknown}."),
            PersonaRule(
                pattern=r"book (?P<n>\d+) seats",
                regex=True,
                tool_call=ToolCallSpec(
                    name="book", arguments={"seats": "{n}", "raw": "{text}", "x": 1}
                ),
                reply="Booked {n}: {result}",
            ),
        ],
        default_reply="You said: {text}",
    )
    price = persona.decide("what is the price?")
    assert price.tool_call is None
    assert persona.render(price, result="5 EUR") == "It costs 5 EUR {unknown}."
    book = persona.decide("Please BOOK 3 seats")
    assert book.tool_call == ToolCallSpec(
        name="book", arguments={"seats": "3", "raw": "Please BOOK 3 seats", "x": 1}
    )
    assert persona.render(book, result="ok", status="success") == "Booked 3: ok"
    assert persona.render(persona.decide("hm"), context=["a"]) == "You said: hm"


async def test_scripted_user_waits_for_replies_then_barges_in():
    sim = make_sim(
        speed=50, persona=ScriptedPersona(default_reply=LONG_REPLY, greeting="Welcome aboard")
    )
    user = ScriptedUser(
        lines=[
            "Hello",
            UserLine(text="Wait a moment", barge_in_after_words=3),
            UserLine(text="Thanks", pause_s=0.5),
        ]
    )
    async with sim:
        await sim.run_script(user)
    msgs = sim.emitted
    stops = of_type(msgs, "conversation.replica.stopped_speaking")
    assert [(m["turn_idx"], props(m)["interrupted"]) for m in stops] == [
        (0, False),  # the greeting: the first line waited for it
        (1, True),  # barged in on
        (2, False),
        (3, False),
    ]
    cut_final = [m for m in pal_streaming(msgs) if m["turn_idx"] == 1 and props(m)["final"]][0]
    assert props(cut_final)["is_interrupted"] is True
    assert len(props(cut_final)["speech"].split()) >= 3
    barge = [m for m in msgs if kinds([m])[0] == ("conversation.user.started_speaking", None)][1]
    assert msgs.index(barge) < msgs.index(stops[1])  # the user started, then the replica stopped
    assert [m["turn_idx"] for m in of_type(msgs, "conversation.user.started_speaking")] == [1, 2, 3]


# --- chaos --------------------------------------------------------------------------------


def sample_stream(n: int = 60) -> list[dict]:
    msgs = []
    for i in range(n):
        event = "system.replica_present" if i % 5 == 0 else "conversation.utterance"
        msgs.append(
            {
                "message_type": "conversation",
                "event_type": event,
                "conversation_id": "c1",
                "seq": i + 1,
                "properties": {"attempt": i} if i % 5 == 0 else {"role": "pal", "speech": str(i)},
            }
        )
    return msgs


def run_chaos(chaos: Chaos) -> tuple[list[tuple], dict]:
    stream = chaos.stream(sender_id="replica", conversation_id="c1")
    out = []
    for m in sample_stream():
        out += stream.push(json.loads(json.dumps(m)))
    out += stream.flush()
    return [(d.sender_id, json.dumps(d.message), d.kind) for d in out], stream.counts


KNOBS = {
    "reorder": dict(reorder_window=4),
    "duplicate": dict(duplicate_rate=0.3),
    "heartbeat": dict(heartbeat_noise=True),
    "foreign": dict(foreign_sender_rate=0.3),
    "malformed": dict(malformed_rate=0.3),
}


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_every_chaos_knob_is_reproducible_from_its_seed(knob):
    clean, _ = run_chaos(Chaos())
    first, counts = run_chaos(Chaos(seed=1, **KNOBS[knob]))
    again, _ = run_chaos(Chaos(seed=1, **KNOBS[knob]))
    other, _ = run_chaos(Chaos(seed=2, **KNOBS[knob]))
    assert first == again
    assert first != other
    assert first != clean and counts


def test_reorder_keeps_every_message_within_the_window():
    window = 3
    out, counts = run_chaos(Chaos(reorder_window=window, seed=5))
    seqs = [json.loads(m)["seq"] for _, m, _ in out]
    assert sorted(seqs) == list(range(1, 61))
    assert seqs != sorted(seqs) and counts["reordered"] > 0
    assert max(abs(pos - (seq - 1)) for pos, seq in enumerate(seqs)) <= window


def test_duplicates_repeat_the_same_seq():
    out, counts = run_chaos(Chaos(duplicate_rate=0.5, seed=3))
    seqs = Counter(json.loads(m)["seq"] for _, m, _ in out)
    assert set(seqs.values()) == {1, 2}
    assert sum(v == 2 for v in seqs.values()) == counts["duplicated"]


def test_foreign_senders_copy_messages_and_forge_tool_calls():
    chaos = Chaos(foreign_sender_rate=0.5, seed=4)
    out, counts = run_chaos(chaos)
    foreign = [(json.loads(m), kind) for sender, m, kind in out if sender != "replica"]
    assert {kind for _, kind in foreign} == {"foreign", "forged"}
    assert all(sender in ("replica", chaos.foreign_participant_id) for sender, _, _ in out)
    forged = [m for m, kind in foreign if kind == "forged"]
    assert len(forged) == counts["forged"] > 0
    assert all(parse_message(m).event_type == "conversation.tool_call" for m in forged)


def test_malformed_messages_really_are_malformed():
    out, counts = run_chaos(Chaos(malformed_rate=0.5, seed=6))
    bad = [json.loads(m) for _, m, kind in out if kind == "malformed"]
    assert len(bad) == counts["malformed"] > 5
    for m in bad:
        with pytest.raises(RemoteProtocolError):
            parse_message(m)


def test_heartbeat_noise_is_irregular():
    chaos = Chaos(heartbeat_noise=True, seed=9)
    stream = ChaosStream(chaos, sender_id="replica", conversation_id="c1")
    delays = {round(stream.heartbeat_delay(1.0), 6) for _ in range(20)}
    assert len(delays) == 20 and all(0.2 <= d <= 1.8 for d in delays)
    assert Chaos().stream(sender_id="r", conversation_id="c").heartbeat_delay(1.0) == 1.0
    clean, _ = run_chaos(Chaos())
    out, counts = run_chaos(Chaos(heartbeat_noise=True, seed=9))

    def split(deliveries):
        beats = [m for _, m, _ in deliveries if "present" in json.loads(m)["event_type"]]
        rest = [m for _, m, _ in deliveries if "present" not in json.loads(m)["event_type"]]
        return beats, rest

    assert split(out)[0] != split(clean)[0]
    assert split(out)[1] == split(clean)[1]  # only heartbeats are touched
    assert len(counts) >= 3 and set(counts) <= {
        "heartbeat_dropped",
        "heartbeat_doubled",
        "heartbeat_pal_present",
        "heartbeat_stale",
    }


def test_chaos_rejects_bad_knobs():
    with pytest.raises(ValueError):
        Chaos(duplicate_rate=1.5)
    with pytest.raises(ValueError):
        Chaos(reorder_window=-1)


async def test_chaos_through_the_simulator_is_reproducible():
    persona = ScriptedPersona(
        rules=[PersonaRule(pattern="tool", reply="done {result}", tool_call=ToolCallSpec(name="t"))]
    )
    chaos = dict(reorder_window=3, duplicate_rate=0.2, foreign_sender_rate=0.2, malformed_rate=0.2)

    async def run(seed: int) -> list[tuple]:
        got = []

        async def send(message, sender):
            got.append((sender, json.dumps(message)))
            if isinstance(message, dict) and sender == sim.participant_id:
                if message.get("event_type") == "conversation.tool_call":
                    result = ix.ToolResult(message["properties"]["tool_call_id"], "ok")
                    asyncio.get_running_loop().create_task(sim.receive(wire(sim, result)))

        sim = make_sim(persona=persona, chaos=Chaos(seed=seed, **chaos), send=send)
        async with sim:
            await sim.run_script(ScriptedUser(lines=["hello", "use the tool", "bye now"]))
        assert got == [(d.sender_id, json.dumps(d.message)) for d in sim.delivered]
        clean = [m["seq"] for m in sim.emitted]
        assert clean == list(range(1, len(clean) + 1))  # chaos never touches the clean record
        return got

    first, again, other = await run(11), await run(11), await run(12)
    assert first == again
    assert first != other


async def test_nothing_reaches_the_wire_after_shutdown():
    sim = make_sim(speed=30)
    async with sim:
        speaking = asyncio.create_task(sim.user_says("one two three four five six"))
        await sim.wait_for_message(
            lambda m: m["event_type"] == "conversation.utterance.streaming", since=0
        )
        await sim.shutdown()
        await speaking  # the user finishes the line, to an empty room
        await sim.wait_idle()
    assert sim.emitted[-1]["event_type"] == "system.shutdown"
    assert sim.delivered[-1].message["event_type"] == "system.shutdown"


async def test_play_runs_a_script_lets_the_replica_finish_then_shuts_down():
    from pipecat_tavus_interactions.simulator import ScriptedPersona, ScriptedUser, TavusSimulator

    for script in (ScriptedUser(lines=["Hello there."]), lambda sim: sim.user_says("Hi.")):
        sim = TavusSimulator(persona=ScriptedPersona(default_reply="Hello back."), speed=200)
        async with sim:
            await sim.play(script, shutdown_reason="max_call_duration reached")
        types = [m["event_type"] for m in sim.emitted]
        assert types[-1] == "system.shutdown"
        assert sim.emitted[-1]["properties"]["shutdown_reason"] == "max_call_duration reached"
        # The reply was spoken to the end before the shutdown.
        finals = [
            m
            for m in sim.emitted
            if m["event_type"] == "conversation.utterance.streaming" and m["properties"]["final"]
        ]
        assert finals and finals[-1]["properties"]["speech"] == "Hello back."


def test_the_old_mode_keyword_still_selects_the_pipeline_mode():
    with pytest.warns(DeprecationWarning, match="pipeline_mode"):
        sim = TavusSimulator(mode="echo")
    assert sim.pipeline_mode == "echo"
    assert TavusSimulator(pipeline_mode="echo").pipeline_mode == "echo"
    with pytest.raises(ConfigurationError, match="pipeline_mode must be"):
        TavusSimulator(pipeline_mode="video")
