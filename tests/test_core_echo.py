"""Echo planning (core/echo.py), alone and through TavusConnection: time is passed in.

Text: which echo texts leave, when, and with which done flag. Audio: chunks under the cap,
the utterance lifecycle, interruptions, and real-time pacing.
"""

from __future__ import annotations

import base64
import uuid

import numpy as np
import pytest

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.core import sender as sender_module
from pipecat_tavus_interactions.core.connection import TavusConnection
from pipecat_tavus_interactions.core.echo import (
    DONE_SILENCE_S,
    ECHO_GRACE_S,
    REALTIME_LEAD_S,
    TEXT_ECHO_CHARS_PER_S,
    EchoAudio,
    EchoText,
    InFlight,
    Pacer,
    echo_seconds,
)
from pipecat_tavus_interactions.core.effects import SendFailed, Transmit
from pipecat_tavus_interactions.core.outbound import audio_chunk_bytes, audio_message
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.protocol import build_message, encoded_size

CID = "c0ffee12"
CAP = 4096
REPLICA = "replica-1"


def pcm(seconds: float, rate: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-12000, 12000, int(seconds * rate), dtype=np.int16).tobytes()


def frames(audio: bytes, rate: int, ms: int = 20) -> list[bytes]:
    step = rate * 2 * ms // 1000
    return [audio[i : i + step] for i in range(0, len(audio), step)]


def chunk_size(rate: int, conversation_id: str = CID, cap: int = CAP) -> int:
    return audio_chunk_bytes(
        conversation_id=conversation_id,
        sample_rate=rate,
        inference_id=str(uuid.uuid4()),
        max_bytes=cap,
    )


# --- EchoText ----------------------------------------------------------------------------


def feed(echo: EchoText, *tokens: str) -> list[tuple[str, str, bool]]:
    out = []
    for token in tokens:
        out += echo.add(token)
    return out


def texts(pieces) -> list[tuple[str, bool]]:
    return [(t, d) for t, _, d in pieces]


def test_a_sentence_leaves_with_the_next_token():
    echo = EchoText()
    assert echo.start() == []
    assert feed(echo, "Hello", " there", ".") == []  # it may be the whole answer
    assert texts(echo.add(" How")) == [("Hello there.", False)]


def test_later_sentences_wait_for_more_text_so_the_last_carries_done():
    echo = EchoText()
    echo.start()
    sent = feed(echo, "Hi.", " How are you?")
    assert texts(sent) == [("Hi.", False)]  # "How are you?" may be the last one
    sent += feed(echo, " Fine")
    assert texts(sent) == [("Hi.", False), ("How are you?", False)]
    sent += feed(echo, " thanks.")
    sent += echo.end()
    assert texts(sent) == [("Hi.", False), ("How are you?", False), ("Fine thanks.", True)]


def test_a_held_last_sentence_is_sent_with_done_at_the_end():
    echo = EchoText()
    echo.start()
    sent = feed(echo, "One.", " Two.")
    assert texts(sent) == [("One.", False)]
    assert texts(echo.end()) == [("Two.", True)]


def test_a_one_sentence_answer_is_one_message_with_text_and_done():
    echo = EchoText()
    echo.start()
    assert feed(echo, "Yes", ".", "  ", "\n") == []  # trailing whitespace proves nothing
    assert texts(echo.end()) == [("Yes.", True)]


@pytest.mark.parametrize(
    "tokens",
    [
        ["Yes."],
        ["Hi.", " How are you?"],
        ["One. Two. Three.", "  "],
        ["你好。", "再见。"],
        ["Wait", "...", " what?!"],
        ["It costs 3.", "5 dollars."],
        ["Sure. ", "It is 3"],
    ],
)
@pytest.mark.parametrize("whole", [False, True])
def test_no_response_ever_sends_an_empty_text_echo(tokens, whole):
    echo = EchoText(whole=whole)
    echo.start()
    sent = feed(echo, *tokens) + echo.end()
    assert all(text for text, _, _ in sent), sent
    assert [done for _, _, done in sent] == [False] * (len(sent) - 1) + [True]
    assert " ".join(t for t, _, _ in sent).replace(" ", "") == "".join(tokens).replace(" ", "")


