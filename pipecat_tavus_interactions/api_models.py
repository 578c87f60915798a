"""The typed results and options of the Tavus REST client.

This module owns the pydantic models :class:`~pipecat_tavus_interactions.api.TavusAPI`
sends and returns: :class:`ConversationProperties` (the ``properties`` of a create), and
:class:`Conversation` and :class:`Persona` (answers, with both the current and the legacy
spelling of every renamed field filled). :mod:`.api` re-exports all three.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .exceptions import ConfigurationError

__all__ = ["Conversation", "ConversationProperties", "Persona"]


class ConversationProperties(BaseModel):
    """The ``properties`` object of ``POST /v2/conversations``.

    Every field is optional and omitted from the request when ``None``. Fields Tavus adds
    later (or the legacy recording fields) can be passed as extra keyword arguments.

    Parameters:
        max_call_duration: Longest call, in seconds (Tavus default 3600).
        participant_left_timeout: Seconds before shutdown after the last participant leaves.
        participant_absent_timeout: Seconds before shutdown if nobody joins (default 300).
        enable_recording: Allow recording (it must also be started client-side).
        enable_closed_captions: Captions in the hosted UI.
        apply_greenscreen: Green background behind the replica.
        language: Full language name (``"spanish"``) or ``"multilingual"``.
    """

    model_config = ConfigDict(extra="allow")

    max_call_duration: int | None = None
    participant_left_timeout: int | None = None
    participant_absent_timeout: int | None = None
    enable_recording: bool | None = None
    enable_closed_captions: bool | None = None
    apply_greenscreen: bool | None = None
    language: str | None = None


def _mirror(model: BaseModel, new: str, legacy: str) -> None:
    # Tavus answers with the spelling of the API generation that served the request; filling
    # both lets callers read one name regardless.
    new_value, legacy_value = getattr(model, new), getattr(model, legacy)
    if new_value is None and legacy_value is not None:
        setattr(model, new, legacy_value)
    elif legacy_value is None and new_value is not None:
        setattr(model, legacy, new_value)


class Conversation(BaseModel):
    """A Tavus conversation, as returned by create and get.

    Fields the API returns beyond these are kept (``model_extra``), for example ``events``
    from a verbose get. Whichever id spelling the API used, both ``face_id``/``replica_id``
    and ``pal_id``/``persona_id`` are filled.

    Parameters:
        conversation_id: The conversation id.
        conversation_url: The Daily room URL to join.
        status: ``"active"`` or ``"ended"``.
        conversation_name: The name given at creation.
        callback_url: The webhook URL given at creation.
        created_at: Creation time as sent by Tavus.
        face_id: The face (replica) in the call.
        replica_id: Legacy name of ``face_id``.
        pal_id: The PAL (persona) in the call.
        persona_id: Legacy name of ``pal_id``.
        meeting_token: Room token, present when created with ``require_auth``.
    """

    model_config = ConfigDict(extra="allow")

    conversation_id: str
    conversation_url: str | None = None
    status: str | None = None
    conversation_name: str | None = None
    callback_url: str | None = None
    created_at: str | None = None
    face_id: str | None = None
    replica_id: str | None = None
    pal_id: str | None = None
    persona_id: str | None = None
    meeting_token: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _fill_both_spellings(self) -> Conversation:
        _mirror(self, "face_id", "replica_id")
        _mirror(self, "pal_id", "persona_id")
        return self

    @property
    def ended(self) -> bool:
        """Whether Tavus reported this conversation as ended."""
        return self.status == "ended"


class Persona(BaseModel):
    """A Tavus persona (legacy name) or PAL, as returned by create.

    Unknown fields are kept (``model_extra``). Whichever spelling the API used, both
    ``pal_id``/``persona_id``, ``pal_name``/``persona_name`` and
    ``default_face_id``/``default_replica_id`` are filled.

    Parameters:
        pal_id: The PAL id.
        persona_id: Legacy name of ``pal_id``.
        pal_name: The PAL name.
        persona_name: Legacy name of ``pal_name``.
        pipeline_mode: ``"full"`` or ``"echo"``.
        system_prompt: The system prompt.
        default_face_id: The face used when a conversation names none.
        default_replica_id: Legacy name of ``default_face_id``.
        layers: The layer configuration (perception, stt, llm, tts, ...).
        created_at: Creation time as sent by Tavus.
    """

    model_config = ConfigDict(extra="allow")

    pal_id: str | None = None
    persona_id: str | None = None
    pal_name: str | None = None
    persona_name: str | None = None
    pipeline_mode: str | None = None
    system_prompt: str | None = None
    default_face_id: str | None = None
    default_replica_id: str | None = None
    layers: dict[str, Any] | None = None
    created_at: str | None = None

    @model_validator(mode="after")
    def _fill_both_spellings(self) -> Persona:
        _mirror(self, "pal_id", "persona_id")
        _mirror(self, "pal_name", "persona_name")
        _mirror(self, "default_face_id", "default_replica_id")
        if self.pal_id is None:
            raise ConfigurationError("the response has neither pal_id nor persona_id")
        return self
