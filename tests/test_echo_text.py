"""Tests of EchoTextStream: which echo texts leave, when, and with which done flag."""

from __future__ import annotations

import uuid
from collections import Counter

from pipecat_tavus_interactions.echo_text import EchoTextStream

from pipecat_tavus_interactions.params import TavusInteractionsParams


class Wire:
    """Records every piece the stream sends; ``on_send`` runs inside a send (a suspension)."""

    def __init__(self):
        self.sent: list[tuple[str, str, bool]] = []
        self.on_send = None

    async def send(self, text: str, iid: str, done: bool) -> None:
        self.sent.append((text, iid, done))
        if self.on_send is not None:
            self.on_send()

    def texts(self) -> list[tuple[str, bool]]:
        return [(t, d) for t, _, d in self.sent]


def make(text_echo: str = "sentences") -> tuple[EchoTextStream, Wire, Counter]:
    wire, stats = Wire(), Counter()
    params = TavusInteractionsParams(mode="echo_text", text_echo=text_echo)
    return (
        EchoTextStream(send=wire.send, params=params, count=lambda name: stats.update([name])),
        wire,
        stats,
    )


async def feed(stream: EchoTextStream, *tokens: str) -> None:
    for token in tokens:
        await stream.add(token)


async def test_the_first_sentence_leaves_with_its_last_token():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "Hello", " there", ".")
    assert wire.texts() == [("Hello there.", False)]


async def test_later_sentences_wait_for_more_text_so_the_last_carries_done():
    stream, wire, stats = make()
    await stream.start()
    await feed(stream, "Hi.", " How are you?")
    assert wire.texts() == [("Hi.", False)]  # "How are you?" may be the last one
    await feed(stream, " Fine")
    assert wire.texts() == [("Hi.", False), ("How are you?", False)]
    await feed(stream, " thanks.")
    await stream.end()
    assert wire.texts() == [("Hi.", False), ("How are you?", False), ("Fine thanks.", True)]
    assert stats["echo_empty_close"] == 0


async def test_a_held_last_sentence_is_sent_with_done_at_the_end():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "One.", " Two.")
    await stream.end()
    assert wire.texts() == [("One.", False), ("Two.", True)]


async def test_a_one_sentence_answer_is_closed_with_an_empty_done_echo():
    stream, wire, stats = make()
    await stream.start()
    await feed(stream, "Yes.")
    await stream.end()
    assert wire.texts() == [("Yes.", False), ("", True)]
    assert stats["echo_empty_close"] == 1


async def test_an_unterminated_tail_goes_with_done():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "Sure. ", "It is 3")
    await stream.end()
    assert wire.texts() == [("Sure.", False), ("It is 3", True)]


async def test_every_piece_of_a_response_shares_one_uuid_inference_id():
    stream, wire, _ = make()
    await stream.start()
    iid = stream.inference_id
    await feed(stream, "A b. ", "C d. ", "E f")
    await stream.end()
    assert {i for _, i, _ in wire.sent} == {iid}
    assert str(uuid.UUID(iid)) == iid
    assert stream.inference_id is None


async def test_whole_mode_sends_one_echo_when_the_response_ends():
    stream, wire, _ = make("whole")
    await stream.start()
    await feed(stream, "One. ", "Two. ", "Three")
    assert wire.sent == []
    await stream.end()
    assert wire.texts() == [("One. Two. Three", True)]


async def test_a_new_response_closes_the_one_left_open():
    stream, wire, _ = make()
    await stream.start()
    first = stream.inference_id
    await feed(stream, "Unfinished")
    await stream.start()
    second = stream.inference_id
    await feed(stream, "Next.")
    assert wire.sent == [("Unfinished", first, True), ("Next.", second, False)]
    assert first != second


async def test_text_without_a_start_frame_opens_a_response():
    stream, wire, _ = make()
    await feed(stream, "Hello.")
    assert stream.inference_id is not None
    assert wire.texts() == [("Hello.", False)]


async def test_blank_sentences_are_not_sent():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "Hi.", "   ", "\n")
    await stream.end()
    assert wire.texts() == [("Hi.", False), ("", True)]


async def test_in_flight_from_the_first_send_until_the_end():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "Thinking")
    assert not stream.in_flight
    await feed(stream, ".")
    assert stream.in_flight
    await stream.end()
    assert not stream.in_flight


async def test_drop_counts_what_was_not_sent_and_ignores_the_rest_of_the_response():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "One.", " Two.", " Three")
    assert wire.texts() == [("One.", False), ("Two.", False)]
    assert stream.drop() == 1  # " Three" was buffered
    assert stream.inference_id is None and not stream.in_flight
    await feed(stream, " more.", " And more.")
    await stream.end()  # ends the dead response: the next text is live again
    await feed(stream, "Fresh.")
    assert wire.texts() == [("One.", False), ("Two.", False), ("Fresh.", False)]


async def test_a_held_sentence_counts_as_dropped():
    stream, _, _ = make()
    await stream.start()
    await feed(stream, "One.", " Two.")
    assert stream.drop() == 1  # "Two." was held back
    assert stream.drop() == 0  # nothing open any more


async def test_an_interruption_during_a_send_stops_the_response_there():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "One.", " Two.")
    # The next token releases "Two." and completes "Three."; the interruption arrives while
    # "Two." is being sent, so "Three." never leaves.
    wire.on_send = stream.drop
    await feed(stream, " Three. Four")
    wire.on_send = None
    await stream.end()
    assert wire.texts() == [("One.", False), ("Two.", False)]


async def test_a_start_after_an_interruption_begins_a_live_response():
    stream, wire, _ = make()
    await stream.start()
    await feed(stream, "One.")
    stream.drop()
    await feed(stream, " ignored.")
    await stream.start()
    await feed(stream, "Two.")
    assert wire.texts() == [("One.", False), ("Two.", False)]
