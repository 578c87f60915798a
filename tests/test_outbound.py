"""Tests of outbound.build_all: every message fits the cap, or the interaction is refused."""

from __future__ import annotations

import base64
import random
import uuid
from collections import Counter

import pytest

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.core.outbound import build, build_all
from pipecat_tavus_interactions.exceptions import LocalProtocolError
from pipecat_tavus_interactions.protocol import build_message, encoded_size, parse_interaction

CID = "c0ffee12"
CAP = 4096


def words(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(["alpha", "beta", "gamma", "déjà", "naïve", "ok"]) for _ in range(n))


def assert_fits(parts, cap: int = CAP) -> None:
    for part, message in parts:
        assert encoded_size(message) <= cap
        # The message is exactly the one its piece builds, and reads back as that piece.
        assert message == build_message(part, conversation_id=CID)
        assert parse_interaction(message) == part


def test_build_uses_the_conversation_id_and_checks_the_cap():
    message = build(ix.Respond("hi"), conversation_id=CID)
    assert message == build_message(ix.Respond("hi"), conversation_id=CID)
    with pytest.raises(LocalProtocolError, match="over the"):
        build(ix.Respond("x" * 5000), conversation_id=CID, max_bytes=CAP)


def test_build_without_a_conversation_id_is_refused():
    with pytest.raises(LocalProtocolError, match="conversation_id is not set"):
        build(ix.Respond("hi"), conversation_id=None)


def test_an_interaction_that_fits_is_returned_as_it_is():
    respond = ix.Respond("hello")
    stats = Counter()
    [(part, message)] = build_all(respond, conversation_id=CID, max_bytes=CAP, stats=stats)
    assert part is respond
    assert message == build_message(respond, conversation_id=CID)
    assert not stats


def test_only_interactions_are_accepted():
    with pytest.raises(LocalProtocolError, match="takes an Interaction"):
        build_all({"event_type": "conversation.respond"}, conversation_id=CID, max_bytes=CAP)


def test_a_long_append_is_split_with_job_status_on_the_last_piece():
    text = words(2000)
    stats = Counter()
    append = ix.AppendLLMContext(text, "completed")
    parts = build_all(append, conversation_id=CID, max_bytes=CAP, stats=stats)
    assert len(parts) > 1
    assert_fits(parts)
    assert "".join(p.context for p, _ in parts) == text
    assert [p.job_status for p, _ in parts] == [None] * (len(parts) - 1) + ["completed"]
    assert stats["append_split"] == 1


def test_long_echo_text_is_one_utterance_with_done_on_the_last_piece():
    text = words(2000, seed=2)
    echo = ix.Echo(text=text, inference_id="resp-1", done=True)
    parts = build_all(echo, conversation_id=CID, max_bytes=CAP)
    assert len(parts) > 1
    assert_fits(parts)
    assert {p.inference_id for p, _ in parts} == {"resp-1"}
    assert [p.done for p, _ in parts] == [False] * (len(parts) - 1) + [True]
    assert " ".join(p.text for p, _ in parts).split() == text.split()


def test_long_echo_text_not_done_stays_open_and_gets_an_inference_id():
    parts = build_all(
        ix.Echo(text=words(2000, seed=3), done=False), conversation_id=CID, max_bytes=CAP
    )
    assert not any(p.done for p, _ in parts)
    (iid,) = {p.inference_id for p, _ in parts}
    assert str(uuid.UUID(iid)) == iid


@pytest.mark.parametrize("done", [True, False])
def test_long_echo_audio_is_cut_in_whole_samples_under_the_cap(done):
    audio = random.Random(4).randbytes(40_000)
    echo = ix.Echo(audio=audio, sample_rate=24000, inference_id="utt-1", done=done)
    parts = build_all(echo, conversation_id=CID, max_bytes=CAP)
    assert len(parts) > 1
    assert_fits(parts)
    assert all(len(p.audio) % 2 == 0 for p, _ in parts)
    decoded = b"".join(base64.b64decode(m["properties"]["audio"]) for _, m in parts)
    assert decoded == audio
    assert [p.done for p, _ in parts] == [False] * (len(parts) - 1) + [done]
    assert {m["properties"]["sample_rate"] for _, m in parts} == {24000}


