"""What the conversation core asks its driver to do: small frozen records, one per effect.

:class:`~pipecat_tavus_interactions.core.connection.TavusConnection` never does I/O. Every
call returns a list of these effects, in the order they must be carried out; a driver (the
Pipecat processors, a replay tool, a test) is a loop over them. The inbound effects describe
what the replica did once ordering, de-duplication and state are applied; the outbound ones
carry messages that are already built, sized, split and checked.

Effects that only report an accepted event (:class:`EventAccepted`) leave the translation to
the driver, because it needs no state: an objective event becomes an objective frame whatever
happened before. Everything that depends on the conversation's state (is the replica already
speaking, was this text our own ``respond``, is a result stale) is decided here and arrives as
its own effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import events as ev
from .. import interactions as ix
from ..exceptions import RemoteProtocolError, TavusInteractionsError
from .records import TurnRecord

# --- inbound ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventAccepted:
    """An event passed the sender checks, ordering and de-duplication (``on_event``).

    Attributes:
        event: The event, in ``seq`` order.
    """

    event: ev.Event


@dataclass(frozen=True, slots=True)
class UserTranscript:
    """User speech as a transcription (``TranscriptionFrame`` or the interim one).

    Attributes:
        text: What the user said.
        final: True for the final utterance, False for a streaming snapshot.
        event: The event it came from.
    """

    text: str
    final: bool
    event: ev.Event


@dataclass(frozen=True, slots=True)
class Utterance:
    """A user or replica utterance (``TavusUtteranceFrame`` and ``on_utterance``).

    Attributes:
        role: ``"user"`` or ``"pal"``.
        text: The text.
        turn_idx: The turn it belongs to.
        spoken: True for what the replica really said (its final streaming snapshot).
        interrupted: True when that speech was cut off.
        injected: True for a user utterance that is the text we sent with ``respond``.
        event: The event it came from.
    """

    role: str
    text: str
    turn_idx: int | None
    spoken: bool
    interrupted: bool
    injected: bool
    event: ev.Event


@dataclass(frozen=True, slots=True)
class ReplicaSpeaking:
    """The replica started or stopped speaking (one of each per span).

    Attributes:
        speaking: True when it started.
    """

    speaking: bool


@dataclass(frozen=True, slots=True)
class ReplicaSpeakingTick:
    """The replica is still speaking (periodic, ``bot_speaking_interval_s``)."""


@dataclass(frozen=True, slots=True)
class UserTurn:
    """The user's turn started or stopped (pushed as the configured user turn frames).

    Attributes:
        speaking: True when the user started speaking.
    """

    speaking: bool


@dataclass(frozen=True, slots=True)
class ReplicaInterrupted:
    """Tavus reported that the user cut the replica off (once per interruption).

    Attributes:
        turn_idx: The turn whose reply was cut.
        inference_id: The inference that was cut, when known.
        event: The event that reported it.
        broadcast: Interrupt the pipeline too (``interrupt_pipeline_on_barge_in``); the core
            will not send ``conversation.interrupt`` back for that interruption.
    """

    turn_idx: int | None
    inference_id: str | None
    event: ev.Event
    broadcast: bool


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call to run, as the core recorded it.

    Attributes:
        call_id: The call's id: Tavus's ``tool_call_id``, or one made up for calls without.
        name: The function name.
        arguments: The parsed arguments.
        turn_idx: The turn the call belongs to.
        event: The ``tool_call`` or ``perception_tool_call`` event.
        perception: True for a Raven perception tool call.
        error: Set when the call cannot run at all (its arguments are not valid JSON);
            the driver must not run a handler and reports this error as the outcome.
    """

    call_id: str
    name: str
    arguments: dict[str, Any]
    turn_idx: int | None
    event: ev.ToolCallEvent
    perception: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run a tool handler, then report its outcome with ``TavusConnection.tool_finished``.

    Attributes:
        call: The call.
    """

    call: ToolCall


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    """A turn of the ledger completed (``TavusTurnFrame`` and ``on_turn_completed``).

    Attributes:
        turn: The completed record.
    """

    turn: TurnRecord


@dataclass(frozen=True, slots=True)
class ReplicaJoined:
    """The replica joined (``system.replica_joined``, or its first heartbeat).

    Attributes:
        event: The event that said so (``None`` when told by the transport).
    """

    event: ev.Event | None


@dataclass(frozen=True, slots=True)
class ReplicaLeft:
    """The replica left the room, or its heartbeat stopped.

    Attributes:
        reason: ``"participant_left"`` or ``"heartbeat_lost"``.
        expected: True after ``system.shutdown`` (nothing went wrong).
    """

    reason: str
    expected: bool


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Tavus is ending the conversation (``system.shutdown``).

    Attributes:
        event: The shutdown event.
        end_pipeline: End the pipeline too (``end_on_shutdown``).
    """

    event: ev.ShutdownEvent
    end_pipeline: bool


@dataclass(frozen=True, slots=True)
class ProtocolErrorReported:
    """A message from the wire was dropped (``on_protocol_error``).

    Attributes:
        error: Why, with the raw message.
        log: True when this one should be logged (the core rate-limits per reason).
        count: How many were dropped for this reason so far.
    """

    error: RemoteProtocolError
    log: bool
    count: int


# --- outbound --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    """Put one built, size-checked message on the wire.

    Attributes:
        message: The wire message (a JSON-ready dict).
        urgent: Send it ahead of queued audio (an urgent transport frame).
        participant_id: Address it to this participant instead of broadcasting.
    """

    message: dict[str, Any]
    urgent: bool = True
    participant_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendFailed:
    """An interaction could not be sent (``on_send_failed``).

    Attributes:
        interaction: What was not sent.
        error: Why.
        report: Also report it in the pipeline (an ``ErrorFrame``); False for the other
            items of a batch that failed together, which is reported once.
    """

    interaction: ix.Interaction
    error: TavusInteractionsError
    report: bool = True


Effect = (
    EventAccepted
    | UserTranscript
    | Utterance
    | ReplicaSpeaking
    | ReplicaSpeakingTick
    | UserTurn
    | ReplicaInterrupted
    | RunTool
    | TurnCompleted
    | ReplicaJoined
    | ReplicaLeft
    | Shutdown
    | ProtocolErrorReported
    | Transmit
    | SendFailed
)

__all__ = [
    "Effect",
    "EventAccepted",
    "ProtocolErrorReported",
    "ReplicaInterrupted",
    "ReplicaJoined",
    "ReplicaLeft",
    "ReplicaSpeaking",
    "ReplicaSpeakingTick",
    "RunTool",
    "SendFailed",
    "Shutdown",
    "ToolCall",
    "Transmit",
    "TurnCompleted",
    "UserTranscript",
    "UserTurn",
    "Utterance",
]
