"""The wire boundary: parsing malformed input, building messages, and size accounting."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType

import pytest
from conftest import load_fixture
from hypothesis import given
from hypothesis import strategies as st

from pipecat_tavus_interactions import events as ev
from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.exceptions import (
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from pipecat_tavus_interactions.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_INBOUND_BYTES,
    build_message,
    encoded_size,
    max_audio_bytes,
    parse_interaction,
    parse_message,
    split_text,
)

CID = "c8d1e7f0a2b4"
UUID = "6f1e2d3c-4b5a-4987-a6b5-c4d3e2f1a0b9"

MALFORMED = load_fixture("malformed/cases.json")["cases"]
LENIENT = load_fixture("malformed/cases.json")["lenient"]


# --- inbound: malformed -------------------------------------------------------------------


@pytest.mark.parametrize("case", MALFORMED, ids=[c["name"] for c in MALFORMED])
def test_malformed_input_raises_remote_protocol_error_with_reason(case):
    given_input = case["text"] if "text" in case else case["message"]
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(given_input)
    assert info.value.reason == case["reason"], str(info.value)
    assert str(info.value).startswith(f"{case['reason']}: ")
    assert info.value.detail


def test_malformed_cases_cover_every_documented_reason():
    reasons = {c["reason"] for c in MALFORMED}
    assert reasons == {"bad_json", "not_an_object", "missing_field", "wrong_type"}


@pytest.mark.parametrize("case", LENIENT, ids=[c["name"] for c in LENIENT])
def test_a_bad_optional_field_drops_the_field_not_the_event(case):
    # Field-level drift: the event is kept, the unreadable field left out and named.
    event = parse_message(case["message"])
    assert type(event).__name__ == case["event_model"]
    assert list(event.dropped_fields) == case["dropped"]
    assert event.event_type == case["message"]["event_type"]
    for name in case["dropped"]:
        value = getattr(event, name, None)
        assert not value, (name, value)


def test_a_stop_with_its_duration_as_text_keeps_the_number():
    msg = {
        "event_type": "conversation.replica.stopped_speaking",
        "properties": {"duration": " 2.5", "interrupted": "true"},
    }
    event = parse_message(msg)
    assert (event.duration, event.interrupted, event.dropped_fields) == (2.5, True, ())


@pytest.mark.parametrize("duration", ["soon", -1, 1e300, True, [1]])
def test_an_absurd_duration_is_dropped_and_the_stop_kept(duration):
    msg = {
        "event_type": "conversation.replica.stopped_speaking",
        "properties": {"duration": duration},
    }
    event = parse_message(msg)
    assert (event.speaking, event.duration, event.dropped_fields) == (False, None, ("duration",))


def test_a_role_agnostic_stop_without_role_is_the_replicas_when_it_carries_duration():
    msg = {"event_type": "conversation.stopped_speaking", "properties": {"duration": 1.0}}
    event = parse_message(msg)
    assert (event.role, event.dropped_fields) == (ev.ROLE_PAL, ("role",))
    bare = parse_message({"event_type": "conversation.stopped_speaking", "properties": {}})
    assert bare.role is None  # resolved by the conversation core from its speaking state


def test_utterance_speech_null_is_kept_as_empty_text_and_interrupted_is_read():
    msg = {
        "event_type": "conversation.utterance",
        "properties": {"role": "replica", "speech": None, "interrupted": True},
    }
    event = parse_message(msg)
    assert (event.speech, event.interrupted, event.dropped_fields) == ("", True, ("speech",))


def test_dict_messages_are_held_to_the_size_limit_on_the_text_they_carry():
    huge = "x" * (MAX_INBOUND_BYTES + 1)
    msg = {"event_type": "conversation.utterance", "properties": {"role": "user", "speech": huge}}
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(msg)
    assert info.value.reason == "too_large"
    big_id = {
        "event_type": "conversation.utterance",
        "inference_id": "i" * 300,
        "properties": {"role": "user", "speech": "hi"},
    }
    assert parse_message(big_id).dropped_fields == ("inference_id",)
    call = {
        "event_type": "conversation.tool_call",
        "properties": {"name": "f", "arguments": {"blob": huge}},
    }
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(call)
    assert info.value.reason == "too_large"


def test_remote_protocol_error_is_a_value_error_and_a_protocol_error():
    with pytest.raises(ValueError):
        parse_message("{")
    with pytest.raises(ProtocolError):
        parse_message("{")


def test_bytes_that_are_not_utf8():
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(b'{"event_type": "conversation.utterance\xff"}')
    assert info.value.reason == "bad_encoding"


@pytest.mark.parametrize("kind", ["str", "bytes"])
def test_oversized_input_is_refused_before_parsing(kind):
    big = '{"event_type": "x", "pad": "' + "a" * MAX_INBOUND_BYTES + '"}'
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(big if kind == "str" else big.encode())
    assert info.value.reason == "too_large"
    assert info.value.raw is None  # a flood is not kept around for logging


def test_deeply_nested_json_is_a_remote_error_not_a_crash():
    text = '{"event_type": "conversation.utterance", "properties": ' + "[" * 100_000
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(text)
    assert info.value.reason == "bad_json"


def test_non_finite_timestamp_is_dropped():
    event = parse_message({"event_type": "system.replica_joined", "timestamp": float("nan")})
    assert (event.timestamp, event.dropped_fields) == (None, ("timestamp",))


def test_error_keeps_the_offending_message():
    msg = {"event_type": "conversation.tool_call", "properties": {"arguments": "{}"}}
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(msg)
    assert info.value.raw == msg


# --- inbound: accepted shapes ------------------------------------------------------------


def test_unknown_event_type_gives_unknown_event_with_raw_message():
    msg = load_fixture("events/unknown_event.json")
    event = parse_message(msg)
    assert type(event) is ev.UnknownEvent
    assert event.event_type == "conversation.canvas.updated"
    assert event.raw == msg
    assert event.properties == {"canvas_id": "cv_8a7b6c", "state": {"slide": 3, "visible": True}}


def test_unknown_event_without_properties():
    event = parse_message({"event_type": "system.something_new", "message_type": "system"})
    assert type(event) is ev.UnknownEvent
    assert event.properties == {}


def test_any_mapping_is_accepted():
    msg = load_fixture("events/utterance_user.json")
    assert parse_message(MappingProxyType(msg)) == parse_message(msg)


def test_numeric_strings_and_whole_floats_count_as_integers():
    event = parse_message(
        {"event_type": "conversation.user.started_speaking", "seq": "12", "turn_idx": 4.0}
    )
    assert (event.seq, event.turn_idx) == (12, 4)


def test_numeric_inference_id_becomes_a_string():
    event = parse_message({"event_type": "conversation.replica_interrupted", "inference_id": 77})
    assert event.inference_id == "77"


def test_inference_id_inside_properties_is_used_when_envelope_has_none():
    # The unreliable SKILL.md puts it in properties; accept it from there as a fallback.
    event = parse_message(
        {
            "event_type": "conversation.replica.started_speaking",
            "properties": {"inference_id": UUID},
        }
    )
    assert event.inference_id == UUID


def test_speech_falls_back_to_text_and_content():
    for key in ("text", "content"):
        event = parse_message(
            {"event_type": "conversation.utterance", "properties": {"role": "user", key: "Hi"}}
        )
        assert event.speech == "Hi"


def test_tool_call_arguments_double_encoded():
    inner = json.dumps({"city": "Lyon"})
    event = parse_message(
        {
            "event_type": "conversation.tool_call",
            "properties": {"name": "weather", "arguments": json.dumps(inner)},
        }
    )
    assert event.arguments == {"city": "Lyon"}


@pytest.mark.parametrize(
    ("arguments", "error_start"),
    [
        ("[1, 2]", "arguments must be a JSON object, got list"),
        (17, "arguments must be a JSON object or string, got int"),
    ],
)
def test_tool_call_arguments_of_the_wrong_shape_are_reported_not_raised(arguments, error_start):
    props = {"name": "f", "arguments": arguments}
    event = parse_message({"event_type": "conversation.tool_call", "properties": props})
    assert event.arguments == {}
    assert event.arguments_error.startswith(error_start)


def test_blank_tool_arguments_mean_no_arguments():
    event = parse_message(
        {"event_type": "conversation.tool_call", "properties": {"name": "f", "arguments": " "}}
    )
    assert (event.arguments, event.arguments_error) == ({}, None)


# --- outbound: build_message -------------------------------------------------------------


@pytest.mark.parametrize("conversation_id", ["", None, 123])
def test_build_message_without_conversation_id(conversation_id):
    with pytest.raises(LocalProtocolError, match="conversation_id is not set: pass"):
        build_message(ix.Interrupt(), conversation_id=conversation_id)


def test_build_message_rejects_a_plain_dict():
    with pytest.raises(LocalProtocolError, match=r"takes an Interaction \(e\.g\."):
        build_message({"event_type": "conversation.interrupt"}, conversation_id=CID)


def test_build_message_over_max_bytes_says_how_to_fix():
    interaction = ix.Respond(text="x" * 500)
    size = encoded_size(build_message(interaction, conversation_id=CID))
    assert build_message(interaction, conversation_id=CID, max_bytes=size)
    with pytest.raises(LocalProtocolError) as info:
        build_message(interaction, conversation_id=CID, max_bytes=size - 1)
    message = str(info.value)
    assert f"{size} bytes, over the {size - 1}-byte cap" in message
    assert "split_text" in message and "max_message_bytes" in message


def test_build_message_returns_a_fresh_dict_each_time():
    interaction = ix.ObjectiveConfirm(objective_name="o", extra={"k": 1})
    first = build_message(interaction, conversation_id=CID)
    first["properties"]["k"] = 2
    assert build_message(interaction, conversation_id=CID)["properties"]["k"] == 1


# --- size accounting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["plain", "café – 日本語 🎉", 'quote " and backslash \\', "new\nline\ttab\x01ctl", ""],
)
def test_encoded_size_is_compact_utf8_json_length(text):
    msg = build_message(ix.Echo(text=text), conversation_id=CID)
    expected = len(json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    assert encoded_size(msg) == expected


def test_encoded_size_counts_non_ascii_as_utf8_bytes():
    assert encoded_size({"t": "é"}) == len('{"t":"é"}'.encode()) == 10
    assert encoded_size({"t": "🎉"}) == 12


def _echo_builder(piece: str) -> dict:
    return build_message(ix.Echo(text=piece, inference_id=UUID, done=False), conversation_id=CID)


def _assert_split_ok(text: str, build, max_bytes: int) -> list[str]:
    pieces = split_text(text, build=build, max_bytes=max_bytes)
    assert "".join(pieces) == text
    assert all(pieces), "no empty pieces"
    for piece in pieces:
        assert encoded_size(build(piece)) <= max_bytes
    return pieces


def test_split_text_short_text_is_one_piece():
    assert split_text("Hello there.", build=_echo_builder, max_bytes=4096) == ["Hello there."]


def test_split_text_breaks_at_whitespace():
    envelope = encoded_size(_echo_builder(""))
    text = "The quick brown fox jumps over the lazy dog. " * 6
    pieces = _assert_split_ok(text, _echo_builder, envelope + 40)
    assert len(pieces) > 1
    assert all(p.endswith(" ") for p in pieces[:-1]), pieces


@pytest.mark.parametrize(
    "text",
    [
        "Ça va très bien, merci ! 日本語のテキストも大丈夫です。 🎉🎉🎉 " * 20,
        'He said "stop" and then \\ backslashes \\\\ everywhere "quoted" ' * 20,
        "control\x01chars\x1f and\nnewlines\tand tabs " * 20,
        "Supercalifragilistic" * 30,  # one word far longer than the budget
        "a" * 7 + " " + "é" * 200 + " tail",
        "   leading spaces and trailing   ",
    ],
)
# 6 bytes is the widest single character on the wire (a control character as \u0001).
@pytest.mark.parametrize("room", [6, 7, 13, 64])
def test_split_text_pieces_fit_and_join_back(text, room):
    envelope = encoded_size(_echo_builder(""))
    _assert_split_ok(text, _echo_builder, envelope + room)


def test_split_text_uses_the_budget_fully_for_a_long_word():
    envelope = encoded_size(_echo_builder(""))
    pieces = _assert_split_ok("x" * 100, _echo_builder, envelope + 30)
    assert [len(p) for p in pieces] == [30, 30, 30, 10]


def test_split_text_works_with_builders_that_reject_empty_text():
    # Respond and AppendLLMContext refuse an empty string; split_text must still measure
    # their envelope.
    def append(piece):
        return build_message(ix.AppendLLMContext(context=piece), conversation_id=CID)

    def respond(piece):
        return build_message(ix.Respond(text=piece), conversation_id=CID)

    text = "Tool result: the order A-1042 shipped on Tuesday via ground freight. " * 40
    for build in (append, respond):
        pieces = _assert_split_ok(text, build, 512)
        assert len(pieces) > 1


@pytest.mark.parametrize(("char", "wire_bytes"), [("é", 2), ('"', 2), ("🎉", 4), ("\x01", 6)])
def test_split_text_refuses_a_character_wider_than_the_room_left(char, wire_bytes):
    envelope = encoded_size(_echo_builder(""))
    text = "ab " + char + " cd"
    with pytest.raises(LocalProtocolError, match=f"needs {wire_bytes} bytes on the wire"):
        split_text(text, build=_echo_builder, max_bytes=envelope + wire_bytes - 1)
    _assert_split_ok(text, _echo_builder, envelope + wire_bytes)


def test_split_text_envelope_too_big():
    with pytest.raises(LocalProtocolError, match="envelope alone is over the 50-byte cap"):
        split_text("hello", build=_echo_builder, max_bytes=50)


@given(text=st.text(max_size=400), room=st.integers(min_value=6, max_value=80))
def test_split_text_property(text, room):
    envelope = encoded_size(_echo_builder(""))
    pieces = split_text(text, build=_echo_builder, max_bytes=envelope + room)
    assert "".join(pieces) == text
    for piece in pieces:
        assert encoded_size(_echo_builder(piece)) <= envelope + room


@pytest.mark.parametrize("sample_rate", [16000, 24000])
@pytest.mark.parametrize("max_bytes", [DEFAULT_MAX_MESSAGE_BYTES, 1000, 6500])
def test_max_audio_bytes_is_the_largest_chunk_that_fits(sample_rate, max_bytes):
    n = max_audio_bytes(
        conversation_id=CID, sample_rate=sample_rate, inference_id=UUID, max_bytes=max_bytes
    )
    assert n % 2 == 0 and n > 0

    def size(nbytes: int, done: bool) -> int:
        echo = ix.Echo(audio=bytes(nbytes), sample_rate=sample_rate, inference_id=UUID, done=done)
        return encoded_size(build_message(echo, conversation_id=CID))

    assert size(n, done=False) <= max_bytes
    assert size(n, done=True) <= max_bytes
    assert size(n + 2, done=False) > max_bytes
    # The chunk really goes out under the cap through build_message's own check.
    build_message(
        ix.Echo(audio=bytes(n), sample_rate=sample_rate, inference_id=UUID, done=False),
        conversation_id=CID,
        max_bytes=max_bytes,
    )


def test_max_audio_bytes_at_4k_is_about_60_ms_at_24k():
    # The reference's back-of-envelope figure: ~2.8 KB of PCM, ~59 ms at 24 kHz.
    n = max_audio_bytes(conversation_id=CID, sample_rate=24000, inference_id=UUID, max_bytes=4096)
    assert 2700 <= n <= 3000
    assert 56 <= n / 2 / 24000 * 1000 <= 62


def test_max_audio_bytes_too_small_cap():
    with pytest.raises(LocalProtocolError, match="cannot fit in 100 bytes"):
        max_audio_bytes(conversation_id=CID, sample_rate=16000, inference_id=UUID, max_bytes=100)


# --- parse_interaction: malformed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        ({"event_type": "conversation.utterance", "properties": {}}, "bad_value"),
        ({"event_type": "conversation.echo", "properties": {"modality": "speech"}}, "bad_value"),
        (
            {"event_type": "conversation.echo", "properties": {"modality": "audio", "audio": "*"}},
            "bad_value",
        ),
        (
            {
                "event_type": "conversation.echo",
                "properties": {"modality": "audio", "audio": base64.b64encode(b"abc").decode()},
            },
            "bad_value",
        ),
        ({"event_type": "conversation.respond", "properties": {"text": ""}}, "bad_value"),
        ({"event_type": "conversation.respond", "properties": {}}, "missing_field"),
        (
            {"event_type": "conversation.sensitivity", "properties": {"x": "low"}},
            "bad_value",
        ),
        ({"event_type": "conversation.tool_result", "properties": []}, "wrong_type"),
        ("[]", "not_an_object"),
    ],
)
def test_parse_interaction_rejects_malformed(msg, reason):
    with pytest.raises(RemoteProtocolError) as info:
        parse_interaction(msg)
    assert info.value.reason == reason


def test_parse_interaction_echo_done_defaults_to_false_and_accepts_string_booleans():
    base = {"event_type": "conversation.echo", "conversation_id": CID}
    absent = parse_interaction({**base, "properties": {"modality": "text", "text": "Hi"}})
    assert absent.done is False
    stringy = parse_interaction(
        {**base, "properties": {"modality": "text", "text": "Hi", "done": "true"}}
    )
    assert stringy.done is True