def test_an_unterminated_tail_goes_with_done():
    echo = EchoText()
    echo.start()
    sent = feed(echo, "Sure. ", "It is 3") + echo.end()
    assert texts(sent) == [("Sure.", False), ("It is 3", True)]


def test_a_response_without_text_sends_nothing():
    for whole in (False, True):
        echo = EchoText(whole=whole)
        echo.start()
        assert feed(echo, "  ", "\n") == []
        assert echo.end() == []


def test_every_piece_of_a_response_shares_one_uuid_inference_id():
    echo = EchoText()
    echo.start()
    iid = echo.inference_id
    sent = feed(echo, "Hi there. ", "How are you? ", "Fine") + echo.end()
    assert len(sent) == 3
    assert {i for _, i, _ in sent} == {iid}
    assert str(uuid.UUID(iid)) == iid
    assert echo.inference_id is None


def test_whole_mode_sends_one_echo_when_the_response_ends():
    echo = EchoText(whole=True)
    echo.start()
    assert feed(echo, "One. ", "Two. ", "Three") == []
    assert texts(echo.end()) == [("One. Two. Three", True)]


def test_a_new_response_closes_the_one_left_open():
    echo = EchoText()
    echo.start()
    first = echo.inference_id
    assert feed(echo, "Unfinished") == []
    closed = echo.start()
    second = echo.inference_id
    assert closed == [("Unfinished", first, True)]
    assert feed(echo, "Next.", " More") == [("Next.", second, False)]
    assert first != second


def test_text_without_a_start_opens_a_response():
    echo = EchoText()
    sent = feed(echo, "Hello.") + echo.end()
    assert sent[0][1] is not None
    assert texts(sent) == [("Hello.", True)]


def test_blank_sentences_are_not_sent():
    echo = EchoText()
    echo.start()
    sent = feed(echo, "Hi.", "   ", "\n") + echo.end()
    assert texts(sent) == [("Hi.", True)]


def test_in_flight_from_the_first_piece_sent_until_the_end():
    echo = EchoText()
    echo.start()
    feed(echo, "Thinking")
    assert not echo.in_flight
    feed(echo, ".")
    assert not echo.in_flight  # held back: nothing of it can be playing
    feed(echo, " More")
    assert echo.in_flight
    echo.end()
    assert not echo.in_flight


def test_an_interruption_before_anything_left_sends_no_interrupt():
    conn = connect(mode="echo_text")
    conn.echo_text_start(now=0.0)
    assert conn.echo_text_add("Only sentence.", now=0.1) == []
    assert conn.interrupt(now=0.2) == []  # the held sentence is dropped, nothing was sent
    assert conn.stats["interrupt_skipped_idle"] == 1 and conn.stats["echo_dropped"] == 1
    assert conn.echo_text_end(now=0.3) == []


def test_drop_counts_what_was_not_sent_and_ignores_the_rest_of_the_response():
    echo = EchoText()
    echo.start()
    # " Three." completes while "Two." is held: both leave in one batch, " Four" waits.
    sent = feed(echo, "One.", " Two.", " Three. Four")
    assert texts(sent) == [("One.", False), ("Two.", False), ("Three.", False)]
    assert echo.drop() == 1  # " Four" was buffered
    assert echo.inference_id is None and not echo.in_flight
    assert feed(echo, " more.", " And more.") == []
    assert echo.end() == []  # ends the dead response: the next text is live again
    assert texts(feed(echo, "Fresh.") + echo.end()) == [("Fresh.", True)]


def test_a_held_sentence_counts_as_dropped():
    echo = EchoText()
    echo.start()
    feed(echo, "One.", " Two.")
    assert echo.drop() == 1  # "Two." was held back
    assert echo.drop() == 0  # nothing open any more
    assert echo.end() == []


def test_a_start_after_an_interruption_begins_a_live_response():
    echo = EchoText()
    echo.start()
    sent = feed(echo, "One.", " Two")
    assert echo.drop() == 1  # "One." had left, " Two" had not
    sent += feed(echo, " ignored.")
    assert echo.start() == []  # the dead response is not closed on the wire
    sent += feed(echo, "Three.") + echo.end()
    assert texts(sent) == [("One.", False), ("Three.", True)]


