"""RTVI on (Pipecat's default): what an RTVI client in the room receives from a Tavus bot.

The client is the simulated room: every app message the bot sends is recorded by
``SimulatedTransport.sent_messages``, and RTVI's messages are the ones labelled
``rtvi-ai`` (Daily delivers them to every participant, an RTVI client among them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frameworks.rtvi import RTVIProcessor
from pipecat.workers.runner import WorkerRunner
from test_end_to_end import persona  # the replica prices things with a tool

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.pipeline.rtvi import TavusRTVIProcessor
from pipecat_tavus_interactions.simulator import (
    ScriptedUser,
    SimulatedTransport,
    TavusSimulator,
    UserLine,
)

FIXTURES = Path(__file__).parent / "fixtures" / "events"
CLIENT_READY = {
    "label": "rtvi-ai",
    "type": "client-ready",
    "id": "ready-1",
    "data": {"version": "1.0.0"},
}
#: Events no Pipecat service has a frame for: they reach RTVI clients as server messages.
OTHER_EVENTS = ["objective_completed.json", "guardrail.json", "perception_analysis.json"]


def replica_event(name: str, conversation_id: str) -> dict[str, Any]:
    """A fixture event as this conversation's replica would send it (no seq: not ordered)."""
    message = json.loads((FIXTURES / name).read_text())
    message["conversation_id"] = conversation_id
    message.pop("seq", None)
    message.pop("turn_idx", None)
    return message


async def run_with_rtvi(
    rtvi: RTVIProcessor | None,
    *,
    inside: bool = False,
    end_when: Callable[[TavusSimulator, list[str]], bool] | None = None,
) -> dict[str, Any]:
    """Run one tool-calling turn, then other events, with RTVI on.

    Args:
        rtvi: The worker's RTVI processor (``None``: Pipecat's own, prepended by the worker).
        inside: Put ``rtvi`` in the pipeline between ``transport.input()`` and
            ``tavus.input()`` (with its observer) instead of letting the worker prepend it.
        end_when: End the pipeline as soon as this holds (checked after every warning
            logged), for runs where the replica never becomes known and the script never
            starts.
    """
    sim = TavusSimulator(persona=persona(), speed=100, heartbeat_interval_s=None)
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id=sim.conversation_id, heartbeat_timeout_s=None
        )
    )

    async def get_price(params):
        await params.result_callback("3 dollars")

    tavus.register_function("get_price", get_price)
    transport = SimulatedTransport(sim)
    tavus.attach_transport(transport)
    processors = [transport.input(), tavus.input(), tavus.output(), transport.output()]
    kwargs: dict[str, Any] = {} if rtvi is None else {"rtvi_processor": rtvi}
    if inside and rtvi is not None:
        processors.insert(1, rtvi)
        kwargs = {"observers": [rtvi.create_rtvi_observer()]}
    pipeline = Pipeline(processors)
    worker = PipelineWorker(pipeline, idle_timeout_secs=None, **kwargs)  # RTVI: the default

    async def script():
        client = transport.input()
        await client.push_app_message(CLIENT_READY, transport.user_participant_id)
        await sim.run_script(ScriptedUser(lines=[UserLine(text="What is the price of tea?")]))
        await sim.wait_idle()
        for name in OTHER_EVENTS:
            await client.push_app_message(
                replica_event(name, sim.conversation_id), sim.participant_id
            )
        await sim.shutdown()

    @tavus.event_handler("on_replica_joined")
    async def joined(tavus, event):
        worker.create_task(script(), "script")

    warnings: list[str] = []
    warned = asyncio.Event()

    def on_warning(message: Any) -> None:
        warnings.append(str(message))
        warned.set()

    async def end_when_it_holds():
        while not end_when(sim, warnings):
            warned.clear()
            await warned.wait()
        await worker.queue_frame(EndFrame())

    if end_when is not None:

        @worker.event_handler("on_pipeline_started")
        async def started(worker, frame):
            worker.create_task(end_when_it_holds(), "end_when")

    sink = logger.add(on_warning, level="WARNING")
    try:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await asyncio.wait_for(runner.run(), timeout=60)
    finally:
        logger.remove(sink)
    rtvi_messages = [m for m, _ in transport.sent_messages if m.get("label") == "rtvi-ai"]
    return {"rtvi": rtvi_messages, "tavus": tavus, "sim": sim, "warnings": warnings}


def key_messages(messages: list[dict]) -> list[str]:
    """The messages a client shows, in the order received (interim transcripts left out)."""
    out = []
    for m in messages:
        kind, data = m["type"], m.get("data") or {}
        if kind == "user-transcription" and data.get("final"):
            out.append(f"user-transcription:{data['text']}")
        elif kind == "bot-output":
            out.append(f"bot-output:{data['text']}")
        elif kind == "server-message":
            out.append(f"server-message:{data['event_type']}")
        elif kind in {
            "bot-ready",
            "user-started-speaking",
            "user-stopped-speaking",
            "llm-function-call-started",
            "llm-function-call-in-progress",
            "llm-function-call-stopped",
            "bot-started-speaking",
            "bot-stopped-speaking",
        }:
            out.append(kind)
    return out


