"""The quickstart's tool-calling bot in a real Tavus conversation (``full`` mode).

Tavus runs the replica's speech recognition, LLM and voice; this bot joins the conversation's
Daily room next to it, runs the ``get_weather`` tool whenever the replica's LLM calls it,
returns the result, and prints the turn timeline as the conversation goes. It runs until the
replica leaves (or the pipeline is stopped), and the conversation is always ended, because
Tavus bills from creation until the end.

``bot(runner_args)`` is the entry point of Pipecat's runner and of Pipecat Cloud (see
``_live.py`` for how a session finds its Tavus conversation). Locally::

    python examples/live_full.py -t daily
    # then open http://localhost:7860/tavus: a conversation is created and its room opens

The PAL must be a ``full`` mode PAL whose LLM declares the ``get_weather`` tool; print the
tool definition to paste into its ``layers.llm.tools`` with::

    python examples/live_full.py --print-tool

With a required variable missing it prints what to set and exits with status 2. There is no
offline mode here: ``python examples/quickstart.py`` is the same bot against the simulator.
"""

from __future__ import annotations

import json
import sys

from _live import (
    missing_settings,
    run_with_pipecat_runner,
    session_problem,
    tavus_conversation,
)
from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.workers.runner import WorkerRunner
from quickstart import summarize, wire_bot

from pipecat_tavus_interactions import TavusInteractionsParams, TurnRecord
from pipecat_tavus_interactions.tool_schema import export_tavus_tools

NAME = "pipecat-tavus-interactions live_full"
LIVE_SETTINGS = """\
To run this example live, set (in the environment or a .env file):
  TAVUS_API_KEY   your Tavus API key
  TAVUS_PAL_ID    a full-mode PAL whose LLM declares the get_weather tool
                  (python examples/live_full.py --print-tool); TAVUS_PERSONA_ID also works
  TAVUS_FACE_ID   the face to show, unless the PAL has a default; TAVUS_REPLICA_ID also works
Optional: TAVUS_MAX_CALL_SECONDS (default 600), the longest the call may last."""

GET_WEATHER = FunctionSchema(
    name="get_weather",
    description="Get today's weather forecast for a city.",
    properties={"city": {"type": "string", "description": "The city, e.g. Paris"}},
    required=["city"],
)


async def bot(runner_args) -> None:
    """Run the bot in one Tavus conversation: the entry point of Pipecat's runner.

    Args:
        runner_args: The session's ``RunnerArguments`` (its ``body`` may name the
            conversation to join; see ``_live.py``).
    """
    from pipecat_tavus_interactions import live  # imported here: offline users never need it

    problem = session_problem(runner_args)
    missing = missing_settings()
    if problem or missing:
        logger.error(f"Not started: {problem or 'missing ' + ', '.join(missing)}")
        return
    turns: list[TurnRecord] = []
    async with tavus_conversation(runner_args, name=NAME) as conversation:
        session = live.connect(conversation, params=TavusInteractionsParams(mode="full"))

        @session.tavus.event_handler("on_replica_joined")
        async def on_replica_joined(tavus, event):
            print(f"Replica joined conversation {tavus.conversation_id}")

        pipeline = wire_bot(session.transport, session.tavus, turns)
        # The runner's pipeline_idle_timeout_secs is not used: Tavus ends the conversation
        # (see LiveSession.worker_kwargs).
        worker = session.pipeline_worker(pipeline)
        # When the bot owns the process (not a session of the runner's server), SIGTERM from
        # a process manager also cancels the pipeline, so the conversation is still ended.
        owns_process = getattr(runner_args, "handle_sigint", False)
        runner = WorkerRunner(handle_sigint=owns_process, handle_sigterm=owns_process)
        await runner.add_workers(worker)
        await runner.run()
    summarize(turns)


if __name__ == "__main__":
    if "--print-tool" in sys.argv[1:]:
        print(json.dumps(export_tavus_tools([GET_WEATHER]), indent=2))
        sys.exit(0)
    run_with_pipecat_runner(bot, name=NAME, settings_help=LIVE_SETTINGS)
