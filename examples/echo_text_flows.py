"""Echo text with Pipecat Flows: your LLM and your flow decide what a Tavus replica says.

In ``echo_text`` mode Pipecat runs the conversation (speech-to-text, the LLM, a Pipecat Flows
state machine) and the replica only voices the text: every sentence the LLM writes is streamed
to it as ``conversation.echo`` the moment the sentence ends. A user barge-in becomes a
Pipecat interruption, which sends ``conversation.interrupt``.

The flow takes a pizza order: a greeting node (with a ``take_order`` function) -> a confirm
node (with ``confirm_order``) -> a done node. The scripted customer asks for the menu, cuts the
long answer short with an order, and confirms it.

Offline (the default: no keys, no network) a scripted ``LLMService`` plays the model and the
local simulator plays an echo-mode replica; user lines arrive as ``TranscriptionFrame`` s, as
from an STT::

    python examples/echo_text_flows.py            # about 8 seconds
    python examples/echo_text_flows.py --speed 1  # the replica speaks in real time

Live, ``bot(runner_args)`` runs under Pipecat's runner: any runner option switches to it, for
a real conversation with an echo-mode PAL, OpenAI for speech-to-text and the LLM (see the
README, "Going live")::

    python examples/echo_text_flows.py -t daily   # then open http://localhost:7860/tavus

Exit status offline: 0 when the order was taken and confirmed as scripted, 1 otherwise; 2
when a live start is missing settings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from _live import missing_settings, run_with_pipecat_runner, session_problem, tavus_conversation
from _offline import LLMRule, ScriptedLLMService, Timeline, user_turn_params
from loguru import logger
from pipecat.flows import FlowManager, FlowsFunctionSchema, NodeConfig
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.interactions import Echo, Interrupt
from pipecat_tavus_interactions.simulator import (
    ScriptedPersona,
    SimulatedTransport,
    TavusSimulator,
)

PRICES = {"small": 9.99, "medium": 12.49, "large": 14.99}
TOPPINGS = ("margherita", "pepperoni", "mushroom")


# --- the flow ---------------------------------------------------------------------------


class PizzaFlow:
    """The order flow's nodes and functions, and what happened in them."""

    def __init__(self, timeline: Timeline):
        """Start with no order.

        Args:
            timeline: Where the flow reports its steps.
        """
        self.timeline = timeline
        self.order: dict[str, Any] | None = None
        self.confirmed = False
        self.nodes: list[str] = []

    def entered(self, node: str) -> None:
        """Note a node transition."""
        self.nodes.append(node)
        self.timeline.add("flow", f"-> {node}")

    async def take_order(self, args, flow_manager):
        """Flows handler: record the order, move to the confirm node."""
        size = str(args.get("size", "")).lower()
        topping = str(args.get("topping", "")).lower()
        if size not in PRICES or topping not in TOPPINGS:
            result = {"error": f"we have {', '.join(TOPPINGS)} in small, medium or large"}
            self.timeline.add("tool", f"take_order({size}, {topping}) -> {result}")
            return result, None
        self.order = {"size": size, "topping": topping, "price": f"${PRICES[size]:.2f}"}
        self.timeline.add("tool", f"take_order({size}, {topping}) -> {self.order}")
        return self.order, self.confirm_node()

    async def confirm_order(self, args, flow_manager):
        """Flows handler: place the order, or go back to taking one."""
        self.confirmed = bool(args.get("confirmed"))
        result = {"status": "placed", "ready_in_minutes": 20} if self.confirmed else {}
        self.timeline.add("tool", f"confirm_order({self.confirmed}) -> {result}")
        return result, (self.done_node() if self.confirmed else self.greeting_node())

    def greeting_node(self) -> NodeConfig:
        """Greet, answer menu questions, take the order."""
        self.entered("greeting")
        return {
            "name": "greeting",
            "role_message": (
                "You are Tony, the voice of Tony's Pizza, speaking through a video avatar. "
                "Answer in short spoken sentences: no lists, markdown or emoji."
            ),
            "task_messages": [
                {
                    "role": "developer",
                    "content": (
                        "Greet the customer and ask what they would like. We sell "
                        f"{', '.join(TOPPINGS)} pizzas in small ($9.99), medium ($12.49) and "
                        "large ($14.99). When they name a size and a topping, call take_order."
                    ),
                }
            ],
            "functions": [
                FlowsFunctionSchema(
                    name="take_order",
                    description="Take the customer's pizza order.",
                    properties={
                        "size": {"type": "string", "enum": list(PRICES)},
                        "topping": {"type": "string", "enum": list(TOPPINGS)},
                    },
                    required=["size", "topping"],
                    handler=self.take_order,
                )
            ],
        }

    def confirm_node(self) -> NodeConfig:
        """Read the order back and ask for confirmation."""
        self.entered("confirm")
        order = self.order or {}
        return {
            "name": "confirm",
            "task_messages": [
                {
                    "role": "developer",
                    "content": (
                        f"Read back the order: one {order.get('size')} {order.get('topping')} "
                        f"pizza for {order.get('price')}. Ask the customer to confirm, then "
                        "call confirm_order with their answer."
                    ),
                }
            ],
            "functions": [
                FlowsFunctionSchema(
                    name="confirm_order",
                    description="Record whether the customer confirmed the order.",
                    properties={"confirmed": {"type": "boolean"}},
                    required=["confirmed"],
                    handler=self.confirm_order,
                )
            ],
        }

    def done_node(self) -> NodeConfig:
        """Say goodbye."""
        self.entered("done")
        return {
            "name": "done",
            "task_messages": [
                {
                    "role": "developer",
                    "content": (
                        "The order is placed and will be ready in 20 minutes. Tell the customer, "
                        "thank them and say goodbye."
                    ),
                }
            ],
            "functions": [],
        }