# --- EchoAudio ---------------------------------------------------------------------------


def run_utterance(
    audio_frames: list[bytes], rate: int, size: int, tail: bytes = b""
) -> list[tuple[bytes, str, bool]]:
    echo = EchoAudio(sample_rate=rate, fallback_s=3.0)
    echo.open(context_id=None, chunk_bytes=size, now=0.0)
    chunks = []
    for k, frame in enumerate(audio_frames):
        chunks += echo.add(frame, now=k * 0.02)
    chunks += echo.close(tail)
    # Converted only now: a chunk must stay intact while later audio arrives.
    return [(bytes(c), i, d) for c, i, d in chunks]


@pytest.mark.parametrize("rate", [16000, 24000])
def test_chunks_are_full_sized_under_the_cap_and_the_last_closes(rate):
    audio = pcm(2.0, rate)
    size = chunk_size(rate)
    chunks = run_utterance(frames(audio, rate), rate, size)
    assert len(chunks) == len(audio) // size + 1
    assert [len(c) for c, _, _ in chunks[:-1]] == [size] * (len(chunks) - 1)
    assert [d for _, _, d in chunks] == [False] * (len(chunks) - 1) + [True]
    assert b"".join(c for c, _, _ in chunks) == audio
    assert len({i for _, i, _ in chunks}) == 1
    messages = [audio_message(CID, c, rate, i, d) for c, i, d in chunks]
    assert max(encoded_size(m) for m in messages) <= CAP
    # Full chunks use the cap: one more sample would not fit.
    assert CAP - encoded_size(messages[0]) < 4


def test_one_big_frame_is_cut_without_losing_a_byte():
    audio = pcm(0.5, 16000)
    size = chunk_size(16000)
    chunks = run_utterance([audio], 16000, size)
    assert len(chunks) > 3
    assert b"".join(c for c, _, _ in chunks) == audio
    assert [len(c) for c, _, _ in chunks[:-1]] == [size] * (len(chunks) - 1)


def test_the_close_sends_the_tail_after_what_is_pending_and_drops_an_odd_byte():
    size = chunk_size(16000)
    head, tail = pcm(0.1, 16000, seed=1), pcm(0.3, 16000, seed=2)
    chunks = run_utterance([head], 16000, size, tail=tail + b"\x01")
    assert b"".join(c for c, _, _ in chunks) == head + tail
    assert [d for _, _, d in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(c) <= size for c, _, _ in chunks)


def test_a_close_one_sample_over_the_chunk_size_sends_two_chunks():
    size = chunk_size(16000)
    audio = pcm((size + 2) / 32000, 16000)
    chunks = run_utterance([audio[:100]], 16000, size, tail=audio[100:])
    assert [(len(c), d) for c, _, d in chunks] == [(size, False), (2, True)]
    assert b"".join(c for c, _, _ in chunks) == audio


def test_an_empty_close_sends_a_short_silence():
    size = chunk_size(24000)
    chunks = run_utterance([pcm(size * 2 / 48000, 24000)], 24000, size)
    assert [d for _, _, d in chunks] == [False, False, True]
    assert chunks[-1][0] == bytes(int(24000 * DONE_SILENCE_S) * 2)


def test_closing_or_dropping_nothing_sends_nothing():
    echo = EchoAudio(sample_rate=16000, fallback_s=3.0)
    assert echo.close() == []
    assert echo.drop() == 0
    assert echo.inference_id is None and echo.deadline is None


def test_drop_reports_whether_audio_was_pending():
    size = chunk_size(16000)
    echo = EchoAudio(sample_rate=16000, fallback_s=3.0)
    echo.open(context_id=None, chunk_bytes=size, now=0.0)
    assert echo.add(pcm(0.04, 16000), now=0.0) == []
    assert echo.drop() == 1
    assert echo.inference_id is None
    assert echo.close() == []  # nothing open: nothing sent
    echo.open(context_id=None, chunk_bytes=size, now=1.0)
    assert len(echo.add(bytes(size), now=1.0)) == 1  # exactly one chunk: nothing pending
    assert echo.drop() == 0


