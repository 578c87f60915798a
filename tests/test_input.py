"""TavusInteractionsInput: one test per row of the README's events table, from wire messages."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import load_fixture
from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndWorkerFrame,
    ExternalFunctionCallResultFrame,
    ExternalFunctionCallsStartedFrame,
    InputTransportMessageFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame
from pipecat.utils.base_object import BaseObject
from pipecat.utils.time import time_now_iso8601

from pipecat_tavus_interactions import (
    TavusEventFrame,
    TavusGuardrailFrame,
    TavusInteractions,
    TavusInteractionsParams,
    TavusObjectiveFrame,
    TavusPerceptionAnalysisFrame,
    TavusReplicaInterruptedFrame,
    TavusToolCallFrame,
    TavusTurnFrame,
    TavusUtteranceFrame,
    events,
)
from pipecat_tavus_interactions import interactions as ix

REPLICA = "11111111-1111-4111-8111-111111111111"
BROWSER = "22222222-2222-4222-8222-222222222222"
CID = "c123456"


class Msgs:
    """Builds wire messages with increasing seq."""

    def __init__(self, turn_idx: int = 1):
        self.seq = 0
        self.turn_idx = turn_idx

    def __call__(self, event_type: str, props: dict | None = None, **env: Any) -> dict:
        self.seq += 1
        msg: dict[str, Any] = {
            "message_type": "system" if event_type.startswith("system.") else "conversation",
            "event_type": event_type,
            "conversation_id": CID,
            "seq": self.seq,
            "timestamp": 1746000000.0 + self.seq / 10,
        }
        if not event_type.startswith("system."):
            msg["turn_idx"] = self.turn_idx
        if props is not None:
            msg["properties"] = props
        msg.update(env)
        return msg


def frame(msg: Any, sender: str = REPLICA) -> DailyInputTransportMessageFrame:
    return DailyInputTransportMessageFrame(message=msg, participant_id=sender)


def make(**params: Any) -> tuple[TavusInteractions, dict[str, list]]:
    p = {"conversation_id": CID, "replica_participant_id": REPLICA, "heartbeat_timeout_s": None}
    p.update(params)
    tavus = TavusInteractions(params=TavusInteractionsParams(**p))
    calls: dict[str, list] = {name: [] for name in TavusInteractions.EVENTS}
    for name in TavusInteractions.EVENTS:
        tavus.add_event_handler(name, lambda _t, *args, _n=name: calls[_n].append(args))
    return tavus, calls


async def run(tavus: TavusInteractions, frames: list, **kw) -> tuple[list, list]:
    down, up = await run_test(tavus.input(), frames_to_send=frames, **kw)
    for _ in range(5):  # let non-sync event handler tasks finish
        await asyncio.sleep(0)
    return down, up


def types(frames: list) -> list[str]:
    return [type(f).__name__ for f in frames]


async def test_user_utterance_becomes_final_transcription_and_utterance_frame():
    tavus, calls = make()
    m = Msgs()
    down, _ = await run(
        tavus, [frame(m("conversation.utterance", {"role": "user", "speech": "Hi"}))]
    )
    transcriptions = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [(t.text, t.finalized) for t in transcriptions] == [("Hi", True)]
    utterances = [f for f in down if isinstance(f, TavusUtteranceFrame)]
    assert [(u.role, u.text, u.turn_idx, u.injected) for u in utterances] == [
        ("user", "Hi", 1, False)
    ]
    assert [a[0].text for a in calls["on_utterance"]] == ["Hi"]


async def test_user_streaming_becomes_interim_transcriptions_and_final_adds_nothing():
    tavus, _ = make()
    m = Msgs()
    down, _ = await run(
        tavus,
        [
            frame(m("conversation.utterance.streaming", {"role": "user", "speech": "What"})),
            frame(m("conversation.utterance.streaming", {"role": "user", "speech": "What is"})),
            frame(
                m(
                    "conversation.utterance.streaming",
                    {"role": "user", "speech": "What is it", "final": True},
                )
            ),
        ],
    )
    assert [f.text for f in down if isinstance(f, InterimTranscriptionFrame)] == [
        "What",
        "What is",
    ]
    assert not [f for f in down if isinstance(f, TranscriptionFrame | TavusUtteranceFrame)]


async def test_transcription_timestamps_are_utc_iso8601_to_the_millisecond_as_pipecats():
    tavus, _ = make()
    m = Msgs()
    before = datetime.now(UTC)
    down, _ = await run(
        tavus,
        [
            frame(m("conversation.utterance.streaming", {"role": "user", "speech": "Wh"})),
            frame(m("conversation.utterance", {"role": "user", "speech": "What"})),
        ],
    )
    after = datetime.now(UTC)
    stamps = [f.timestamp for f in down if isinstance(f, TranscriptionFrame)]
    stamps += [f.timestamp for f in down if isinstance(f, InterimTranscriptionFrame)]
    assert len(stamps) == 2
    for stamp in stamps:
        # The shape of Pipecat's time_now_iso8601(): 2026-01-02T03:04:05.678+00:00
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp), stamp
        assert len(stamp) == len(time_now_iso8601())
        at = datetime.fromisoformat(stamp)
        assert before - timedelta(milliseconds=1) <= at <= after, (before, stamp, after)


async def test_replica_utterance_twins_give_one_intended_utterance_frame():
    tavus, calls = make()
    m = Msgs()
    down, _ = await run(
        tavus,
        [
            frame(
                m("conversation.utterance", {"role": "pal", "speech": "Sunny."}, inference_id="i1")
            ),
            frame(
                m(
                    "conversation.utterance",
                    {"role": "replica", "speech": "Sunny."},
                    inference_id="i1",
                )
            ),
        ],
    )
    utterances = [f for f in down if isinstance(f, TavusUtteranceFrame)]
    assert [(u.role, u.text, u.spoken) for u in utterances] == [("pal", "Sunny.", False)]
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    assert len(calls["on_utterance"]) == 1


async def test_final_replica_streaming_is_what_was_really_said():
    tavus, _ = make(interrupt_pipeline_on_barge_in=False)
    m = Msgs()
    props = {"role": "pal", "speech": "It is sunny", "content_index": 2, "final": True}
    down, _ = await run(
        tavus,
        [
            frame(
                m(
                    "conversation.utterance.streaming",
                    {**props, "is_interrupted": True},
                    inference_id="i1",
                )
            )
        ],
    )
    utterances = [f for f in down if isinstance(f, TavusUtteranceFrame)]
    assert [(u.text, u.spoken, u.interrupted) for u in utterances] == [("It is sunny", True, True)]
    assert len([f for f in down if isinstance(f, TavusReplicaInterruptedFrame)]) == 1


def _replica_span(m: Msgs, inference_id: str, interrupted: bool = False) -> list[dict]:
    stop = {"duration": 1.5, "interrupted": interrupted}
    return [
        m("conversation.replica.started_speaking", inference_id=inference_id),
        m("conversation.started_speaking", {"role": "pal"}, inference_id=inference_id),
        m("conversation.started_speaking", {"role": "replica"}, inference_id=inference_id),
        m("conversation.replica.stopped_speaking", stop, inference_id=inference_id),
        m("conversation.stopped_speaking", {"role": "pal", **stop}, inference_id=inference_id),
        m("conversation.stopped_speaking", {"role": "replica", **stop}, inference_id=inference_id),
    ]


async def test_every_speaking_form_gives_exactly_one_bot_started_and_stopped_per_span():
    tavus, _ = make(bot_speaking_interval_s=0.01)
    m = Msgs()
    span = _replica_span(m, "i1")
    down, _ = await run(
        tavus, [frame(x) for x in span[:3]] + [SleepFrame(0.05)] + [frame(x) for x in span[3:]]
    )
    names = [n for n in types(down) if n.startswith("Bot")]
    assert names[0] == "BotStartedSpeakingFrame" and names[-1] == "BotStoppedSpeakingFrame"
    assert names.count("BotStartedSpeakingFrame") == 1
    assert names.count("BotStoppedSpeakingFrame") == 1
    assert names.count("BotSpeakingFrame") >= 2  # ticks keep Pipecat's idle timeout honest
    assert not tavus.replica_speaking


async def test_role_agnostic_form_alone_also_drives_bot_speaking():
    tavus, _ = make()
    m = Msgs()
    down, _ = await run(
        tavus,
        [
            frame(m("conversation.started_speaking", {"role": "replica"}, inference_id="i1")),
            frame(m("conversation.stopped_speaking", {"role": "replica"}, inference_id="i1")),
        ],
    )
    assert types(
        [f for f in down if isinstance(f, BotStartedSpeakingFrame | BotStoppedSpeakingFrame)]
    ) == [
        "BotStartedSpeakingFrame",
        "BotStoppedSpeakingFrame",
    ]


async def test_user_speaking_gives_user_frames_in_full_mode():
    tavus, _ = make()
    m = Msgs()
    down, _ = await run(
        tavus,
        [
            frame(m("conversation.user.started_speaking")),
            frame(m("conversation.started_speaking", {"role": "user"})),
            frame(m("conversation.user.stopped_speaking")),
            frame(m("conversation.stopped_speaking", {"role": "user", "duration": 1.0})),
        ],
    )
    assert [type(f) for f in down if "User" in type(f).__name__] == [
        VADUserStartedSpeakingFrame,  # for Pipecat's observers (UserBotLatencyObserver)
        UserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
        UserStoppedSpeakingFrame,
    ]


async def test_user_speaking_proposed_frames_follow_the_final_transcription():
    tavus, _ = make(user_turn_frames="proposed")
    m = Msgs()
    down, _ = await run(
        tavus,
        [
            frame(m("conversation.user.started_speaking")),
            frame(m("conversation.user.stopped_speaking")),
            frame(m("conversation.utterance", {"role": "user", "speech": "Hello"})),
        ],
    )
    relevant = [
        type(f)
        for f in down
        if isinstance(
            f,
            ProposedUserStartedSpeakingFrame
            | ProposedUserStoppedSpeakingFrame
            | TranscriptionFrame,
        )
    ]
    assert relevant == [
        ProposedUserStartedSpeakingFrame,
        TranscriptionFrame,
        ProposedUserStoppedSpeakingFrame,
    ]


async def test_no_user_turn_frames_in_echo_modes_by_default():
    tavus, _ = make(mode="echo_text")
    m = Msgs()
    down, _ = await run(
        tavus,
        [
            frame(m("conversation.user.started_speaking")),
            frame(m("conversation.user.stopped_speaking")),
        ],
    )
    assert not [f for f in down if "User" in type(f).__name__]


async def test_interrupted_stop_reports_once_and_interrupts_the_pipeline():
    tavus, _ = make()
    tavus.output()  # the loop guard is armed only when an output exists
    m = Msgs()
    down, up = await run(tavus, [frame(x) for x in _replica_span(m, "i1", interrupted=True)])
    assert len([f for f in down if isinstance(f, TavusReplicaInterruptedFrame)]) == 1
    assert len([f for f in down if isinstance(f, InterruptionFrame)]) == 1
    assert len([f for f in up if isinstance(f, InterruptionFrame)]) == 1
    # The output side will see this interruption as Tavus's own: no interrupt is sent back.
    assert tavus.connection.interrupt(now=tavus.clock()) == []
    assert tavus.stats["interrupt_skipped_remote"] == 1


async def test_legacy_replica_interrupted_event_is_reported():
    tavus, _ = make(interrupt_pipeline_on_barge_in=False)
    down, _ = await run(tavus, [frame(load_fixture("events/replica_interrupted_legacy.json"))])
    assert len([f for f in down if isinstance(f, TavusReplicaInterruptedFrame)]) == 1
    assert not [f for f in down if isinstance(f, InterruptionFrame)]


async def test_tool_call_runs_the_handler_and_pushes_observer_frames():
    tavus, calls = make(tool_result_delivery="none")
    seen = []

    async def get_weather(params):
        seen.append((params.function_name, dict(params.arguments), params.turn_idx))
        await params.result_callback({"temp_c": 21})

    tavus.register_function("get_weather", get_weather)
    m = Msgs(turn_idx=4)
    msg = m(
        "conversation.tool_call",
        {"name": "get_weather", "arguments": '{"city": "Paris"}', "tool_call_id": "t1"},
    )
    down, _ = await run(tavus, [frame(msg), SleepFrame(0.05)])
    assert seen == [("get_weather", {"city": "Paris"}, 4)]
    assert [f.function_name for f in down if isinstance(f, TavusToolCallFrame)] == ["get_weather"]
    assert [type(f) for f in down if "FunctionCall" in type(f).__name__][0] is (
        ExternalFunctionCallsStartedFrame
    )
    results = [f for f in down if isinstance(f, ExternalFunctionCallResultFrame)]
    assert [(r.tool_call_id, r.result) for r in results] == [("t1", {"temp_c": 21})]
    assert [a[0].name for a in calls["on_tool_call"]] == ["get_weather"]
    call = tavus.ledger.get(4).tool_calls[0]
    assert (call.status, call.result, call.delivery) == ("success", {"temp_c": 21}, "none")


@pytest.mark.parametrize(
    ("fixture", "frame_type"),
    [
        ("events/perception_analysis.json", TavusPerceptionAnalysisFrame),
        ("events/perception_analysis_hyphenated.json", TavusPerceptionAnalysisFrame),
        ("events/objective_pending.json", TavusObjectiveFrame),
        ("events/objective_completed.json", TavusObjectiveFrame),
        ("events/guardrail.json", TavusGuardrailFrame),
    ],
)
async def test_perception_objective_and_guardrail_events_become_frames(fixture, frame_type):
    tavus, _ = make(conversation_id=None)
    down, _ = await run(tavus, [frame(load_fixture(fixture))])
    found = [f for f in down if isinstance(f, frame_type)]
    assert len(found) == 1
    if frame_type is TavusObjectiveFrame:
        assert found[0].status in fixture


async def test_replica_joined_fires_on_replica_joined_once():
    tavus, calls = make()
    m = Msgs()
    joined = m("system.replica_joined", {"replica_id": "r90bbd427f71"})
    down, _ = await run(tavus, [frame(joined), frame(m("system.replica_present", {"attempt": 1}))])
    assert tavus.replica_ready
    assert len(calls["on_replica_joined"]) == 1
    assert calls["on_replica_joined"][0][0].replica_id == "r90bbd427f71"
    assert not [f for f in down if isinstance(f, TavusEventFrame)]  # heartbeats push nothing


async def test_missing_heartbeat_fires_on_replica_left():
    tavus, calls = make(heartbeat_timeout_s=0.05)
    m = Msgs()
    joined, beat = m("system.replica_joined"), m("system.replica_present", {"attempt": 1})
    await run(tavus, [frame(joined), frame(beat), SleepFrame(0.2)])
    assert calls["on_replica_left"] == [("heartbeat_lost",)]
    assert not tavus.replica_ready


async def test_a_deployment_without_heartbeats_is_never_declared_gone():
    tavus, calls = make(heartbeat_timeout_s=0.05)
    await run(tavus, [frame(Msgs()("system.replica_joined")), SleepFrame(0.2)])
    assert calls["on_replica_left"] == []
    assert tavus.replica_ready


async def test_heartbeats_keep_the_replica_alive():
    tavus, calls = make(heartbeat_timeout_s=0.1)
    m = Msgs()
    beats = []
    for i in range(8):
        beats += [frame(m("system.replica_present", {"attempt": i})), SleepFrame(0.03)]
    await run(tavus, [frame(m("system.replica_joined")), *beats])
    assert calls["on_replica_left"] == []


async def test_shutdown_fires_on_shutdown_and_ends_the_worker():
    tavus, calls = make()
    m = Msgs()
    shutdown = m("system.shutdown", {"shutdown_reason": "max_call_duration reached"})
    _, up = await run(tavus, [frame(shutdown)])
    assert [a[0].reason for a in calls["on_shutdown"]] == ["max_call_duration reached"]
    assert [f.reason for f in up if isinstance(f, EndWorkerFrame)] == ["max_call_duration reached"]


async def test_unknown_event_is_surfaced_not_swallowed():
    tavus, calls = make()
    m = Msgs()
    down, _ = await run(tavus, [frame(m("conversation.canvas.updated", {"x": 1}))])
    unknown = [f for f in down if isinstance(f, TavusEventFrame)]
    assert len(unknown) == 1 and isinstance(unknown[0].event, events.UnknownEvent)
    assert unknown[0].event.raw["properties"] == {"x": 1}
    assert [type(a[0]) for a in calls["on_event"]] == [events.UnknownEvent]
    assert tavus.stats["unknown_events"] == 1


async def test_our_respond_text_comes_back_marked_injected_without_a_transcription():
    tavus, calls = make(wait_for_replica=False)
    conn = tavus.connection
    conn.start(now=0.0)
    sent = conn.send(ix.Respond("What are your pricing plans?"), now=0.0)
    assert [e.message["event_type"] for e in sent] == ["conversation.respond"]
    m = Msgs()
    user = m("conversation.utterance", {"role": "user", "speech": "What are your  pricing plans?"})
    down, _ = await run(tavus, [frame(user)])
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [(f.text, f.injected) for f in down if isinstance(f, TavusUtteranceFrame)] == [
        ("What are your  pricing plans?", True)
    ]
    assert tavus.ledger.get(1).user_injected


async def test_non_tavus_app_messages_pass_through_untouched():
    tavus, calls = make()
    rtvi = {"label": "rtvi-ai", "type": "client-ready", "data": {}}
    down, _ = await run(tavus, [frame(rtvi, sender=BROWSER), frame("plain text", sender=BROWSER)])
    passed = [f.message for f in down if isinstance(f, InputTransportMessageFrame)]
    assert passed == [rtvi, "plain text"]
    assert calls["on_protocol_error"] == []


async def test_tool_call_from_a_browser_runs_nothing_and_is_reported():
    tavus, calls = make()
    ran = []
    tavus.register_function(None, lambda params: ran.append(params))
    fake = Msgs()("conversation.tool_call", {"name": "transfer_money", "arguments": "{}"})
    down, _ = await run(tavus, [frame(fake, sender=BROWSER), SleepFrame(0.05)])
    assert ran == []
    assert not [f for f in down if isinstance(f, TavusToolCallFrame | InputTransportMessageFrame)]
    assert [e.reason for (e,) in calls["on_protocol_error"]] == ["foreign_sender"]
    assert tavus.stats["dropped_foreign_sender"] == 1


async def test_message_for_another_conversation_is_dropped():
    tavus, calls = make()
    other = Msgs()("conversation.utterance", {"role": "user", "speech": "hi"})
    other["conversation_id"] = "c-other"
    down, _ = await run(tavus, [frame(other)])
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [e.reason for (e,) in calls["on_protocol_error"]] == ["other_conversation"]


async def test_every_malformed_fixture_is_reported_and_the_next_good_event_still_arrives():
    cases = load_fixture("malformed/cases.json")["cases"]
    tavus, calls = make()
    bad = [frame(c["text"] if "text" in c else c["message"]) for c in cases]
    good = Msgs(turn_idx=9)("conversation.utterance", {"role": "user", "speech": "still here"})
    down, _ = await run(tavus, [*bad, frame(good)])
    assert len(calls["on_protocol_error"]) == len(cases)
    assert sum(tavus.stats[k] for k in tavus.stats if k.startswith("dropped_")) == len(cases)
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["still here"]


async def test_out_of_order_events_are_released_in_seq_order():
    tavus, _ = make()
    m = Msgs()
    first = m("conversation.utterance", {"role": "user", "speech": "one"})
    second = m("conversation.utterance", {"role": "user", "speech": "two"})
    down, _ = await run(tavus, [frame(first), frame(json.dumps(second))])
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["one", "two"]
    m2 = Msgs()
    a = m2("conversation.utterance", {"role": "user", "speech": "a"})
    b = m2("conversation.utterance", {"role": "user", "speech": "b"})
    c = m2("conversation.utterance", {"role": "user", "speech": "c"})
    tavus2, _ = make()
    down, _ = await run(tavus2, [frame(a), frame(c), frame(b)])
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["a", "b", "c"]


async def test_turn_completes_when_the_next_turn_starts():
    tavus, calls = make()
    m = Msgs(turn_idx=1)
    frames_ = [frame(m("conversation.utterance", {"role": "user", "speech": "first"}))]
    m.turn_idx = 2
    frames_.append(frame(m("conversation.utterance", {"role": "user", "speech": "second"})))
    down, _ = await run(tavus, frames_)
    done = [f.turn for f in down if isinstance(f, TavusTurnFrame)]
    # Turn 1 completes when turn 2 starts; turn 2 completes when the pipeline ends.
    assert [(t.turn_idx, t.user_text) for t in done] == [(1, "first"), (2, "second")]
    assert [a[0].turn_idx for a in calls["on_turn_completed"]] == [1, 2]


async def test_unknown_replica_sender_is_dropped_until_identified():
    tavus, calls = make(replica_participant_id=None)
    msg = Msgs()("conversation.utterance", {"role": "user", "speech": "hi"})
    down, _ = await run(tavus, [frame(msg)])
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [e.reason for (e,) in calls["on_protocol_error"]] == ["foreign_sender"]
    tavus.set_replica_participant(REPLICA)
    tavus2_down, _ = await run(
        tavus, [frame(Msgs()("conversation.utterance", {"role": "user", "speech": "hi"}))]
    )
    assert [f.text for f in tavus2_down if isinstance(f, TranscriptionFrame)] == ["hi"]


async def test_bot_speaking_frames_can_be_switched_off():
    tavus, _ = make(emit_bot_speaking=False)
    m = Msgs()
    down, _ = await run(tavus, [frame(x) for x in _replica_span(m, "i1")])
    assert not [
        f
        for f in down
        if isinstance(f, BotStartedSpeakingFrame | BotStoppedSpeakingFrame | BotSpeakingFrame)
    ]


class Room(BaseObject):
    """A transport stand-in that only raises Daily's participant events."""

    def __init__(self):
        super().__init__()
        self._register_event_handler("on_participant_joined")
        self._register_event_handler("on_participant_left")

    async def leave(self, participant_id: str) -> None:
        await self._call_event_handler("on_participant_left", {"id": participant_id}, "left")


