"""Outbound interactions: exact wire messages, round trips, and misuse that says what to fix."""

from __future__ import annotations

import json
import struct

import pytest
from conftest import fixture_names, load_fixture

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.exceptions import LocalProtocolError
from pipecat_tavus_interactions.protocol import build_message, parse_interaction

CID = "c123456"
AUDIO_IID = "f3c1a2b4-5d6e-4f70-8192-a3b4c5d6e7f8"
# Eight PCM16 samples of a small wave, and 16 samples of silence.
PCM_WAVE = struct.pack("<8h", 0, 1200, 2300, 3100, 3600, 3100, 2300, 1200)
PCM_SILENCE = bytes(32)

# fixture file -> the interaction whose wire message it is.
CASES: dict[str, ix.Interaction] = {
    "echo_text.json": ix.Echo(text="Hello from an external echo."),
    "echo_text_sentence.json": ix.Echo(
        text='<emotion value="excited"/> ¡Hola! Ça va? ',
        inference_id="6f1e2d3c-4b5a-4987-a6b5-c4d3e2f1a0b9",
        done=False,
    ),
    "echo_audio_chunk.json": ix.Echo(
        audio=PCM_WAVE, sample_rate=24000, inference_id=AUDIO_IID, done=False
    ),
    "echo_audio_final.json": ix.Echo(
        audio=PCM_SILENCE, sample_rate=16000, inference_id=AUDIO_IID, done=True
    ),
    "respond.json": ix.Respond(text="What are your pricing plans?"),
    "interrupt.json": ix.Interrupt(),
    "overwrite_llm_context.json": ix.OverwriteLLMContext(
        context="User is now asking about enterprise features."
    ),
    "append_llm_context.json": ix.AppendLLMContext(
        context="The user's account is on the Growth plan, renewing on 2026-09-01."
    ),
    "append_llm_context_job_status.json": ix.AppendLLMContext(
        context="Additional system context for this turn.", job_status="completed"
    ),
    "sensitivity_pause.json": ix.Sensitivity(participant_pause_sensitivity="high"),
    "sensitivity_interrupt.json": ix.Sensitivity(participant_interrupt_sensitivity="low"),
    "tool_result_string.json": ix.ToolResult(
        tool_call_id="tc_01JV3K9Q2M7XWZ8R4T6Y5N1B0A",
        output="It is 72 degrees and sunny in San Francisco.",
    ),
    "tool_result_object.json": ix.ToolResult(
        tool_call_id="tc_01JV3K9Q2M7XWZ8R4T6Y5N1B0A",
        output={"temperature_f": 72, "conditions": "sunny", "wind_mph": 8.5},
    ),
    "tool_result_error.json": ix.ToolResult(
        tool_call_id="tc_01JV3KA0F5D2C8B7E9G1H3J4K6",
        output="Calendar service timed out after 10 s.",
        status="error",
    ),
    "tool_result_no_output.json": ix.ToolResult(tool_call_id="ptc_5f2a9c1e7b3d"),
    "objective_confirm.json": ix.ObjectiveConfirm(objective_name="confirm_appointment"),
    "objective_confirm_extra.json": ix.ObjectiveConfirm(
        objective_name="confirm_appointment",
        extra={"confirmed": True, "output_variables": {"slot": "2026-06-02T15:00"}},
    ),
}

INTERACTION_FIXTURES = fixture_names("interactions")


def _canonical(msg: dict) -> str:
    # Sorted-key JSON text: equal only when every value has the same JSON type as well
    # (a dict comparison would accept done=1 for done=true).
    return json.dumps(msg, sort_keys=True, ensure_ascii=False)


def test_every_fixture_has_a_case_and_back():
    assert sorted(CASES) == INTERACTION_FIXTURES


def test_every_interaction_model_has_a_fixture():
    covered = {type(x) for x in CASES.values()}
    assert covered == set(ix.INTERACTION_MODELS)


@pytest.mark.parametrize("name", INTERACTION_FIXTURES)
def test_build_message_equals_fixture(name):
    built = build_message(CASES[name], conversation_id=CID)
    assert _canonical(built) == _canonical(load_fixture(f"interactions/{name}"))


@pytest.mark.parametrize("name", INTERACTION_FIXTURES)
def test_parse_interaction_round_trips(name):
    interaction = CASES[name]
    built = build_message(interaction, conversation_id=CID)
    parsed = parse_interaction(built)
    assert type(parsed) is type(interaction)
    assert build_message(parsed, conversation_id=CID) == built
    if name != "tool_result_object.json":  # object output comes back as its JSON text
        assert parsed == interaction


@pytest.mark.parametrize("name", INTERACTION_FIXTURES)
def test_parse_interaction_reads_the_fixture_text(name):
    text = json.dumps(load_fixture(f"interactions/{name}"))
    assert build_message(parse_interaction(text), conversation_id=CID) == load_fixture(
        f"interactions/{name}"
    )