def test_an_interrupted_context_is_dead_and_others_are_not():
    echo = EchoAudio(sample_rate=16000, fallback_s=3.0)
    echo.open(context_id="ctx-1", chunk_bytes=chunk_size(16000), now=0.0)
    echo.drop()
    assert echo.is_dead_context("ctx-1")
    assert not echo.is_dead_context("ctx-2") and not echo.is_dead_context(None)
    echo.open(context_id="ctx-2", chunk_bytes=chunk_size(16000), now=1.0)
    echo.close()
    assert not echo.is_dead_context("ctx-2")  # closed, not interrupted
    echo.open(context_id=None, chunk_bytes=chunk_size(16000), now=2.0)
    echo.drop()
    assert not echo.is_dead_context(None)


def test_the_deadline_follows_the_last_audio():
    echo = EchoAudio(sample_rate=16000, fallback_s=0.5)
    echo.open(context_id=None, chunk_bytes=chunk_size(16000), now=1.0)
    assert echo.deadline == 1.5
    echo.add(pcm(0.02, 16000), now=2.0)
    assert echo.deadline == 2.5
    echo.close()
    assert echo.deadline is None


def test_an_utterance_without_a_chunk_size_drops_its_audio():
    echo = EchoAudio(sample_rate=16000, fallback_s=3.0)
    iid = echo.open(context_id=None, chunk_bytes=None, now=0.0)
    assert echo.failed and echo.inference_id == iid
    assert echo.add(pcm(1.0, 16000), now=0.1) == []
    assert echo.close() == []
    assert echo.inference_id is None


# --- Pacer and InFlight ------------------------------------------------------------------


def drain(pacer: Pacer) -> list[tuple[float, object]]:
    """Release everything, each time at the pacer's own deadline."""
    released = []
    now = 0.0
    while (deadline := pacer.deadline) is not None:
        now = max(now, deadline)
        released += [(now, item) for item in pacer.release(now)]
    return released


def test_the_pacer_releases_in_order_and_no_faster_than_playback():
    pacer = Pacer(lead_s=0.0)
    for k in range(4):
        pacer.put(f"chunk-{k}", 0.03)
    assert len(pacer) == 4
    assert pacer.release(0.0) == ["chunk-0"]
    assert pacer.release(0.029) == []
    released = drain(pacer)
    assert [item for _, item in released] == ["chunk-1", "chunk-2", "chunk-3"]
    assert [t for t, _ in released] == pytest.approx([0.03, 0.06, 0.09])
    assert len(pacer) == 0 and pacer.deadline is None


def test_the_pacer_runs_ahead_of_playback_by_the_lead():
    pacer = Pacer()
    for k in range(10):
        pacer.put(k, 0.06)
    # Chunks starting within REALTIME_LEAD_S (0.2 s) of playback leave at once: 0 .. 0.18 s.
    assert pacer.release(0.0) == [0, 1, 2, 3]
    assert pacer.deadline == pytest.approx(0.24 - REALTIME_LEAD_S)
    released = drain(pacer)
    assert [item for _, item in released] == list(range(4, 10))
    for t, k in released:
        assert k * 0.06 - REALTIME_LEAD_S == pytest.approx(t)


def test_the_pacer_clock_restarts_after_a_pause():
    pacer = Pacer(lead_s=0.0)
    pacer.put("a", 0.5)
    assert pacer.release(0.0) == ["a"]
    pacer.put("b", 0.5)
    assert pacer.release(0.2) == []  # "a" still plays
    assert pacer.release(10.0) == ["b"]
    pacer.put("c", 0.5)
    assert pacer.release(10.4) == []  # "b" plays from 10.0, not from 0.5
    assert pacer.release(10.5) == ["c"]


def test_a_dropped_pacer_hands_back_its_queue_and_restarts_the_clock():
    pacer = Pacer(lead_s=0.0)
    for k in range(4):
        pacer.put(k, 0.5)
    assert pacer.release(0.0) == [0]
    dropped = pacer.drop()
    assert list(dropped) == [(1, 0.5), (2, 0.5), (3, 0.5)]
    assert len(pacer) == 0 and pacer.deadline is None
    pacer.put("next", 0.5)
    assert pacer.release(0.0) == ["next"]  # chunk 0 no longer plays


