"""Property tests: nothing from the wire makes ``parse_message`` fail in an unplanned way.

For any input, ``parse_message`` either returns an ``Event`` whose stored values satisfy its
own model's declared types, or raises ``RemoteProtocolError`` with one of the documented
reasons. The defensive catch-all inside ``parse_message`` (reason ``"invalid"``) counts as a
failure here: it means some input reached an exception nobody planned for.

The CI run uses the ``tavus-ci`` hypothesis profile from conftest (about 300 examples per
test). ``pytest -m slow tests/test_fuzz_protocol.py -s`` runs the long version (over 100,000
cases) and prints the count.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from conftest import fixture_names, fixture_text, load_fixture
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecat_tavus_interactions import events as ev
from pipecat_tavus_interactions.exceptions import RemoteProtocolError
from pipecat_tavus_interactions.protocol import parse_message

DOCUMENTED_REASONS = {
    "bad_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "bad_value",
    "bad_encoding",
    "too_large",
}


def _stable(value: Any) -> str:
    # NaN != NaN, so compare dumps through their JSON text (NaN prints the same both sides).
    return json.dumps(value, sort_keys=True, default=repr, allow_nan=True)


def check(obj: object) -> ev.Event | None:
    """Parse ``obj`` and assert the outcome is one the contract allows."""
    try:
        event = parse_message(obj)
    except RemoteProtocolError as e:
        assert e.reason in DOCUMENTED_REASONS, f"unplanned failure: {e}"
        return None
    assert isinstance(event, ev.Event)
    assert isinstance(event.raw, dict)
    assert event.event_type == event.raw["event_type"]
    expected = ev.EVENT_TYPES.get(event.event_type)
    if expected is None:
        expected = ev.GuardrailEvent if "guardrail" in event.event_type else ev.UnknownEvent
    if type(event) is ev.UnknownEvent and "role" in event.dropped_fields:
        expected = ev.UnknownEvent  # an utterance nobody can attribute: surfaced, not acted on
    assert type(event) is expected
    assert set(event.dropped_fields) <= set(type(event).model_fields) | {"role", "attempt"}
    # parse_message skips pydantic validation; re-validating must neither fail nor change a
    # value (a lax coercion such as "12" -> 12 would show up as a difference).
    dumped = event.model_dump(exclude={"raw"})
    again = type(event).model_validate({**dumped, "raw": event.raw})
    assert _stable(again.model_dump(exclude={"raw"})) == _stable(dumped)
    if event.timestamp is not None:
        assert math.isfinite(event.timestamp)
    return event


# --- strategies ---------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

EVENT_TYPE_NAMES = sorted(ev.EVENT_TYPES) + [
    "conversation.canvas.updated",
    "conversation.guardrail.violated",
    "system.heartbeat",
    "",
]

PROPERTY_KEYS = [
    "role",
    "speech",
    "text",
    "content",
    "content_index",
    "final",
    "is_interrupted",
    "participant_id",
    "participant_name",
    "interrupted",
    "duration",
    "name",
    "tool_name",
    "arguments",
    "function",
    "tool_call_id",
    "modality",
    "frames",
    "analysis",
    "objective_name",
    "output_variables",
    "guardrail",
    "guardrail_uuid",
    "reason",
    "shutdown_reason",
    "replica_id",
    "attempt",
    "user_audio_analysis",
    "user_visual_analysis",
    "visual_context",
    "inference_id",
]

# Values that sit on the edges the parser treats specially.
tricky = st.sampled_from(
    [
        "pal",
        "replica",
        "user",
        "assistant",
        "true",
        "false",
        "True",
        "yes",
        "0",
        "-3",
        " 7 ",
        "--5",
        "²",
        "٣",
        "1e3",
        "2025-07-11T06:45:47.472000Z",
        "2026-13-45T99:99:99",
        '{"location": "Paris"}',
        '"{\\"a\\": 1}"',
        "[1, 2]",
        "",
        " ",
        0,
        1,
        2,
        -1,
        1.5,
        2.0,
        1e308,
        float("inf"),
        float("nan"),
        True,
        False,
        None,
        [],
        {},
    ]
)
frames = st.lists(
    st.text(max_size=12)
    | st.fixed_dictionaries(
        {"data": st.text(max_size=12) | json_values},
        optional={"mime_type": st.sampled_from(["image/jpeg", "image/png"]) | json_values},
    )
    | json_values,
    max_size=3,
)
field_value = tricky | json_values | frames
properties = st.dictionaries(
    st.sampled_from(PROPERTY_KEYS) | st.text(max_size=8), field_value, max_size=8
)
tavus_like = st.fixed_dictionaries(
    {"event_type": st.sampled_from(EVENT_TYPE_NAMES) | tricky | st.text(max_size=30)},
    optional={
        "message_type": st.sampled_from(["conversation", "system", "application"]) | tricky,
        "conversation_id": st.sampled_from(["c123456", "c8d1e7f0a2b4"]) | tricky,
        "seq": st.integers(min_value=-5, max_value=10**12) | tricky,
        "turn_idx": st.integers(min_value=-5, max_value=1000) | tricky,
        "inference_id": st.uuids().map(str) | tricky,
        "timestamp": st.floats(min_value=0, max_value=2e9) | tricky,
        "properties": properties | field_value,
        "reason": field_value,
        "tool_call_id": field_value,
    },
)
export_wrapped = st.builds(
    lambda inner, event_type: {"eventType": event_type, "timestamp": "x", "data": inner},
    tavus_like,
    tricky,
)

# Every fixture as a decoded value: events, the malformed catalogue, and our own outbound
# interactions (which parse as unknown inbound events).
FIXTURE_VALUES: list[Any] = (
    [load_fixture(f"events/{n}") for n in fixture_names("events")]
    + [load_fixture(f"interactions/{n}") for n in fixture_names("interactions")]
    + [c["message"] for c in load_fixture("malformed/cases.json")["cases"] if "message" in c]
)
FIXTURE_TEXTS: list[str] = [fixture_text(f"events/{n}") for n in fixture_names("events")] + [
    fixture_text(f"interactions/{n}") for n in fixture_names("interactions")
]


def _slots(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Collect every (container, key) pair in a JSON value, depth first."""
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((value, key))
            _slots(child, out)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.append((value, i))
            _slots(child, out)
    return out


