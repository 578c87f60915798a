"""Export Pipecat tool declarations in the shape a Tavus persona/PAL expects.

This module owns one pure function, :func:`export_tavus_tools`. It turns Pipecat's
``FunctionSchema`` / ``ToolsSchema`` declarations into the OpenAI function-tool list that
Tavus reads from ``layers.llm.tools`` when a persona or PAL is created::

    [{"type": "function",
      "function": {"name": ..., "description": ...,
                   "parameters": {"type": "object", "properties": {...}, "required": [...]}}}]

Declaring a tool once with Pipecat's schema classes therefore serves both a Pipecat LLM and the
Tavus-hosted LLM.

Each ``FunctionSchema`` is converted by Pipecat's own ``OpenAILLMAdapter.to_provider_tools_format``
(the OpenAI function-tool shape is exactly what Tavus reads). Two things stay ours, because the
adapter's output is wrong for Tavus there: the adapter also emits a ``ToolsSchema``'s OpenAI
``custom_tools`` (built-in tools such as ``{"type": "web_search"}`` that Tavus's LLM layer does
not run), so only the standard tools are passed to it; and its dicts share the schema's own
``properties``/``required`` objects, so the result is deep-copied before it is returned.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema

from .exceptions import ConfigurationError, ConfigurationTypeError

ToolsLike = ToolsSchema | Iterable[FunctionSchema | Mapping[str, Any]] | None
"""What :func:`export_tavus_tools` accepts."""


@functools.cache
def _openai_adapter() -> Any:
    # Imported on first use: the adapter pulls in the openai package (about a second), and
    # ``api`` imports this module, so an eager import would slow every ``TavusAPI`` user.
    from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter

    return OpenAILLMAdapter()


def export_tavus_tools(tools: ToolsLike) -> list[dict[str, Any]]:
    """Convert Pipecat tool declarations to the Tavus ``layers.llm.tools`` list.

    Accepted inputs:

    * a ``ToolsSchema``: its standard tools are exported (direct functions included, as
      Pipecat already turned them into ``FunctionSchema``). Adapter-specific
      ``custom_tools`` are not function tools and are not exported;
    * an iterable of ``FunctionSchema`` objects;
    * in the same iterable, mappings that are already in the Tavus/OpenAI shape
      (``{"type": "function", "function": {...}}``), passed through as copies;
    * ``None``, which gives an empty list.

    The result is a new structure: mutating it never changes the schemas it came from.

    Args:
        tools: The tools to export.

    Returns:
        A JSON-serialisable list of ``{"type": "function", "function": {...}}`` dicts.

    Raises:
        ConfigurationTypeError: An item is neither a ``FunctionSchema`` nor a mapping (also a
            ``TypeError``).
        ConfigurationError: A mapping is not a function tool, a tool has no name, or two tools
            share a name (Tavus could not tell them apart); also a ``ValueError``.
    """
    if tools is None:
        return []
    items: Iterable[Any] = tools.standard_tools if isinstance(tools, ToolsSchema) else tools
    exported: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        tool = _export_one(item)
        name = tool["function"]["name"]
        if name in seen:
            raise ConfigurationError(
                f"duplicate tool name {name!r}: every tool needs a unique name"
            )
        seen.add(name)
        exported.append(tool)
    return exported


def _export_one(item: Any) -> dict[str, Any]:
    if isinstance(item, FunctionSchema):
        # One standard tool, no custom tools: see the module docstring.
        (tool,) = _openai_adapter().to_provider_tools_format(ToolsSchema(standard_tools=[item]))
        function = copy.deepcopy(dict(tool["function"]))
    elif isinstance(item, Mapping):
        if item.get("type") != "function" or not isinstance(item.get("function"), Mapping):
            raise ConfigurationError(
                'a tool given as a mapping must look like {"type": "function", "function": {...}}'
            )
        function = copy.deepcopy(dict(item["function"]))
    else:
        raise ConfigurationTypeError(
            f"unsupported tool {type(item).__name__}: give FunctionSchema objects, a ToolsSchema "
            "or Tavus-shaped dicts"
        )
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError("every tool needs a non-empty string name")
    return {"type": "function", "function": function}