def test_in_flight_lasts_the_playback_plus_a_grace_period():
    flight = InFlight()
    assert not flight.playing(100.0)
    flight.sent(1.0, now=100.0)
    flight.sent(1.0, now=100.5)  # queued behind the first: plays 101..102
    assert flight.playing(102.0 + ECHO_GRACE_S - 0.01)
    assert not flight.playing(102.0 + ECHO_GRACE_S)
    flight.sent(1.0, now=200.0)  # after a pause: plays from now
    assert flight.playing(200.5)
    assert not flight.playing(201.0 + ECHO_GRACE_S)
    flight.stop()
    assert not flight.playing(200.5)


def test_echo_seconds_by_audio_length_or_speaking_rate():
    assert echo_seconds(None, 48000, 24000) == 1.0
    assert echo_seconds(None, 32000, None) == 1.0  # Tavus's default rate
    text = "x" * 28
    assert echo_seconds(text, 0, None) == pytest.approx(28 / TEXT_ECHO_CHARS_PER_S)


# --- messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("done", [False, True])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_audio_message_equals_build_message(kind, done):
    audio = pcm(0.05, 24000)
    message = audio_message(CID, kind(audio), 24000, "utt-1", done)
    echo = ix.Echo(audio=audio, sample_rate=24000, inference_id="utt-1", done=done)
    assert message == build_message(echo, conversation_id=CID)


# --- through TavusConnection -------------------------------------------------------------


def connect(**params) -> TavusConnection:
    params.setdefault("mode", "echo_audio")
    params.setdefault("conversation_id", CID)
    params.setdefault("wait_for_replica", False)
    params.setdefault("max_message_bytes", CAP)
    params.setdefault("echo_sample_rate", 16000)
    conn = TavusConnection(TavusInteractionsParams(**params))
    assert conn.start(now=0) == []
    return conn


def feed_audio(conn, audio: bytes, *, t0: float = 0.0, context_id=None) -> list:
    effects = []
    for k, frame in enumerate(frames(audio, conn.params.echo_sample_rate)):
        effects += conn.echo_audio(frame, context_id=context_id, now=t0 + k * 0.02)
    return effects


def sent(effects) -> list[dict]:
    assert all(isinstance(e, Transmit) for e in effects), effects
    return [e.message for e in effects]


def chunk(message: dict) -> tuple[bytes, str, bool]:
    assert message["event_type"] == "conversation.echo"
    props = message["properties"]
    return base64.b64decode(props["audio"]), props["inference_id"], props["done"]


def audio_of(messages) -> bytes:
    return b"".join(chunk(m)[0] for m in messages)


@pytest.mark.parametrize("rate", [16000, 24000])
def test_every_echo_message_fits_the_cap(rate):
    conn = connect(echo_sample_rate=rate)
    audio = pcm(2.0, rate)
    messages = sent(feed_audio(conn, audio) + conn.echo_audio_close(now=2.0))
    assert max(encoded_size(m) for m in messages) <= CAP
    assert CAP - encoded_size(messages[0]) < 4  # and uses it
    assert audio_of(messages) == audio
    assert [chunk(m)[2] for m in messages] == [False] * (len(messages) - 1) + [True]
    assert len({chunk(m)[1] for m in messages}) == 1
    assert {m["properties"]["sample_rate"] for m in messages} == {rate}
    assert conn.stats["conversation.echo"] == len(messages)
    assert conn.echo_audio_id is None


def test_the_chunk_size_is_computed_once_per_conversation(monkeypatch):
    calls = []

    def counting(**kwargs):
        calls.append(kwargs["conversation_id"])
        return audio_chunk_bytes(**kwargs)

    monkeypatch.setattr(sender_module, "audio_chunk_bytes", counting)
    conn = connect(echo_sample_rate=24000)
    messages = []
    for seed in (1, 2):
        messages += sent(feed_audio(conn, pcm(1.0, 24000, seed=seed)))
        messages += sent(conn.echo_audio_close(now=1.0))
    assert len({chunk(m)[1] for m in messages}) == 2
    assert len(messages) > 30
    assert calls == [CID]  # two utterances, one conversation: one computation
    # Another conversation id changes the envelope: computed again, and still fits.
    longer = "c" * 200
    conn.set_conversation_id(longer)
    messages = sent(feed_audio(conn, pcm(1.0, 24000)) + conn.echo_audio_close(now=1.0))
    assert calls == [CID, longer]
    assert max(encoded_size(m) for m in messages) <= CAP
    assert {m["conversation_id"] for m in messages} == {longer}


