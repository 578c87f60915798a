"""What the simulated replica receives from the bot: accepted, refused, and awaited.

This module owns :class:`Inbox`, the replica's bounded record of inbound app messages. Each
message is recorded as received, then parsed with
:func:`~pipecat_tavus_interactions.protocol.parse_interaction`; a malformed message, one for
another conversation, or one that arrives while the replica is not in the call is refused
with a reason (never raised), as Tavus drops them. Tasks can wait for an accepted interaction
that matches a predicate.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger

from ..exceptions import RemoteProtocolError
from ..interactions import Interaction
from ..protocol import parse_interaction

__all__ = ["Inbox"]


class Inbox:
    """The replica's record of inbound messages, and the waiters for interactions."""

    def __init__(self, *, owner: object, history: int):
        """Create an empty inbox.

        Args:
            owner: Named in log lines (the simulator).
            history: How many entries each record keeps.
        """
        self._owner = owner
        self._received: deque[Any] = deque(maxlen=history)
        self._interactions: deque[Interaction] = deque(maxlen=history)
        self._waiters: list[tuple[Callable[[Interaction], bool], asyncio.Future]] = []
        self._rejected: deque[tuple[Any, str]] = deque(maxlen=history)

    @property
    def received(self) -> list[Any]:
        """Every message delivered to the replica, as received."""
        return list(self._received)

    @property
    def interactions(self) -> list[Interaction]:
        """The accepted interactions, parsed, in order."""
        return list(self._interactions)

    @property
    def rejected(self) -> list[tuple[Any, str]]:
        """Messages the replica refused, with the reason."""
        return list(self._rejected)

    def accept(
        self, message: Any, *, present: bool, conversation_id: str, sender_id: str | None
    ) -> Interaction | None:
        """Record one inbound message and accept or refuse it (never raises for bad input).

        Args:
            message: The message as delivered (dict, JSON string, ...).
            present: Whether the replica is in the call.
            conversation_id: The replica's conversation; messages for another are refused.
            sender_id: The sender's participant id, if known (for the log).

        Returns:
            The accepted interaction, or ``None`` when the message was refused (see
            :attr:`rejected`).
        """
        self._received.append(message)
        if not present:
            self._rejected.append((message, "replica_not_present"))
            return None
        try:
            interaction = parse_interaction(message)
        except RemoteProtocolError as e:
            logger.debug(f"{self._owner}: rejected message from {sender_id}: {e}")
            self._rejected.append((message, e.reason))
            return None
        if _conversation_id(message) != conversation_id:
            self._rejected.append((message, "wrong_conversation"))
            return None
        self._interactions.append(interaction)
        return interaction

    def handled(self, interaction: Interaction) -> None:
        """Wake the waiters whose predicate matches an interaction the replica has handled.

        Args:
            interaction: The interaction, accepted and handled.
        """
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate(interaction):
                fut.set_result(interaction)

    async def wait_for(
        self, predicate: Callable[[Interaction], bool], *, timeout_s: float | None
    ) -> Interaction:
        """Return the first accepted interaction matching ``predicate``, waiting if needed.

        Args:
            predicate: Called with each accepted interaction, earlier ones first.
            timeout_s: Wall-clock seconds, or ``None``.

        Returns:
            The first matching interaction.

        Raises:
            TimeoutError: Nothing matched in time.
        """
        for interaction in self._interactions:
            if predicate(interaction):
                return interaction
        entry = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                return await entry[1]
        finally:
            self._waiters.remove(entry)


def _conversation_id(message: Any) -> Any:
    if isinstance(message, bytes | bytearray):
        message = bytes(message).decode("utf-8", "replace")
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            return None
        if isinstance(message, str):
            return _conversation_id(message)
    return message.get("conversation_id") if isinstance(message, dict) else None
