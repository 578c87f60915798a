"""Inbound wire models: one frozen pydantic model per Tavus ``event_type``.

Every model carries the envelope fields (``event_type``, ``message_type``,
``conversation_id``, ``seq``, ``turn_idx``, ``inference_id``, ``timestamp``) and the
``raw`` message it was parsed from. The models are built by
:func:`pipecat_tavus_interactions.protocol.parse_message`, which does the validation and
normalises the drift listed in the protocol reference (``pal``/``replica`` roles, string
booleans, JSON-string arguments, ``speech``/``text``). Construct them directly only in tests
or in the simulator.

Roles are normalised: ``"pal"`` and ``"replica"`` both become :data:`ROLE_PAL`; the role as
sent is kept in ``wire_role`` so the ``pal``/``replica`` twins can still be told apart.
"""

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

ROLE_PAL = "pal"
ROLE_USER = "user"

Role = Literal["pal", "user"]


class Event(BaseModel):
    """Base class of every inbound event.

    Attributes:
        event_type: The wire ``event_type``, e.g. ``"conversation.utterance"``.
        message_type: ``"conversation"`` or ``"system"`` (or ``None`` when absent).
        conversation_id: The conversation the event belongs to, when sent.
        seq: Global order of the event in its conversation (newer Tavus deployments).
        turn_idx: The user turn the event belongs to, when it belongs to one.
        inference_id: Envelope-level inference id, when sent.
        timestamp: Unix epoch seconds (float) as stamped by Tavus, when sent.
        raw: The message as received (a dict).
        dropped_fields: Optional fields whose value could not be read and were left out
            (the event is kept; see DESIGN "field-level drift"), e.g. ``("duration",)``.
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", arbitrary_types_allowed=True, defer_build=True
    )

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ()

    event_type: str
    message_type: str | None = None
    conversation_id: str | None = None
    seq: int | None = None
    turn_idx: int | None = None
    inference_id: str | None = None
    timestamp: float | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
    dropped_fields: tuple[str, ...] = ()

    @classmethod
    def from_wire(cls, base: dict[str, Any], **values: Any) -> "Event":
        """Build without validation from values that ``parse_message`` already checked.

        About three times as fast as ``model_construct``; the result is an ordinary frozen
        model (the same ``__dict__``, fields set and slots pydantic would give it).
        """
        try:
            defaults, factories = _WIRE_DEFAULTS[cls]
        except KeyError:
            defaults, factories = _wire_defaults(cls)
        data = {**defaults, **base, **values}
        for name, factory in factories:
            if name not in data:  # a fresh container per event, never a shared one
                data[name] = factory()
        m = cls.__new__(cls)
        _set_dict(m, data)
        _set_fields_set(m, base.keys() | values.keys())
        _set_extra(m, None)
        _set_private(m, None)
        return m


# What ``Event.from_wire`` needs per model: the defaults, and the fields built by a factory.
_WIRE_DEFAULTS: dict[type, tuple[dict[str, Any], tuple[tuple[str, Any], ...]]] = {}
# The slot setters of pydantic's BaseModel (a frozen model refuses ``setattr``).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _wire_defaults(cls: type[Event]) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    fields = cls.model_fields.items()
    cached = (
        {
            name: field.default
            for name, field in fields
            if not field.is_required() and field.default_factory is None
        },
        tuple(
            (name, field.default_factory)
            for name, field in fields
            if field.default_factory is not None
        ),
    )
    _WIRE_DEFAULTS[cls] = cached
    return cached


class UtteranceEvent(Event):
    """``conversation.utterance``: the full text of a user turn or a replica turn.

    For the replica this is the whole intended response, sent as it starts speaking; use
    :class:`UtteranceStreamingEvent` for what was really said.

    Attributes:
        role: ``"user"`` or ``"pal"`` (``"replica"`` normalised to ``"pal"``).
        wire_role: The role as sent (``"pal"``, ``"replica"`` or ``"user"``).
        speech: The text.
        user_audio_analysis: Raven-1 tone/emotion analysis of a user turn, when present.
        user_visual_analysis: Raven-1 visual analysis of a user turn, when present.
        visual_context: Legacy visual context, when present.
        interrupted: True when Tavus marks the utterance as cut off (``interrupted``).
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.utterance",)

    role: Role
    wire_role: str
    speech: str
    user_audio_analysis: str | None = None
    user_visual_analysis: str | None = None
    visual_context: str | None = None
    interrupted: bool = False


