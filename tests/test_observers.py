"""Pipecat's own observers and metrics on a simulated full-mode conversation.

Tavus runs speech recognition, the LLM and the voice in ``full`` mode, so no Pipecat service
pushes the frames that ``UserBotLatencyObserver``, ``TurnTrackingObserver`` and the metrics
key on; ``tavus.input()`` pushes them from the replica's events (``pipeline/signals.py``).
These tests attach Pipecat's real observers to a real ``PipelineWorker`` and check that they
report the replica's numbers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    MetricsFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame
from pipecat.tests.utils import run_test
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame
from pipecat.workers.runner import WorkerRunner
from test_end_to_end import Recorder

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.pipeline.signals import METRICS_MODEL
from pipecat_tavus_interactions.simulator import (
    ScriptedPersona,
    ScriptedUser,
    SimulatedTransport,
    TavusSimulator,
    UserLine,
)

LINES = ["Hello there.", "How are you today?", "Tell me something nice."]


async def converse(
    *, enable_metrics: bool = True, lines: list[str] = LINES, **params: Any
) -> dict[str, Any]:
    """Run a real-time full-mode conversation with Pipecat's observers attached."""
    # Real time (speed 1): the observer reads the wall clock, the ledger Tavus's timestamps.
    sim = TavusSimulator(
        persona=ScriptedPersona(default_reply="Okay, noted."),
        speed=1.0,
        words_per_second=12.0,
        response_latency_s=0.3,
        heartbeat_interval_s=None,
    )
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id=sim.conversation_id, heartbeat_timeout_s=None, **params
        )
    )
    transport = SimulatedTransport(sim)
    tavus.attach_transport(transport)
    recorder = Recorder()
    latency = UserBotLatencyObserver()
    out: dict[str, Any] = {"latencies": [], "breakdowns": [], "turns": [], "recorder": recorder}

    @latency.event_handler("on_latency_measured")
    async def measured(observer, seconds):
        out["latencies"].append(seconds)

    @latency.event_handler("on_latency_breakdown")
    async def breakdown(observer, value):
        out["breakdowns"].append(value)

    pipeline = Pipeline(
        [transport.input(), tavus.input(), recorder, tavus.output(), transport.output()]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(enable_metrics=enable_metrics),
        observers=[latency],
        enable_rtvi=False,
        idle_timeout_secs=None,
    )

    @worker.turn_tracking_observer.event_handler("on_turn_ended")
    async def turn_ended(observer, number, duration, interrupted):
        out["turns"].append((number, interrupted))

    async def script():
        await sim.run_script(ScriptedUser(lines=[UserLine(text=t) for t in lines]))
        await sim.wait_idle()
        await sim.shutdown()

    @tavus.event_handler("on_replica_joined")
    async def joined(tavus, event):
        worker.create_task(script(), "script")

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), timeout=60)
    out["ledger"] = [t for t in tavus.ledger.turns if t.user_text]
    return out


async def test_latency_observer_reports_one_latency_per_turn_matching_the_ledger():
    out = await converse()
    ledger = [t.response_latency_s for t in out["ledger"]]
    assert len(ledger) == len(LINES) and all(v is not None for v in ledger)
    measured = out["latencies"]
    assert len(measured) == len(ledger), (measured, ledger)
    for seen, expected in zip(measured, ledger, strict=True):
        assert abs(seen - expected) < 0.05, (measured, ledger)
    # The replica's latency is also its TTFB, in the breakdown of each turn.
    for bd, expected in zip(out["breakdowns"], ledger, strict=True):
        assert [(m.model, round(m.duration_secs, 6)) for m in bd.ttfb] == [
            (METRICS_MODEL, round(expected, 6))
        ]
    # Pipecat's turn tracking (on by default in the worker) saw one turn per user line: each
    # ended by the next user start; the last one by the pipeline's end, which
    # TurnTrackingObserver reports as interrupted.
    assert out["turns"] == [(1, False), (2, False), (3, True)]


async def test_vad_frames_come_before_the_turn_frames_and_ttfb_needs_enable_metrics():
    out = await converse(enable_metrics=False, lines=LINES[:1])
    kinds = [
        type(f).__name__
        for f in out["recorder"].frames
        if isinstance(
            f,
            VADUserStartedSpeakingFrame
            | VADUserStoppedSpeakingFrame
            | UserStartedSpeakingFrame
            | UserStoppedSpeakingFrame,
        )
    ]
    assert kinds == [
        "VADUserStartedSpeakingFrame",
        "UserStartedSpeakingFrame",
        "VADUserStoppedSpeakingFrame",
        "UserStoppedSpeakingFrame",
    ]
    assert not [f for f in out["recorder"].frames if isinstance(f, MetricsFrame)]
    assert len(out["latencies"]) == 1  # the latency itself needs no metrics


