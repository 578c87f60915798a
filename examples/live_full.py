"""The quickstart's tool-calling bot in a real Tavus conversation (``full`` mode).

Tavus runs the replica's speech recognition, LLM and voice; this bot joins the conversation's
Daily room next to it, runs the ``get_weather`` tool whenever the replica's LLM calls it,
returns the result, and prints the turn timeline as the conversation goes. It creates the
conversation, prints its URL for you to join, runs until the replica leaves (or Ctrl-C), and
always ends the conversation, because Tavus bills from creation until the end.

    TAVUS_API_KEY=... TAVUS_PAL_ID=... python examples/live_full.py

The PAL must be a ``full`` mode PAL whose LLM declares the ``get_weather`` tool; print the
tool definition to paste into its ``layers.llm.tools`` with::

    python examples/live_full.py --print-tool

Without ``TAVUS_API_KEY`` it prints what to set and exits with status 2. Exit status 0 means
the conversation had at least one completed turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from quickstart import summarize, wire_bot

from pipecat_tavus_interactions import TavusInteractionsParams, TurnRecord
from pipecat_tavus_interactions.tool_schema import export_tavus_tools

LIVE_SETTINGS = """\
To run this example live, set:
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


def missing_settings(extra: tuple[str, ...] = ()) -> list[str]:
    """Return the names of the required environment variables that are not set.

    Args:
        extra: Further variables the caller needs (for example an LLM key).
    """
    env = os.environ
    missing = [] if env.get("TAVUS_API_KEY") else ["TAVUS_API_KEY"]
    if not (env.get("TAVUS_PAL_ID") or env.get("TAVUS_PERSONA_ID")):
        missing.append("TAVUS_PAL_ID")
    missing.extend(name for name in extra if not env.get(name))
    return missing


def conversation_ids() -> dict[str, str]:
    """The PAL and face to create the conversation with, from the environment."""
    env = os.environ
    ids: dict[str, str] = {}
    if env.get("TAVUS_PAL_ID"):
        ids["pal_id"] = env["TAVUS_PAL_ID"]
    elif env.get("TAVUS_PERSONA_ID"):
        ids["persona_id"] = env["TAVUS_PERSONA_ID"]
    if env.get("TAVUS_FACE_ID"):
        ids["face_id"] = env["TAVUS_FACE_ID"]
    elif env.get("TAVUS_REPLICA_ID"):
        ids["replica_id"] = env["TAVUS_REPLICA_ID"]
    return ids


def call_properties() -> dict[str, int]:
    """Conversation properties that bound what a forgotten example can cost."""
    return {
        "max_call_duration": int(os.environ.get("TAVUS_MAX_CALL_SECONDS", "600")),
        "participant_left_timeout": 30,
    }


async def main_live() -> int:
    """Create a conversation, run the bot in it until it ends; return the exit code."""
    missing = missing_settings()
    if missing:
        print(f"Missing: {', '.join(missing)}\n{LIVE_SETTINGS}")
        return 2

    import aiohttp
    from pipecat.workers.runner import WorkerRunner

    from pipecat_tavus_interactions import live
    from pipecat_tavus_interactions.api import TavusAPI

    turns: list[TurnRecord] = []
    async with aiohttp.ClientSession() as http:
        api = TavusAPI(api_key=os.environ["TAVUS_API_KEY"], session=http)
        async with api.conversation(
            **conversation_ids(),
            conversation_name="pipecat-tavus-interactions live_full",
            properties=call_properties(),
        ) as conversation:
            print(f"Conversation {conversation.conversation_id} created.")
            print(f"Join it in a browser: {conversation.conversation_url}")
            session = live.connect(conversation, params=TavusInteractionsParams(mode="full"))

            @session.tavus.event_handler("on_replica_joined")
            async def on_replica_joined(tavus, event):
                print(f"Replica joined conversation {tavus.conversation_id}")

            pipeline = wire_bot(session.transport, session.tavus, turns)
            worker = session.pipeline_worker(pipeline)
            runner = WorkerRunner(handle_sigint=True)
            await runner.add_workers(worker)
            await runner.run()
        print(f"Conversation {conversation.conversation_id} ended.")
    summarize(turns)
    return 0 if turns else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--print-tool",
        action="store_true",
        help="print the get_weather tool for the PAL's layers.llm.tools, and exit",
    )
    args = parser.parse_args()
    if args.print_tool:
        print(json.dumps(export_tavus_tools([GET_WEATHER]), indent=2))
        sys.exit(0)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    sys.exit(asyncio.run(main_live()))
