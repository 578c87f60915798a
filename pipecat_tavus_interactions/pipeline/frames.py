"""Pipecat frames that carry Tavus events in and Tavus interactions out.

Inbound frames (pushed downstream by ``tavus.input()``) are data frames that an
interruption does not flush (``interruptible=False``): they keep their order with the
transcription frames they belong to through every queued processor downstream (a
``TavusUtteranceFrame`` arrives after its ``TranscriptionFrame``, a ``TavusTurnFrame``
after the frames of the events that completed the turn), and a barge-in never discards a
record of what the replica did. Pipecat's own frames keep their kinds:
``TranscriptionFrame`` and ``InterimTranscriptionFrame`` are ordinary data frames (an
interruption may flush them from a queue), and the speaking frames are system frames (they
overtake queued data frames). :class:`TavusReplicaInterruptedFrame` is a system frame too: it
travels with the ``InterruptionFrame`` it announces.

Outbound frames (pushed by your code, consumed by ``tavus.output()``) are data frames so
they keep their place among the LLM and TTS frames, except :class:`TavusInterruptFrame`,
which is urgent.

Every outbound frame builds and validates its interaction when it is created, so misuse
raises :class:`~pipecat_tavus_interactions.exceptions.LocalProtocolError` where the frame is
made, not later inside the pipeline.

Messages on their way to the transport (pushed by ``tavus.output()``) are
:class:`TavusMessageUrgentFrame`/:class:`TavusMessageFrame`, subclasses of Pipecat's
``OutputTransportMessageUrgentFrame``/``OutputTransportMessageFrame`` (Daily's addressed
ones when a message targets the replica: :func:`daily_message_frames`), so every transport
sends them as its own. Pipecat formats a frame's ``str()`` for a trace line on every push:
theirs names the event type (an echo audio message is 4 KB), and all are kept cheap.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pipecat.frames.frames import (
    DataFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    SystemFrame,
)

from .. import events as ev
from .. import interactions as ix
from ..exceptions import LocalProtocolError

if TYPE_CHECKING:
    from ..core.records import TurnRecord

#: Longest text a frame's ``str()`` shows (the rest is elided; the field holds it all).
STR_TEXT_CHARS = 60


def _short(text: Any, limit: int = STR_TEXT_CHARS) -> str:
    """``text`` as ``[...]`` for a frame's ``str()``, cut to ``limit`` characters."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"[{text}]"


def _describe(name: str, **parts: Any) -> str:
    """``Name#3(key: value, ...)``, leaving out the parts that are ``None``."""
    shown = ", ".join(f"{k}: {v}" for k, v in parts.items() if v is not None)
    return f"{name}({shown})"


# --- inbound ---------------------------------------------------------------------------


@dataclass
class _TavusInboundFrame(DataFrame):
    """Base of the inbound frames: ordered like data, never flushed by an interruption."""

    interruptible: bool = field(default=False, init=False)


@dataclass
class TavusEventFrame(_TavusInboundFrame):
    """A Tavus event, as parsed. Pushed for unknown events (and for all with ``emit_event_frames``).

    Parameters:
        event: The parsed event.
    """

    event: ev.Event

    @property
    def turn_idx(self) -> int | None:
        """The turn the event belongs to, when it belongs to one."""
        return self.event.turn_idx

    def __str__(self) -> str:  # spelled out, 2.4x faster than _describe: one per event
        e = self.event
        seq = "" if e.seq is None else f", seq: {e.seq}"
        turn = "" if e.turn_idx is None else f", turn: {e.turn_idx}"
        return f"{self.name}(event_type: {e.event_type}{seq}{turn})"


@dataclass
class TavusUtteranceFrame(_TavusInboundFrame):
    """A user or replica utterance.

    Parameters:
        role: ``"user"`` or ``"pal"`` (the replica).
        text: The text.
        turn_idx: The turn it belongs to.
        spoken: True when ``text`` is what the replica really said (final streaming
            snapshot); False for the intended reply sent as it starts speaking.
        interrupted: True when the replica was cut off (only with ``spoken``).
        injected: True for a user utterance that is the text we sent with ``respond``.
        event: The event it came from.
    """

    role: str
    text: str
    turn_idx: int | None = None
    spoken: bool = False
    interrupted: bool = False
    injected: bool = False
    event: ev.Event | None = None

    def __str__(self) -> str:
        flags = [f for f in ("spoken", "interrupted", "injected") if getattr(self, f)]
        return _describe(
            self.name,
            role=self.role,
            turn=self.turn_idx,
            flags=",".join(flags) or None,
            text=_short(self.text),
        )