def test_audio_chunks_account_for_escaped_inference_ids():
    # An id whose JSON form is longer than its length (quotes, backslashes, non-ASCII)
    # leaves less room for audio; every chunk must still fit.
    audio = bytes(30_000)
    plain = build_all(
        ix.Echo(audio=audio, sample_rate=16000, inference_id="a" * 36),
        conversation_id=CID,
        max_bytes=CAP,
    )
    escaped = build_all(
        ix.Echo(audio=audio, sample_rate=16000, inference_id='"\\é' * 12),
        conversation_id=CID,
        max_bytes=CAP,
    )
    assert_fits(plain)
    assert_fits(escaped)
    assert len(escaped[0][0].audio) < len(plain[0][0].audio)


@pytest.mark.parametrize(
    ("interaction", "hint"),
    [
        (ix.Respond("x" * 5000), "a respond is one user turn"),
        (ix.OverwriteLLMContext("x" * 5000), "send a short overwrite followed by appends"),
    ],
)
def test_what_cannot_be_split_is_refused_with_a_hint(interaction, hint):
    with pytest.raises(LocalProtocolError, match=hint) as caught:
        build_all(interaction, conversation_id=CID, max_bytes=CAP)
    assert f"over the {CAP}-byte cap" in str(caught.value)


def test_a_cap_too_small_for_the_envelope_is_refused():
    with pytest.raises(LocalProtocolError):
        build_all(ix.AppendLLMContext(words(100)), conversation_id=CID, max_bytes=100)


# --- text that is not valid Unicode -----------------------------------------------------------


@pytest.mark.parametrize(
    ("interaction", "field"),
    [
        (ix.Echo(text="Caf\ud800 ok", inference_id="i1", done=True), "text"),
        (ix.Respond("Caf\ud800 ok"), "text"),
    ],
)
def test_a_lone_surrogate_in_spoken_text_is_replaced_not_raised(interaction, field):
    stats: Counter[str] = Counter()
    parts = build_all(interaction, conversation_id=CID, max_bytes=CAP, stats=stats)
    assert_fits(parts)
    ((part, message),) = parts
    assert getattr(part, field) == "Caf\ufffd ok"
    assert message["properties"][field] == "Caf\ufffd ok"
    assert stats["text_cleaned"] == 1


def test_a_surrogate_pair_is_joined_and_valid_text_is_untouched():
    pair = ix.Respond("smile \ud83d\ude00")
    ((part, _),) = build_all(pair, conversation_id=CID, max_bytes=CAP)
    assert part.text == "smile \U0001f600"
    valid = ix.Respond("déjà vu \U0001f600")
    ((same, _),) = build_all(valid, conversation_id=CID, max_bytes=CAP)
    assert same is valid


def test_a_lone_surrogate_in_a_long_echo_is_replaced_before_splitting():
    text = "word " * 1000 + "\udc00 end."
    parts = build_all(ix.Echo(text=text, done=True), conversation_id=CID, max_bytes=CAP)
    assert len(parts) > 1
    assert_fits(parts)
    assert "".join(p.text for p, _ in parts).count("\ufffd") == 1


@pytest.mark.parametrize(
    "interaction",
    [
        ix.AppendLLMContext("Caf\ud800 ok"),
        ix.OverwriteLLMContext("Caf\ud800 ok"),
        ix.ToolResult(tool_call_id="call-1", output="x\ud800"),
        ix.ObjectiveConfirm(objective_name="x\ud800"),
    ],
)
def test_a_lone_surrogate_in_data_is_a_local_protocol_error(interaction):
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        build_all(interaction, conversation_id=CID, max_bytes=CAP)


@pytest.mark.parametrize("text", ["", "  \n"])
def test_an_empty_text_echo_is_refused(text):
    with pytest.raises(LocalProtocolError, match="echo text is empty"):
        build_all(
            ix.Echo(text=text, inference_id="i1", done=True), conversation_id=CID, max_bytes=CAP
        )