async def test_a_replica_that_leaves_mid_utterance_stops_the_bot_speaking():
    # Before the conversation core, the facade cleared its own flag but the input's stayed
    # set: no BotStoppedSpeakingFrame, and the bot "spoke" for ever.
    tavus, calls = make()
    room = Room()
    tavus.attach_transport(room)
    m = Msgs()

    async def leave_once_speaking(_tavus, event):
        if event.event_type == "conversation.replica.started_speaking":
            await room.leave(REPLICA)

    tavus.add_event_handler("on_event", leave_once_speaking)
    started = m("conversation.replica.started_speaking", inference_id="i1")
    utterance = m("conversation.utterance", {"role": "user", "speech": "Hi"})
    down, _ = await run(
        tavus,
        [frame(m("system.replica_joined")), frame(utterance), frame(started), SleepFrame(0.2)],
    )
    speaking = [t for t in types(down) if t.startswith("BotSt")]
    assert speaking == ["BotStartedSpeakingFrame", "BotStoppedSpeakingFrame"]
    assert tavus.replica_speaking is False and tavus.replica_ready is False
    assert calls["on_replica_left"] == [("participant_left",)]
    (turn,) = [f.turn for f in down if isinstance(f, TavusTurnFrame)]
    assert turn.turn_idx == 1 and not any(span.open for span in turn.spans)


