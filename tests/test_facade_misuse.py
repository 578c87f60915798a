"""First-hour misuse of the facade: params as a dict, an empty conversation id, a missing one."""

from __future__ import annotations

import asyncio

import pytest
from loguru import logger
from pipecat.frames.frames import EndFrame, Frame, OutputTransportMessageUrgentFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import (
    LocalProtocolError,
    TavusInteractions,
    TavusInteractionsParams,
)
from pipecat_tavus_interactions.exceptions import ConfigurationError, ConfigurationTypeError

REPLICA = "11111111-1111-4111-8111-111111111111"


def test_params_given_as_a_dict_are_validated_into_the_model():
    tavus = TavusInteractions(params={"mode": "echo_text", "conversation_id": "c1"})
    assert isinstance(tavus.params, TavusInteractionsParams)
    assert tavus.params.mode == "echo_text"
    assert tavus.conversation_id == "c1"
    assert TavusInteractions(params={"mode": "full"}).params.mode == "full"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"mode": "pipecat"}, "mode: Input should be 'full', 'echo_text' or 'echo_audio'"),
        ({"moed": "full"}, "moed: Extra inputs are not permitted"),
        ({"tool_timeout_s": -1}, "tool_timeout_s: Input should be greater than 0"),
    ],
)
def test_a_bad_params_dict_says_which_field_is_wrong(params, message):
    with pytest.raises(ConfigurationError, match="not a valid TavusInteractionsParams") as info:
        TavusInteractions(params=params)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("params", ["full", 3, ["mode", "full"]])
def test_params_of_another_type_say_what_to_pass(params):
    with pytest.raises(ConfigurationTypeError, match="TavusInteractionsParams") as info:
        TavusInteractions(params=params)
    assert isinstance(info.value, TypeError)


def test_an_empty_conversation_id_is_rejected_like_set_conversation_id():
    with pytest.raises(ValueError, match="conversation_id must be a non-empty string"):
        TavusInteractionsParams(conversation_id="")
    with pytest.raises(ConfigurationError, match="conversation_id must be a non-empty string"):
        TavusInteractions(params={"conversation_id": ""})
    tavus = TavusInteractions()
    with pytest.raises(LocalProtocolError, match="non-empty"):
        tavus.set_conversation_id("")
    # Unset stays allowed: the id may be set once the conversation exists.
    assert TavusInteractionsParams().conversation_id is None


class Collect(FrameProcessor):
    """Keeps every frame that reaches the end of the pipeline."""

    def __init__(self, into: list[Frame]):
        super().__init__()
        self._into = into

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        self._into.append(frame)
        await self.push_frame(frame, direction)


def message(event_type: str, seq: int, props: dict, **env) -> DailyInputTransportMessageFrame:
    msg = {
        "message_type": "system" if event_type.startswith("system.") else "conversation",
        "event_type": event_type,
        "conversation_id": "c-the-replica-knows",
        "seq": seq,
        "properties": props,
        **env,
    }
    return DailyInputTransportMessageFrame(message=msg, participant_id=REPLICA)


async def test_a_tool_result_due_without_a_conversation_id_is_reported_not_lost():
    tavus = TavusInteractions(
        params=TavusInteractionsParams(replica_participant_id=REPLICA, heartbeat_timeout_s=None)
    )
    failed: list[tuple[object, Exception]] = []
    reported = asyncio.Event()

    def on_send_failed(_tavus, interaction, error):
        failed.append((interaction, error))
        reported.set()

    tavus.add_event_handler("on_send_failed", on_send_failed)

    async def get_weather(params):
        await params.result_callback({"forecast": "sunny"})

    tavus.register_function("get_weather", get_weather)
    sent: list[Frame] = []
    worker = PipelineWorker(
        Pipeline([tavus.input(), tavus.output(), Collect(sent)]), enable_rtvi=False
    )
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="ERROR")
    try:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        await worker.queue_frames(
            [
                message("system.replica_joined", 1, {"replica_id": "r1"}),
                message(
                    "conversation.tool_call",
                    2,
                    {"name": "get_weather", "arguments": "{}", "tool_call_id": "t1"},
                    turn_idx=1,
                ),
            ]
        )
        await asyncio.wait_for(reported.wait(), 10)
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(running, 10)
    finally:
        logger.remove(sink)
    assert not [f for f in sent if isinstance(f, OutputTransportMessageUrgentFrame)]
    ((interaction, error),) = failed
    assert type(interaction).__name__ == "ToolResult"
    assert isinstance(error, LocalProtocolError)
    assert "set_conversation_id()" in str(error)
    assert any("conversation_id is not set" in line for line in lines), lines
    assert not any("Traceback" in line for line in lines), lines
    # The call is settled, and its record says that nothing reached the replica.
    (call,) = tavus.ledger.get(1).tool_calls
    assert call.status == "success" and call.finished_at is not None
    assert call.delivery == "not_sent"
