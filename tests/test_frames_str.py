"""Tavus frames in Pipecat's trace logs: a short ``str()`` that says what happened.

Pipecat logs frames with ``str(frame)`` (``Pushing {frame} downstream from ...`` at trace
level); the default is the bare ``name``. Ours add the few fields that tell one frame from the
next, and cut long text, so a megabyte of tool arguments never lands in a log line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loguru import logger
from pipecat.frames.frames import Frame, StartFrame
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import run_test

from pipecat_tavus_interactions import (
    TavusContextFrame,
    TavusEchoFrame,
    TavusEventFrame,
    TavusGuardrailFrame,
    TavusObjectiveFrame,
    TavusPerceptionAnalysisFrame,
    TavusReplicaInterruptedFrame,
    TavusRespondFrame,
    TavusToolCallFrame,
    TavusTurnFrame,
    TavusUtteranceFrame,
    interactions,
    parse_message,
)
from pipecat_tavus_interactions.core.records import ToolCallRecord, TurnRecord
from pipecat_tavus_interactions.pipeline.frames import STR_TEXT_CHARS

EVENTS = Path(__file__).parent / "fixtures" / "events"
HUGE = "x" * 1_000_000


class Pusher(FrameProcessor):
    """Pushes one frame downstream once the pipeline started."""

    def __init__(self, frame: Frame):
        super().__init__()
        self._frame = frame

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(self._frame)


def event(name: str, **properties):
    message = json.loads((EVENTS / name).read_text())
    message.setdefault("properties", {}).update(properties)
    return parse_message(message)


def frames() -> list[tuple[Frame, list[str]]]:
    """Each frame class, with the strings its str() must show."""
    # Long, but under what parse_message accepts from the wire.
    tool = event("tool_call_string_args.json", arguments=json.dumps({"q": "x" * 20_000}))
    turn = TurnRecord(
        turn_idx=4,
        user_text="What is the price of tea?",
        replica_spoken_text="The tea costs 3 dollars.",
        tool_calls=[ToolCallRecord(name="get_price")],
        response_latency_s=0.4123,
    )
    return [
        (
            TavusUtteranceFrame(role="pal", text=HUGE, turn_idx=3, spoken=True),
            ["role: pal", "turn: 3", "flags: spoken", "[xxx"],
        ),
        (TavusToolCallFrame(event=tool), [f"function: {tool.name}", f"id: {tool.tool_call_id}"]),
        (TavusEventFrame(event=event("unknown_event.json")), ["event_type: "]),
        (
            TavusEventFrame(
                event=parse_message(
                    {
                        "message_type": "conversation",
                        "event_type": "conversation.utterance",
                        "seq": 41,
                        "turn_idx": 7,
                        "properties": {"role": "user", "speech": HUGE[:1000]},
                    }
                )
            ),
            ["event_type: conversation.utterance", "seq: 41", "turn: 7)"],
        ),
        (TavusReplicaInterruptedFrame(turn_idx=2, inference_id="inf-1"), ["inference_id: inf-1"]),
        (TavusPerceptionAnalysisFrame(analysis=HUGE), ["analysis: [xxx"]),
        (
            TavusObjectiveFrame(
                status="completed", objective_name="contact", output_variables={"email": "a"}
            ),
            ["status: completed", "objective: contact", "['email']"],
        ),
        (TavusGuardrailFrame(guardrail="no_medical_advice", reason=HUGE), ["no_medical_advice"]),
        (
            TavusTurnFrame(turn=turn),
            ["turn: 4", "user: [What is the price of tea?]", "tools: 1", "latency: 0.412s"],
        ),
        (TavusEchoFrame(text=HUGE), ["interaction: conversation.echo", "text: [xxx"]),
        (TavusRespondFrame(text="hi"), ["conversation.respond", "text: [hi]"]),
        (TavusContextFrame(context="be brief"), ["append_llm_context", "[be brief]"]),
        (
            TavusEchoFrame(interaction=interactions.Echo(audio=b"\0\0" * 4800)),
            ["audio: 9600 bytes"],
        ),
    ]


@pytest.mark.parametrize("frame,shown", frames(), ids=lambda v: type(v).__name__)
def test_str_is_short_and_names_what_matters(frame, shown):
    text = str(frame)
    assert text.startswith(frame.name + "(")
    assert len(text) < 2 * STR_TEXT_CHARS + 120, text
    for part in shown:
        assert part in text, (part, text)


async def test_pipecats_trace_log_shows_the_short_form():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="TRACE")
    frame = TavusUtteranceFrame(role="user", text=HUGE, turn_idx=1)
    try:
        await run_test(
            Pusher(frame),
            frames_to_send=[],
            expected_down_frames=[TavusUtteranceFrame],
        )
    finally:
        logger.remove(sink)
    pushed = [line for line in lines if "Pushing TavusUtteranceFrame" in line]
    assert pushed and all(len(line) < 1000 for line in pushed)
    assert "role: user, turn: 1" in pushed[0]
