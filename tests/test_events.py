"""Every hand-written event sample parses to the right model with the right values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import fixture_names, fixture_text, load_fixture
from pydantic import ValidationError

from pipecat_tavus_interactions import events as ev
from pipecat_tavus_interactions.protocol import parse_message

CID = "c8d1e7f0a2b4"
PAL_TURN_3 = "5b0c2f3e-1d4a-4c8e-9f71-2a6b8d0e4c13"
USER_TURN_3 = "0e6f9a11-77c2-4b0e-a3d5-6c1f2e8b9a40"
PAL_TURN_5 = "9d2e4f60-3a1b-4c5d-8e7f-a0b1c2d3e4f5"
PAL_SPEECH = "I'm doing great, thanks for asking! How can I help you today?"


class StartsWith(str):
    """Compares equal to any string with this prefix (for messages quoting the json module)."""

    def __eq__(self, other):
        return isinstance(other, str) and other.startswith(str(self))

    __hash__ = str.__hash__


# fixture file -> (model, the fields that must hold exactly). Fields not listed keep their
# defaults, which the test also checks, so a stray value cannot slip through.
EXPECTED: dict[str, tuple[type[ev.Event], dict]] = {
    "utterance_user.json": (
        ev.UtteranceEvent,
        dict(
            event_type="conversation.utterance",
            message_type="conversation",
            conversation_id=CID,
            inference_id="83294d9f-8306-491b-a284-791f56c8383f",
            seq=42,
            turn_idx=3,
            timestamp=1746000000.125,
            role="user",
            wire_role="user",
            speech="Hello, how are you?",
            user_audio_analysis="sounds nervous, speaking quickly",
            user_visual_analysis="smiling, looking at the camera",
        ),
    ),
    "utterance_pal.json": (
        ev.UtteranceEvent,
        dict(
            event_type="conversation.utterance",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=47,
            turn_idx=3,
            timestamp=1746000001.5,
            role="pal",
            wire_role="pal",
            speech=PAL_SPEECH,
        ),
    ),
    "utterance_replica.json": (
        ev.UtteranceEvent,
        dict(
            event_type="conversation.utterance",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=48,
            turn_idx=3,
            timestamp=1746000001.5,
            role="pal",
            wire_role="replica",
            speech=PAL_SPEECH,
            visual_context="The user is sitting in a bright office.",
        ),
    ),
    "utterance_streaming_user.json": (
        ev.UtteranceStreamingEvent,
        dict(
            event_type="conversation.utterance.streaming",
            message_type="conversation",
            conversation_id=CID,
            inference_id=USER_TURN_3,
            seq=38,
            turn_idx=3,
            timestamp=1745999999.02,
            role="user",
            wire_role="user",
            speech="Hello, how",
            content_index=1,
            participant_id="3f1c0d2a-5e6b-4a7c-8d9e-0f1a2b3c4d5e",
            participant_name="Maya",
        ),
    ),
    "utterance_streaming_user_final.json": (
        ev.UtteranceStreamingEvent,
        dict(
            event_type="conversation.utterance.streaming",
            message_type="conversation",
            conversation_id=CID,
            inference_id=USER_TURN_3,
            seq=40,
            turn_idx=3,
            timestamp=1745999999.84,
            role="user",
            wire_role="user",
            speech="Hello, how are you?",
            content_index=2,
            final=True,
        ),
    ),
    "utterance_streaming_pal.json": (
        ev.UtteranceStreamingEvent,
        dict(
            event_type="conversation.utterance.streaming",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=51,
            turn_idx=3,
            timestamp=1746000002.25,
            role="pal",
            wire_role="pal",
            speech="I'm doing great,",
            content_index=0,
        ),
    ),
    "utterance_streaming_pal_final_interrupted.json": (
        ev.UtteranceStreamingEvent,
        dict(
            event_type="conversation.utterance.streaming",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=55,
            turn_idx=3,
            timestamp=1746000003.75,
            role="pal",
            wire_role="pal",
            speech="I'm doing great, thanks for asking! How can",
            content_index=3,
            final=True,
            is_interrupted=True,
        ),
    ),
    "utterance_streaming_replica_final.json": (
        ev.UtteranceStreamingEvent,
        dict(
            event_type="conversation.utterance.streaming",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_5,
            seq=88,
            turn_idx=5,
            timestamp=1746000020.5,
            role="pal",
            wire_role="replica",
            speech=("Our enterprise plan includes single sign-on and a dedicated account manager."),
            content_index=4,
            final=True,
        ),
    ),
    "string_booleans_streaming.json": (
        ev.UtteranceStreamingEvent,
        dict(
            event_type="conversation.utterance.streaming",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_5,
            seq=89,
            turn_idx=5,
            role="pal",
            wire_role="pal",
            speech="Our enterprise plan includes single sign-on.",
            content_index=2,
            final=True,
            is_interrupted=False,
        ),
    ),
    "started_speaking_pal.json": (
        ev.StartedSpeakingEvent,
        dict(
            event_type="conversation.started_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=49,
            turn_idx=3,
            timestamp=1746000001.61,
            role="pal",
            wire_role="pal",
            speaking=True,
            role_agnostic=True,
        ),
    ),
    "started_speaking_replica.json": (
        ev.StartedSpeakingEvent,
        dict(
            event_type="conversation.started_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=50,
            turn_idx=3,
            timestamp=1746000001.61,
            role="pal",
            wire_role="replica",
            speaking=True,
            role_agnostic=True,
        ),
    ),
    "started_speaking_user.json": (
        ev.StartedSpeakingEvent,
        dict(
            event_type="conversation.started_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            seq=35,
            turn_idx=3,
            timestamp=1745999998.4,
            role="user",
            wire_role="user",
            speaking=True,
            role_agnostic=True,
        ),
    ),
    "stopped_speaking_pal_interrupted.json": (
        ev.StoppedSpeakingEvent,
        dict(
            event_type="conversation.stopped_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=56,
            turn_idx=3,
            timestamp=1746000003.8,
            role="pal",
            wire_role="pal",
            speaking=False,
            role_agnostic=True,
            interrupted=True,
            duration=2.19,
        ),
    ),
    "stopped_speaking_replica_duration_null.json": (
        ev.StoppedSpeakingEvent,
        dict(
            event_type="conversation.stopped_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=57,
            turn_idx=3,
            timestamp=1746000003.8,
            role="pal",
            wire_role="replica",
            speaking=False,
            role_agnostic=True,
            interrupted=False,
            duration=None,
        ),
    ),
    "stopped_speaking_user.json": (
        ev.StoppedSpeakingEvent,
        dict(
            event_type="conversation.stopped_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            seq=41,
            turn_idx=3,
            timestamp=1745999999.9,
            role="user",
            wire_role="user",
            speaking=False,
            role_agnostic=True,
            duration=1.5,
        ),
    ),
    "string_booleans_stopped_speaking.json": (
        ev.StoppedSpeakingEvent,
        dict(
            event_type="conversation.stopped_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_5,
            seq=91,
            turn_idx=5,
            role="pal",
            wire_role="pal",
            speaking=False,
            role_agnostic=True,
            interrupted=True,
            duration=3.0,
        ),
    ),
    "replica_started_speaking.json": (
        ev.ReplicaStartedSpeakingEvent,
        dict(
            event_type="conversation.replica.started_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=52,
            turn_idx=3,
            timestamp=1746000001.6,
            role="pal",
            wire_role="replica",
            speaking=True,
            role_agnostic=False,
        ),
    ),
    "replica_stopped_speaking.json": (
        ev.ReplicaStoppedSpeakingEvent,
        dict(
            event_type="conversation.replica.stopped_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_5,
            seq=90,
            turn_idx=5,
            timestamp=1746000020.6,
            role="pal",
            wire_role="replica",
            speaking=False,
            role_agnostic=False,
            interrupted=False,
            duration=6.42,
        ),
    ),
    "replica_stopped_speaking_interrupted.json": (
        ev.ReplicaStoppedSpeakingEvent,
        dict(
            event_type="conversation.replica.stopped_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=PAL_TURN_3,
            seq=58,
            turn_idx=3,
            timestamp=1746000003.8,
            role="pal",
            wire_role="replica",
            speaking=False,
            role_agnostic=False,
            interrupted=True,
            duration=2.2,
        ),
    ),
    "user_started_speaking.json": (
        ev.UserStartedSpeakingEvent,
        dict(
            event_type="conversation.user.started_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id="7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f",
            seq=36,
            turn_idx=3,
            timestamp=1745999998.4,
            role="user",
            wire_role="user",
            speaking=True,
            role_agnostic=False,
        ),
    ),
    "user_stopped_speaking.json": (
        ev.UserStoppedSpeakingEvent,
        dict(
            event_type="conversation.user.stopped_speaking",
            message_type="conversation",
            conversation_id=CID,
            inference_id=USER_TURN_3,
            seq=42,
            turn_idx=3,
            timestamp=1745999999.9,
            role="user",
            wire_role="user",
            speaking=False,
            role_agnostic=False,
        ),
    ),
    "replica_interrupted_legacy.json": (
        ev.ReplicaInterruptedEvent,
        dict(
            event_type="conversation.replica_interrupted",
            message_type="conversation",
            conversation_id="c123456",
            inference_id="83294d9f-8306-491b-a284-791f56c8383f",
        ),
    ),
    "tool_call_string_args.json": (
        ev.ToolCallEvent,
        dict(
            event_type="conversation.tool_call",
            message_type="conversation",
            conversation_id=CID,
            inference_id="83294d9f-8306-491b-a284-791f56c8383f",
            seq=57,
            turn_idx=4,
            timestamp=1746000010.2,
            name="get_current_weather",
            arguments={"location": "San Francisco, CA", "unit": "fahrenheit"},
            arguments_raw='{"location": "San Francisco, CA", "unit": "fahrenheit"}',
            tool_call_id="tc_01JV3K9Q2M7XWZ8R4T6Y5N1B0A",
        ),
    ),
    "tool_call_object_args.json": (
        ev.ToolCallEvent,
        dict(
            event_type="conversation.tool_call",
            message_type="conversation",
            conversation_id=CID,
            inference_id="a4b5c6d7-e8f9-4a0b-8c1d-2e3f4a5b6c7d",
            seq=61,
            turn_idx=4,
            timestamp=1746000011.0,
            name="book_demo",
            arguments={
                "email": "maya@example.com",
                "slots": ["2026-06-02T15:00", "2026-06-03T10:30"],
                "seats": 12,
            },
            tool_call_id="tc_01JV3KA0F5D2C8B7E9G1H3J4K6",
        ),
    ),
    "tool_call_nested_function.json": (
        ev.ToolCallEvent,
        dict(
            event_type="conversation.tool_call",
            message_type="conversation",
            conversation_id=CID,
            inference_id="b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
            seq=64,
            turn_idx=4,
            name="lookup_order",
            arguments={"order_id": "A-1042"},
            arguments_raw='{"order_id": "A-1042"}',
            tool_call_id="call_Xy12ab34Cd56",
        ),
    ),
    "tool_call_no_id.json": (
        ev.ToolCallEvent,
        dict(
            event_type="conversation.tool_call",
            message_type="conversation",
            conversation_id="c123456",
            inference_id="83294d9f-8306-491b-a284-791f56c8383f",
            name="get_current_time",
            arguments={"location": "New York"},
            arguments_raw='{"location": "New York"}',
            tool_call_id=None,
        ),
    ),
    "tool_call_invalid_arguments.json": (
        ev.ToolCallEvent,
        dict(
            event_type="conversation.tool_call",
            message_type="conversation",
            conversation_id=CID,
            inference_id="c9d8e7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f",
            seq=70,
            turn_idx=6,
            name="get_current_weather",
            arguments={},
            arguments_raw='{"location": "Par',
            arguments_error=StartsWith("arguments are not valid JSON ("),
            tool_call_id="tc_01JV3KC7T2W9X4Y6Z8A1B3C5D7",
        ),
    ),
    "export_wrapped_tool_call.json": (
        ev.ToolCallEvent,
        dict(
            event_type="conversation.tool_call",
            message_type="conversation",
            conversation_id=CID,
            inference_id="d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f7a",
            seq=150,
            turn_idx=11,
            timestamp=1747922591.2,
            name="get_current_time",
            arguments={"timezone": "Europe/Paris"},
            arguments_raw='{"timezone": "Europe/Paris"}',
            tool_call_id="tc_01JV3KF8N4P6Q2R7S9T1U3V5W7",
        ),
    ),
    "perception_tool_call_vision.json": (
        ev.PerceptionToolCallEvent,
        dict(
            event_type="conversation.perception_tool_call",
            message_type="conversation",
            conversation_id=CID,
            seq=73,
            turn_idx=6,
            timestamp=1746000042.75,
            name="notify_if_id_shown",
            modality="vision",
            arguments={"id_type": "drivers_license"},
            tool_call_id="ptc_5f2a9c1e7b3d",
            frames=(
                ev.PerceptionFrame(
                    data="/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U",
                    mime_type="image/jpeg",
                ),
                ev.PerceptionFrame(
                    data="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
                    mime_type="image/png",
                ),
            ),
        ),
    ),
    "perception_tool_call_vision_2025.json": (
        ev.PerceptionToolCallEvent,
        dict(
            event_type="conversation.perception_tool_call",
            message_type="conversation",
            conversation_id="c123456",
            name="notify_if_id_shown",
            modality=None,
            arguments={"id_type": "passport"},
            frames=(
                ev.PerceptionFrame(
                    data="/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U",
                    mime_type="image/jpeg",
                ),
                ev.PerceptionFrame(
                    data="/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYI",
                    mime_type="image/jpeg",
                ),
            ),
        ),
    ),
    "perception_tool_call_audio.json": (
        ev.PerceptionToolCallEvent,
        dict(
            event_type="conversation.perception_tool_call",
            message_type="conversation",
            conversation_id=CID,
            seq=95,
            turn_idx=7,
            timestamp=1746000061.3,
            name="flag_frustration",
            modality="audio",
            arguments={"level": "high", "evidence": "raised voice, sighing"},
            arguments_raw='{"level": "high", "evidence": "raised voice, sighing"}',
            frames=(),
        ),
    ),
    "perception_analysis.json": (
        ev.PerceptionAnalysisEvent,
        dict(
            event_type="conversation.perception_analysis",
            message_type="conversation",
            conversation_id=CID,
            seq=212,
            timestamp=1746000300.0,
            analysis=(
                "The user wore glasses and a grey sweater, stayed engaged throughout, and held "
                "up a driver's license once near the end of the call."
            ),
        ),
    ),
    "perception_analysis_hyphenated.json": (
        ev.PerceptionAnalysisEvent,
        dict(
            event_type="conversation.perception-analysis",
            message_type="conversation",
            conversation_id="c123456",
            analysis=(
                "One participant was visible, seated at a desk with a bookshelf behind them."
            ),
        ),
    ),
    "objective_activated.json": (
        ev.ObjectiveActivatedEvent,
        dict(
            event_type="conversation.objective.activated",
            message_type="conversation",
            conversation_id=CID,
            seq=30,
            turn_idx=2,
            timestamp=1745999990.0,
            objective_name="collect_contact_details",
            properties={"objective_name": "collect_contact_details"},
        ),
    ),
    "objective_completed.json": (
        ev.ObjectiveCompletedEvent,
        dict(
            event_type="conversation.objective.completed",
            message_type="conversation",
            conversation_id=CID,
            seq=99,
            turn_idx=7,
            timestamp=1746000070.5,
            objective_name="collect_contact_details",
            output_variables={"email": "maya@example.com", "company_size": 120},
            properties={
                "objective_name": "collect_contact_details",
                "output_variables": {"email": "maya@example.com", "company_size": 120},
            },
        ),
    ),
    "objective_pending.json": (
        ev.ObjectivePendingEvent,
        dict(
            event_type="conversation.objective.pending",
            message_type="conversation",
            conversation_id=CID,
            seq=97,
            turn_idx=7,
            timestamp=1746000069.9,
            objective_name="confirm_appointment",
            output_variables={"slot": "2026-06-02T15:00"},
            properties={
                "objective_name": "confirm_appointment",
                "output_variables": {"slot": "2026-06-02T15:00"},
                "confirmation_mode": "manual",
            },
        ),
    ),
    "guardrail.json": (
        ev.GuardrailEvent,
        dict(
            event_type="conversation.guardrail",
            message_type="conversation",
            conversation_id=CID,
            seq=120,
            turn_idx=9,
            timestamp=1746000101.4,
            guardrail="no_medical_advice",
            guardrail_uuid="g7e1c2d3-4b5a-4f6e-8d7c-9b0a1f2e3d4c",
            reason="The user asked for a dosage recommendation.",
        ),
    ),
    "guardrail_unlisted_name.json": (
        ev.GuardrailEvent,
        dict(
            event_type="conversation.guardrail.violated",
            message_type="conversation",
            conversation_id=CID,
            seq=133,
            guardrail="competitor_mentions",
            guardrail_uuid="g0a1b2c3-d4e5-4f60-8172-a3b4c5d6e7f8",
        ),
    ),
    "system_replica_joined.json": (
        ev.ReplicaJoinedEvent,
        dict(
            event_type="system.replica_joined",
            message_type="system",
            conversation_id=CID,
            seq=1,
            timestamp=1745999960.04,
            replica_id="r90bbd427f71",
        ),
    ),
    "iso_timestamp_replica_joined.json": (
        ev.ReplicaJoinedEvent,
        dict(
            event_type="system.replica_joined",
            message_type="system",
            conversation_id=CID,
            timestamp=datetime(2025, 7, 11, 6, 45, 47, 472000, tzinfo=UTC).timestamp(),
            replica_id="r4067604db72",
        ),
    ),
    "system_replica_present.json": (
        ev.ReplicaPresentEvent,
        dict(
            event_type="system.replica_present",
            message_type="system",
            conversation_id=CID,
            attempt=17,
        ),
    ),
    "system_pal_present.json": (
        ev.ReplicaPresentEvent,
        dict(
            event_type="system.pal_present",
            message_type="system",
            conversation_id=CID,
            seq=310,
            timestamp=1746000180.0,
            attempt=218,
        ),
    ),
    "system_shutdown_shutdown_reason.json": (
        ev.ShutdownEvent,
        dict(
            event_type="system.shutdown",
            message_type="system",
            conversation_id=CID,
            seq=400,
            timestamp=1746003560.0,
            reason="participant_left_timeout",
            replica_id="r90bbd427f71",
        ),
    ),
    "system_shutdown_reason.json": (
        ev.ShutdownEvent,
        dict(
            event_type="system.shutdown",
            message_type="system",
            conversation_id=CID,
            reason="end_conversation_endpoint_hit",
        ),
    ),
    "system_shutdown_top_level_reason.json": (
        ev.ShutdownEvent,
        dict(
            event_type="system.shutdown",
            message_type="system",
            conversation_id=CID,
            reason="max_call_duration reached",
        ),
    ),
    "double_encoded_utterance.json": (
        ev.UtteranceEvent,
        dict(
            event_type="conversation.utterance",
            message_type="conversation",
            conversation_id=CID,
            inference_id="e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b",
            seq=77,
            turn_idx=6,
            role="user",
            wire_role="user",
            speech="Can you say that again?",
        ),
    ),
    "unknown_event.json": (
        ev.UnknownEvent,
        dict(
            event_type="conversation.canvas.updated",
            message_type="conversation",
            conversation_id=CID,
            seq=140,
            turn_idx=10,
            timestamp=1746000130.25,
            properties={"canvas_id": "cv_8a7b6c", "state": {"slide": 3, "visible": True}},
        ),
    ),
}

EVENT_FIXTURES = fixture_names("events")


def _parse_fixture(name: str) -> ev.Event:
    return parse_message(load_fixture(f"events/{name}"))


def test_every_fixture_has_expectations_and_back():
    assert sorted(EXPECTED) == EVENT_FIXTURES


def test_every_event_type_has_a_fixture():
    seen = {_parse_fixture(name).event_type for name in EVENT_FIXTURES}
    missing = set(ev.EVENT_TYPES) - seen
    # The three guardrail names are guesses (the real one is unpublished); one sample with a
    # listed name and one with an unlisted name cover the routing.
    missing -= set(ev.GuardrailEvent.EVENT_TYPES) - {"conversation.guardrail"}
    assert not missing, f"add a fixture under tests/fixtures/events for {sorted(missing)}"


@pytest.mark.parametrize("name", EVENT_FIXTURES)
def test_fixture_parses_to_expected_model_and_values(name):
    model, fields = EXPECTED[name]
    event = _parse_fixture(name)
    assert type(event) is model
    for field, expected in fields.items():
        actual = getattr(event, field)
        if isinstance(expected, float):
            assert actual == pytest.approx(expected, abs=1e-6), field
        else:
            assert actual == expected, field
    # Every field not named above keeps its model default.
    for field, info in model.model_fields.items():
        if field in fields or field == "raw" or info.is_required():
            continue
        default = info.get_default(call_default_factory=True)
        assert getattr(event, field) == default, f"{name}: unexpected {field}"


@pytest.mark.parametrize("name", EVENT_FIXTURES)
def test_raw_text_bytes_and_dict_parse_alike(name):
    text = fixture_text(f"events/{name}")
    from_value = _parse_fixture(name)
    assert parse_message(text) == from_value
    assert parse_message(text.encode("utf-8")) == from_value


@pytest.mark.parametrize("name", EVENT_FIXTURES)
def test_parsed_event_validates_against_its_own_model(name):
    # parse_message builds models without pydantic validation for speed; this proves the
    # values it stores still satisfy the declared field types.
    event = _parse_fixture(name)
    again = type(event).model_validate(event.model_dump())
    assert again == event


def test_raw_keeps_the_message_as_received():
    msg = load_fixture("events/unknown_event.json")
    event = parse_message(msg)
    assert event.raw == msg
    assert event.raw["properties"]["state"] == {"slide": 3, "visible": True}


def test_export_wrapper_is_unwrapped_to_its_data():
    wrapped = load_fixture("events/export_wrapped_tool_call.json")
    assert parse_message(wrapped) == parse_message(wrapped["data"])


def test_tool_call_with_invalid_arguments_reports_why_instead_of_raising():
    event = _parse_fixture("tool_call_invalid_arguments.json")
    assert event.arguments == {}
    assert event.arguments_error is not None
    assert event.arguments_error.startswith("arguments are not valid JSON")


def test_pal_and_replica_twins_differ_only_in_wire_role_and_seq():
    pal = _parse_fixture("utterance_pal.json")
    replica = _parse_fixture("utterance_replica.json")
    assert pal.role == replica.role == ev.ROLE_PAL
    assert (pal.wire_role, replica.wire_role) == ("pal", "replica")
    assert (pal.speech, pal.inference_id) == (replica.speech, replica.inference_id)


def test_both_speaking_forms_share_the_speaking_base():
    agnostic = _parse_fixture("started_speaking_pal.json")
    specific = _parse_fixture("replica_started_speaking.json")
    assert isinstance(agnostic, ev.SpeakingEvent)
    assert isinstance(specific, ev.SpeakingEvent)
    assert (agnostic.role, agnostic.speaking) == (specific.role, specific.speaking)
    assert agnostic.role_agnostic and not specific.role_agnostic


def test_objective_status_names_the_transition():
    statuses = {
        _parse_fixture(name).status
        for name in ("objective_activated.json", "objective_completed.json")
    }
    assert statuses == {"activated", "completed"}
    assert _parse_fixture("objective_pending.json").status == "pending"


def test_events_are_frozen():
    event = _parse_fixture("utterance_user.json")
    with pytest.raises(ValidationError):
        event.speech = "something else"


def test_event_types_map_every_model_name_to_its_model():
    for model in ev.EVENT_MODELS:
        assert model.EVENT_TYPES, f"{model.__name__} declares no wire name"
        for name in model.EVENT_TYPES:
            assert ev.EVENT_TYPES[name] is model
    assert ev.UnknownEvent not in ev.EVENT_TYPES.values()


def test_direct_construction_rejects_an_unknown_role():
    with pytest.raises(ValidationError):
        ev.UtteranceEvent(
            event_type="conversation.utterance", role="replica", wire_role="replica", speech="x"
        )


def test_events_built_from_the_wire_never_share_a_mutable_default():
    from pipecat_tavus_interactions.protocol import parse_message

    msg = {"event_type": "conversation.tool_call", "properties": {"name": "w"}}
    first, second = parse_message(dict(msg)), parse_message(dict(msg))
    assert first.arguments == {} and second.arguments == {}
    assert first.arguments is not second.arguments
