"""Quickstart: a tool-calling Pipecat bot steering a Tavus replica in ``full`` mode.

Runs offline against the local replica simulator (no account, no network, no cost): a scripted
user holds a short conversation with the replica, the replica's LLM calls ``get_weather``, the
bot runs the tool and returns the result, the user barges in on a long answer, and the bot
prints a turn-by-turn timeline from the turn ledger.

    python examples/quickstart.py            # about 3 seconds
    python examples/quickstart.py --speed 1  # real time

It always runs offline, whatever the environment holds. Going live is the same bot on a
``DailyTransport`` joined to a real conversation: ``examples/live_full.py``, started with
Pipecat's runner (see the README, "Going live").
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from loguru import logger
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams, TurnRecord
from pipecat_tavus_interactions.simulator import (
    PersonaRule,
    ScriptedPersona,
    ScriptedUser,
    SimulatedTransport,
    TavusSimulator,
    ToolCallSpec,
    UserLine,
)

FORECASTS = {"paris": "sunny and 21 degrees", "london": "light rain and 14 degrees"}


async def get_weather(params):
    """A tool handler written exactly as for a Pipecat LLM's ``register_function``."""
    city = str(params.arguments.get("city", "")).strip()
    forecast = FORECASTS.get(city.lower(), "not available")
    await params.result_callback(f"{city}: {forecast}")


def persona() -> ScriptedPersona:
    """The simulated replica's "LLM": reply rules, one of which calls a tool."""
    return ScriptedPersona(
        name="Anna",
        greeting="Hi, I'm Anna. Ask me about the weather anywhere.",
        rules=[
            PersonaRule(
                pattern=r"weather in (?P<city>[A-Za-z]+)",
                regex=True,
                tool_call=ToolCallSpec(name="get_weather", arguments={"city": "{city}"}),
                reply="I checked for you: {result}.",
            ),
            PersonaRule(
                pattern="history",
                reply=(
                    "Weather forecasting has a long history. Sailors read the clouds, farmers "
                    "watched the wind, and in the nineteenth century the telegraph let "
                    "observers share readings across whole continents for the first time."
                ),
            ),
            PersonaRule(pattern="thank", reply="You're welcome. Have a lovely day!"),
        ],
        default_reply="I can help with the weather. Which city?",
    )


def user() -> ScriptedUser:
    """The scripted user: four turns, one tool call, one barge-in."""
    return ScriptedUser(
        lines=[
            UserLine(text="What's the weather in Paris today?"),
            UserLine(text="Tell me about the history of forecasting."),
            UserLine(text="Sorry to cut in, what's the weather in London?", barge_in_after_words=8),
            UserLine(text="Thanks, that's all."),
        ]
    )


def print_turn(turn: TurnRecord) -> None:
    """Print one completed turn of the timeline."""
    print(f"\nTurn {turn.turn_idx}")
    if turn.user_text:
        source = "respond" if turn.user_injected else "user"
        print(f"  {source:>9}: {turn.user_text}")
    for call in turn.tool_calls:
        took = f"{call.duration_s * 1000:.0f} ms" if call.duration_s is not None else "-"
        outcome = f"[{call.status}, {took}, {call.delivery}]"
        print(f"  {'tool':>9}: {call.name}({call.arguments}) -> {call.result!r} {outcome}")
    if turn.replica_intended_text and turn.replica_intended_text != turn.replica_spoken_text:
        print(f"  {'intended':>9}: {turn.replica_intended_text}")
    if turn.replica_spoken_text:
        print(f"  {'replica':>9}: {turn.replica_spoken_text}")
    if turn.replica_interrupted:
        print(f"  {'':>9}  ^ interrupted by the user")
    if turn.response_latency_s is not None:
        latency_ms = turn.response_latency_s * 1000
        print(f"  {'latency':>9}: {latency_ms:.0f} ms from the user's stop to the replica's start")


def wire_bot(transport, tavus: TavusInteractions, turns: list[TurnRecord]) -> Pipeline:
    """The bot, offline and live alike: tools, the turn timeline and the pipeline."""
    tavus.register_function("get_weather", get_weather)

    @tavus.event_handler("on_turn_completed")
    async def on_turn_completed(tavus, turn):
        turns.append(turn)
        print_turn(turn)

    return Pipeline([transport.input(), tavus.input(), tavus.output(), transport.output()])


def summarize(turns: list[TurnRecord]) -> int:
    """Print the totals; return 0 when there were turns, a tool call and an interruption."""
    calls = sum(len(t.tool_calls) for t in turns)
    interrupted = sum(t.replica_interrupted for t in turns)
    print(f"\n{len(turns)} turns, {calls} tool call(s), {interrupted} interruption(s).")
    return 0 if turns and calls and interrupted else 1


async def main(speed: float) -> int:
    """Run the conversation and print its timeline; return a process exit code."""
    sim = TavusSimulator(persona=persona(), speed=speed, words_per_second=3.0)
    transport = SimulatedTransport(sim)

    tavus = TavusInteractions(
        params=TavusInteractionsParams(mode="full", conversation_id=sim.conversation_id)
    )
    tavus.attach_transport(transport)  # learn which participant is the replica
    turns: list[TurnRecord] = []
    pipeline = wire_bot(transport, tavus, turns)

    @tavus.event_handler("on_replica_joined")
    async def on_replica_joined(tavus, event):
        print(f"Replica joined conversation {tavus.conversation_id}")
        worker.create_task(sim.play(user()), "scripted-user")  # shutdown ends the pipeline

    worker = PipelineWorker(pipeline, enable_rtvi=False, idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()
    return summarize(turns)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=10.0, help="simulated time factor")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    sys.exit(asyncio.run(main(args.speed)))