async def test_vad_frames_can_be_switched_off():
    out = await converse(lines=LINES[:1], emit_vad_frames=False)
    frames = out["recorder"].frames
    assert not [
        f
        for f in frames
        if isinstance(f, VADUserStartedSpeakingFrame | VADUserStoppedSpeakingFrame)
    ]
    assert out["latencies"] == []  # nothing for the observer to measure from
    ttfb = [
        d for f in frames if isinstance(f, MetricsFrame) for d in f.data if d.model == METRICS_MODEL
    ]
    assert [type(d) for d in ttfb] == [TTFBMetricsData]  # metrics do not depend on VAD frames


# --- per mode, with run_test and wire messages --------------------------------------------

CID = "c-obs"
REPLICA = "replica-1"


def wire(seq: int, event_type: str, **props: Any) -> DailyInputTransportMessageFrame:
    message: dict[str, Any] = {
        "message_type": "conversation",
        "event_type": event_type,
        "conversation_id": CID,
        "seq": seq,
        "turn_idx": 1,
        "timestamp": 1746000000.0 + seq,
    }
    if props:
        message["properties"] = props
    return DailyInputTransportMessageFrame(message=message, participant_id=REPLICA)


def one_turn() -> list[DailyInputTransportMessageFrame]:
    """The user speaks for 1 s, the replica answers 0.5 s later (Tavus's timestamps: 1 s each)."""
    return [
        wire(1, "conversation.user.started_speaking"),
        wire(2, "conversation.user.stopped_speaking"),
        wire(3, "conversation.utterance", role="user", speech="Hi"),
        wire(4, "conversation.replica.started_speaking"),
        wire(5, "conversation.replica.started_speaking"),  # repeated: no second TTFB
        wire(6, "conversation.objective.completed", objective_name="greet"),
        wire(7, "conversation.replica.stopped_speaking"),
    ]


async def pushed(mode: str, **params: Any) -> list[Frame]:
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            mode=mode,
            conversation_id=CID,
            replica_participant_id=REPLICA,
            heartbeat_timeout_s=None,
            **params,
        )
    )
    down, _ = await run_test(
        tavus.input(),
        frames_to_send=one_turn(),
        pipeline_params=PipelineParams(enable_metrics=True),
    )
    return down


def names(frames: list[Frame]) -> list[str]:
    keep = (
        VADUserStartedSpeakingFrame
        | VADUserStoppedSpeakingFrame
        | MetricsFrame
        | BotStartedSpeakingFrame
        | TTSTextFrame
        | RTVIServerMessageFrame
    )
    return [
        type(f).__name__
        for f in frames
        if isinstance(f, keep)
        # The worker's own empty MetricsFrame at start is not ours.
        and not (isinstance(f, MetricsFrame) and not f.data)
    ]


async def test_full_mode_pushes_vad_frames_and_one_ttfb_per_turn():
    frames = await pushed("full")
    assert names(frames) == [
        "VADUserStartedSpeakingFrame",
        "VADUserStoppedSpeakingFrame",
        "MetricsFrame",
        "BotStartedSpeakingFrame",
        "RTVIServerMessageFrame",
    ]
    (metrics,) = [f for f in frames if isinstance(f, MetricsFrame) and f.data]
    assert [(d.model, d.value) for d in metrics.data] == [(METRICS_MODEL, 2.0)]
    assert metrics.data[0].processor.endswith("::input")  # tavus.input()'s name
    (server,) = [f for f in frames if isinstance(f, RTVIServerMessageFrame)]
    assert server.data["event_type"] == "conversation.objective.completed"
    assert server.data["event"]["properties"] == {"objective_name": "greet"}


async def test_echo_modes_leave_the_vad_frames_to_pipecats_own_vad():
    for mode in ("echo_text", "echo_audio"):
        assert names(await pushed(mode)) == [
            "MetricsFrame",
            "BotStartedSpeakingFrame",
            "RTVIServerMessageFrame",
        ], mode
    # Unless Tavus's user turn frames are asked for in an echo mode too.
    assert names(await pushed("echo_text", user_turn_frames_in_echo=True))[:2] == [
        "VADUserStartedSpeakingFrame",
        "VADUserStoppedSpeakingFrame",
    ]


async def test_server_messages_can_be_switched_off():
    assert "RTVIServerMessageFrame" not in names(await pushed("full", rtvi_server_messages=False))
