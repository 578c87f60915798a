"""Whole bots on the simulator: a real PipelineWorker + WorkerRunner, RTVI off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import run_test
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import (
    TavusInteractions,
    TavusInteractionsParams,
    TavusReplicaRelay,
    TavusToolCallFrame,
    TavusTurnFrame,
    TavusUtteranceFrame,
    interactions,
)
from pipecat_tavus_interactions.simulator import (
    Chaos,
    PersonaRule,
    ScriptedPersona,
    ScriptedUser,
    SimulatedTransport,
    TavusSimulator,
    ToolCallSpec,
    UserLine,
)
from pipecat_tavus_interactions.simulator.room import SimulatedRoom


class Recorder(FrameProcessor):
    """Records every frame passing downstream, and forwards it."""

    def __init__(self):
        super().__init__(enable_direct_mode=True)
        self.frames: list[Frame] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
        await self.push_frame(frame, direction)


def persona() -> ScriptedPersona:
    return ScriptedPersona(
        rules=[
            PersonaRule(
                pattern=r"price of (?P<item>\w+)",
                regex=True,
                tool_call=ToolCallSpec(name="get_price", arguments={"item": "{item}"}),
                reply="The {item} costs {result}.",
            ),
            PersonaRule(
                pattern="story",
                reply="Once upon a time there was a very long story that went on and on.",
            ),
        ],
        default_reply="Okay, noted.",
    )


async def get_price(params):
    await params.result_callback(f"{len(params.arguments['item'])} dollars")


def twenty_lines() -> list[UserLine]:
    lines = []
    for i in range(20):
        if i % 5 == 1:
            lines.append(UserLine(text=f"What is the price of item{i}?"))
        elif i % 5 == 3:
            lines.append(UserLine(text="Tell me a story please."))
        elif i % 5 == 4:
            lines.append(UserLine(text=f"Stop, line {i} now.", barge_in_after_words=3))
        else:
            lines.append(UserLine(text=f"Hello number {i}."))
    return lines


@pytest.fixture(params=["direct", "relay"])
def wiring(request) -> str:
    """How the bot reaches the replica: in its Daily room, or through the relay."""
    return request.param


async def run_bot(
    sim: TavusSimulator,
    tavus: TavusInteractions,
    lines: list[UserLine],
    *,
    respond: str = "",
    until: Callable[[], bool] | None = None,
    wiring: str = "direct",
) -> Recorder:
    recorder = Recorder()
    if wiring == "relay":
        # The replica's room is the relay's second room; the recorder stands where the
        # bot's own output transport would.
        relay = TavusReplicaRelay(room=SimulatedRoom(sim, max_framerate=5), tavus=tavus)
        pipeline = Pipeline([relay, recorder])
    else:
        transport = SimulatedTransport(sim)
        tavus.attach_transport(transport)
        pipeline = Pipeline(
            [transport.input(), tavus.input(), recorder, tavus.output(), transport.output()]
        )
    worker = PipelineWorker(pipeline, enable_rtvi=False, idle_timeout_secs=None)

    async def converse():
        if respond:
            await tavus.send(interactions.Respond(respond))
        await sim.run_script(ScriptedUser(lines=lines))
        for _ in range(1000):  # bounded: 10 s at most
            if until is None or until():
                break
            await asyncio.sleep(0.01)
        await sim.wait_idle()
        await sim.shutdown()

    @tavus.event_handler("on_replica_joined")
    async def joined(tavus, event):
        worker.create_task(converse(), "script")

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), timeout=60)
    return recorder


def make_tavus(sim: TavusSimulator, **params: Any) -> TavusInteractions:
    tavus = TavusInteractions(
        params=TavusInteractionsParams(conversation_id=sim.conversation_id, **params)
    )
    tavus.register_function("get_price", get_price)
    return tavus


async def replay_clean(sim: TavusSimulator) -> TavusInteractions:
    """Feed what the replica emitted (before chaos) through a fresh bot, in order."""
    tavus = make_tavus(sim, replica_participant_id=sim.participant_id, heartbeat_timeout_s=None)
    frames = [
        DailyInputTransportMessageFrame(message=m, participant_id=sim.participant_id)
        for m in sim.emitted
    ]
    # The processors' cleanup waits for the handler tasks: nothing is left to settle.
    await run_test(Pipeline([tavus.input(), tavus.output()]), frames_to_send=frames)
    return tavus


def content(turn) -> dict:
    """A turn's summary without how tool results were delivered.

    The clean replay feeds the whole conversation at once, so by the time a replayed tool
    handler finishes its turn is long superseded and the result is (rightly) appended as
    context; delivery depends on timing, everything else on the events.
    """
    summary = turn.summary()
    for call in summary["tool_calls"]:
        call.pop("delivery")
    return summary


async def test_a_20_turn_conversation_under_chaos_gives_the_clean_ledger(wiring):
    chaos = Chaos(
        reorder_window=3,
        duplicate_rate=0.2,
        heartbeat_noise=True,
        foreign_sender_rate=0.1,
        malformed_rate=0.05,
        seed=7,
    )
    sim = TavusSimulator(persona=persona(), speed=100, chaos=chaos, seed=3)
    # Chaos shuffles messages within 3 places, delivered back to back: a gap always fills
    # within milliseconds. A window far above that keeps a loaded machine (an event loop
    # stalled past the default 50 ms) from giving up gaps and turning the test into a race.
    tavus = make_tavus(sim, reorder_window_ms=2000)
    await run_bot(sim, tavus, twenty_lines(), wiring=wiring)

    chaotic = [content(t) for t in tavus.ledger.turns]
    clean = [content(t) for t in (await replay_clean(sim)).ledger.turns]
    assert [t["turn_idx"] for t in clean] == list(range(1, 21))
    assert chaotic == clean
    # Chaos really happened, and every fault was absorbed rather than lost.
    counts = sim.chaos_counts
    assert counts["duplicated"] and counts["foreign"] and counts["malformed"]
    assert tavus.stats["dropped_foreign_sender"] >= counts["foreign"]
    stats = tavus.input().orderer.stats
    assert stats["duplicate_seq"] >= counts["duplicated"]


async def test_forged_tool_calls_from_a_browser_never_run_a_handler(wiring):
    chaos = Chaos(foreign_sender_rate=1.0, seed=11)
    sim = TavusSimulator(persona=persona(), speed=100, chaos=chaos)
    tavus = make_tavus(sim)
    ran: list[str] = []

    async def anything(params):
        ran.append(params.function_name)
        await params.result_callback("ok")

    tavus.register_function(None, anything)
    await run_bot(
        sim, tavus, [UserLine(text="Hello there."), UserLine(text="Hello again.")], wiring=wiring
    )
    assert ran == []  # the persona calls no tool; every call seen was forged
    assert tavus.stats["dropped_foreign_sender"] > 0


def _turn_frames(frames: list[Frame], turn_idx: int) -> list[str]:
    """The key frames of one user turn, in the order they left tavus.input()."""
    out = []
    in_turn = False
    for f in frames:
        if isinstance(f, UserStartedSpeakingFrame) and not in_turn:
            in_turn = True
        if isinstance(f, TavusUtteranceFrame) and f.turn_idx is not None and f.turn_idx != turn_idx:
            if in_turn and out:
                pass
        if isinstance(f, TavusTurnFrame) and f.turn.turn_idx == turn_idx:
            out.append("Turn")
            break
        if isinstance(
            f,
            UserStartedSpeakingFrame
            | UserStoppedSpeakingFrame
            | TranscriptionFrame
            | BotStartedSpeakingFrame
            | BotStoppedSpeakingFrame
            | TavusToolCallFrame,
        ):
            out.append(type(f).__name__.replace("Frame", ""))
        elif isinstance(f, TavusUtteranceFrame):
            kind = "user" if f.role == "user" else ("spoken" if f.spoken else "intended")
            out.append(f"Utterance:{kind}")
    return out


async def test_frames_leave_the_input_in_protocol_order(wiring):
    sim = TavusSimulator(persona=persona(), speed=100)
    tavus = make_tavus(sim)
    recorder = await run_bot(
        sim, tavus, [UserLine(text="What is the price of tea?")], wiring=wiring
    )
    assert _turn_frames(recorder.frames, 1) == [
        "UserStartedSpeaking",
        "UserStoppedSpeaking",
        "Transcription",
        "Utterance:user",
        "TavusToolCall",
        "Utterance:intended",
        "BotStartedSpeaking",
        "Utterance:spoken",
        "BotStoppedSpeaking",
        "Turn",
    ]
    turn = tavus.ledger.get(1)
    assert turn.replica_spoken_text == "The tea costs 3 dollars."
    assert [(c.name, c.arguments, c.status) for c in turn.tool_calls] == [
        ("get_price", {"item": "tea"}, "success")
    ]


async def test_a_respond_sent_before_the_replica_joins_is_delivered_and_marked_injected(wiring):
    sim = TavusSimulator(persona=persona(), speed=100)
    tavus = make_tavus(sim)
    recorder = await run_bot(
        sim,
        tavus,
        [],
        respond="What is the price of milk?",
        until=lambda: any(t.replica_spoken_text for t in tavus.ledger.turns),
        wiring=wiring,
    )
    turn = tavus.ledger.get(1)
    assert turn.user_text == "What is the price of milk?" and turn.user_injected
    assert turn.replica_spoken_text == "The milk costs 4 dollars."
    # Our own respond is not transcribed as if the user had said it.
    assert not [f for f in recorder.frames if isinstance(f, TranscriptionFrame)]
    sent = [i for i in sim.interactions if isinstance(i, interactions.Respond)]
    assert sent == [interactions.Respond("What is the price of milk?")]


async def test_a_late_tool_result_after_a_barge_in_is_appended_not_spoken(wiring):
    sim = TavusSimulator(persona=persona(), speed=100, tool_wait_s=0.05)
    tavus = make_tavus(sim)

    async def slow_price(params):
        await asyncio.sleep(0.5)
        await params.result_callback("99 dollars")

    tavus.register_function("get_price", slow_price)
    await run_bot(
        sim,
        tavus,
        [UserLine(text="What is the price of gold?"), UserLine(text="Never mind, hello.")],
        until=lambda: tavus.ledger.get(1).tool_calls[0].status != "pending",
        wiring=wiring,
    )
    late = [i for i in sim.interactions if not isinstance(i, interactions.Respond)]
    assert [type(i).__name__ for i in late] == ["AppendLLMContext"]
    assert late[0].context == "Result of tool get_price: 99 dollars"
    assert tavus.ledger.get(1).tool_calls[0].delivery == "stale_append"


POLICY_WIRE = {
    "auto": ["ToolResult"],
    "tool_result": ["ToolResult"],
    "append": ["AppendLLMContext"],
    "append_and_respond": ["AppendLLMContext", "Respond"],
    "echo": ["Echo"],
    "respond": ["Respond"],
    "none": [],
}


@pytest.mark.parametrize("policy", sorted(POLICY_WIRE))
async def test_a_persona_tool_call_round_trips_through_each_delivery_policy(policy, wiring):
    sim = TavusSimulator(persona=persona(), speed=100, tool_wait_s=0.3)
    tavus = make_tavus(sim, tool_result_delivery=policy)
    seen = []

    async def price(params):
        seen.append((params.function_name, dict(params.arguments), params.turn_idx))
        await params.result_callback("7 dollars")

    tavus.register_function("get_price", price)
    await run_bot(
        sim,
        tavus,
        [UserLine(text="What is the price of bread?")],
        until=lambda: (
            bool(tavus.ledger.get(1) and tavus.ledger.get(1).tool_calls)
            and tavus.ledger.get(1).tool_calls[0].status != "pending"
        ),
        wiring=wiring,
    )
    assert seen == [("get_price", {"item": "bread"}, 1)]
    call_id = tavus.ledger.get(1).tool_calls[0].tool_call_id
    sent = [i for i in sim.interactions]
    assert [type(i).__name__ for i in sent] == POLICY_WIRE[policy]
    expected = {
        "ToolResult": interactions.ToolResult(call_id, "7 dollars", "success"),
        "AppendLLMContext": interactions.AppendLLMContext("Result of tool get_price: 7 dollars"),
        "Echo": interactions.Echo(text="7 dollars"),
        "Respond": interactions.Respond(
            "The get_price lookup finished; please tell me what it found."
            if policy == "append_and_respond"
            else "get_price returned: 7 dollars"
        ),
    }
    assert sent == [expected[type(i).__name__] for i in sent]
    if policy in ("auto", "tool_result"):
        # The replica used the result in its reply.
        assert tavus.ledger.get(1).replica_spoken_text == "The bread costs 7 dollars."


async def test_no_event_handler_task_outlives_the_pipeline(wiring):
    # The processors' cleanup() waits for the facade's handler tasks; before, a slow
    # on_turn_completed handler was still pending when the runner returned.
    sim = TavusSimulator(persona=persona(), speed=100, seed=5)
    tavus = make_tavus(sim)
    finished: list[int] = []

    @tavus.event_handler("on_turn_completed")
    async def slow(tavus, turn):
        await asyncio.sleep(0.3)
        finished.append(turn.turn_idx)

    await run_bot(sim, tavus, [UserLine(text="Hello there.")], wiring=wiring)
    # Every turn that completed had its handler run to the end before run() returned.
    assert finished and sorted(finished) == [t.turn_idx for t in tavus.ledger.turns]
    pending = [t for t in asyncio.all_tasks() if "slow" in repr(t.get_coro())]
    assert pending == []
