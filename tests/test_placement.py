"""A misplaced or missing Tavus processor is named in an error, not left to fail in silence.

Before: with ``tavus.output()`` after ``transport.output()`` a tool result was counted as
sent and never reached the replica, and with ``tavus.input()`` missing nothing said why the
replica never answered.
"""

from __future__ import annotations

import asyncio

import pytest
from loguru import logger
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.simulator import SimulatedTransport, TavusSimulator


@pytest.fixture
def errors():
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="ERROR", format="{message}")
    yield seen
    logger.remove(sink)


async def run(layout: str) -> tuple[TavusSimulator, TavusInteractions]:
    sim = TavusSimulator(speed=100)
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id=sim.conversation_id,
            replica_participant_id=sim.participant_id,
            ready_timeout_s=1.0,
        )
    )
    transport = SimulatedTransport(sim)
    parts = {
        "right": [transport.input(), tavus.input(), tavus.output(), transport.output()],
        "output_last": [transport.input(), tavus.input(), transport.output(), tavus.output()],
        "no_input": [transport.input(), tavus.output(), transport.output()],
    }[layout]
    worker = PipelineWorker(Pipeline(parts), enable_rtvi=False, idle_timeout_secs=None)

    @worker.event_handler("on_pipeline_started")
    async def started(worker, frame):
        worker.create_task(converse(), "converse")

    async def converse():
        # A message past the placement grace (1 s), as a real bot's later messages are.
        await asyncio.sleep(1.2)
        await tavus.send(ix.AppendLLMContext("The user's name is Ada."))
        for _ in range(500):  # until it was pushed, or failed as never ready
            if tavus.stats["conversation.append_llm_context"] or tavus.stats["send_failed"]:
                break
            await asyncio.sleep(0.01)
        await sim.shutdown()
        await worker.stop_when_done()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), timeout=30)
    return sim, tavus


async def test_the_right_layout_says_nothing(errors):
    sim, tavus = await run("right")
    assert [i for i in sim.interactions if isinstance(i, ix.AppendLLMContext)]
    assert not [e for e in errors if "Place tavus" in e]
    assert tavus.stats["pushed_without_output_transport"] == 0


async def test_output_after_the_transport_is_named_with_the_fix(errors):
    sim, tavus = await run("output_last")
    assert not [i for i in sim.interactions if isinstance(i, ix.AppendLLMContext)]
    (error,) = [e for e in errors if "Place tavus.output()" in e]
    assert "right before transport.output()" in error
    assert tavus.stats["pushed_without_output_transport"] == 1


async def test_a_missing_input_is_named_with_the_fix(errors):
    await run("no_input")
    assert [e for e in errors if "tavus.input() is not running" in e]
