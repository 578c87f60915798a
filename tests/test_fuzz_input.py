"""Fuzz of the processor path: mutated wire messages from the replica, through ``tavus.input()``.

``tests/test_fuzz_protocol.py`` checks that ``parse_message`` fails cleanly; this module checks
what a user of the pipeline sees when such messages arrive from the replica participant:

- nothing escapes the processor (no ``ErrorFrame``, the pipeline runs to its end);
- every message that ``parse_message`` rejects (or that names another conversation) is
  reported through ``on_protocol_error`` with the same reason, exactly once;
- a good event sent right after each bad one is still delivered, in order.

Inputs: a systematic set of mutations of every fixture in ``tests/fixtures/events/`` (each
key dropped, each value swapped for a wrong type, the text cut short, bytes that are not
UTF-8, a double encoding), hypothesis-generated mutants from the strategies of
``test_fuzz_protocol``, and, in the ``slow`` run, 100,000+ seeded random mutants
(``pytest -m slow tests/test_fuzz_input.py -s`` prints the count).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections import Counter
from typing import Any

import pytest
from conftest import fixture_names, fixture_text, load_fixture
from hypothesis import given, settings
from pipecat.frames.frames import ErrorFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import run_test
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame
from test_fuzz_protocol import STRATEGIES

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.exceptions import RemoteProtocolError
from pipecat_tavus_interactions.protocol import parse_message

REPLICA = "11111111-1111-4111-8111-111111111111"
CID = "c8d1e7f0a2b4"  # the conversation of most fixtures; the others count as foreign
EVENT_FIXTURES = fixture_names("events")
WRONG_VALUES: list[Any] = [None, 17, -1, 1e308, True, "", "x" * 300, [], {}, [1, "a"], {"k": 1}]


def expected_reason(obj: Any) -> str | None:
    """The protocol error ``tavus.input()`` must report for ``obj``, or ``None`` for none.

    An event kept with a dropped field is reported as ``bad_field``; a speaking event whose
    role could not be read may also be reported ``missing_field`` when the core's state does
    not imply it (see :func:`maybe_reason`).
    """
    try:
        event = parse_message(obj)
    except RemoteProtocolError as e:
        return e.reason
    if event.conversation_id is not None and event.conversation_id != CID:
        return "other_conversation"
    if event.dropped_fields:
        return "bad_field"
    return None


def maybe_reason(obj: Any) -> str | None:
    """A second report ``obj`` may bring, depending on state (a role nobody can imply)."""
    try:
        event = parse_message(obj)
    except RemoteProtocolError:
        return None
    if event.conversation_id not in (None, CID):
        return None
    return "missing_field" if getattr(event, "role", "") is None else None


def good(k: int) -> dict[str, Any]:
    """A valid user utterance with a unique text and no ``seq`` (it is never held)."""
    return {
        "message_type": "conversation",
        "event_type": "conversation.utterance",
        "conversation_id": CID,
        "properties": {"role": "user", "speech": f"good-{k}"},
    }


def frame(message: Any) -> DailyInputTransportMessageFrame:
    return DailyInputTransportMessageFrame(message=message, participant_id=REPLICA)


async def feed(cases: list[Any]) -> dict[str, Any]:
    """Send each case followed by a good event; return what a user of the pipeline saw."""
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id=CID,
            replica_participant_id=REPLICA,
            heartbeat_timeout_s=None,
            end_on_shutdown=False,  # a valid shutdown mutant must not end the run early
        )
    )
    errors: list[RemoteProtocolError] = []
    tavus.add_event_handler("on_protocol_error", lambda _t, error: errors.append(error))
    calls: list[str] = []

    async def any_tool(params):
        calls.append(params.function_name)
        await params.result_callback("ok")

    tavus.register_function(None, any_tool)
    tavus.register_perception_function(None, any_tool)
    joined = {
        "message_type": "system",
        "event_type": "system.replica_joined",
        "conversation_id": CID,
        "properties": {"replica_id": "r1"},
    }
    frames = [frame(joined)]
    for k, case in enumerate(cases):
        frames += [frame(case), frame(good(k))]
    down, up = await run_test(Pipeline([tavus.input(), tavus.output()]), frames_to_send=frames)
    for _ in range(5):  # event handlers run as tasks
        await asyncio.sleep(0)
    delivered = [
        f.text for f in down if isinstance(f, TranscriptionFrame) and f.text.startswith("good-")
    ]
    return {
        "errors": errors,
        "up_errors": [f for f in up if isinstance(f, ErrorFrame)],
        "delivered": delivered,
        "stats": tavus.stats,
    }


def failures(cases: list[Any], seen: dict[str, Any]) -> list[str]:
    """Every way the run differs from the contract (empty when it holds)."""
    problems: list[str] = []
    if seen["up_errors"]:
        problems.append(f"errors escaped: {[f.error for f in seen['up_errors']][:3]}")
    want = [f"good-{k}" for k in range(len(cases))]
    if seen["delivered"] != want:
        missing = sorted(set(want) - set(seen["delivered"]), key=lambda t: int(t[5:]))
        problems.append(f"good events not delivered in order; missing {missing[:5]}")
    expected = Counter(r for r in map(expected_reason, cases) if r is not None)
    reported = Counter(e.reason for e in seen["errors"])
    optional = Counter(r for r in map(maybe_reason, cases) if r is not None)
    extra = reported - expected
    if expected - reported or extra - optional:
        problems.append(f"protocol errors: expected {dict(expected)}, got {dict(reported)}")
    return problems


# --- systematic mutations of every fixture --------------------------------------------------


def _mutations(name: str) -> list[Any]:
    """Deterministic mutants of one fixture, in every wire form."""
    text = fixture_text(f"events/{name}")
    value = load_fixture(f"events/{name}")
    if isinstance(value, str):  # the double-encoded sample: mutate what it holds
        value = json.loads(value)
    variants: list[Any] = []
    slots = [(None, k) for k in value] + [
        ("properties", k)
        for k in value.get("properties", {})
        if isinstance(value["properties"], dict)
    ]
    for parent, key in slots:
        dropped = copy.deepcopy(value)
        container = dropped if parent is None else dropped[parent]
        del container[key]
        variants.append(dropped)
        for wrong in WRONG_VALUES:
            swapped = copy.deepcopy(value)
            (swapped if parent is None else swapped[parent])[key] = wrong
            variants.append(swapped)
    out: list[Any] = []
    for v in variants:
        encoded = json.dumps(v)
        out += [v, encoded, encoded.encode("utf-8")]
    out += [text[: len(text) * k // 4] for k in range(4)]  # cut short (the empty text too)
    out += [b"\xff\xfe" + text.encode("utf-8"), json.dumps(text), text.encode("utf-16")]
    return out


@pytest.mark.parametrize("name", EVENT_FIXTURES)
async def test_every_fixture_mutated_is_dropped_reported_and_the_pipeline_goes_on(name):
    cases = _mutations(name)
    seen = await feed(cases)
    assert failures(cases, seen) == []
    # The mutations must really exercise both outcomes (else this test could not fail).
    reasons = [expected_reason(c) for c in cases]
    assert any(r is None for r in reasons) and sum(r is not None for r in reasons) >= 5


async def test_the_check_catches_a_swallowed_good_event_and_a_silent_drop():
    # The oracle itself must fail when the processor misbehaves.
    beat = {
        "message_type": "system",
        "event_type": "system.replica_present",
        "conversation_id": CID,
    }
    cases = ["not json", beat]
    seen = await feed(cases)
    assert failures(cases, seen) == []
    broken = {**seen, "delivered": seen["delivered"][:-1], "errors": []}
    problems = failures(cases, broken)
    assert len(problems) == 2 and "missing ['good-1']" in problems[0]


# --- hypothesis mutants -----------------------------------------------------------------------


def _collect(strategy, count: int) -> list[Any]:
    """Draw ``count`` examples from ``strategy`` (derandomized by the CI profile)."""
    out: list[Any] = []

    @settings(max_examples=count)
    @given(strategy)
    def draw(obj):
        out.append(obj)

    draw()
    return out


@pytest.mark.parametrize("strategy", ["mutated_fixtures", "truncated_texts", "tavus_like"])
async def test_hypothesis_mutants_from_the_replica_never_escape(strategy):
    cases = _collect(STRATEGIES[strategy], 150)
    seen = await feed(cases)
    assert failures(cases, seen) == []


# --- the long run ---------------------------------------------------------------------------


def random_mutant(rng: random.Random, values: list[dict], texts: list[str]) -> Any:
    """One seeded mutant of a random fixture: dropped keys, wrong types, cut or bad text."""
    kind = rng.random()
    if kind < 0.15:
        text = rng.choice(texts)
        cut = rng.randrange(len(text))
        bad = text[:cut] + rng.choice(['"', "{", "}", ",", "\\", "\x00", "é", ""]) + text[cut:]
        return bad.encode("utf-8") if rng.random() < 0.5 else bad
    msg = copy.deepcopy(rng.choice(values))
    for _ in range(rng.randint(1, 3)):
        parent = msg
        props = msg.get("properties")
        if isinstance(props, dict) and props and rng.random() < 0.5:
            parent = props
        if not parent:
            break
        key = rng.choice(list(parent))
        if rng.random() < 0.4:
            del parent[key]
        else:
            parent[key] = copy.deepcopy(rng.choice(WRONG_VALUES))
    form = rng.random()
    if form < 0.5:
        return msg
    encoded = json.dumps(msg)
    return encoded if form < 0.75 else encoded.encode("utf-8")


@pytest.mark.slow
async def test_fuzz_input_path_long_run():
    rng = random.Random(20_251_125)
    values = []
    for name in EVENT_FIXTURES:
        v = load_fixture(f"events/{name}")
        values.append(json.loads(v) if isinstance(v, str) else v)
    texts = [fixture_text(f"events/{n}") for n in EVENT_FIXTURES]
    total = 0
    problems: list[str] = []
    bad = 0
    for _chunk in range(21):
        cases = [random_mutant(rng, values, texts) for _ in range(5_000)]
        bad += sum(expected_reason(c) is not None for c in cases)
        problems += failures(cases, await feed(cases))
        total += len(cases)
    print(f"\nFUZZ-INPUT cases={total} failures={len(problems)} rejected={bad}")
    assert total >= 100_000
    assert problems == []
