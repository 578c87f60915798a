"""Inbound benchmark: per-event cost of the input path without Pipecat's queues, by stage.

``parse_order_map``
    The work ``tavus.input()`` does for one transport message, without Pipecat's queues:
    ``TavusConnection.receive`` (sender and conversation checks, ``parse_message``,
    ``EventOrderer.push``, ``TurnLedger.observe``, the effects) and then the facade carrying
    the effects out (``tavus.run``: the frames of the README's table built and pushed, event
    handlers called), with ``push_frame`` replaced by ``list.append``. The processor runs in
    a started pipeline (it needs a task manager for the core's timer and tool tasks); tool
    handlers run as tasks after the timed loop, so their cost is not counted. Baseline:
    ``json.loads`` of the JSON text of the same messages (the cheapest thing any consumer of
    the data channel must do). The pure-core stages are also timed alone (parse; parse +
    order; parse + order + ledger; the whole ``TavusConnection.receive``), to show where the
    time goes.

This module imports the package's internals (``core.ordering``, ``core.turns``) for its
per-stage breakdown; every other benchmark uses only the public API.
"""

from __future__ import annotations

import gc
import json
import time
import timeit
from typing import Any

from pipecat.frames.frames import Frame, InterimTranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.utils.time import time_now_iso8601

from pipecat_tavus_interactions.core.connection import TavusConnection
from pipecat_tavus_interactions.core.ordering import EventOrderer
from pipecat_tavus_interactions.core.turns import TurnLedger
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.protocol import parse_message

from .common import REPLICA_ID, Harness, frames_for, json_texts, make_tavus, settle

DOWN = FrameDirection.DOWNSTREAM


def _time_json(texts: list[str]) -> float:
    loads = json.loads
    t0 = time.perf_counter()
    for text in texts:
        loads(text)
    return time.perf_counter() - t0


def _time_core(messages: list[dict], stages: str) -> float:
    orderer = EventOrderer()
    ledger = TurnLedger()
    conn = TavusConnection(
        TavusInteractionsParams(
            conversation_id=messages[0]["conversation_id"], replica_participant_id=REPLICA_ID
        )
    )
    t0 = time.perf_counter()
    if stages == "parse":
        for m in messages:
            parse_message(m)
    elif stages == "order":
        for m in messages:
            orderer.push(parse_message(m), 0.0)
    elif stages == "ledger":
        for m in messages:
            for e in orderer.push(parse_message(m), 0.0):
                ledger.observe(e, 0.0)
    else:
        t0 = time.perf_counter()
        for m in messages:
            conn.receive(m, sender_id=REPLICA_ID, now=0.0)
    return time.perf_counter() - t0


async def _time_processor(messages: list[dict]) -> tuple[float, int]:
    """Time what ``tavus.input()`` does per message: the core's receive and its effects."""
    tavus = make_tavus(messages[0]["conversation_id"])
    frames = frames_for(messages)
    inp = tavus.input()
    conn = tavus.connection
    run = tavus.run
    async with Harness([inp, tavus.output()]):
        pushed: list[Frame] = []

        async def push(frame: Frame, direction: FrameDirection = DOWN) -> None:
            pushed.append(frame)

        inp.push_frame = push  # type: ignore[method-assign]
        gc.collect()
        t0 = time.perf_counter()
        for f in frames:
            await run(conn.receive(f.message, sender_id=f.participant_id, now=0.0))
        elapsed = time.perf_counter() - t0
        await settle()
        del inp.push_frame  # the pipeline's EndFrame must get through again
    return elapsed, len(pushed)


async def parse_order_map(messages: list[dict], *, repeats: int) -> dict[str, Any]:
    """Median per-event cost of each stage and of ``json.loads``, over ``repeats`` runs.

    Args:
        messages: A wire recording (each run replays all of it from a fresh state).
        repeats: How many runs.

    Returns:
        Per-event medians in microseconds, the ratio to ``json.loads``, frames per event.
    """
    texts = json_texts(messages)
    n = len(messages)
    samples: dict[str, list[float]] = {
        k: [] for k in ("json", "parse", "order", "ledger", "receive", "processor")
    }
    frames_pushed = 0
    for _ in range(repeats):
        # Interleaved, so drift in machine load hits every stage alike.
        samples["json"].append(_time_json(texts) / n * 1e6)
        for stage in ("parse", "order", "ledger", "receive"):
            samples[stage].append(_time_core(messages, stage) / n * 1e6)
        elapsed, frames_pushed = await _time_processor(messages)
        samples["processor"].append(elapsed / n * 1e6)
    med = {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
    # Two Pipecat costs the mapping pays per frame, for the report's explanation.
    n_t = 20_000
    frame_us = timeit.timeit(
        lambda: InterimTranscriptionFrame(text="what is", user_id="u", timestamp="t"), number=n_t
    )
    iso_us = timeit.timeit(time_now_iso8601, number=n_t)
    return {
        "pipecat_frame_us": frame_us / n_t * 1e6,
        "iso_timestamp_us": iso_us / n_t * 1e6,
        "events": n,
        "repeats": repeats,
        "median_us": med,
        "ratio": med["processor"] / med["json"],
        "frames_per_event": frames_pushed / n,
        "mean_bytes": sum(len(t) for t in texts) / n,
    }


__all__ = ["parse_order_map"]
