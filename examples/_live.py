"""Shared pieces of the live examples: settings, the conversation a session runs in, the runner.

Every live example exposes ``async def bot(runner_args)``, the entry point of Pipecat's
development runner (``pipecat.runner``) and of Pipecat Cloud. What is different for Tavus is the
room: the replica only ever joins the Daily room of its *Tavus conversation*, so the bot joins
that room too, never a room the runner made for the session. A session therefore runs in:

- the conversation named in the session's body (``{"conversation_id": ..., "conversation_url":
  ..., "meeting_token": ...}``): one your own server created with ``TavusAPI`` and gave the
  user, or one the ``/tavus`` route below created; or
- a new conversation, created here with ``TavusAPI`` from the environment (``TAVUS_PAL_ID``,
  ``TAVUS_FACE_ID``); its URL is printed for the user.

Either way the bot ends the conversation when it finishes, because Tavus bills from creation
until the end: also when the room cannot be joined or the replica never comes (the live session
ends the pipeline at once, or after its replica join timeout, and logs why), and on Ctrl-C.
A session started with its own Daily room (``createDailyRoom``, Pipecat Cloud's
``use_daily``) or on another transport is refused with a message saying how to start it: a bot
on its own transport puts the replica there with ``TavusReplicaRelay`` instead
(``relay_webrtc.py``).

:func:`run_with_pipecat_runner` starts Pipecat's runner (``-t daily`` and its other flags) with
one extra route, ``GET /tavus``: it creates a conversation, starts a bot session in it and
redirects the browser into the conversation's room, as the runner's own ``GET /daily`` does for
a plain Daily room.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from loguru import logger

from pipecat_tavus_interactions.api import Conversation, TavusAPI

#: Variables every live example needs, and what they are.
REQUIRED = {
    "TAVUS_API_KEY": "your Tavus API key",
    "TAVUS_PAL_ID": "the PAL to talk to (TAVUS_PERSONA_ID also works)",
}
#: Aliases accepted for a required variable.
ALIASES = {"TAVUS_PAL_ID": ("TAVUS_PERSONA_ID",)}


def load_env() -> None:
    """Read a ``.env`` file (python-dotenv), without overriding variables already set."""
    from dotenv import load_dotenv

    load_dotenv(override=False)


def missing_settings(extra: Sequence[str] = ()) -> list[str]:
    """Return the names of the required environment variables that are not set.

    Args:
        extra: Further variables the caller needs (for example ``OPENAI_API_KEY``).
    """
    env = os.environ
    missing = [
        name
        for name in REQUIRED
        if not (env.get(name) or any(env.get(alias) for alias in ALIASES.get(name, ())))
    ]
    missing.extend(name for name in extra if not env.get(name))
    return missing


def exit_if_missing(settings_help: str, extra: Sequence[str] = ()) -> None:
    """Print what to set and exit with status 2 when a required variable is missing.

    Args:
        settings_help: The example's description of its variables.
        extra: Further variables the example needs.
    """
    missing = missing_settings(extra)
    if missing:
        print(f"Missing: {', '.join(missing)}\n{settings_help}")
        sys.exit(2)


def conversation_ids() -> dict[str, str]:
    """The PAL and face to create a conversation with, from the environment."""
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
        "max_call_duration": int(os.environ.get("TAVUS_MAX_CALL_SECONDS") or "600"),
        "participant_left_timeout": 30,
    }


def tavus_api(http: Any) -> TavusAPI:
    """The REST client for ``http`` (an ``aiohttp.ClientSession``), from the environment."""
    base_url = os.environ.get("TAVUS_API_URL") or TavusAPI.DEFAULT_BASE_URL
    return TavusAPI(api_key=os.environ["TAVUS_API_KEY"], session=http, base_url=base_url)


def session_problem(runner_args: Any) -> str | None:
    """Say why this bot cannot serve ``runner_args``, or return ``None`` when it can.

    Args:
        runner_args: What Pipecat's runner (or Pipecat Cloud) passed to ``bot()``.
    """
    if getattr(runner_args, "room_url", None):
        return (
            "this session was started with its own Daily room, but the Tavus replica only joins "
            "its conversation's room. Start the session without a room (dev runner: open /tavus, "
            'or POST /start with {"transport": "daily"} and no createDailyRoom; Pipecat Cloud: '
            "start it without use_daily), optionally with the conversation in the body."
        )
    for field in ("webrtc_connection", "websocket", "application_id", "namespace"):
        if getattr(runner_args, field, None) is not None:
            return (
                f"{type(runner_args).__name__} sessions are not supported: this bot joins the "
                "Tavus conversation's Daily room. Run the runner with -t daily and open /tavus."
            )
    return None


def given_conversation(runner_args: Any) -> Conversation | None:
    """The conversation named in the session's body, or ``None`` when there is none.

    Args:
        runner_args: What the runner passed to ``bot()``; its ``body`` may carry
            ``conversation_id``, ``conversation_url`` and ``meeting_token``.

    Raises:
        ValueError: The body names a conversation without both its id and its URL.
    """
    body = getattr(runner_args, "body", None)
    if not isinstance(body, dict) or not (
        body.get("conversation_id") or body.get("conversation_url")
    ):
        return None
    if not (body.get("conversation_id") and body.get("conversation_url")):
        raise ValueError(
            "the session body names a conversation but not both its conversation_id and "
            "conversation_url; give both (and meeting_token for a private room)"
        )
    fields = ("conversation_id", "conversation_url", "meeting_token")
    return Conversation(**{key: body[key] for key in fields if body.get(key)})


@asynccontextmanager
async def tavus_conversation(runner_args: Any, *, name: str) -> AsyncIterator[Conversation]:
    """The conversation this session runs in, ended when the block exits.

    Args:
        runner_args: What the runner passed to ``bot()`` (see :func:`given_conversation`).
        name: The ``conversation_name`` of a conversation created here.

    Yields:
        The conversation to join.
    """
    import aiohttp

    given = given_conversation(runner_args)
    async with aiohttp.ClientSession() as http:
        api = tavus_api(http)
        if given is None:
            async with api.conversation(
                **conversation_ids(), conversation_name=name, properties=call_properties()
            ) as conversation:
                print(f"Conversation {conversation.conversation_id} created.", flush=True)
                print(f"Join it in a browser: {conversation.conversation_url}", flush=True)
                yield conversation
        else:
            print(f"Joining conversation {given.conversation_id}.", flush=True)
            try:
                yield given
            finally:
                await _end(api, given.conversation_id)
        print(f"Conversation {(given or conversation).conversation_id} ended.", flush=True)


_ENDING: set[asyncio.Future] = set()


async def _end(api: TavusAPI, conversation_id: str) -> None:
    """End a conversation this session was given, even when the session is being cancelled.

    Shielded, as ``api.conversation()`` does for the conversations it creates: a second
    cancellation (a second Ctrl-C) must not abort the request half-way, since the
    conversation bills until it ends.
    """
    ending = asyncio.ensure_future(api.end_conversation(conversation_id))
    _ENDING.add(ending)  # referenced until done: the loop holds weak refs
    ending.add_done_callback(_ENDING.discard)
    try:
        await asyncio.shield(ending)
    except asyncio.CancelledError:
        logger.warning(f"cancelled again while ending conversation {conversation_id}")
        raise


Bot = Callable[[Any], Awaitable[Any]]


def add_tavus_route(app: Any, bot: Bot, *, name: str) -> None:
    """Add ``GET /tavus`` to the runner's FastAPI ``app``.

    The route creates a conversation, starts ``bot`` in it (the conversation goes in the
    session's body, so the bot joins it and ends it) and redirects the browser to the
    conversation's room.

    Args:
        app: ``pipecat.runner.run.app``.
        bot: The example's ``bot(runner_args)``.
        name: The ``conversation_name`` of the conversations it creates.
    """
    import aiohttp
    from fastapi import HTTPException
    from fastapi.responses import RedirectResponse
    from pipecat.runner.types import RunnerArguments

    from pipecat_tavus_interactions.api import TavusAPIError

    sessions: set[asyncio.Task] = set()  # referenced until done: the loop holds weak refs

    @app.get("/tavus")
    async def start_in_a_tavus_conversation():
        """Create a Tavus conversation, start the bot in it and open its room."""
        try:
            async with aiohttp.ClientSession() as http:
                conversation = await tavus_api(http).create_conversation(
                    **conversation_ids(), conversation_name=name, properties=call_properties()
                )
        except TavusAPIError as err:
            raise HTTPException(status_code=502, detail=f"Tavus: {err}") from None
        body = {
            "conversation_id": conversation.conversation_id,
            "conversation_url": conversation.conversation_url,
        }
        if conversation.meeting_token:
            body["meeting_token"] = conversation.meeting_token
        runner_args = RunnerArguments(body=body, session_id=str(uuid.uuid4()))
        task = asyncio.create_task(bot(runner_args))
        sessions.add(task)
        task.add_done_callback(sessions.discard)
        return RedirectResponse(conversation.conversation_url)


def run_with_pipecat_runner(bot: Bot, *, name: str, settings_help: str, extra=()) -> None:
    """Check the settings, then hand the command line to Pipecat's development runner.

    Args:
        bot: The example's ``bot(runner_args)`` (the runner finds it in ``__main__``).
        name: The ``conversation_name`` of the conversations created.
        settings_help: The example's description of its variables.
        extra: Further variables the example needs.
    """
    load_env()
    exit_if_missing(settings_help, extra)
    try:
        from pipecat.runner.run import app, main
    except ImportError:
        print(
            "Pipecat's runner is not installed. Install it with:\n"
            '  pip install "pipecat-tavus-interactions[runner]"   (from a clone: -e ".[runner]")'
        )
        sys.exit(2)
    add_tavus_route(app, bot, name=name)
    print("Once the runner is up, open /tavus on it (http://localhost:7860/tavus by default):")
    print("it creates a Tavus conversation, starts the bot in it and opens the room.")
    logger.info("Starting Pipecat's runner")
    main()
