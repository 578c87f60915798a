"""Who the replica is, and whose Tavus messages may be acted on.

A browser in the room must not be able to fake a tool call: Tavus messages are acted on only
when they come from the replica's participant (or from anyone with ``trust_any_sender``).
:class:`ReplicaIdentity` knows the replica's participant id (configured, or learned from the
transport's participant events by the configured name rules) and judges senders. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..exceptions import RemoteProtocolError
from ..params import TavusInteractionsParams

_TAVUS_MESSAGE_TYPES = ("conversation", "system")


def looks_like_tavus(message: Any) -> bool:
    """Tell whether an app message is (or claims to be) a Tavus event.

    Args:
        message: The app message as the transport delivered it (dict, str or bytes).
    """
    if isinstance(message, dict):
        event_type = message.get("event_type")
        if isinstance(event_type, str):
            return message.get("message_type") in _TAVUS_MESSAGE_TYPES or event_type.startswith(
                ("conversation.", "system.")
            )
        return message.get("message_type") in _TAVUS_MESSAGE_TYPES
    if isinstance(message, bytes):
        return b'"event_type"' in message
    if isinstance(message, str):
        return '"event_type"' in message or '\\"event_type\\"' in message
    return False


class ReplicaIdentity:
    """The replica's participant id and the sender checks."""

    def __init__(self, params: TavusInteractionsParams):
        """Start with the configured participant id (``None`` until learned).

        Args:
            params: The configuration (replica id, name rules, ``trust_any_sender``).
        """
        self._params = params
        self.participant_id: str | None = params.replica_participant_id
        self._warned: set[str | None] = set()

    def matches(self, participant: Mapping[str, Any]) -> bool:
        """Tell whether a transport participant (Daily's dict shape) is the replica.

        Args:
            participant: A participant dict with ``id`` and ``info`` (``userId``,
                ``userName``).
        """
        params = self._params
        pid = participant.get("id")
        if params.replica_participant_id is not None:
            return pid == params.replica_participant_id
        info = participant.get("info") or {}
        user_id = str(info.get("userId") or participant.get("user_id") or "")
        user_name = info.get("userName") or participant.get("user_name")
        if params.replica_user_name is not None:
            return user_name == params.replica_user_name
        match = params.replica_user_id_match
        return bool(match) and match in user_id

    def is_replica(self, participant_id: str | None) -> bool:
        """Tell whether ``participant_id`` is the replica's."""
        return participant_id is not None and participant_id == self.participant_id

    def trusts(self, participant_id: str | None) -> bool:
        """Tell whether Tavus messages from ``participant_id`` may be acted on."""
        return self._params.trust_any_sender or self.is_replica(participant_id)

    def claims(self, message: Any, sender_id: str | None) -> bool:
        """Tell whether an app message is a Tavus one (to consume rather than forward)."""
        return self.is_replica(sender_id) or looks_like_tavus(message)

    def foreign(self, sender: str | None, message: Any) -> tuple[RemoteProtocolError, bool]:
        """Describe a Tavus message from someone who is not the replica.

        Returns:
            The error to report, and whether this sender is new (worth a log line; at most
            256 senders are remembered).
        """
        detail = f"sender {sender!r} is not the replica"
        if self.participant_id is None:
            detail += (
                " (the replica participant is not known yet: call "
                "tavus.attach_transport(transport), or set replica_participant_id or "
                "trust_any_sender in the params)"
            )
        first = sender not in self._warned and len(self._warned) < 256
        if first:
            self._warned.add(sender)
        return RemoteProtocolError("foreign_sender", detail, message), first


__all__ = ["ReplicaIdentity", "looks_like_tavus"]