def test_interrupt_has_no_properties_key():
    msg = build_message(ix.Interrupt(), conversation_id=CID)
    assert "properties" not in msg
    assert ix.Interrupt().properties() is None


def test_tool_result_object_output_is_a_json_string():
    msg = build_message(CASES["tool_result_object.json"], conversation_id=CID)
    output = msg["properties"]["output"]
    assert isinstance(output, str)
    assert json.loads(output) == {"temperature_f": 72, "conditions": "sunny", "wind_mph": 8.5}


@pytest.mark.parametrize("value", sorted(ix.SENSITIVITY_VALUES))
@pytest.mark.parametrize(
    "key", ["participant_pause_sensitivity", "participant_interrupt_sensitivity"]
)
def test_sensitivity_sends_only_the_key_given(key, value):
    msg = build_message(ix.Sensitivity(**{key: value}), conversation_id=CID)
    assert msg["properties"] == {key: value}


def test_echo_reports_its_modality():
    assert CASES["echo_text.json"].modality == "text"
    assert CASES["echo_audio_chunk.json"].modality == "audio"


def test_echo_text_without_sample_rate_field():
    # sample_rate only means something for audio; it must not leak into a text echo.
    props = ix.Echo(text="Hi", sample_rate=24000).properties()
    assert "sample_rate" not in props


def test_echo_audio_accepts_bytearray_and_memoryview():
    for buf in (bytearray(PCM_WAVE), memoryview(PCM_WAVE)):
        props = ix.Echo(audio=buf, sample_rate=24000).properties()
        assert props["audio"] == "AACwBPwIHAwQDhwM/AiwBA=="


def test_interactions_are_frozen():
    with pytest.raises(AttributeError):
        CASES["respond.json"].text = "changed"


# --- misuse -------------------------------------------------------------------------------

MISUSE = [
    ("echo_with_neither", lambda: ix.Echo(), "echo needs text or audio"),
    ("echo_with_both", lambda: ix.Echo(text="hi", audio=PCM_WAVE), "not both"),
    ("echo_text_not_str", lambda: ix.Echo(text=42), "echo text must be a str"),
    ("echo_audio_str", lambda: ix.Echo(audio="AAAA"), "raw PCM16 bytes"),
    ("echo_audio_odd_bytes", lambda: ix.Echo(audio=b"\x00\x01\x02"), "even number of bytes"),
    (
        "echo_sample_rate_low",
        lambda: ix.Echo(audio=PCM_WAVE, sample_rate=4000),
        "between 8000 and 48000",
    ),
    (
        "echo_sample_rate_float",
        lambda: ix.Echo(audio=PCM_WAVE, sample_rate=24000.0),
        "must be an int",
    ),
    ("echo_done_string", lambda: ix.Echo(text="hi", done="true"), "real bool"),
    ("respond_empty", lambda: ix.Respond(text=""), "respond text is empty"),
    ("respond_blank", lambda: ix.Respond(text="  \n"), "respond text is empty"),
    ("respond_not_str", lambda: ix.Respond(text=None), "respond text must be a str"),
    ("overwrite_not_str", lambda: ix.OverwriteLLMContext(context=["a"]), "must be a str"),
    ("append_empty", lambda: ix.AppendLLMContext(context=""), "append context is empty"),
    (
        "sensitivity_unknown_value",
        lambda: ix.Sensitivity(participant_pause_sensitivity="extreme"),
        "unknown participant_pause_sensitivity value 'extreme'; use one of",
    ),
    (
        "sensitivity_both_keys",
        lambda: ix.Sensitivity(
            participant_pause_sensitivity="low", participant_interrupt_sensitivity="high"
        ),
        "send two to change both",
    ),
    ("sensitivity_no_key", lambda: ix.Sensitivity(), "exactly one of"),
    (
        "tool_result_bad_status",
        lambda: ix.ToolResult(tool_call_id="tc_1", status="failed"),
        "status must be 'success' or 'error', got 'failed'",
    ),
    (
        "tool_result_non_json_output",
        lambda: ix.ToolResult(tool_call_id="tc_1", output={"when": object()}),
        "output must be a str or JSON-serialisable",
    ),
    (
        "tool_result_set_output",
        lambda: ix.ToolResult(tool_call_id="tc_1", output={1, 2}),
        "output must be a str or JSON-serialisable, got set",
    ),
    (
        "tool_result_empty_id",
        lambda: ix.ToolResult(tool_call_id=""),
        "copy it from the tool_call",
    ),
    (
        "objective_confirm_no_name",
        lambda: ix.ObjectiveConfirm(objective_name=" "),
        "name the pending objective",
    ),
]


@pytest.mark.parametrize(("make", "hint"), [m[1:] for m in MISUSE], ids=[m[0] for m in MISUSE])
def test_misuse_raises_local_protocol_error_saying_what_to_change(make, hint):
    with pytest.raises(LocalProtocolError) as info:
        make()
    assert hint in str(info.value)