async def test_an_rtvi_client_sees_transcripts_speaking_tool_calls_and_other_events_in_order():
    rtvi = TavusRTVIProcessor()
    out = await run_with_rtvi(rtvi)
    keys = key_messages(out["rtvi"])
    # bot-output travels with data frames through the output transport, the speaking frames
    # are system frames: it is sent right after bot-started-speaking, on either side of stop.
    spoken = "bot-output:The tea costs 3 dollars."
    assert keys.count(spoken) == 1
    assert keys.index(spoken) > keys.index("bot-started-speaking")
    keys.remove(spoken)
    assert keys == [
        "bot-ready",
        "user-started-speaking",
        "user-stopped-speaking",
        "user-transcription:What is the price of tea?",
        "llm-function-call-started",
        "llm-function-call-in-progress",
        "llm-function-call-stopped",
        "bot-started-speaking",
        "bot-stopped-speaking",
        "server-message:conversation.objective.completed",
        "server-message:conversation.guardrail",
        "server-message:conversation.perception_analysis",
    ]
    calls = [m["data"] for m in out["rtvi"] if m["type"].startswith("llm-function-call-")]
    call_id = out["tavus"].ledger.get(1).tool_calls[0].tool_call_id
    assert [c.get("tool_call_id") for c in calls] == [None, call_id, call_id]
    objective = next(m["data"] for m in out["rtvi"] if m["type"] == "server-message")
    assert objective["type"] == "tavus-event"
    assert objective["event"]["properties"]["output_variables"]["company_size"] == 120
    # Every replica message reached tavus.input(): the turn is whole, the tool ran.
    turn = out["tavus"].ledger.get(1)
    assert turn.user_text == "What is the price of tea?"
    assert turn.replica_spoken_text == "The tea costs 3 dollars."
    assert [c.status for c in turn.tool_calls] == ["success"]
    # tavus.input() right after the transport stops Daily's upstream copies there, so the
    # worker's RTVI processor never sees a Tavus message (nothing to drop or warn about).
    assert rtvi.tavus_messages == 0
    assert not [w for w in out["warnings"] if "RTVI" in w or "rtvi" in w]
    # The replica never took RTVI's messages for interactions.
    assert not [i for i in out["sim"].interactions if "rtvi" in type(i).__name__.lower()]


async def test_pipecats_own_rtvi_processor_swallows_nothing_of_tavus_and_sees_no_copies():
    out = await run_with_rtvi(None)
    turn = out["tavus"].ledger.get(1)
    assert turn.replica_spoken_text == "The tea costs 3 dollars."
    assert [c.status for c in turn.tool_calls] == ["success"]
    assert "bot-started-speaking" in key_messages(out["rtvi"])
    # No upstream copy is made (tavus.input() consumes both at the transport), so the
    # stock processor has no Tavus message to warn about either.
    ignored = [w for w in out["warnings"] if "Ignoring not RTVI message" in w]
    assert ignored == []


async def test_inside_the_pipeline_before_tavus_input_rtvi_passes_tavus_events_on():
    rtvi = TavusRTVIProcessor()
    out = await run_with_rtvi(rtvi, inside=True)
    turn = out["tavus"].ledger.get(1)
    assert turn.replica_spoken_text == "The tea costs 3 dollars."
    assert [c.status for c in turn.tool_calls] == ["success"]
    keys = key_messages(out["rtvi"])
    assert keys[:4] == [
        "bot-ready",
        "user-started-speaking",
        "user-stopped-speaking",
        "user-transcription:What is the price of tea?",
    ]
    # Only downstream copies reach it here (the upstream ones go the other way), all passed on.
    assert rtvi.tavus_messages == len(out["sim"].emitted) + len(OTHER_EVENTS)


async def test_pipecats_rtvi_processor_before_tavus_input_would_swallow_every_event():
    # Why TavusRTVIProcessor exists: the stock processor consumes app messages both ways.
    def swallowed(sim: TavusSimulator, warnings: list[str]) -> bool:
        ignored = [w for w in warnings if "Ignoring not RTVI message" in w]
        return bool(sim.emitted) and len(ignored) >= len(sim.emitted)

    out = await run_with_rtvi(RTVIProcessor(), inside=True, end_when=swallowed)
    # The replica's join reached the pipeline and was dropped there: Tavus never knew it.
    assert [m["event_type"] for m in out["sim"].emitted] == ["system.replica_joined"]
    assert not out["tavus"].connection.ready
    assert out["tavus"].ledger.turns == []
