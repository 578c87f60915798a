"""What a bot process at scale relies on.

A Tavus message from the transport is taken in place (no frame, no hop, no upstream copy),
imports stay light, the GC helper does what it says, and ``BotSpeakingFrame`` at its period
keeps Pipecat's idle timeout quiet.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

import pytest
from pipecat.frames.frames import (
    BotSpeakingFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputTransportMessageFrame,
    TextFrame,
)
from pipecat.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import (
    ConfigurationError,
    TavusInteractions,
    TavusInteractionsParams,
    TavusUtteranceFrame,
    tune_gc,
)
from pipecat_tavus_interactions.pipeline.input import TavusInteractionsInput
from pipecat_tavus_interactions.simulator import (
    ScriptedPersona,
    ScriptedUser,
    SimulatedTransport,
    TavusSimulator,
)

DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM


class Recorder(FrameProcessor):
    """Records every frame with its direction and passes it on."""

    def __init__(self):
        super().__init__(enable_direct_mode=True)
        self.frames: list[tuple[Frame, FrameDirection]] = []
        self.changed = asyncio.Event()

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        self.frames.append((frame, direction))
        self.changed.set()
        await self.push_frame(frame, direction)

    def of(self, cls, direction):
        return [f for f, d in self.frames if isinstance(f, cls) and d == direction]

    async def wait_until(self, condition):
        while not condition():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


class MessageObserver(BaseObserver):
    """Notes every app-message frame the pipeline pushed or processed, anywhere."""

    def __init__(self):
        super().__init__()
        self.messages: list[object] = []

    async def on_push_frame(self, data: FramePushed):
        if isinstance(data.frame, InputTransportMessageFrame):
            self.messages.append(data.frame.message)

    async def on_process_frame(self, data: FrameProcessed):
        if isinstance(data.frame, InputTransportMessageFrame):
            self.messages.append(data.frame.message)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "queued"])
async def test_tavus_messages_are_taken_in_place_other_app_messages_go_both_ways(
    direct, monkeypatch
):
    monkeypatch.setattr(TavusInteractionsInput, "DIRECT_MODE", direct)
    sim = TavusSimulator(
        persona=ScriptedPersona(default_reply="Nice to meet you."),
        speed=200,
        heartbeat_interval_s=None,
    )
    transport = SimulatedTransport(sim)
    tavus = TavusInteractions(params=TavusInteractionsParams(conversation_id=sim.conversation_id))
    tavus.attach_transport(transport)
    up, down = Recorder(), Recorder()
    observer = MessageObserver()
    source = transport.input()
    worker = PipelineWorker(
        Pipeline([up, source, tavus.input(), down, tavus.output(), transport.output()]),
        enable_rtvi=False,
        idle_timeout_secs=None,
        observers=[observer],
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        await sim.wait_started()
        await sim.run_script(ScriptedUser(lines=["Hello there"]))
        await sim.wait_idle()
        await down.wait_until(lambda: down.of(TavusUtteranceFrame, DOWN))
        chat = {"type": "chat", "text": "hi from the browser"}
        await source.push_app_message(chat, transport.user_participant_id)
        await down.wait_until(lambda: down.of(DailyInputTransportMessageFrame, DOWN))
        assert tavus.input().consumes_upstream_copies
    finally:
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(task, 10)

    assert len(sim.emitted) > 5
    # The conversation was understood from the downstream copies alone ...
    spoken = [
        m["properties"]["speech"]
        for m in sim.emitted
        if m["event_type"] == "conversation.utterance"
    ]
    assert "Hello there" in spoken
    assert [f.text for f in down.of(TavusUtteranceFrame, DOWN)] == spoken
    # ... no upstream copy of a Tavus message was made, and the browser's message still
    # went both ways, as the transport broadcasts it.
    [upstream] = up.of(DailyInputTransportMessageFrame, UP)
    [downstream] = down.of(DailyInputTransportMessageFrame, DOWN)
    assert upstream.message == downstream.message == chat
    assert upstream.broadcast_sibling_id == downstream.id
    tavus_seen = [m for m in observer.messages if m != chat]
    if direct:  # taken in place: never a frame
        assert not tavus_seen
    else:  # queued: pushed to tavus.input() as a frame, to keep its place in the queue
        assert len(tavus_seen) >= len(sim.emitted)
    # The transport is left as it was found.
    assert "broadcast_frame" not in vars(source)
    assert not tavus.input().consumes_upstream_copies


async def _one_message_through_the_transport(tavus, message, sender, wait_for):
    """Start ``source -> tavus.input() -> down``; the source hands over ``message``."""
    sim = TavusSimulator(persona=ScriptedPersona(default_reply="ok"), heartbeat_interval_s=None)
    transport = SimulatedTransport(sim)
    up, down = Recorder(), Recorder()
    up.changed = down.changed  # one wake-up for a frame reaching either
    source = transport.input()
    worker = PipelineWorker(
        Pipeline([up, source, tavus.input(), down]), enable_rtvi=False, idle_timeout_secs=None
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        await sim.wait_started()
        await source.push_app_message(message, sender)
        await down.wait_until(lambda: wait_for(up, down))
        after = {"type": "chat", "text": "after"}
        await source.push_app_message(after, "browser")
        await down.wait_until(
            lambda: after in [f.message for f in down.of(DailyInputTransportMessageFrame, DOWN)]
        )
    finally:
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(task, 10)
    return up, down


async def test_a_claimed_message_the_core_does_not_take_is_delivered_as_a_frame(monkeypatch):
    tavus = TavusInteractions(params=TavusInteractionsParams(conversation_id="c1"))
    # A browser's message that the identity claims but the core does not act on.
    claims = tavus.connection.identity.claims
    monkeypatch.setattr(
        tavus.connection.identity,
        "claims",
        lambda message, sender: message.get("text") == "hi" or claims(message, sender),
    )
    chat = {"type": "chat", "text": "hi"}
    up, down = await _one_message_through_the_transport(
        tavus, chat, "browser", lambda up, down: down.of(DailyInputTransportMessageFrame, DOWN)
    )
    messages = [f.message["text"] for f in down.of(DailyInputTransportMessageFrame, DOWN)]
    assert messages == ["hi", "after"]
    # Claimed: no upstream copy (the message after it was not claimed, so it has one).
    assert [f.message["text"] for f in up.of(DailyInputTransportMessageFrame, UP)] == ["after"]


async def test_a_failure_while_taking_a_message_is_an_error_frame_and_the_input_goes_on(
    monkeypatch,
):
    tavus = TavusInteractions(params=TavusInteractionsParams(conversation_id="c1"))

    receive = tavus.connection.receive
    message = {"message_type": "conversation", "event_type": "conversation.utterance"}

    def broken(msg, **kwargs):
        if msg is message:
            raise KeyError("boom")
        return receive(msg, **kwargs)

    monkeypatch.setattr(tavus.connection, "receive", broken)
    up, down = await _one_message_through_the_transport(
        tavus, message, "replica", lambda up, down: up.of(ErrorFrame, UP)
    )
    [error] = up.of(ErrorFrame, UP)
    assert "boom" in error.error
    # The failed message went nowhere else, and the next app message still went through.
    messages = [f.message["text"] for f in down.of(DailyInputTransportMessageFrame, DOWN)]
    assert messages == ["after"]


async def test_without_a_transport_before_it_the_input_wraps_nothing():
    tavus = TavusInteractions(params=TavusInteractionsParams(conversation_id="c1"))
    first = Recorder()
    worker = PipelineWorker(
        Pipeline([first, tavus.input(), tavus.output()]), enable_rtvi=False, idle_timeout_secs=None
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        await worker.queue_frame(TextFrame("x"))
        await first.wait_until(lambda: first.of(TextFrame, DOWN))
        assert not tavus.input().consumes_upstream_copies
        assert "broadcast_frame" not in vars(first)
    finally:
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(task, 10)


def _modules_after_import(statement: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_importing_the_package_does_not_import_the_llm_service_stack():
    loaded = _modules_after_import("from pipecat_tavus_interactions import TavusInteractions")
    assert "pipecat_tavus_interactions.pipeline.facade" in loaded
    for heavy in ("pipecat.services.llm_service", "aiohttp", "PIL"):
        assert heavy not in loaded, f"import pipecat_tavus_interactions loads {heavy}"


def test_tool_params_stay_importable_by_their_public_name():
    loaded = _modules_after_import(
        "from pipecat_tavus_interactions import TavusFunctionCallParams\n"
        "from pipecat.services.llm_service import FunctionCallParams\n"
        "assert issubclass(TavusFunctionCallParams, FunctionCallParams)"
    )
    assert "pipecat.services.llm_service" in loaded


def test_unknown_names_still_raise_attribute_error():
    import pipecat_tavus_interactions as pkg

    with pytest.raises(AttributeError, match="no_such_name"):
        pkg.no_such_name  # noqa: B018


@pytest.fixture
def restore_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_gc_freezes_what_is_alive_and_raises_the_young_threshold(restore_gc):
    survivor = [[] for _ in range(1000)]  # tracked by the collector
    gc.unfreeze()
    before = gc.get_threshold()

    tuning = tune_gc(gen0_threshold=12_345)

    assert gc.get_threshold() == (12_345, before[1], before[2])
    assert tuning.previous_thresholds == before
    assert tuning.thresholds == gc.get_threshold()
    assert tuning.frozen == gc.get_freeze_count() >= len(survivor)
    collectable = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
    assert id(survivor[0]) not in collectable and id(survivor) not in collectable


def test_tune_gc_without_freeze_only_sets_the_threshold(restore_gc):
    gc.unfreeze()
    tuning = tune_gc(gen0_threshold=2_000, freeze=False)
    assert tuning.frozen == 0
    assert gc.get_threshold()[0] == 2_000


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "700"])
def test_tune_gc_rejects_a_threshold_that_is_not_a_positive_int(restore_gc, bad):
    before = gc.get_threshold()
    with pytest.raises(ConfigurationError, match="gen0_threshold"):
        tune_gc(gen0_threshold=bad)
    assert gc.get_threshold() == before


REPLICA = "11111111-1111-4111-8111-111111111111"


def _wire(seq: int, event_type: str, **properties) -> DailyInputTransportMessageFrame:
    message = {
        "message_type": "conversation",
        "event_type": event_type,
        "conversation_id": "c1",
        "seq": seq,
        "turn_idx": 1,
        "inference_id": "i1",
    }
    if properties:
        message["properties"] = properties
    return DailyInputTransportMessageFrame(message=message, participant_id=REPLICA)


async def _until(condition) -> None:
    for _ in range(1000):  # 10 s at most
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 10 s")


async def _idle_timeouts_while_the_replica_speaks(
    speaking_s: float, idle_timeout_s: float, **params
) -> tuple[int, int]:
    """Run a worker with an idle timeout while the replica speaks for ``speaking_s``.

    Returns how often ``on_idle_timeout`` fired and how many ``BotSpeakingFrame`` came out.
    """
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id="c1",
            replica_participant_id=REPLICA,
            heartbeat_timeout_s=None,
            **params,
        )
    )
    seen = Recorder()
    worker = PipelineWorker(
        Pipeline([tavus.input(), seen, tavus.output()]),
        enable_rtvi=False,
        idle_timeout_secs=idle_timeout_s,
        cancel_on_idle_timeout=False,
    )
    fired = []

    @worker.event_handler("on_idle_timeout")
    async def on_idle_timeout(_worker):
        fired.append(asyncio.get_running_loop().time())

    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(_worker, _frame):
        started.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(started.wait(), 10)
        await worker.queue_frame(_wire(1, "conversation.replica.started_speaking"))
        await _until(lambda: tavus.replica_speaking)
        # The replica talks for speaking_s: no message arrives meanwhile (Tavus sends none).
        await asyncio.sleep(speaking_s)
        await worker.queue_frame(
            _wire(2, "conversation.replica.stopped_speaking", duration=speaking_s)
        )
        await _until(lambda: not tavus.replica_speaking)
    finally:
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(task, 10)
    return len(fired), len(seen.of(BotSpeakingFrame, DOWN))


async def test_bot_speaking_frames_keep_the_idle_timeout_quiet_while_the_replica_speaks():
    fired, ticks = await _idle_timeouts_while_the_replica_speaks(
        3.5, idle_timeout_s=1.5, bot_speaking_interval_s=0.25
    )
    assert fired == 0
    assert ticks >= 6  # 14 at the period on an idle machine; a stalled loop skips, not piles


async def test_without_bot_speaking_frames_the_idle_timeout_fires_while_the_replica_speaks():
    # The control: the same speech with no BotSpeakingFrame looks idle to Pipecat.
    fired, ticks = await _idle_timeouts_while_the_replica_speaks(
        3.5, idle_timeout_s=1.5, emit_bot_speaking=False
    )
    assert fired >= 1
    assert ticks == 0


def test_the_default_period_is_well_inside_pipecats_shortest_timeouts():
    # PipelineWorker's idle timeout is 300 s by default; the shortest Pipecat timeout that
    # BotSpeakingFrame refreshes is the wake-phrase strategy's (10 s by default).
    assert TavusInteractionsParams().bot_speaking_interval_s == 1.0
