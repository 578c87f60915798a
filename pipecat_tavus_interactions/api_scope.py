"""The lifetime of a conversation made by ``TavusAPI.conversation()``.

This module owns :class:`ConversationScope`, the async context manager that creates a
conversation on enter and ends it exactly once on every exit path (normal exit, exception,
cancellation, even a cancellation that arrives while the create request is in flight),
because Tavus bills a conversation from creation until it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol

from loguru import logger

from .api_models import Conversation
from .exceptions import UsageError

__all__ = ["ConversationScope"]


class _ConversationEnder(Protocol):
    """What the scope needs of the client: ending by id (and a log-friendly ``str``)."""

    async def end_conversation(self, conversation_id: str) -> None: ...


class ConversationScope(AbstractAsyncContextManager[Conversation]):
    """Creates a conversation on enter and ends it exactly once on exit.

    Returned by ``TavusAPI.conversation()``; it can be entered once.
    """

    def __init__(
        self,
        api: _ConversationEnder,
        body: dict[str, Any],
        create: Callable[[dict[str, Any]], Coroutine[Any, Any, Conversation]],
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        log_failure: Callable[[asyncio.Task[Any]], None],
    ):
        # The client's own create, spawn and logging, handed in: the scope uses nothing
        # private of the client.
        self._api = api
        self._body = body
        self._create = create
        self._spawn = spawn
        self._log_failure = log_failure
        self._entered = False
        self._conversation: Conversation | None = None
        self._ended = False

    async def __aenter__(self) -> Conversation:
        if self._entered:
            raise UsageError(
                "a conversation() scope can only be entered once: call api.conversation(...) "
                "again for another conversation"
            )
        self._entered = True
        create = asyncio.ensure_future(self._create(self._body))
        try:
            self._conversation = await asyncio.shield(create)
        except asyncio.CancelledError:
            # Tavus may already have created (and started billing) the conversation: wait for
            # the answer and end it before the cancellation goes on.
            cleanup = self._spawn(self._end_when_created(create))
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                logger.debug(f"{self._api}: cancelled again; ending continues in background")
            raise
        return self._conversation

    async def _end_when_created(self, create: asyncio.Future[Conversation]) -> None:
        try:
            conversation = await create
        except (Exception, asyncio.CancelledError):
            return  # nothing was created, or there is no id to end
        self._ended = True
        try:
            await self._api.end_conversation(conversation.conversation_id)
        except Exception as err:
            logger.warning(
                f"{self._api}: could not end conversation {conversation.conversation_id} "
                f"after a cancelled create: {err}"
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._conversation is None or self._ended:
            return False
        self._ended = True
        conversation_id = self._conversation.conversation_id
        end = self._spawn(self._api.end_conversation(conversation_id))
        try:
            # Shielded: a second cancellation must not abort the end half-way.
            await asyncio.shield(end)
        except asyncio.CancelledError:
            logger.debug(f"{self._api}: cancelled while ending {conversation_id}; continuing")
            end.add_done_callback(self._log_failure)
            raise
        except Exception as err:
            if exc_type is None:
                raise
            logger.warning(
                f"{self._api}: could not end conversation {conversation_id} "
                f"(it bills until its timeouts end it): {err}"
            )
        return False