def scripted_llm() -> ScriptedLLMService:
    """The offline stand-in for the LLM: what a model would answer in each node."""
    return ScriptedLLMService(
        rules=[
            LLMRule(
                on_instruction=r"^Greet the customer",
                reply="Hi, welcome to Tony's Pizza! What can I get you today?",
            ),
            LLMRule(
                on_user=rf"\b(?P<size>{'|'.join(PRICES)}) (?P<topping>{'|'.join(TOPPINGS)})",
                call="take_order",
            ),
            LLMRule(
                on_user=r"\b(yes|yeah|sure|please do)\b",
                call="confirm_order",
                arguments={"confirmed": True},
            ),
            LLMRule(on_user=r"\b(no|nope)\b", call="confirm_order", arguments={"confirmed": False}),
            LLMRule(
                on_user=r"menu|what pizzas|what do you have",
                reply=(
                    "We make three pizzas: margherita, pepperoni and mushroom. Each comes in "
                    "small, medium or large, from nine ninety-nine up to fourteen ninety-nine. "
                    "Tonight's favourite is the large pepperoni, baked in our wood oven with "
                    "extra mozzarella and fresh basil on top."
                ),
            ),
            LLMRule(
                on_instruction=r"Read back the order: (?P<order>one .+?) for (?P<price>\$[\d.]+\d)",
                reply="That's {order} for {price}. Shall I place the order?",
            ),
            LLMRule(
                on_instruction=r"ready in (?P<minutes>\d+) minutes",
                reply="Great, your pizza will be ready in {minutes} minutes. Thanks, and goodbye!",
            ),
        ],
        token_delay_s=0.01,
    )


CUSTOMER = [
    ("Hi! What pizzas do you have?", None),
    ("A large pepperoni, please.", 8),  # cuts the menu short after 8 words
    ("Yes, please do.", None),
]


async def customer(sim: TavusSimulator) -> None:
    """The scripted customer: a question, an order that cuts the answer short, a yes.

    Each line waits for the replica's reply to the previous one to end (or, for a barge-in,
    for the replica to have said enough words of it).
    """

    def finished(m):  # a reply that ended without being cut off
        props = m.get("properties") or {}
        return m["event_type"] == "conversation.replica.stopped_speaking" and not props.get(
            "interrupted"
        )

    def said_words(n):
        def check(m):
            props = m.get("properties") or {}
            return (
                m["event_type"] == "conversation.utterance.streaming"
                and props.get("role") == "pal"
                and len(props.get("speech", "").split()) >= n
            )

        return check

    mark = 0  # the greeting is the first reply
    for text, barge_in_after_words in CUSTOMER:
        until = finished if barge_in_after_words is None else said_words(barge_in_after_words)
        await sim.wait_for_message(until, since=mark, timeout_s=30)
        await sim.sleep(0.3)
        await sim.user_says(text)
        mark = sim.emitted_count  # the user stopped: the reply comes after this
    await sim.wait_for_message(finished, since=mark, timeout_s=30)


