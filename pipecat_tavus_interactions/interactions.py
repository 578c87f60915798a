"""Outbound wire models: one frozen model per interaction the app sends to Tavus.

Each interaction validates itself when constructed and raises
:class:`~pipecat_tavus_interactions.exceptions.LocalProtocolError` with a message that says
what to change. :func:`pipecat_tavus_interactions.protocol.build_message` turns one into the
JSON object that goes on the wire.

The models are small frozen dataclasses rather than pydantic models: echo audio builds
several of them a second, and construction sits on the hot path.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .exceptions import LocalProtocolError

#: Values accepted for the two sensitivity keys (docs list low/medium/high; older schemas
#: and the cvi-ui types also accept these).
SENSITIVITY_VALUES: frozenset[str] = frozenset(
    {"superlow", "verylow", "low", "medium", "high", "auto"}
)


class Interaction:
    """Base class of every outbound interaction.

    Attributes:
        EVENT_TYPE: The wire ``event_type``.
        URGENT: True when the output sends it as an urgent transport message, which
            overtakes queued media and survives Pipecat interruptions. Every interaction is
            urgent, echo included: the output keeps its own echo queue and drops what an
            interruption makes stale, so a half-sent utterance is never cut by Pipecat.
    """

    __slots__ = ()

    EVENT_TYPE: ClassVar[str] = ""
    URGENT: ClassVar[bool] = True

    def properties(self) -> dict[str, Any] | None:
        """Return the ``properties`` object for the wire, or ``None`` to omit it."""
        raise NotImplementedError


def _require_text(value: object, what: str, hint: str) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str, got {type(value).__name__}; {hint}")
    if not value.strip():
        raise LocalProtocolError(f"{what} is empty; {hint}")


@dataclass(frozen=True, slots=True)
class Echo(Interaction):
    """``conversation.echo``: make the replica say exact text, or play supplied audio.

    Give ``text`` for a text echo or ``audio`` (raw PCM16 mono bytes) for an audio echo,
    never both. Chunks of one utterance share an ``inference_id``; the last has
    ``done=True``.

    Attributes:
        text: Text to speak verbatim.
        audio: Raw PCM16 little-endian mono audio (encoded to base64 on the wire).
        sample_rate: Sample rate of ``audio`` (Tavus defaults to 16000 when omitted).
        inference_id: Groups several echo messages into one utterance.
        done: True on the final chunk of an utterance (and on single-shot echoes).
    """

    EVENT_TYPE: ClassVar[str] = "conversation.echo"

    text: str | None = None
    audio: bytes | None = None
    sample_rate: int | None = None
    inference_id: str | None = None
    done: bool = True

    def __post_init__(self):
        if self.text is None and self.audio is None:
            raise LocalProtocolError(
                "echo needs text or audio: pass Echo(text=...) or Echo(audio=...)"
            )
        if self.text is not None and self.audio is not None:
            raise LocalProtocolError("echo takes text or audio, not both: send two echoes")
        if self.text is not None and not isinstance(self.text, str):
            raise LocalProtocolError(f"echo text must be a str, got {type(self.text).__name__}")
        if self.audio is not None:
            if not isinstance(self.audio, bytes | bytearray | memoryview):
                raise LocalProtocolError(
                    f"echo audio must be raw PCM16 bytes, got {type(self.audio).__name__}"
                )
            if len(self.audio) % 2:
                raise LocalProtocolError(
                    "echo audio must be whole 16-bit samples (an even number of bytes)"
                )
        if self.sample_rate is not None and (
            not isinstance(self.sample_rate, int) or not 8000 <= self.sample_rate <= 48000
        ):
            raise LocalProtocolError(
                f"echo sample_rate must be an int between 8000 and 48000, got {self.sample_rate!r}"
            )
        if not isinstance(self.done, bool):
            raise LocalProtocolError("echo done must be a real bool (Tavus docs show strings)")

    @property
    def modality(self) -> str:
        """``"text"`` or ``"audio"``."""
        return "text" if self.text is not None else "audio"

    def properties(self) -> dict[str, Any]:
        """Return the wire properties (audio is base64-encoded here)."""
        if self.text is not None:
            props: dict[str, Any] = {"modality": "text", "text": self.text}
        else:
            props = {"modality": "audio", "audio": base64.b64encode(self.audio).decode("ascii")}
            if self.sample_rate is not None:
                props["sample_rate"] = self.sample_rate
        if self.inference_id is not None:
            props["inference_id"] = self.inference_id
        props["done"] = self.done
        return props


@dataclass(frozen=True, slots=True)
class Respond(Interaction):
    """``conversation.respond``: inject text as if the user had just said it.

    Attributes:
        text: What the "user" says; the replica's LLM answers it.
    """

    EVENT_TYPE: ClassVar[str] = "conversation.respond"

    text: str

    def __post_init__(self):
        _require_text(self.text, "respond text", "pass the user's words, e.g. Respond('Hi')")

    def properties(self) -> dict[str, Any]:
        """Return the wire properties."""
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class Interrupt(Interaction):
    """``conversation.interrupt``: stop the replica talking now (no properties)."""

    EVENT_TYPE: ClassVar[str] = "conversation.interrupt"

    def properties(self) -> None:
        """Interrupt has no properties."""
        return None


@dataclass(frozen=True, slots=True)
class OverwriteLLMContext(Interaction):
    """``conversation.overwrite_llm_context``: replace the conversational context.

    Attributes:
        context: The new context text.
    """

    EVENT_TYPE: ClassVar[str] = "conversation.overwrite_llm_context"

    context: str

    def __post_init__(self):
        if not isinstance(self.context, str):
            raise LocalProtocolError(
                f"overwrite context must be a str, got {type(self.context).__name__}"
            )

    def properties(self) -> dict[str, Any]:
        """Return the wire properties."""
        return {"context": self.context}


@dataclass(frozen=True, slots=True)
class AppendLLMContext(Interaction):
    """``conversation.append_llm_context``: append silently to the conversational context.

    Attributes:
        context: Text to append.
        job_status: Optional ``job_status`` (the docs show ``"completed"``).
    """

    EVENT_TYPE: ClassVar[str] = "conversation.append_llm_context"

    context: str
    job_status: str | None = None

    def __post_init__(self):
        _require_text(self.context, "append context", "pass the text to append")

    def properties(self) -> dict[str, Any]:
        """Return the wire properties."""
        props: dict[str, Any] = {"context": self.context}
        if self.job_status is not None:
            props["job_status"] = self.job_status
        return props


@dataclass(frozen=True, slots=True)
class Sensitivity(Interaction):
    """``conversation.sensitivity``: change pause or interrupt sensitivity live.

    The docs ask for exactly one key per message, so exactly one must be set; send two
    interactions to change both.

    Attributes:
        participant_pause_sensitivity: How long the user may pause before a reply.
        participant_interrupt_sensitivity: How easily the user interrupts the replica.
    """

    EVENT_TYPE: ClassVar[str] = "conversation.sensitivity"

    participant_pause_sensitivity: str | None = None
    participant_interrupt_sensitivity: str | None = None

    def __post_init__(self):
        given = {
            k: v
            for k, v in (
                ("participant_pause_sensitivity", self.participant_pause_sensitivity),
                ("participant_interrupt_sensitivity", self.participant_interrupt_sensitivity),
            )
            if v is not None
        }
        if len(given) != 1:
            raise LocalProtocolError(
                "sensitivity takes exactly one of participant_pause_sensitivity or "
                "participant_interrupt_sensitivity per message; send two to change both"
            )
        for key, value in given.items():
            if value not in SENSITIVITY_VALUES:
                raise LocalProtocolError(
                    f"unknown {key} value {value!r}; use one of {sorted(SENSITIVITY_VALUES)}"
                )

    def properties(self) -> dict[str, Any]:
        """Return the wire properties (only the key that is set)."""
        if self.participant_pause_sensitivity is not None:
            return {"participant_pause_sensitivity": self.participant_pause_sensitivity}
        return {"participant_interrupt_sensitivity": self.participant_interrupt_sensitivity}


@dataclass(frozen=True, slots=True)
class ToolResult(Interaction):
    """``conversation.tool_result``: return a tool's output for a ``tool_call_id``.

    Attributes:
        tool_call_id: The id from the ``conversation.tool_call`` event.
        output: The result: a string passes through, anything else is JSON-encoded.
        status: ``"success"`` or ``"error"``.
    """

    EVENT_TYPE: ClassVar[str] = "conversation.tool_result"

    tool_call_id: str
    output: Any = None
    status: str = "success"

    def __post_init__(self):
        _require_text(self.tool_call_id, "tool_result tool_call_id", "copy it from the tool_call")
        if self.status not in ("success", "error"):
            raise LocalProtocolError(
                f"tool_result status must be 'success' or 'error', got {self.status!r}"
            )
        if self.output is not None and not isinstance(self.output, str):
            try:
                json.dumps(self.output)
            except (TypeError, ValueError) as e:
                raise LocalProtocolError(
                    f"tool_result output must be a str or JSON-serialisable, got "
                    f"{type(self.output).__name__} ({e})"
                ) from None

    def properties(self) -> dict[str, Any]:
        """Return the wire properties; non-string output is JSON-encoded to a string."""
        props: dict[str, Any] = {"tool_call_id": self.tool_call_id}
        if self.output is not None:
            props["output"] = (
                self.output if isinstance(self.output, str) else json.dumps(self.output)
            )
        props["status"] = self.status
        return props


@dataclass(frozen=True, slots=True)
class ObjectiveConfirm(Interaction):
    """``conversation.objective.confirm``: confirm a manual-confirmation objective.

    The payload is not published by Tavus; we send ``objective_name`` and any extra
    properties you give.

    Attributes:
        objective_name: The objective to confirm.
        extra: Further properties to send as-is.
    """

    EVENT_TYPE: ClassVar[str] = "conversation.objective.confirm"

    objective_name: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _require_text(self.objective_name, "objective_name", "name the pending objective")

    def properties(self) -> dict[str, Any]:
        """Return the wire properties."""
        return {**self.extra, "objective_name": self.objective_name}


#: Every interaction model.
INTERACTION_MODELS: tuple[type[Interaction], ...] = (
    Echo,
    Respond,
    Interrupt,
    OverwriteLLMContext,
    AppendLLMContext,
    Sensitivity,
    ToolResult,
    ObjectiveConfirm,
)

__all__ = [
    "INTERACTION_MODELS",
    "SENSITIVITY_VALUES",
    "AppendLLMContext",
    "Echo",
    "Interaction",
    "Interrupt",
    "ObjectiveConfirm",
    "OverwriteLLMContext",
    "Respond",
    "Sensitivity",
    "ToolResult",
]