def test_the_fallback_closes_an_utterance_left_open():
    conn = connect(echo_done_fallback_s=0.5)
    audio = pcm(0.1, 16000)
    messages = sent(feed_audio(conn, audio))  # frames at 0 .. 0.08 s, no close
    assert conn.echo_audio_id is not None
    assert conn.next_deadline() == pytest.approx(0.08 + 0.5)
    assert conn.tick(now=0.57) == []
    messages += sent(conn.tick(now=conn.next_deadline()))
    assert conn.echo_audio_id is None and conn.next_deadline() is None
    assert audio_of(messages) == audio
    assert chunk(messages[-1])[2] is True


def test_an_utterance_that_cannot_be_sent_is_reported_once_and_dropped():
    # No sample fits in 512 bytes next to this conversation id.
    conn = connect(conversation_id="c" * 600, max_message_bytes=512)
    effects = feed_audio(conn, pcm(0.2, 16000))
    failures = [e for e in effects if isinstance(e, SendFailed)]
    assert len(failures) == 1 and effects == failures  # nothing transmitted
    failure = failures[0]
    assert isinstance(failure.interaction, ix.Echo) and failure.report
    assert "max_message_bytes" in str(failure.error)
    assert conn.stats["echo_dropped"] == 10  # every frame
    assert conn.stats["send_failed"] == 1
    assert conn.echo_audio_close(now=0.2) == []
    assert conn.echo_audio_id is None
    # The next utterance is reported again (once).
    effects = feed_audio(conn, pcm(0.1, 16000), t0=1.0)
    assert [type(e) for e in effects] == [SendFailed]
    # A failed utterance left open still closes at the fallback, silently.
    assert conn.tick(now=conn.next_deadline()) == []
    assert conn.echo_audio_id is None and not conn.echo_in_flight(now=100.0)


def test_realtime_chunks_leave_only_through_tick_at_playback_speed():
    rate = 16000
    conn = connect(echo_realtime=True, echo_sample_rate=rate)
    audio = pcm(2.0, rate)
    # The TTS is faster than real time: the whole utterance arrives at once.
    effects = [e for f in frames(audio, rate) for e in conn.echo_audio(f, context_id=None, now=0)]
    effects += conn.echo_audio_close(now=0)
    assert effects == []
    released: list[tuple[float, dict]] = []
    now = 0.0
    while (deadline := conn.next_deadline()) is not None:
        now = max(now, deadline)
        released += [(now, m) for m in sent(conn.tick(now=now))]
    messages = [m for _, m in released]
    assert audio_of(messages) == audio
    assert [chunk(m)[2] for m in messages] == [False] * (len(messages) - 1) + [True]
    # Each chunk leaves REALTIME_LEAD_S before its playback starts (at once for the first).
    played = 0.0
    for t, message in released:
        assert t == pytest.approx(max(0.0, played - REALTIME_LEAD_S))
        played += len(chunk(message)[0]) / (2 * rate)
    assert played == pytest.approx(2.0)
    assert len({t for t, _ in released}) > 10  # spread over the playback, not one burst


def test_an_interruption_drops_paced_audio():
    conn = connect(echo_realtime=True)
    audio = pcm(2.0, 16000)
    assert feed_audio(conn, audio) + conn.echo_audio_close(now=2.0) == []
    early = sent(conn.tick(now=2.0))  # what leaves within the lead
    assert 0 < len(early) < 5
    effects = conn.interrupt(now=2.0)
    assert [e.message["event_type"] for e in effects] == ["conversation.interrupt"]
    chunks = len(audio) // chunk_size(16000) + 1
    assert conn.stats["echo_dropped"] == chunks - len(early)
    assert conn.next_deadline() is None
    assert conn.tick(now=10.0) == []


