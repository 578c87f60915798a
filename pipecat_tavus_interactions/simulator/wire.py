"""Build the Tavus -> app wire messages the simulated replica emits.

One function per event family, each returning the list of messages Tavus sends for it, in
order (reference sections 5 and 13.3): PAL-side utterance, streaming and role-agnostic
speaking events come as a ``pal`` message followed by its ``replica`` twin; a speaking
transition is the role-specific event followed by the role-agnostic one(s). The envelope
(``message_type``, ``event_type``, ``conversation_id``, ``turn_idx``, ``inference_id``) is
filled here; ``seq`` and ``timestamp`` are stamped by the simulator when a message is
emitted, so they follow emission order even across concurrent activities.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["WireBuilder"]

PAL_ROLES = ("pal", "replica")


class WireBuilder:
    """Builds envelope-complete messages for one conversation, with seeded ids."""

    def __init__(self, *, conversation_id: str, rng: random.Random):
        """Create the builder.

        Args:
            conversation_id: Stamped on every message.
            rng: Source of inference and tool-call ids (seeded for reproducibility).
        """
        self.conversation_id = conversation_id
        self._rng = rng

    def new_inference_id(self) -> str:
        """Return a fresh UUID-shaped inference id."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def new_tool_call_id(self) -> str:
        """Return a fresh tool call id."""
        return f"call_{self._rng.getrandbits(64):016x}"

    def envelope(
        self,
        event_type: str,
        *,
        message_type: str = "conversation",
        turn_idx: int | None = None,
        inference_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return one message without ``seq``/``timestamp`` (stamped at emission).

        Args:
            event_type: The wire event type.
            message_type: ``"conversation"`` or ``"system"``.
            turn_idx: Turn index, for turn-bound events.
            inference_id: Envelope-level inference id.
            properties: The payload, or ``None`` to omit it.

        Returns:
            The message dict.
        """
        msg: dict[str, Any] = {
            "message_type": message_type,
            "event_type": event_type,
            "conversation_id": self.conversation_id,
        }
        if turn_idx is not None:
            msg["turn_idx"] = turn_idx
        if inference_id is not None:
            msg["inference_id"] = inference_id
        if properties is not None:
            msg["properties"] = dict(properties)
        return msg

    def _roles(self, role: str) -> tuple[str, ...]:
        return PAL_ROLES if role == "pal" else ("user",)

    def utterance(
        self, role: str, speech: str, *, turn_idx: int, inference_id: str
    ) -> list[dict[str, Any]]:
        """``conversation.utterance`` (``pal`` + ``replica`` twin, or one ``user``)."""
        return [
            self.envelope(
                "conversation.utterance",
                turn_idx=turn_idx,
                inference_id=inference_id,
                properties={"role": r, "speech": speech},
            )
            for r in self._roles(role)
        ]

    def streaming(
        self,
        role: str,
        speech: str,
        *,
        content_index: int,
        final: bool,
        is_interrupted: bool,
        turn_idx: int,
        inference_id: str,
    ) -> list[dict[str, Any]]:
        """``conversation.utterance.streaming`` snapshot (accumulated text)."""
        props: dict[str, Any] = {"speech": speech, "content_index": content_index, "final": final}
        if final and role == "pal":
            props["is_interrupted"] = is_interrupted
        return [
            self.envelope(
                "conversation.utterance.streaming",
                turn_idx=turn_idx,
                inference_id=inference_id,
                properties={"role": r, **props},
            )
            for r in self._roles(role)
        ]

    def started_speaking(
        self, role: str, *, turn_idx: int, inference_id: str
    ) -> list[dict[str, Any]]:
        """Role-specific ``*.started_speaking`` (no properties) + role-agnostic form(s)."""
        specific = "conversation.replica" if role == "pal" else "conversation.user"
        out = [
            self.envelope(
                f"{specific}.started_speaking", turn_idx=turn_idx, inference_id=inference_id
            )
        ]
        out += [
            self.envelope(
                "conversation.started_speaking",
                turn_idx=turn_idx,
                inference_id=inference_id,
                properties={"role": r},
            )
            for r in self._roles(role)
        ]
        return out

    def stopped_speaking(
        self,
        role: str,
        *,
        duration: float | None,
        interrupted: bool,
        turn_idx: int,
        inference_id: str,
    ) -> list[dict[str, Any]]:
        """Role-specific ``*.stopped_speaking`` + role-agnostic form(s), with duration."""
        if role == "pal":
            specific = self.envelope(
                "conversation.replica.stopped_speaking",
                turn_idx=turn_idx,
                inference_id=inference_id,
                properties={"duration": duration, "interrupted": interrupted},
            )
        else:
            # The user's role-specific event documents no properties.
            specific = self.envelope(
                "conversation.user.stopped_speaking", turn_idx=turn_idx, inference_id=inference_id
            )
        return [specific] + [
            self.envelope(
                "conversation.stopped_speaking",
                turn_idx=turn_idx,
                inference_id=inference_id,
                properties={"role": r, "duration": duration, "interrupted": interrupted},
            )
            for r in self._roles(role)
        ]

    def tool_call(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        tool_call_id: str,
        turn_idx: int,
        inference_id: str,
    ) -> list[dict[str, Any]]:
        """``conversation.tool_call`` with JSON-string ``arguments``, as Tavus sends it."""
        return [
            self.envelope(
                "conversation.tool_call",
                turn_idx=turn_idx,
                inference_id=inference_id,
                properties={
                    "name": name,
                    "arguments": json.dumps(dict(arguments)),
                    "tool_call_id": tool_call_id,
                },
            )
        ]

    def replica_joined(self, replica_id: str) -> list[dict[str, Any]]:
        """``system.replica_joined``."""
        return [
            self.envelope(
                "system.replica_joined",
                message_type="system",
                properties={"replica_id": replica_id},
            )
        ]

    def replica_present(self, attempt: int) -> list[dict[str, Any]]:
        """``system.replica_present`` heartbeat."""
        return [
            self.envelope(
                "system.replica_present", message_type="system", properties={"attempt": attempt}
            )
        ]

    def shutdown(self, reason: str, replica_id: str) -> list[dict[str, Any]]:
        """``system.shutdown``."""
        return [
            self.envelope(
                "system.shutdown",
                message_type="system",
                properties={"replica_id": replica_id, "shutdown_reason": reason},
            )
        ]
