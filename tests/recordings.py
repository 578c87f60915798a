"""Making flight recordings for the tests, and regenerating the committed ones.

``python tests/recordings.py`` rewrites ``tests/fixtures/recordings/*.jsonl``:

- ``docs_conversation.jsonl``: a conversation whose messages are the public Tavus docs'
  example events (``tests/fixtures/events``), renumbered into one coherent exchange: the
  replica joins and greets, the user asks, the replica calls a tool (answered), answers,
  the user barges in, perception analysis, shutdown.
- ``malformed_mixed.jsonl``: the same conversation with every malformed fixture case
  (``tests/fixtures/malformed/cases.json``) sent by the replica in between, and the lenient
  cases (an event with one bad field) at the end.
- ``chaos_quickstart.jsonl``: the quickstart's bot against the simulator under chaos
  (re-ordering, duplicates, heartbeat noise, foreign senders, garbage).
- ``quickstart.jsonl``: the quickstart's conversation (the README's screenshot), in real time.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.core import effects as fx
from pipecat_tavus_interactions.pipeline.recorder import RecordingConnection, RecordWriter
from pipecat_tavus_interactions.simulator import Chaos, SimulatedTransport, TavusSimulator
from pipecat_tavus_interactions.simulator.playback import RecordingPlayer

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
RECORDINGS = FIXTURES / "recordings"
ROOT = TESTS.parent

REPLICA = "6f0d2c1e-8a4b-4e3f-9c7d-1b2a3c4d5e6f"
CID = "c8d1e7f0a2b4"


def quickstart() -> Any:
    """The quickstart example as a module (its persona, user script and bot)."""
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples/quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _run(transport: Any, tavus: TavusInteractions, qs: Any, on_joined=None) -> list:
    turns: list = []
    pipeline = qs.wire_bot(transport, tavus, turns)
    worker = PipelineWorker(pipeline, enable_rtvi=False, idle_timeout_secs=None)
    if on_joined is not None:

        @tavus.event_handler("on_replica_joined")
        async def joined(tavus, event):
            on_joined(worker)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), 120)
    return turns


async def record_quickstart(
    path: Path, *, speed: float = 10.0, chaos: Chaos | None = None, seed: int = 0
) -> list:
    """Run the quickstart's bot against the simulator, recorded to ``path``; return its turns."""
    qs = quickstart()
    sim = TavusSimulator(persona=qs.persona(), speed=speed, chaos=chaos, seed=seed)
    transport = SimulatedTransport(sim)
    params = TavusInteractionsParams(
        mode="full", conversation_id=sim.conversation_id, record_path=str(path)
    )
    tavus = TavusInteractions(params=params)
    tavus.attach_transport(transport)
    started: list = []

    def on_joined(worker):
        if not started:
            started.append(worker.create_task(sim.play(qs.user()), "scripted-user"))

    return await _run(transport, tavus, qs, on_joined)


async def play_into_quickstart(path: Path, *, speed: float = 1.0, **changes: Any):
    """Play a recording's replica side into the quickstart's bot; return its turns, player."""
    qs = quickstart()
    player = RecordingPlayer.load(path, speed=speed)
    transport = SimulatedTransport(player)
    tavus = TavusInteractions(params=player.params(**changes))
    tavus.attach_transport(transport)
    return await _run(transport, tavus, qs), player


def _event(name: str, seq: int, t: float, turn: int | None = None, **props: Any) -> dict:
    msg = copy.deepcopy(json.loads((FIXTURES / "events" / f"{name}.json").read_text()))
    msg.update(conversation_id=CID, seq=seq, timestamp=1746000000.0 + t)
    if turn is not None:
        msg["turn_idx"] = turn
    msg.setdefault("properties", {}).update(props)
    return msg