def test_an_interruption_drops_audio_held_for_the_replica():
    conn = connect(wait_for_replica=True, replica_participant_id=REPLICA)
    conn.send(ix.Respond("hello"), now=0.0)
    effects = feed_audio(conn, pcm(1.0, 16000)) + conn.echo_audio_close(now=1.0)
    assert effects == []
    held = conn.sender.held
    assert held > 2
    conn.interrupt(now=1.0)
    assert conn.stats["echo_dropped"] == held - 1
    joined = {"message_type": "system", "event_type": "system.replica_joined"}
    effects = conn.receive({**joined, "conversation_id": CID}, sender_id=REPLICA, now=1.1)
    released = [e.message["event_type"] for e in effects if isinstance(e, Transmit)]
    assert released == ["conversation.respond"]


def test_late_frames_of_an_interrupted_context_are_dropped():
    conn = connect()
    audio = pcm(0.6, 16000)
    first = sent(feed_audio(conn, audio[:9600], context_id="ctx-1"))
    assert first  # part of it left
    conn.interrupt(now=0.3)
    dropped = conn.stats["echo_dropped"]
    assert feed_audio(conn, audio[9600:], t0=0.3, context_id="ctx-1") == []
    assert conn.stats["echo_dropped"] == dropped + 15
    assert conn.echo_audio_close(now=0.6, context_id="ctx-1") == []
    assert conn.echo_audio_id is None
    # Audio of another context opens a fresh utterance.
    later = sent(feed_audio(conn, audio, t0=1.0, context_id="ctx-2"))
    later += sent(conn.echo_audio_close(now=1.6, context_id="ctx-2"))
    assert audio_of(later) == audio and chunk(later[-1])[2] is True
    assert {chunk(m)[1] for m in later}.isdisjoint({chunk(m)[1] for m in first})


def test_the_stop_of_an_interrupted_context_does_not_close_the_next_utterance():
    conn = connect()
    conn.echo_audio(pcm(0.1, 16000, seed=1), context_id="ctx-1", now=0.0)
    conn.interrupt(now=0.1)
    audio = pcm(0.3, 16000, seed=2)
    messages = sent(feed_audio(conn, audio, t0=0.2, context_id="ctx-2"))
    iid = conn.echo_audio_id
    assert conn.echo_audio_close(now=0.5, context_id="ctx-1") == []  # TTSStoppedFrame, late
    assert conn.echo_audio_id == iid
    messages += sent(conn.echo_audio_close(now=0.6, context_id="ctx-2"))
    assert audio_of(messages) == audio
    assert [chunk(m)[2] for m in messages] == [False] * (len(messages) - 1) + [True]


def test_late_frames_of_an_interrupted_context_stay_out_of_the_next_utterance():
    conn = connect()
    conn.echo_audio(pcm(0.1, 16000, seed=1), context_id="ctx-1", now=0.0)
    conn.interrupt(now=0.1)
    fresh = pcm(0.1, 16000, seed=2)
    messages = sent(conn.echo_audio(fresh, context_id="ctx-2", now=0.2))
    messages += sent(conn.echo_audio(pcm(0.1, 16000, seed=3), context_id="ctx-1", now=0.3))
    messages += sent(conn.echo_audio_close(now=0.4, context_id="ctx-2"))
    assert audio_of(messages) == fresh


def test_echo_text_through_the_connection():
    conn = connect(mode="echo_text")
    effects = conn.echo_text_start(now=0.0)
    effects += conn.echo_text_add("Yes.", now=0.1)
    effects += conn.echo_text_end(now=0.2)
    props = [m["properties"] for m in sent(effects)]
    assert [(p["modality"], p["text"], p["done"]) for p in props] == [("text", "Yes.", True)]
    # A response with no text sends nothing at all (there is no utterance to close).
    assert conn.echo_text_start(now=0.5) + conn.echo_text_end(now=0.6) == []
    # An interruption drops the open response and ignores the rest of it.
    conn.echo_text_start(now=1.0)
    assert len(sent(conn.echo_text_add("One. Two", now=1.1))) == 1
    assert [e.message["event_type"] for e in conn.interrupt(now=1.2)] == ["conversation.interrupt"]
    assert conn.stats["echo_dropped"] == 1  # " Two"
    assert conn.echo_text_add(" more.", now=1.3) == []
    assert conn.echo_text_end(now=1.4) == []
