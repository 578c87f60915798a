"""What the Tavus REST client sends: request bodies and URL path segments.

This module owns the checked, copied request bodies of
:class:`~pipecat_tavus_interactions.api.TavusAPI`: :func:`conversation_body` (with the
argument names :data:`CONVERSATION_ARGUMENTS` that ``conversation()`` accepts),
:func:`persona_body` for personas and PALs (tools exported with
:func:`~pipecat_tavus_interactions.tool_schema.export_tavus_tools`), and
:func:`path_segment` for ids in URLs. Every misuse raises
:class:`~pipecat_tavus_interactions.exceptions.ConfigurationError` before anything is sent.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .api_models import ConversationProperties
from .exceptions import ConfigurationError, ConfigurationTypeError
from .tool_schema import ToolsLike, export_tavus_tools

__all__ = ["CONVERSATION_ARGUMENTS", "conversation_body", "path_segment", "persona_body"]


def path_segment(value: str) -> str:
    """Quote a conversation id for use as one URL path segment.

    Args:
        value: The conversation id.

    Returns:
        The id, percent-encoded (``/`` included).

    Raises:
        ConfigurationError: ``value`` is not a non-empty string.
    """
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"conversation_id must be a non-empty string, not {value!r}: pass the id that "
            "create_conversation returned"
        )
    return quote(value, safe="")


def _one_id(new_name: str, new: str | None, legacy_name: str, legacy: str | None) -> dict[str, str]:
    if new is not None and legacy is not None:
        raise ConfigurationError(
            f"give {new_name} or its legacy name {legacy_name}, not both "
            f"({new_name}={new!r}, {legacy_name}={legacy!r})"
        )
    if new is not None:
        return {new_name: new}
    if legacy is not None:
        return {legacy_name: legacy}
    return {}


def _merge_extra(body: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if not extra:
        return body
    repeated = sorted(set(extra) & set(body))
    if repeated:
        raise ConfigurationError(
            f"extra repeats fields given by name: {', '.join(repeated)}; pass each field "
            "once, either by name or in extra"
        )
    body.update(copy.deepcopy(dict(extra)))
    return body


def _properties(properties: ConversationProperties | Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``properties`` object to send: a copy without ``None`` values."""
    if isinstance(properties, ConversationProperties):
        props = properties.model_dump(exclude_none=True)
    elif isinstance(properties, Mapping):
        props = {k: copy.deepcopy(v) for k, v in properties.items() if v is not None}
    elif properties is None:
        props = {}
    else:
        raise ConfigurationTypeError(
            "properties must be a ConversationProperties, a mapping or None, not "
            f"{type(properties).__name__}"
        )
    return props


def conversation_body(
    *,
    face_id: str | None = None,
    pal_id: str | None = None,
    replica_id: str | None = None,
    persona_id: str | None = None,
    callback_url: str | None = None,
    conversation_name: str | None = None,
    conversational_context: str | None = None,
    custom_greeting: str | None = None,
    audio_only: bool | None = None,
    test_mode: bool | None = None,
    require_auth: bool | None = None,
    properties: ConversationProperties | Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the body of ``POST /v2/conversations``.

    The arguments are those of ``TavusAPI.create_conversation``; those left as ``None`` are
    not sent, and every value is copied, never shared.

    Returns:
        The body.

    Raises:
        ConfigurationError: Both spellings of one id, or ``extra`` repeats a named field.
        ConfigurationTypeError: ``properties`` is not a ``ConversationProperties``, a
            mapping or ``None``.
    """
    body: dict[str, Any] = {}
    body.update(_one_id("face_id", face_id, "replica_id", replica_id))
    body.update(_one_id("pal_id", pal_id, "persona_id", persona_id))
    optional = {
        "callback_url": callback_url,
        "conversation_name": conversation_name,
        "conversational_context": conversational_context,
        "custom_greeting": custom_greeting,
        "audio_only": audio_only,
        "test_mode": test_mode,
        "require_auth": require_auth,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    props = _properties(properties)
    if props:
        body["properties"] = props
    return _merge_extra(body, extra)


#: The keyword arguments of ``TavusAPI.create_conversation`` (and ``conversation``).
CONVERSATION_ARGUMENTS = frozenset(inspect.signature(conversation_body).parameters)


def persona_body(
    *,
    names: tuple[str, str],
    name: str | None,
    system_prompt: str | None,
    pipeline_mode: str | None,
    default_id: str | None,
    layers: Mapping[str, Any] | None,
    tools: ToolsLike,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Build the body of ``POST /v2/personas`` or ``POST /v2/pals``.

    Fields left as ``None`` are not sent; the tools are exported into ``layers.llm.tools``.

    Args:
        names: The body keys of the name and of the default face for this endpoint
            (``("persona_name", "default_replica_id")`` or ``("pal_name", "default_face_id")``).
        name: The persona or PAL name.
        system_prompt: The system prompt.
        pipeline_mode: ``"full"`` or ``"echo"``.
        default_id: The default face (replica) id.
        layers: The layer configuration (deep-copied).
        tools: Pipecat tool schemas, or ``None``.
        extra: Further fields, deep-copied; they may not repeat a named field.

    Returns:
        The body.

    Raises:
        ConfigurationError: Bad ``pipeline_mode``, ``layers['llm']`` not a mapping, tools
            given twice, or ``extra`` repeating a named field.
    """
    if pipeline_mode is not None and pipeline_mode not in ("full", "echo"):
        raise ConfigurationError(f"pipeline_mode must be 'full' or 'echo', not {pipeline_mode!r}")
    name_key, default_key = names
    fields = {
        name_key: name,
        "system_prompt": system_prompt,
        "pipeline_mode": pipeline_mode,
        default_key: default_id,
    }
    body: dict[str, Any] = {key: value for key, value in fields.items() if value is not None}
    merged_layers: dict[str, Any] = copy.deepcopy(dict(layers)) if layers is not None else {}
    if tools is not None:
        llm = merged_layers.get("llm", {})
        if not isinstance(llm, Mapping):
            raise ConfigurationError(
                f"layers['llm'] must be a mapping (a dict of LLM settings), not "
                f"{type(llm).__name__}"
            )
        if "tools" in llm:
            raise ConfigurationError(
                "tools given twice: pass them as tools= or in layers['llm']['tools']"
            )
        merged_layers["llm"] = {**llm, "tools": export_tavus_tools(tools)}
    if merged_layers or layers is not None:
        body["layers"] = merged_layers
    return _merge_extra(body, extra)