class UtteranceStreamingEvent(Event):
    """``conversation.utterance.streaming``: a snapshot of the text spoken so far.

    Attributes:
        role: ``"user"`` or ``"pal"``.
        wire_role: The role as sent.
        speech: Accumulated text of the span so far (replace, don't append).
        content_index: Per-inference snapshot counter, when sent.
        final: True on the last snapshot of the span.
        is_interrupted: True on the final replica snapshot when the user cut it off.
        participant_id: Optional speaking participant id.
        participant_name: Optional speaking participant name.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.utterance.streaming",)

    role: Role
    wire_role: str
    speech: str
    content_index: int | None = None
    final: bool = False
    is_interrupted: bool = False
    participant_id: str | None = None
    participant_name: str | None = None


class SpeakingEvent(Event):
    """Base class of every speaking-state event (started or stopped, any form).

    Tavus sends one speaking transition in two *forms*: role-specific
    (``conversation.replica.*`` / ``conversation.user.*``) and role-agnostic
    (``conversation.started_speaking`` with a ``role``). Both parse to subclasses of this
    model, so state can be driven from either.

    Attributes:
        role: Whose speaking state changed (``"pal"`` or ``"user"``). ``None`` only from
            :func:`~pipecat_tavus_interactions.protocol.parse_message` for a role-agnostic
            event sent without a readable ``role``: the conversation core then resolves it
            from the speaking state it holds (the role whose span is open), or drops it.
        wire_role: The role as sent (or implied by the event name).
        speaking: True for started, False for stopped.
        role_agnostic: True for the ``conversation.started/stopped_speaking`` form.
        interrupted: On stopped events: True when cut off mid-speech.
        duration: On stopped events: seconds spoken, or ``None``.
    """

    role: Role | None
    wire_role: str
    speaking: bool
    role_agnostic: bool
    interrupted: bool = False
    duration: float | None = None


class StartedSpeakingEvent(SpeakingEvent):
    """``conversation.started_speaking`` (role-agnostic, with ``role``)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.started_speaking",)


class StoppedSpeakingEvent(SpeakingEvent):
    """``conversation.stopped_speaking`` (role-agnostic, with ``interrupted``/``duration``)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.stopped_speaking",)


class ReplicaStartedSpeakingEvent(SpeakingEvent):
    """``conversation.replica.started_speaking``."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.replica.started_speaking",)


class ReplicaStoppedSpeakingEvent(SpeakingEvent):
    """``conversation.replica.stopped_speaking`` (``duration``, ``interrupted``)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.replica.stopped_speaking",)


class UserStartedSpeakingEvent(SpeakingEvent):
    """``conversation.user.started_speaking``."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.user.started_speaking",)


class UserStoppedSpeakingEvent(SpeakingEvent):
    """``conversation.user.stopped_speaking``."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.user.stopped_speaking",)


class ReplicaInterruptedEvent(Event):
    """``conversation.replica_interrupted``: legacy barge-in event (removed Mar 2026)."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.replica_interrupted",)


class ToolCallEvent(Event):
    """``conversation.tool_call``: the persona's LLM asks the app to run a tool.

    Attributes:
        name: The function name.
        arguments: The arguments as an object (parsed from a JSON string when needed).
            Empty when they could not be parsed; see ``arguments_error``.
        arguments_raw: The arguments exactly as sent when they were a string.
        arguments_error: Why the arguments could not be parsed, or ``None``.
        tool_call_id: The id to echo back in ``conversation.tool_result``, when sent.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.tool_call",)

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    arguments_raw: str | None = None
    arguments_error: str | None = None
    tool_call_id: str | None = None


class PerceptionFrame(BaseModel):
    """One image attached to a vision perception tool call.

    Attributes:
        data: Base64 image data.
        mime_type: The image type (``"image/jpeg"`` when the 2025 string form was sent).
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    data: str
    mime_type: str = "image/jpeg"


class PerceptionToolCallEvent(ToolCallEvent):
    """``conversation.perception_tool_call``: a Raven perception tool fired.

    Attributes:
        modality: ``"vision"`` or ``"audio"`` when sent.
        frames: Images for vision tools (strings and ``{data, mime_type}`` both accepted).
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.perception_tool_call",)

    modality: str | None = None
    frames: tuple[PerceptionFrame, ...] = ()


class PerceptionAnalysisEvent(Event):
    """``conversation.perception_analysis``: end-of-call visual summary.

    Attributes:
        analysis: The summary text.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = (
        "conversation.perception_analysis",
        "conversation.perception-analysis",
    )

    analysis: str