# --- the bot (the same wiring offline and live) -----------------------------------------


def build_bot(transport, tavus: TavusInteractions, llm, *, stt=None, vad_analyzer=None):
    """Assemble the echo-text pipeline around ``transport`` and ``tavus``.

    Args:
        transport: The simulated or Daily transport.
        tavus: The facade in ``echo_text`` mode.
        llm: The LLM service.
        stt: A speech-to-text service (live), or ``None`` when the transport already pushes
            transcriptions (offline).
        vad_analyzer: A VAD for the user's microphone (live), or ``None``.

    Returns:
        ``(pipeline, context_aggregator)``.
    """
    aggregators = LLMContextAggregatorPair(LLMContext(), user_params=user_turn_params(vad_analyzer))
    processors = [
        transport.input(),
        tavus.input(),
        *([stt] if stt is not None else []),
        aggregators.user(),
        llm,
        tavus.output(),  # LLM text -> conversation.echo, sentence by sentence
        transport.output(),
        aggregators.assistant(),
    ]
    return Pipeline(processors), aggregators


def watch(tavus: TavusInteractions, aggregators, timeline: Timeline) -> None:
    """Print the user's turns and what the replica really said."""

    @aggregators.user().event_handler("on_user_turn_stopped")
    async def on_user_turn_stopped(aggregator, strategy, message):
        if message.content:
            timeline.add("user", message.content)

    @tavus.event_handler("on_utterance")
    async def on_utterance(tavus, utterance):
        if utterance.role == "pal" and utterance.spoken:
            mark = "  [interrupted]" if utterance.interrupted else ""
            timeline.add("replica", utterance.text + mark)


async def run(
    transport,
    tavus,
    llm,
    worker: PipelineWorker,
    flow: PizzaFlow,
    aggregators,
    *,
    handle_sigint: bool = False,
):
    """Start the flow when the replica joins and run the worker to the end."""
    flow_manager = FlowManager(llm=llm, context_aggregator=aggregators, worker=worker)

    @tavus.event_handler("on_replica_joined")
    async def on_replica_joined(tavus, event):
        flow.timeline.add("system", f"replica joined conversation {tavus.conversation_id}")
        await flow_manager.initialize(flow.greeting_node())

    # SIGTERM (a process manager's stop) too: the pipeline is cancelled, the conversation ended.
    runner = WorkerRunner(handle_sigint=handle_sigint, handle_sigterm=handle_sigint)
    await runner.add_workers(worker)
    await runner.run()


def report(flow: PizzaFlow, spoken: list[str], *, interrupted: int | None) -> int:
    """Print the summary; return the exit code.

    Offline the script is known, so the exact order, the barge-in and the goodbye are
    required; live, an order taken and confirmed is enough.
    """
    order = flow.order or {}
    cut = "" if interrupted is None else f", interrupted: {interrupted}"
    print(
        f"\nOrder: {order or 'none'}; confirmed: {flow.confirmed}; nodes: "
        f"{' -> '.join(flow.nodes)}; replica utterances: {len(spoken)}{cut}."
    )
    ok = bool(order) and flow.confirmed and flow.nodes[-1:] == ["done"]
    if interrupted is not None:
        ok = (
            ok
            and order.get("size") == "large"
            and order.get("topping") == "pepperoni"
            and interrupted >= 1
            and any("goodbye" in s.lower() for s in spoken)
        )
    if not ok:
        print("The conversation did not go as scripted.")
    return 0 if ok else 1


async def main_offline(speed: float) -> int:
    """Run the flow against the simulator; return the exit code."""
    print("Offline: echo-mode replica simulator, scripted LLM (live: see the README)")
    sim = TavusSimulator(pipeline_mode="echo", persona=ScriptedPersona(name="Tony"), speed=speed)
    transport = SimulatedTransport(sim, user_transcription=True)
    tavus = TavusInteractions(
        params=TavusInteractionsParams(mode="echo_text", conversation_id=sim.conversation_id)
    )
    tavus.attach_transport(transport)
    timeline = Timeline()
    flow = PizzaFlow(timeline)
    llm = scripted_llm()
    pipeline, aggregators = build_bot(transport, tavus, llm)
    watch(tavus, aggregators, timeline)
    worker = PipelineWorker(pipeline, enable_rtvi=False, idle_timeout_secs=None)

    @tavus.event_handler("on_replica_joined")
    async def start_customer(tavus, event):
        worker.create_task(sim.play(customer), "scripted-customer")  # shutdown ends the pipeline

    await run(transport, tavus, llm, worker, flow, aggregators)

    # What the replica said, straight from the simulated replica's own record.
    finals = [
        m
        for m in sim.emitted
        if m["event_type"] == "conversation.utterance.streaming"
        and m["properties"].get("role") == "pal"
        and m["properties"].get("final")
    ]
    spoken = [m["properties"]["speech"] for m in finals]
    interrupted = sum(bool(m["properties"].get("is_interrupted")) for m in finals)
    echoes = sum(isinstance(i, Echo) for i in sim.interactions)
    interrupts = sum(isinstance(i, Interrupt) for i in sim.interactions)
    print(f"\nThe replica received {echoes} echo message(s) and {interrupts} interrupt(s).")
    return report(flow, spoken, interrupted=interrupted)