@st.composite
def mutated_fixtures(draw) -> Any:
    """A fixture with one to three keys dropped or values swapped for other JSON types."""
    msg = copy.deepcopy(draw(st.sampled_from(FIXTURE_VALUES)))
    if isinstance(msg, str):  # the double-encoded sample: mutate what it holds
        msg = json.loads(msg)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        slots = _slots(msg, [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if draw(st.booleans()) and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(tricky | json_values)
    return msg


@st.composite
def truncated_texts(draw) -> str:
    """A fixture's JSON text cut short, or with one character replaced."""
    text = draw(st.sampled_from(FIXTURE_TEXTS))
    cut = draw(st.integers(min_value=0, max_value=len(text) - 1))
    if draw(st.booleans()):
        return text[:cut]
    return (
        text[:cut]
        + draw(st.sampled_from(['"', "{", "}", ",", "\\", "\x00", "é"]))
        + text[cut + 1 :]
    )


@st.composite
def wire_forms(draw, values) -> object:
    """The same value as the transport might deliver it: object, text, bytes or text-in-text."""
    value = draw(values)
    form = draw(st.sampled_from(["value", "text", "bytes", "double"]))
    if form == "value":
        return value
    text = json.dumps(value, allow_nan=True)
    if form == "text":
        return text
    if form == "bytes":
        return text.encode("utf-8")
    return json.dumps(text)


STRATEGIES = {
    "arbitrary_json": wire_forms(json_values),
    "tavus_like": wire_forms(tavus_like | export_wrapped),
    "mutated_fixtures": wire_forms(mutated_fixtures()),
    "truncated_texts": truncated_texts() | truncated_texts().map(lambda t: t.encode("utf-8")),
}


# --- CI-sized properties ------------------------------------------------------------------


@given(STRATEGIES["arbitrary_json"])
def test_arbitrary_json_never_escapes_as_anything_but_remote_protocol_error(obj):
    check(obj)


@given(STRATEGIES["tavus_like"])
def test_tavus_like_messages_parse_or_fail_cleanly(obj):
    check(obj)


@given(STRATEGIES["mutated_fixtures"])
def test_mutated_fixtures_parse_or_fail_cleanly(obj):
    check(obj)


@given(STRATEGIES["truncated_texts"])
def test_truncated_fixture_text_parse_or_fail_cleanly(obj):
    check(obj)


def test_the_strategies_reach_both_outcomes():
    # Guard against a strategy that silently only ever produces errors (or only successes).
    outcomes: dict[str, set[bool]] = {}
    for name in ("tavus_like", "mutated_fixtures"):
        seen: set[bool] = set()

        @settings(max_examples=200)
        @given(STRATEGIES[name])
        def run(obj):
            seen.add(check(obj) is not None)  # noqa: B023 (run() is called right here)

        run()
        outcomes[name] = seen
    assert outcomes == {"tavus_like": {True, False}, "mutated_fixtures": {True, False}}


def test_the_oracle_fails_on_the_defensive_catch_all(monkeypatch):
    # An unplanned exception inside parse_message surfaces as reason "invalid"; the oracle
    # must reject it, or the properties above could never fail.
    def broken(obj):
        raise RemoteProtocolError("invalid", "KeyError: 'x'", obj)

    monkeypatch.setattr(__import__(__name__), "parse_message", broken)
    with pytest.raises(AssertionError, match="unplanned failure"):
        check({"event_type": "conversation.utterance"})


# --- the long run -------------------------------------------------------------------------

SLOW_PLAN = {
    "arbitrary_json": 25_000,
    "tavus_like": 35_000,
    "mutated_fixtures": 30_000,
    "truncated_texts": 15_000,
}


@pytest.mark.slow
def test_fuzz_parse_message_long_run():
    counts: dict[str, int] = {}
    for name, examples in SLOW_PLAN.items():
        seen = [0]

        @settings(max_examples=examples)
        @given(STRATEGIES[name])
        def run(obj):
            seen[0] += 1  # noqa: B023 (run() is called right here)
            check(obj)

        run()
        counts[name] = seen[0]
    total = sum(counts.values())
    print(f"\nfuzz parse_message: {total} cases {counts}")
    assert total >= 100_000