class ObjectiveEvent(Event):
    """Base class of objective events.

    Attributes:
        objective_name: The objective's name, when sent.
        output_variables: Collected variables, when sent.
        properties: The whole ``properties`` object (the payload is not published).
    """

    status: ClassVar[str] = ""

    objective_name: str | None = None
    output_variables: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)


class ObjectiveActivatedEvent(ObjectiveEvent):
    """``conversation.objective.activated``."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.objective.activated",)
    status: ClassVar[str] = "activated"


class ObjectiveCompletedEvent(ObjectiveEvent):
    """``conversation.objective.completed``."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.objective.completed",)
    status: ClassVar[str] = "completed"


class ObjectivePendingEvent(ObjectiveEvent):
    """``conversation.objective.pending``: a manual objective awaits confirmation."""

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("conversation.objective.pending",)
    status: ClassVar[str] = "pending"


class GuardrailEvent(Event):
    """A guardrail fired (its ``event_type`` is unpublished; any name with "guardrail").

    Attributes:
        guardrail: The guardrail's name, when sent.
        guardrail_uuid: The guardrail's id, when sent.
        reason: Why it fired, when sent.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = (
        "conversation.guardrail",
        "conversation.guardrail_violation",
        "conversation.guardrail.triggered",
    )

    guardrail: str | None = None
    guardrail_uuid: str | None = None
    reason: str | None = None


class ReplicaJoinedEvent(Event):
    """``system.replica_joined``: the replica joined and is ready.

    Attributes:
        replica_id: The replica (face) id, when sent.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("system.replica_joined",)

    replica_id: str | None = None


class ReplicaPresentEvent(Event):
    """``system.replica_present`` / ``system.pal_present``: about 1 Hz liveness heartbeat.

    Attributes:
        attempt: Incrementing counter, when sent.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("system.replica_present", "system.pal_present")

    attempt: int | None = None


class ShutdownEvent(Event):
    """``system.shutdown``: the room is shutting down.

    Attributes:
        reason: ``shutdown_reason`` or ``reason``, when sent.
        replica_id: The replica id, when sent.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("system.shutdown",)

    reason: str | None = None
    replica_id: str | None = None


class UnknownEvent(Event):
    """An event whose ``event_type`` this version does not know; surfaced, never dropped.

    Attributes:
        properties: The ``properties`` object when it is one, else empty.
    """

    properties: dict[str, Any] = Field(default_factory=dict)


#: Every concrete event model, in catalogue order.
EVENT_MODELS: tuple[type[Event], ...] = (
    UtteranceEvent,
    UtteranceStreamingEvent,
    StartedSpeakingEvent,
    StoppedSpeakingEvent,
    ReplicaStartedSpeakingEvent,
    ReplicaStoppedSpeakingEvent,
    UserStartedSpeakingEvent,
    UserStoppedSpeakingEvent,
    ReplicaInterruptedEvent,
    ToolCallEvent,
    PerceptionToolCallEvent,
    PerceptionAnalysisEvent,
    ObjectiveActivatedEvent,
    ObjectiveCompletedEvent,
    ObjectivePendingEvent,
    GuardrailEvent,
    ReplicaJoinedEvent,
    ReplicaPresentEvent,
    ShutdownEvent,
)

#: ``event_type`` -> model, for every known wire name.
EVENT_TYPES: dict[str, type[Event]] = {
    name: model for model in EVENT_MODELS for name in model.EVENT_TYPES
}

__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "ROLE_PAL",
    "ROLE_USER",
    "Event",
    "GuardrailEvent",
    "ObjectiveActivatedEvent",
    "ObjectiveCompletedEvent",
    "ObjectiveEvent",
    "ObjectivePendingEvent",
    "PerceptionAnalysisEvent",
    "PerceptionFrame",
    "PerceptionToolCallEvent",
    "ReplicaInterruptedEvent",
    "ReplicaJoinedEvent",
    "ReplicaPresentEvent",
    "ReplicaStartedSpeakingEvent",
    "ReplicaStoppedSpeakingEvent",
    "Role",
    "ShutdownEvent",
    "SpeakingEvent",
    "StartedSpeakingEvent",
    "StoppedSpeakingEvent",
    "ToolCallEvent",
    "UnknownEvent",
    "UserStartedSpeakingEvent",
    "UserStoppedSpeakingEvent",
    "UtteranceEvent",
    "UtteranceStreamingEvent",
]
