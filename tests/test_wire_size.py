"""Text split for size only between grapheme clusters (wire_size.split_text).

What a reader sees as one character (an accented letter written with a combining mark, an
emoji ZWJ sequence, a flag, a skin tone, a keycap, a Hangul syllable in jamo) is never cut
across two messages, through the public send path and in the pure splitter.
"""

from __future__ import annotations

import pytest

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.core.connection import TavusConnection
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.protocol import encoded_size, split_text
from pipecat_tavus_interactions.wire_size import grapheme_clusters

CID = "c0ffee12"

FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # ZWJ sequence
CLUSTERS = {
    "combining accent": "e\u0301",
    "two combining marks": "a\u0323\u0302",
    "ZWJ family": FAMILY,
    "flag": "\U0001f1eb\U0001f1f7",
    "skin tone": "\U0001f44d\U0001f3fd",
    "keycap": "1\ufe0f\u20e3",
    "text-style emoji": "\u2764\ufe0f",
    "subdivision flag": "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "hangul jamo": "\u1100\u1161\u11a8",
    "CR LF": "\r\n",
}


@pytest.mark.parametrize("name", CLUSTERS)
def test_a_cluster_is_one_unit(name):
    cluster = CLUSTERS[name]
    assert grapheme_clusters(cluster * 3) == [cluster] * 3
    assert grapheme_clusters("x" + cluster + "y") == ["x", cluster, "y"]


def test_regional_indicators_pair_from_the_start_of_a_run():
    fr, de = "\U0001f1eb\U0001f1f7", "\U0001f1e9\U0001f1ea"
    lone = "\U0001f1eb"
    assert grapheme_clusters(fr + de + lone) == [fr, de, lone]


def test_precomposed_hangul_and_plain_text_are_one_character_per_cluster():
    assert grapheme_clusters("한국어 ok") == ["한", "국", "어", " ", "o", "k"]
    assert grapheme_clusters("") == []


@pytest.mark.parametrize("name", CLUSTERS)
def test_split_text_never_cuts_a_cluster(name):
    cluster = CLUSTERS[name]
    text = cluster * 400  # one "word" far over the cap: it must be cut somewhere

    def build(piece: str) -> dict:
        return {"properties": {"text": piece}}

    for cap in (64, 65, 66, 67, 100, 257):
        pieces = split_text(text, build=build, max_bytes=cap)
        assert "".join(pieces) == text
        assert len(pieces) > 1
        for piece in pieces:
            assert encoded_size(build(piece)) <= cap
            assert grapheme_clusters(piece) == [cluster] * (len(piece) // len(cluster)), name


def test_a_cluster_larger_than_the_budget_is_cut_by_characters_rather_than_refused():
    pile = "a" + "\u0301" * 300  # a "zalgo" pile: one cluster, far over a small budget

    def build(piece: str) -> dict:
        return {"t": piece}

    pieces = split_text(pile, build=build, max_bytes=100)
    assert "".join(pieces) == pile
    assert all(encoded_size(build(p)) <= 100 for p in pieces)


def test_whitespace_before_a_combining_mark_is_not_a_break():
    text = ("word \u0301" * 300).strip()

    def build(piece: str) -> dict:
        return {"t": piece}

    for piece in split_text(text, build=build, max_bytes=80):
        assert not piece.startswith("\u0301")


def test_a_long_echo_of_emoji_and_accents_is_split_between_clusters():
    conn = TavusConnection(
        TavusInteractionsParams(conversation_id=CID, wait_for_replica=False, max_message_bytes=700)
    )
    text = (FAMILY + "e\u0301" + "\U0001f44d\U0001f3fd") * 120 + " done."
    conn.start(now=0.0)
    effects = conn.send(ix.Echo(text=text, done=True), now=0.0)
    pieces = [e.message["properties"]["text"] for e in effects]
    assert len(pieces) > 2
    assert "".join(pieces) == text
    for piece in pieces:
        assert not piece.startswith(("\u200d", "\u0301", "\U0001f3fd"))
        assert not piece.endswith("\u200d")
        assert piece.count(FAMILY) == piece.count("\U0001f466")  # every family whole
