"""Tests for pipecat_tavus_interactions.tool_schema."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import AdapterType, ToolsSchema

from pipecat_tavus_interactions.tool_schema import export_tavus_tools

WEATHER = FunctionSchema(
    name="get_weather",
    description="Current weather for a city.",
    properties={
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    required=["city"],
)
TIME = FunctionSchema(name="get_time", description="Current time.", properties={}, required=[])

WEATHER_TAVUS = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city"],
        },
    },
}


def test_function_schemas_export_in_openai_function_tool_shape():
    assert export_tavus_tools([WEATHER, TIME]) == [
        WEATHER_TAVUS,
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "Current time.",
                "parameters": {"type": "object", "properties": {}, "required": []},
            },
        },
    ]


def test_tools_schema_exports_its_standard_tools_and_skips_custom_tools():
    schema = ToolsSchema(
        standard_tools=[WEATHER],
        custom_tools={AdapterType.OPENAI: [{"type": "web_search"}]},
    )
    assert export_tavus_tools(schema) == [WEATHER_TAVUS]


def test_tools_schema_with_direct_function():
    async def lookup_order(params, order_id: str):
        """Look up an order.

        Args:
            order_id: The order number.
        """

    [tool] = export_tavus_tools(ToolsSchema(standard_tools=[lookup_order]))
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "lookup_order"
    assert tool["function"]["parameters"]["type"] == "object"
    assert tool["function"]["parameters"]["required"] == ["order_id"]
    assert "order_id" in tool["function"]["parameters"]["properties"]


def test_none_and_empty_give_empty_list():
    assert export_tavus_tools(None) == []
    assert export_tavus_tools([]) == []
    assert export_tavus_tools(ToolsSchema(standard_tools=[])) == []


def test_tavus_shaped_dicts_pass_through_as_copies():
    out = export_tavus_tools([WEATHER_TAVUS])
    assert out == [WEATHER_TAVUS]
    out[0]["function"]["parameters"]["properties"]["city"]["type"] = "number"
    assert WEATHER_TAVUS["function"]["parameters"]["properties"]["city"]["type"] == "string"


def test_output_does_not_alias_the_schema():
    out = export_tavus_tools([WEATHER])
    out[0]["function"]["parameters"]["properties"]["city"]["description"] = "changed"
    out[0]["function"]["parameters"]["required"].append("unit")
    assert WEATHER.properties["city"]["description"] == "City name"
    assert WEATHER.required == ["city"]


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match="duplicate tool name 'get_weather'"):
        export_tavus_tools([WEATHER, WEATHER_TAVUS])


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "f", "parameters": {}},
        {"type": "function", "function": "f"},
        {"type": "function", "function": {"description": "no name"}},
    ],
)
def test_malformed_mappings_are_rejected(bad):
    with pytest.raises(ValueError):
        export_tavus_tools([bad])


def test_unsupported_item_type_is_rejected():
    with pytest.raises(TypeError, match="unsupported tool int"):
        export_tavus_tools([42])


_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
_props = st.dictionaries(
    _names, st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "boolean"])})
)


@settings(max_examples=25, deadline=None)
@given(
    tools=st.lists(
        st.tuples(_names, st.text(max_size=40), _props), max_size=5, unique_by=lambda t: t[0]
    )
)
def test_export_round_trips_every_field(tools):
    schemas = [
        FunctionSchema(name=n, description=d, properties=p, required=sorted(p)[:1])
        for n, d, p in tools
    ]
    out = export_tavus_tools(schemas)
    assert json.loads(json.dumps(out)) == out
    for schema, tool in zip(schemas, out, strict=True):
        assert tool["type"] == "function"
        assert tool["function"] == {
            "name": schema.name,
            "description": schema.description,
            "parameters": {
                "type": "object",
                "properties": schema.properties,
                "required": schema.required,
            },
        }


# --- built on Pipecat's OpenAI adapter, and where it stays ours -----------------------------


def test_function_schemas_export_exactly_as_pipecats_openai_adapter_does():
    from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter

    adapter = OpenAILLMAdapter().to_provider_tools_format(
        ToolsSchema(standard_tools=[WEATHER, TIME])
    )
    assert export_tavus_tools([WEATHER, TIME]) == adapter


def test_the_adapters_custom_openai_tools_are_not_tavus_tools():
    # Pipecat's adapter emits OpenAI built-in tools (web search, ...) next to the functions;
    # Tavus's layers.llm.tools takes function tools only, so they are left out here.
    from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter

    schema = ToolsSchema(
        standard_tools=[WEATHER], custom_tools={AdapterType.OPENAI: [{"type": "web_search"}]}
    )
    assert {"type": "web_search"} in OpenAILLMAdapter().to_provider_tools_format(schema)
    assert export_tavus_tools(schema) == [WEATHER_TAVUS]


def test_the_adapters_output_aliases_the_schema_and_ours_does_not():
    from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter

    (raw,) = OpenAILLMAdapter().to_provider_tools_format(ToolsSchema(standard_tools=[WEATHER]))
    assert raw["function"]["parameters"]["properties"] is WEATHER.properties
    (ours,) = export_tavus_tools([WEATHER])
    assert ours["function"]["parameters"]["properties"] is not WEATHER.properties


def test_errors_are_package_errors():
    from pipecat_tavus_interactions.exceptions import (
        ConfigurationError,
        ConfigurationTypeError,
        TavusInteractionsError,
    )

    with pytest.raises(ConfigurationError, match="unique name") as info:
        export_tavus_tools([WEATHER, WEATHER])
    assert isinstance(info.value, ValueError) and isinstance(info.value, TavusInteractionsError)
    with pytest.raises(ConfigurationError, match="must look like"):
        export_tavus_tools([{"name": "f"}])
    with pytest.raises(ConfigurationTypeError, match="unsupported tool int") as info:
        export_tavus_tools([42])
    assert isinstance(info.value, TypeError)