@dataclass
class TavusToolCallFrame(_TavusInboundFrame):
    """The replica asked for a tool call (for observers; the tool runner runs it).

    Parameters:
        event: The ``tool_call`` or ``perception_tool_call`` event.
    """

    event: ev.ToolCallEvent

    @property
    def function_name(self) -> str:
        """The function name (``name`` is taken by Pipecat's frame name)."""
        return self.event.name

    @property
    def arguments(self) -> dict[str, Any]:
        """The parsed arguments."""
        return self.event.arguments

    @property
    def tool_call_id(self) -> str | None:
        """The Tavus tool call id, when sent."""
        return self.event.tool_call_id

    def __str__(self) -> str:
        e = self.event
        return _describe(
            self.name,
            function=e.name,
            id=e.tool_call_id,
            turn=e.turn_idx,
            arguments=_short(e.arguments_raw or e.arguments),
        )


@dataclass
class TavusReplicaInterruptedFrame(SystemFrame):
    """The user cut the replica off (stopped_speaking ``interrupted: true``, or legacy).

    Parameters:
        turn_idx: The turn that was interrupted.
        inference_id: The interrupted inference, when known.
        event: The event that reported it.
    """

    turn_idx: int | None = None
    inference_id: str | None = None
    event: ev.Event | None = None

    def __str__(self) -> str:
        return _describe(self.name, turn=self.turn_idx, inference_id=self.inference_id)


@dataclass
class TavusPerceptionAnalysisFrame(_TavusInboundFrame):
    """End-of-call perception summary.

    Parameters:
        analysis: The summary text.
        event: The event it came from.
    """

    analysis: str
    event: ev.PerceptionAnalysisEvent | None = None

    def __str__(self) -> str:
        return _describe(self.name, analysis=_short(self.analysis))


@dataclass
class TavusObjectiveFrame(_TavusInboundFrame):
    """An objective was activated, completed, or is pending confirmation.

    Parameters:
        status: ``"activated"``, ``"completed"`` or ``"pending"``.
        objective_name: The objective's name, when sent.
        output_variables: Collected variables, when sent.
        event: The event it came from.
    """

    status: str
    objective_name: str | None = None
    output_variables: dict[str, Any] = field(default_factory=dict)
    event: ev.ObjectiveEvent | None = None

    def __str__(self) -> str:
        return _describe(
            self.name,
            status=self.status,
            objective=self.objective_name,
            output_variables=_short(sorted(self.output_variables))
            if self.output_variables
            else None,
        )


@dataclass
class TavusGuardrailFrame(_TavusInboundFrame):
    """A guardrail fired.

    Parameters:
        guardrail: Its name, when sent.
        reason: Why it fired, when sent.
        event: The event it came from.
    """

    guardrail: str | None = None
    reason: str | None = None
    event: ev.GuardrailEvent | None = None

    def __str__(self) -> str:
        reason = _short(self.reason) if self.reason is not None else None
        return _describe(self.name, guardrail=self.guardrail, reason=reason)


@dataclass
class TavusTurnFrame(_TavusInboundFrame):
    """A turn completed; carries its record (text, tool calls, spans, latency).

    Parameters:
        turn: The completed turn record.
    """

    turn: TurnRecord

    def __str__(self) -> str:
        t = self.turn
        latency = t.response_latency_s
        return _describe(
            self.name,
            turn=t.turn_idx,
            user=_short(t.user_text) if t.user_text is not None else None,
            replica=_short(t.replica_spoken_text or t.replica_intended_text or ""),
            tools=len(t.tool_calls) or None,
            interrupted=t.replica_interrupted or None,
            latency=f"{latency:.3f}s" if latency is not None else None,
        )


# --- outbound --------------------------------------------------------------------------


