"""Reliability under chaos, floods, faulty tools, forged senders and oversized output.

- **Chaos gives the clean ledger.** A 1,000-turn conversation is recorded from the simulator
  (no pipeline; a stand-in bot answers its tool calls). The recording is replayed into a bot
  pipeline twice: as emitted, and through the simulator's seeded :class:`Chaos` stream
  (re-ordering, duplicates, heartbeat noise; the ``pal``/``replica`` twins and both speaking
  forms are in every recording). Both runs must give the same ``TurnRecord.summary()`` for
  every turn. The replay pauses after each tool call until the result has left, as the
  replica waits for it.
- **Floods.** 100,000 hostile events in one burst keep the processor's memory bounded
  (tracemalloc) and a good event sent after the flood is delivered promptly.
- **Tool faults.** Hundreds of parallel calls whose handlers raise, hang past their deadline
  or succeed each get exactly one result, errors within the deadline, and the pipeline goes on.
- **Foreign senders.** With the simulator forging tool calls from a browser in the room, no
  handler ever runs for them.
- **Oversized output.** Whatever is asked for, no message over ``max_message_bytes`` is pushed.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time
import tracemalloc
from typing import Any

import pytest
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import run_test
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame

from pipecat_tavus_interactions import (
    TavusContextFrame,
    TavusInteractions,
    TavusInteractionsParams,
    TavusRespondFrame,
)
from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.protocol import build_message, encoded_size
from pipecat_tavus_interactions.simulator import (
    Chaos,
    PersonaRule,
    ScriptedPersona,
    ScriptedUser,
    SimulatedTransport,
    TavusSimulator,
    ToolCallSpec,
    UserLine,
)
from pipecat_tavus_interactions.simulator.wire import WireBuilder

REPLICA = "11111111-1111-4111-8111-111111111111"
DOWN = FrameDirection.DOWNSTREAM


# --- a pipeline the test drives ------------------------------------------------------------


class Sink(FrameProcessor):
    """Direct-mode last processor: keeps the frames and wakes waiters on a predicate."""

    def __init__(self):
        super().__init__(enable_direct_mode=True)
        self.frames: list[Frame] = []
        self.messages: list[dict] = []
        self._waiters: list[tuple[Any, asyncio.Future]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        if isinstance(frame, OutputTransportMessageFrame | OutputTransportMessageUrgentFrame):
            self.messages.append(frame.message)
        for entry in list(self._waiters):
            if not entry[1].done() and entry[0](self):
                entry[1].set_result(None)
                self._waiters.remove(entry)
        await self.push_frame(frame, direction)

    async def wait(self, predicate, within: float = 10.0) -> None:
        if predicate(self):
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        await asyncio.wait_for(fut, within)


class Running:
    """``async with Running(processors) as sink``: a started pipeline ending in a :class:`Sink`."""

    def __init__(self, processors: list[FrameProcessor], **worker_kwargs: Any):
        self.sink = Sink()
        self.worker = PipelineWorker(
            Pipeline([*processors, self.sink]),
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
            **worker_kwargs,
        )
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Running:
        started = asyncio.Event()
        self.worker.add_event_handler("on_pipeline_started", lambda *_: started.set())
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._task = asyncio.create_task(runner.run())
        await asyncio.wait_for(started.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.queue_frame(EndFrame())
        await asyncio.wait_for(self._task, 60)


def inbound(message: Any, sender: str = REPLICA) -> DailyInputTransportMessageFrame:
    return DailyInputTransportMessageFrame(message=message, participant_id=sender)


def tool_results(sink: Sink) -> list[dict]:
    return [m for m in sink.messages if m["event_type"] == "conversation.tool_result"]


# --- chaos gives the clean ledger ------------------------------------------------------------

LINES = ["hi there", "tell me more", "sounds good", "and then what", "okay thanks"]


async def record(turns: int, *, heartbeat_every: int = 25) -> list[dict]:
    """A simulator conversation of ``turns`` user turns, as its clean wire messages."""
    persona = ScriptedPersona(
        rules=[
            PersonaRule(
                pattern=r"weather in (?P<city>\w+)",
                regex=True,
                tool_call=ToolCallSpec(name="get_weather", arguments={"city": "{city}"}),
                reply="It is {result}.",
            )
        ],
        default_reply="Sure, go on.",
        greeting="Hello there!",
    )
    lines = []
    for i in range(turns):
        if i % 40 == 7:
            text = "weather in Paris"
        else:
            text = LINES[i % len(LINES)]
        lines.append(
            UserLine(text=text, pause_s=0.1, barge_in_after_words=1 if i % 9 == 4 else None)
        )
    ticks = itertools.count()
    sim: TavusSimulator

    async def bot(message: dict, _sender: str) -> None:
        if message["event_type"] == "conversation.tool_call":
            result = ix.ToolResult(message["properties"]["tool_call_id"], "sunny", "success")
            await sim.receive(build_message(result, conversation_id=sim.conversation_id))

    sim = TavusSimulator(
        persona=persona,
        speed=1e6,
        heartbeat_interval_s=None,
        seed=7,
        clock=lambda: 1_760_000_000.0 + next(ticks) * 0.125,
        history=turns * 100,
        send=bot,
    )
    await sim.start()
    await sim.run_script(ScriptedUser(lines=lines, reply_timeout_s=5))
    await sim.close()
    # Heartbeats every few messages (the simulator's own run on a timer, so a recording
    # with them would not be reproducible); then seq is renumbered over the whole stream.
    wire = WireBuilder(conversation_id=sim.conversation_id, rng=random.Random(0))
    out: list[dict] = []
    for k, msg in enumerate(sim.emitted, 1):
        out.append(msg)
        if k % heartbeat_every == 0:
            beat = wire.replica_present(k // heartbeat_every)[0]
            beat["timestamp"] = msg["timestamp"]
            out.append(beat)
    for seq, msg in enumerate(out, 1):
        msg["seq"] = seq
    return out


async def replay(deliveries: list[tuple[Any, str]], conversation_id: str) -> TavusInteractions:
    """Feed ``(message, sender)`` pairs to a bot; after each tool call, wait for its result."""
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id=conversation_id,
            replica_participant_id=REPLICA,
            heartbeat_timeout_s=None,
            max_turns=5000,
        )
    )

    async def get_weather(params):
        await params.result_callback(f"sunny in {params.arguments['city']}")

    tavus.register_function("get_weather", get_weather)
    calls = 0
    async with Running([tavus.input(), tavus.output()]) as run:
        for message, sender in deliveries:
            await run.worker.queue_frame(inbound(message, sender))
            if message.get("event_type") == "conversation.tool_call":
                calls += 1
                want = calls
                await run.sink.wait(lambda s, want=want: len(tool_results(s)) >= want)
    return tavus


@pytest.mark.slow  # 30-50 s; tests/test_end_to_end.py runs the same check over 20 turns
async def test_a_chaotic_1000_turn_run_gives_the_same_ledger_as_the_clean_run():
    wire = await record(1000)
    cid = wire[0]["conversation_id"]
    chaos = Chaos(reorder_window=3, duplicate_rate=0.1, heartbeat_noise=True, seed=11)
    stream = chaos.stream(sender_id=REPLICA, conversation_id=cid)
    noisy = [(d.message, d.sender_id) for m in wire for d in stream.push(m)]
    noisy += [(d.message, d.sender_id) for d in stream.flush()]
    assert stream.counts["reordered"] > 100 and stream.counts["heartbeat_dropped"] > 10
    assert len(noisy) > len(wire) * 1.05

    clean = await replay([(m, REPLICA) for m in wire], cid)
    rough = await replay(noisy, cid)

    clean_turns = [t.summary() for t in clean.ledger.turns]
    rough_turns = [t.summary() for t in rough.ledger.turns]
    assert len(clean_turns) == 1001 and all(t["completed"] for t in clean_turns)
    assert sum(bool(t["tool_calls"]) for t in clean_turns) == 25
    assert sum(t["replica_interrupted"] for t in clean_turns) > 50
    for a, b in zip(clean_turns, rough_turns, strict=True):
        assert a == b
    stats = rough.input().orderer.stats
    assert stats["duplicate_seq"] > 0 and stats["duplicate_twin"] > 0
    assert stats["held"] > 0 and stats["gaps_released"] > 0


# --- floods ---------------------------------------------------------------------------------


def flood_messages(n: int, cid: str) -> list[tuple[Any, str]]:
    """``n`` hostile deliveries: gaps, duplicates, twins, unknowns, garbage, forgeries."""
    rng = random.Random(5)
    out: list[tuple[Any, str]] = []
    seq = 0
    for k in range(n):
        roll = rng.random()
        if roll < 0.1:
            out.append(("{not json", REPLICA))
            continue
        if roll < 0.2:
            forged = {
                "message_type": "conversation",
                "event_type": "conversation.tool_call",
                "conversation_id": cid,
                "properties": {
                    "name": "transfer_funds",
                    "arguments": "{}",
                    "tool_call_id": f"f{k}",
                },
            }
            out.append((forged, "33333333-3333-4333-8333-333333333333"))
            continue
        seq += rng.choice((1, 1, 1, 2, 40))  # most in order; gaps held, some never filled
        msg: dict[str, Any] = {
            "message_type": "conversation",
            "conversation_id": cid,
            "seq": seq,
            "turn_idx": k // 50,
            "inference_id": f"i{k // 10}",
        }
        if roll < 0.4:
            msg["event_type"] = "conversation.utterance.streaming"
            msg["properties"] = {"role": "pal", "speech": "word " * (k % 30), "content_index": k}
        elif roll < 0.5:
            msg["event_type"] = f"conversation.unknown_{k % 997}"
            msg["properties"] = {"blob": "x" * 200}
        elif roll < 0.7:
            msg["event_type"] = (
                "conversation.started_speaking" if k % 2 else "conversation.stopped_speaking"
            )
            msg["properties"] = {"role": rng.choice(("pal", "replica", "user"))}
        else:
            msg["event_type"] = "conversation.utterance"
            msg["properties"] = {"role": rng.choice(("pal", "replica", "user")), "speech": f"u{k}"}
        out.append((msg, REPLICA))
        if rng.random() < 0.2:
            out.append((dict(msg), REPLICA))  # the same seq again
    return out[:n]


@pytest.mark.slow  # 30-50 s; the ledger's own memory test runs in every suite
async def test_a_100k_event_flood_keeps_memory_bounded_and_the_pipeline_responsive():
    cid = "c-flood"
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id=cid,
            replica_participant_id=REPLICA,
            heartbeat_timeout_s=None,
            emit_transcriptions=True,
        )
    )
    forged: list[str] = []
    tavus.register_function("transfer_funds", lambda params: forged.append("called"))
    frames = [inbound(m, s) for m, s in flood_messages(100_000, cid)]
    inp = tavus.input()
    # No turn-tracking observer: Pipecat would queue a copy of every frame for it.
    async with Running([inp, tavus.output()], enable_turn_tracking=False) as run:
        pushed = [0]

        async def count(frame: Frame, direction: FrameDirection = DOWN) -> None:
            pushed[0] += 1

        # The burst goes straight into the processor (Pipecat's own queue would hold the
        # whole burst in memory, and that memory is Pipecat's, not ours).
        inp.push_frame = count
        # The first half of the burst is not traced (tracing is slow): every window and
        # cache is full by then. The second half must not grow what is allocated.
        samples = []
        try:
            for f in frames[:50_000]:
                await inp.process_frame(f, DOWN)
            gc.collect()
            tracemalloc.start()
            for i in range(50_000, len(frames), 10_000):
                for f in frames[i : i + 10_000]:
                    await inp.process_frame(f, DOWN)
                await asyncio.sleep(0)
                gc.collect()
                samples.append(tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
            del inp.push_frame
        frames.clear()
        assert pushed[0] > 20_000  # the valid part of the flood was mapped to frames
        # What stays allocated is bounded by design: up to max_held (1024) events waiting
        # in the re-ordering window (about 1-1.5 KB each with their raw dicts, and a burst
        # that never yields leaves the window's timer no chance to release them early),
        # plus the last 100 turn records. The growth check below is the leak detector.
        assert len(samples) == 5 and max(samples) < 3_000_000, samples
        assert max(samples) - samples[0] < 500_000, samples
        assert inp.orderer.pending <= 1024
        assert len(tavus.ledger.turns) <= 100
        # A good event after the flood is delivered at once.
        good = {
            "message_type": "conversation",
            "event_type": "conversation.utterance",
            "conversation_id": cid,
            "properties": {"role": "user", "speech": "still here"},
        }
        await run.worker.queue_frame(inbound(good))
        await run.sink.wait(
            lambda s: any(
                isinstance(f, TranscriptionFrame) and f.text == "still here" for f in s.frames
            ),
            within=2,
        )
    assert forged == [] and tavus.stats["dropped_foreign_sender"] > 8_000
    assert tavus.stats["dropped_bad_json"] > 8_000


# --- tool faults and timeouts ------------------------------------------------------------------


async def test_hundreds_of_faulty_and_slow_tool_calls_each_get_one_result_in_time():
    tavus = TavusInteractions(
        params=TavusInteractionsParams(
            conversation_id="c-tools",
            replica_participant_id=REPLICA,
            heartbeat_timeout_s=None,
            max_concurrent_tools=1000,  # this test is about results, not the cap
        )
    )

    async def ok(params):
        await params.result_callback({"n": params.arguments["n"]})

    async def boom(params):
        raise RuntimeError(f"handler {params.arguments['n']} failed")

    async def hang(params):
        await asyncio.sleep(30)

    def sync_ok(params):  # a plain function returning its result
        return params.arguments["n"]

    handlers = {"ok": ok, "boom": boom, "hang": hang, "sync_ok": sync_ok}
    for name, handler in handlers.items():
        tavus.register_function(name, handler, timeout_s=0.2 if name == "hang" else None)
    n = 400
    names = list(handlers)
    calls = [
        inbound(
            {
                "message_type": "conversation",
                "event_type": "conversation.tool_call",
                "conversation_id": "c-tools",
                "seq": k + 2,
                "turn_idx": 1,
                "properties": {
                    "name": names[k % 4],
                    "arguments": {"n": k},
                    "tool_call_id": f"t{k}",
                },
            }
        )
        for k in range(n)
    ]
    joined = inbound(
        {
            "message_type": "system",
            "event_type": "system.replica_joined",
            "conversation_id": "c-tools",
            "seq": 1,
            "properties": {"replica_id": "r1"},
        }
    )
    after = inbound(
        {
            "message_type": "conversation",
            "event_type": "conversation.utterance",
            "conversation_id": "c-tools",
            "seq": n + 2,
            "turn_idx": 1,
            "properties": {"role": "user", "speech": "are you still there"},
        }
    )
    # Awaited, not slept: the pipeline ends only once every call has its result (a
    # SleepFrame here raced the 0.2 s deadlines on a loaded machine: 300 of 400 results).
    async with Running([tavus.input(), tavus.output()]) as run:
        t0 = time.monotonic()
        for frame in (joined, *calls):
            await run.worker.queue_frame(frame)
        await run.sink.wait(lambda s: len(tool_results(s)) >= n, within=30)
        elapsed = time.monotonic() - t0
        await run.worker.queue_frame(after)
        await run.sink.wait(
            lambda s: any(
                isinstance(f, TranscriptionFrame) and f.text == "are you still there"
                for f in s.frames
            )
        )
    sent = [m["properties"] for m in tool_results(run.sink)]
    results = {p["tool_call_id"]: p for p in sent}
    assert len(sent) == n and len(results) == n  # exactly one result per call
    for k in range(n):
        status = results[f"t{k}"]["status"]
        assert status == ("error" if names[k % 4] in ("boom", "hang") else "success"), k
    assert "failed" in results["t1"]["output"] and "timed out" in results["t2"]["output"]
    # The hanging handlers were cut at their deadline, not left to their 30 s sleep.
    assert elapsed < 15, elapsed
    assert not [f for f in run.sink.frames if isinstance(f, ErrorFrame)]
    statuses = [c.status for c in tavus.ledger.get(1).tool_calls]
    assert statuses.count("success") == n // 2 and statuses.count("error") == n // 4
    assert statuses.count("timeout") == n // 4


# --- foreign senders ---------------------------------------------------------------------------


async def test_forged_tool_calls_from_a_foreign_participant_never_run_a_handler():
    persona = ScriptedPersona(
        rules=[
            PersonaRule(
                pattern="weather",
                tool_call=ToolCallSpec(name="get_weather", arguments={"city": "Rome"}),
                reply="It is {result}.",
            )
        ],
        default_reply="Fine.",
    )
    sim = TavusSimulator(
        persona=persona,
        speed=200,
        heartbeat_interval_s=None,
        chaos=Chaos(foreign_sender_rate=1.0, seed=3),
    )
    transport = SimulatedTransport(sim)
    tavus = TavusInteractions(params=TavusInteractionsParams(conversation_id=sim.conversation_id))
    tavus.attach_transport(transport)
    ran: list[str] = []

    async def record_call(params):
        ran.append(params.function_name)
        await params.result_callback("sunny")

    tavus.register_function(None, record_call)  # a catch-all: any forged name would match
    worker = PipelineWorker(
        Pipeline([transport.input(), tavus.input(), tavus.output(), transport.output()]),
        cancel_on_idle_timeout=False,
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    await sim.wait_started()
    await sim.run_script(ScriptedUser(lines=["what is the weather"] * 6, reply_timeout_s=5))
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 30)
    assert sim.chaos_counts["forged"] > 0
    assert ran == ["get_weather"] * 6  # only the replica's own calls
    assert tavus.stats["dropped_foreign_sender"] >= sim.chaos_counts["foreign"]


# --- oversized output --------------------------------------------------------------------------


async def test_no_outbound_message_is_ever_over_the_cap():
    cap = 512
    rng = random.Random(9)
    words = ["Paris", "naïve", "東京", "🙂🙂", "x" * 700, '"quoted"', "back\\slash", "é" * 90]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n)) + "."

    sent_failures: list[Any] = []
    all_messages: list[dict] = []
    for mode in ("echo_text", "echo_audio", "full"):
        tavus = TavusInteractions(
            params=TavusInteractionsParams(
                mode=mode,
                conversation_id="c-" + "long-id" * 10,
                replica_participant_id=REPLICA,
                heartbeat_timeout_s=None,
                wait_for_replica=False,
                max_message_bytes=cap,
            )
        )
        tavus.add_event_handler("on_send_failed", lambda _t, i, e: sent_failures.append(e))
        frames: list[Frame] = []
        for n in (1, 5, 40, 200):
            frames += [
                TavusContextFrame(context=text(n), action="append"),
                TavusRespondFrame(text=text(n)),
                TTSSpeakFrame(text(n)),
                LLMFullResponseStartFrame(),
                *[LLMTextFrame(w + " ") for w in text(n).split()],
                LLMFullResponseEndFrame(),
            ]
        for seconds in (0.01, 0.3, 2.0):
            pcm = bytes(rng.getrandbits(8) for _ in range(int(48000 * seconds) * 2))
            frames += [
                TTSAudioRawFrame(audio=pcm, sample_rate=48000, num_channels=2),
                TTSStoppedFrame(),
            ]
        frames += [InterruptionFrame(), TavusContextFrame(context=text(300), action="overwrite")]
        down, _ = await run_test(tavus.output(), frames_to_send=frames)
        messages = [
            f.message
            for f in down
            if isinstance(f, OutputTransportMessageFrame | OutputTransportMessageUrgentFrame)
        ]
        assert messages, mode
        all_messages += messages
    sizes = [encoded_size(m) for m in all_messages]
    assert max(sizes) <= cap
    kinds = {m["event_type"] for m in all_messages}
    assert {"conversation.echo", "conversation.append_llm_context"} <= kinds
    # What cannot be split (a long respond or overwrite) is refused and reported, not sent.
    assert sent_failures and all("max_message_bytes" in str(e) for e in sent_failures)