class SlowData(FrameProcessor):
    """An ordinary queued processor that takes its time over transcriptions."""

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            await asyncio.sleep(0.05)
        await self.push_frame(frame, direction)


async def test_frames_of_one_event_keep_protocol_order_through_a_queued_processor():
    # Tavus frames used to be system frames: they overtook the TranscriptionFrame they
    # belong to in any queued processor downstream.
    tavus, _ = make()
    m = Msgs()
    messages = [
        m("conversation.utterance", {"role": "user", "speech": "Hi"}),
        m("conversation.replica.started_speaking", inference_id="i1"),
        m("conversation.utterance", {"role": "replica", "speech": "Hello!"}, inference_id="i1"),
        m("conversation.replica.stopped_speaking", inference_id="i1"),
    ]
    down, _ = await run_test(
        Pipeline([tavus.input(), SlowData()]),
        frames_to_send=[frame(x) for x in messages],
    )
    ordered = [
        t
        for t in types(down)
        if t in ("TranscriptionFrame", "TavusUtteranceFrame", "TavusTurnFrame")
    ]
    assert ordered == [
        "TranscriptionFrame",
        "TavusUtteranceFrame",
        "TavusUtteranceFrame",
        "TavusTurnFrame",
    ]


async def test_an_interruption_does_not_flush_tavus_frames_from_a_queue():
    tavus, _ = make()
    m = Msgs()
    utterance = m("conversation.utterance", {"role": "user", "speech": "Hi"})
    down, _ = await run_test(
        Pipeline([tavus.input(), SlowData()]),
        frames_to_send=[frame(utterance), InterruptionFrame()],
    )
    assert [(f.role, f.text) for f in down if isinstance(f, TavusUtteranceFrame)] == [
        ("user", "Hi")
    ]


async def test_shutdown_ends_the_worker_after_the_frames_already_pushed():
    tavus, _ = make()
    m = Msgs()
    utterance = m("conversation.utterance", {"role": "user", "speech": "Bye"})
    shutdown = m("system.shutdown", {"shutdown_reason": "max_call_duration reached"})
    down, _ = await run_test(
        Pipeline([tavus.input(), SlowData()]), frames_to_send=[frame(utterance), frame(shutdown)]
    )
    names = types(down)
    # Downstream, behind the last transcription, rather than upstream ahead of it.
    assert names.index("TranscriptionFrame") < names.index("EndWorkerFrame")