NAME = "pipecat-tavus-interactions echo_text_flows"
LIVE_EXTRA = ("OPENAI_API_KEY",)
LIVE_SETTINGS = """\
To run this example live, set (in the environment or a .env file):
  TAVUS_API_KEY    your Tavus API key
  TAVUS_PAL_ID     an echo-mode PAL (pipeline_mode "echo"); TAVUS_PERSONA_ID also works
  TAVUS_FACE_ID    the face to show, unless the PAL has a default; TAVUS_REPLICA_ID also works
  OPENAI_API_KEY   OpenAI, for speech-to-text and the LLM
Optional: OPENAI_MODEL (default gpt-4.1-mini), TAVUS_MAX_CALL_SECONDS (default 600)."""


def build_live(conversation, timeline: Timeline, *, openai_api_key: str):
    """Wire the bot to a created conversation (nothing is joined or called yet).

    Args:
        conversation: The created conversation (``api.Conversation`` or a mapping).
        timeline: Where the run is reported.
        openai_api_key: The OpenAI key for speech-to-text and the LLM.

    Returns:
        ``(session, pipeline, llm, flow, aggregators)``.
    """
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.openai.stt import OpenAIRealtimeSTTService

    from pipecat_tavus_interactions import live

    session = live.connect(conversation, params=TavusInteractionsParams(mode="echo_text"))
    llm = OpenAILLMService(
        api_key=openai_api_key,
        settings=OpenAILLMService.Settings(model=os.environ.get("OPENAI_MODEL") or "gpt-4.1-mini"),
    )
    stt = OpenAIRealtimeSTTService(api_key=openai_api_key)
    pipeline, aggregators = build_bot(
        session.transport, session.tavus, llm, stt=stt, vad_analyzer=SileroVADAnalyzer()
    )
    watch(session.tavus, aggregators, timeline)
    return session, pipeline, llm, PizzaFlow(timeline), aggregators


async def bot(runner_args) -> None:
    """Run the flow in one Tavus conversation: the entry point of Pipecat's runner.

    Args:
        runner_args: The session's ``RunnerArguments`` (its ``body`` may name the
            conversation to join; see ``_live.py``).
    """
    problem = session_problem(runner_args)
    missing = missing_settings(LIVE_EXTRA)
    if problem or missing:
        logger.error(f"Not started: {problem or 'missing ' + ', '.join(missing)}")
        return
    timeline = Timeline()
    async with tavus_conversation(runner_args, name=NAME) as conversation:
        session, pipeline, llm, flow, aggregators = build_live(
            conversation, timeline, openai_api_key=os.environ["OPENAI_API_KEY"]
        )
        worker = session.pipeline_worker(pipeline)
        handle_sigint = getattr(runner_args, "handle_sigint", False)
        await run(
            session.transport,
            session.tavus,
            llm,
            worker,
            flow,
            aggregators,
            handle_sigint=handle_sigint,
        )
    report(flow, timeline.said("replica"), interrupted=None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Any other argument (-t daily, ...) goes to Pipecat's runner and runs it live.",
    )
    parser.add_argument("--speed", type=float, default=4.0, help="simulated time factor")
    args, runner_argv = parser.parse_known_args()
    if runner_argv:  # live, under Pipecat's runner
        sys.argv = [sys.argv[0], *runner_argv]
        run_with_pipecat_runner(bot, name=NAME, settings_help=LIVE_SETTINGS, extra=LIVE_EXTRA)
    else:
        logger.remove()
        logger.add(sys.stderr, level="WARNING")
        sys.exit(asyncio.run(main_offline(args.speed)))