@dataclass
class TavusInteractionFrame(DataFrame):
    """Base of the frames that ask :class:`TavusInteractionsOutput` to send an interaction.

    Subclasses fill ``interaction`` from their own fields at construction time.

    Parameters:
        interaction: The interaction to send. Set it directly to send any interaction.
    """

    interaction: ix.Interaction | None = field(default=None, kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        if self.interaction is None:
            self.interaction = self._build()
        if not isinstance(self.interaction, ix.Interaction):
            raise LocalProtocolError(
                f"{type(self).__name__} needs an Interaction, got {type(self.interaction).__name__}"
            )

    def _build(self) -> ix.Interaction:
        raise LocalProtocolError(
            "TavusInteractionFrame needs interaction=...; or use one of its subclasses"
        )

    def __str__(self) -> str:
        interaction = self.interaction
        text = next(
            (
                getattr(interaction, f)
                for f in ("text", "context", "objective_name")
                if isinstance(getattr(interaction, f, None), str)
            ),
            None,
        )
        audio = getattr(interaction, "audio", None)
        return _describe(
            self.name,
            interaction=getattr(interaction, "EVENT_TYPE", None) or type(interaction).__name__,
            text=_short(text) if text is not None else None,
            audio=f"{len(audio)} bytes" if audio is not None else None,
        )


@dataclass
class TavusEchoFrame(TavusInteractionFrame):
    """Make the replica say ``text`` verbatim (one ``conversation.echo``, ``done: true``).

    Parameters:
        text: The text to speak.
    """

    text: str = ""

    def _build(self) -> ix.Interaction:
        return ix.Echo(text=self.text)


@dataclass
class TavusRespondFrame(TavusInteractionFrame):
    """Inject ``text`` as if the user said it (``conversation.respond``).

    Parameters:
        text: The user's words.
    """

    text: str = ""

    def _build(self) -> ix.Interaction:
        return ix.Respond(self.text)


@dataclass
class TavusContextFrame(TavusInteractionFrame):
    """Replace or append to the replica's conversational context.

    Parameters:
        context: The context text.
        action: ``"append"`` (``append_llm_context``) or ``"overwrite"``
            (``overwrite_llm_context``).
        mode: Deprecated name of ``action`` (the package says "mode" only for
            ``TavusInteractionsParams.mode``).
    """

    context: str = ""
    action: Literal["overwrite", "append"] = "append"
    mode: InitVar[str | None] = None

    def __post_init__(self, mode: str | None = None):
        if mode is not None:
            warnings.warn(
                "TavusContextFrame(mode=...) is deprecated: use action=...",
                DeprecationWarning,
                stacklevel=3,
            )
            self.action = mode  # type: ignore[assignment]
        super().__post_init__()

    def _build(self) -> ix.Interaction:
        if self.action == "overwrite":
            return ix.OverwriteLLMContext(self.context)
        if self.action == "append":
            return ix.AppendLLMContext(self.context)
        raise LocalProtocolError(
            f"context action must be 'overwrite' or 'append', got {self.action!r}"
        )


@dataclass
class TavusSensitivityFrame(TavusInteractionFrame):
    """Change pause or interrupt sensitivity (exactly one per frame).

    Parameters:
        pause: New ``participant_pause_sensitivity``.
        interrupt: New ``participant_interrupt_sensitivity``.
    """

    pause: str | None = None
    interrupt: str | None = None

    def _build(self) -> ix.Interaction:
        return ix.Sensitivity(
            participant_pause_sensitivity=self.pause,
            participant_interrupt_sensitivity=self.interrupt,
        )


@dataclass
class TavusObjectiveConfirmFrame(TavusInteractionFrame):
    """Confirm a manual-confirmation objective.

    Parameters:
        objective_name: The pending objective to confirm.
    """

    objective_name: str = ""

    def _build(self) -> ix.Interaction:
        return ix.ObjectiveConfirm(self.objective_name)


@dataclass
class TavusInterruptFrame(SystemFrame):
    """Stop the replica now (``conversation.interrupt``), without interrupting Pipecat."""

    @property
    def interaction(self) -> ix.Interaction:
        """The interrupt interaction."""
        return ix.Interrupt()


# --- messages to the transport -----------------------------------------------------------


def _message_str(frame: Any) -> str:
    """``Name#3(event_type: conversation.echo)``: the message's kind, not its 4 KB body."""
    message = frame.message
    kind = message.get("event_type") if isinstance(message, dict) else type(message).__name__
    to = getattr(frame, "participant_id", None)
    return (
        f"{frame.name}(event_type: {kind})"
        if to is None
        else _describe(frame.name, event_type=kind, participant_id=to)
    )


class TavusMessageUrgentFrame(OutputTransportMessageUrgentFrame):
    """A Tavus message sent at once (an ``OutputTransportMessageUrgentFrame``; short ``str()``)."""

    __str__ = _message_str


class TavusMessageFrame(OutputTransportMessageFrame):
    """A Tavus message queued behind the transport's audio (an ``OutputTransportMessageFrame``)."""

    __str__ = _message_str


@functools.cache
def daily_message_frames() -> tuple[type, type]:
    """The message frames addressed to one participant: Daily's classes, short ``str()``.

    Subclasses of ``DailyOutputTransportMessageUrgentFrame`` and
    ``DailyOutputTransportMessageFrame`` (their ``participant_id`` is the addressee), made on
    first use: the Daily transport module is imported only by a pipeline that targets one.

    Returns:
        ``(urgent, queued)``.
    """
    from pipecat.transports.daily import transport as daily

    doc = "A Tavus message to one participant (``participant_id``), {}; short ``str()``."
    return tuple(  # type: ignore[return-value]
        type(
            f"TavusDaily{kind}Frame",
            (getattr(daily, f"DailyOutputTransport{kind}Frame"),),
            {"__str__": _message_str, "__module__": __name__, "__doc__": doc.format(how)},
        )
        for kind, how in (("MessageUrgent", "sent at once"), ("Message", "queued"))
    )


__all__ = [
    "TavusContextFrame",
    "TavusEchoFrame",
    "TavusEventFrame",
    "TavusGuardrailFrame",
    "TavusInteractionFrame",
    "TavusInterruptFrame",
    "TavusMessageFrame",
    "TavusMessageUrgentFrame",
    "TavusObjectiveConfirmFrame",
    "TavusObjectiveFrame",
    "TavusPerceptionAnalysisFrame",
    "TavusReplicaInterruptedFrame",
    "TavusRespondFrame",
    "TavusSensitivityFrame",
    "TavusToolCallFrame",
    "TavusTurnFrame",
    "TavusUtteranceFrame",
    "daily_message_frames",
]