def _docs_script() -> list[tuple[float, dict]]:
    """(time, message) of the docs-shaped conversation."""
    greet = "Hi, I'm Maya's assistant. How can I help?"
    answer = "Our enterprise plan includes single sign-on and a dedicated account manager."
    events = [
        ("system_replica_joined", 0.0, None, {}),
        ("replica_started_speaking", 0.3, 0, {}),
        ("utterance_pal", 0.35, 0, {"speech": greet}),
        ("utterance_streaming_replica_final", 2.5, 0, {"speech": greet}),
        ("replica_stopped_speaking", 2.6, 0, {"duration": 2.3}),
        ("user_started_speaking", 3.0, 1, {}),
        ("utterance_streaming_user", 3.6, 1, {"speech": "Book a demo"}),
        ("user_stopped_speaking", 4.4, 1, {}),
        ("utterance_user", 4.5, 1, {"speech": "Book a demo for twelve seats, please."}),
        ("tool_call_object_args", 4.9, 1, {}),
        ("replica_started_speaking", 5.6, 1, {}),
        ("utterance_pal", 5.65, 1, {"speech": answer}),
        ("system_replica_present", 6.0, None, {}),
        ("user_started_speaking", 7.2, 2, {}),
        ("utterance_streaming_pal_final_interrupted", 7.3, 1, {"speech": "Our enterprise plan"}),
        ("stopped_speaking_pal_interrupted", 7.35, 1, {"duration": 1.75}),
        ("user_stopped_speaking", 8.4, 2, {}),
        ("utterance_user", 8.5, 2, {"speech": "Sorry, just send me the details."}),
        ("perception_analysis", 9.0, None, {}),
        ("system_shutdown_shutdown_reason", 9.5, None, {}),
    ]
    return [
        (t, _event(name, i + 1, t, turn, **props))
        for i, (name, t, turn, props) in enumerate(events)
    ]


def docs_recording(path: Path, *, malformed: bool = False) -> None:
    """Write the docs-shaped conversation (with the malformed cases mixed in, if asked)."""
    writer = RecordWriter(path)
    params = TavusInteractionsParams(
        conversation_id=CID, replica_participant_id=REPLICA, record_path=str(path)
    )
    conn = RecordingConnection(params, now=100.0, sink=writer.put, wall=lambda: 1746000000.0)
    script = _docs_script()
    cases = json.loads((FIXTURES / "malformed/cases.json").read_text())
    bad = cases["cases"] if malformed else []
    conn.participant_joined(
        {"id": REPLICA, "info": {"userName": "Maya", "userId": "tavus-replica-r90bbd427f71"}},
        now=100.0,
    )
    conn.start(now=100.0)
    for i, (t, message) in enumerate(script):
        now = 100.0 + t
        for effect in conn.receive(message, sender_id=REPLICA, now=now) or []:
            if isinstance(effect, fx.RunTool):
                result = {"booked": True, "seats": effect.call.arguments.get("seats")}
                conn.tool_finished(effect.call.call_id, status="success", result=result, now=now)
        conn.tick(now=now + 0.01)
        for case in bad[i :: len(script)]:
            raw = case["text"] if "text" in case else case["message"]
            conn.receive(raw, sender_id=REPLICA, now=now + 0.02)
    # The lenient cases are events with one bad field (dropped and reported): they come
    # last, so only the last turn can change.
    for k, case in enumerate(cases["lenient"] if malformed else []):
        conn.receive(case["message"], sender_id=REPLICA, now=109.6 + k * 0.01)
    conn.participant_left(REPLICA, now=110.0)
    conn.finish(now=110.0)
    writer.close(conn.stats)


async def regenerate() -> None:
    """Rewrite every committed recording."""
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    docs_recording(RECORDINGS / "docs_conversation.jsonl")
    docs_recording(RECORDINGS / "malformed_mixed.jsonl", malformed=True)
    chaos = Chaos(
        reorder_window=3,
        duplicate_rate=0.2,
        heartbeat_noise=True,
        foreign_sender_rate=0.1,
        malformed_rate=0.1,
        seed=7,
    )
    await record_quickstart(RECORDINGS / "chaos_quickstart.jsonl", speed=20.0, chaos=chaos, seed=7)
    await record_quickstart(RECORDINGS / "quickstart.jsonl", speed=1.0)


if __name__ == "__main__":
    sys.exit(asyncio.run(regenerate()))
