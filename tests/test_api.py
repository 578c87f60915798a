"""Tests for pipecat_tavus_interactions.api, over real HTTP to the loopback REST simulator."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema

from pipecat_tavus_interactions.api import (
    Conversation,
    ConversationProperties,
    Persona,
    TavusAPI,
    TavusAPIError,
)
from pipecat_tavus_interactions.simulator.rest import TavusRestSimulator

KEY = "tvs-SECRET-9f2b7c41d0e3a8"
CONVERSATIONS = "/v2/conversations"


def end_path(conversation_id: str) -> str:
    return f"{CONVERSATIONS}/{conversation_id}/end"


@pytest.fixture(autouse=True)
def log_lines():
    """Capture every loguru line (DEBUG and up, with tracebacks) and check none has the key."""
    lines: list[str] = []
    sink_id = logger.add(
        lines.append,
        level="DEBUG",
        format="{level} {name}:{function} {message}",
        backtrace=True,
        diagnose=True,
    )
    yield lines
    logger.remove(sink_id)
    leaked = [line for line in lines if KEY in line]
    assert not leaked, leaked


@pytest.fixture
async def server():
    async with TavusRestSimulator(api_key=KEY) as srv:
        yield srv


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def make_api(session, server, **overrides) -> TavusAPI:
    settings = dict(max_retries=3, backoff_s=0.001, max_retry_delay_s=0.5, timeout_s=2.0)
    settings.update(overrides)
    return TavusAPI(api_key=KEY, session=session, base_url=server.base_url, **settings)


@pytest.fixture
def api(session, server) -> TavusAPI:
    return make_api(session, server)


# ---------------------------------------------------------------------- conversations


async def test_create_get_end_round_trip(api, server, log_lines):
    conv = await api.create_conversation(pal_id="p123", face_id="r456")
    assert isinstance(conv, Conversation)
    assert conv.conversation_id.startswith("c") and len(conv.conversation_id) == 13
    assert conv.conversation_url == f"{server.base_url}/rooms/{conv.conversation_id}"
    assert conv.status == "active" and not conv.ended
    assert (conv.face_id, conv.replica_id, conv.pal_id, conv.persona_id) == (
        "r456",
        "r456",
        "p123",
        "p123",
    )

    got = await api.get_conversation(conv.conversation_id)
    assert got.conversation_id == conv.conversation_id and got.status == "active"

    assert await api.end_conversation(conv.conversation_id) is None
    after = await api.get_conversation(conv.conversation_id, verbose=True)
    assert after.ended
    assert after.model_extra["events"] == []
    assert server.requests[-1].query == {"verbose": "true"}
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", CONVERSATIONS),
        ("GET", f"{CONVERSATIONS}/{conv.conversation_id}"),
        ("POST", end_path(conv.conversation_id)),
        ("GET", f"{CONVERSATIONS}/{conv.conversation_id}"),
    ]
    assert all(r.authorized and r.headers["x-api-key"] == "***" for r in server.requests)
    assert any(line.startswith("DEBUG") and "TavusAPI(" in line for line in log_lines)


async def test_list_conversations(api):
    first = await api.create_conversation(replica_id="r1")
    second = await api.create_conversation(replica_id="r2")
    await api.end_conversation(first.conversation_id)
    everything = await api.list_conversations()
    assert {c.conversation_id for c in everything} == {
        first.conversation_id,
        second.conversation_id,
    }
    active = await api.list_conversations(status="active", limit=5, page=1)
    assert [c.conversation_id for c in active] == [second.conversation_id]


@pytest.mark.parametrize(
    ("kwarg", "value"),
    [
        ("callback_url", "https://example.test/hook"),
        ("conversation_name", "support call"),
        ("conversational_context", "The user is called Ada."),
        ("custom_greeting", "Hello there!"),
        ("audio_only", True),
        ("test_mode", False),
        ("require_auth", True),
    ],
)
async def test_each_optional_field_lands_in_the_body(api, server, kwarg, value):
    await api.create_conversation(pal_id="p1", **{kwarg: value})
    assert server.requests[-1].json == {"pal_id": "p1", kwarg: value}


async def test_properties_model_dict_and_extra(api, server):
    props = ConversationProperties(
        max_call_duration=600,
        participant_left_timeout=5,
        participant_absent_timeout=60,
        enable_recording=True,
        enable_closed_captions=True,
        apply_greenscreen=False,
        language="multilingual",
        recording_storage={"provider": "s3", "bucket_name": "b"},
    )
    await api.create_conversation(replica_id="r1", properties=props, extra={"memory_stores": ["m"]})
    assert server.requests[-1].json == {
        "replica_id": "r1",
        "properties": {
            "max_call_duration": 600,
            "participant_left_timeout": 5,
            "participant_absent_timeout": 60,
            "enable_recording": True,
            "enable_closed_captions": True,
            "apply_greenscreen": False,
            "language": "multilingual",
            "recording_storage": {"provider": "s3", "bucket_name": "b"},
        },
        "memory_stores": ["m"],
    }
    await api.create_conversation(
        replica_id="r1",
        properties={"language": "spanish", "max_call_duration": None},
    )
    assert server.requests[-1].json == {"replica_id": "r1", "properties": {"language": "spanish"}}
    await api.create_conversation(replica_id="r1", properties=ConversationProperties())
    assert server.requests[-1].json == {"replica_id": "r1"}


async def test_require_auth_returns_meeting_token_and_test_mode_is_ended(api):
    private = await api.create_conversation(pal_id="p1", require_auth=True)
    assert private.meeting_token
    test = await api.create_conversation(pal_id="p1", test_mode=True)
    assert test.ended
    await api.end_conversation(test.conversation_id)  # already ended: no error


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"replica_id": "r1", "persona_id": "p1"}, {"replica_id": "r1", "persona_id": "p1"}),
        ({"face_id": "r1", "pal_id": "p1"}, {"face_id": "r1", "pal_id": "p1"}),
        ({"face_id": "r1", "persona_id": "p1"}, {"face_id": "r1", "persona_id": "p1"}),
    ],
)
async def test_legacy_and_new_id_names(api, server, kwargs, expected):
    conv = await api.create_conversation(**kwargs)
    assert server.requests[-1].json == expected
    assert conv.face_id == conv.replica_id == "r1"
    assert conv.pal_id == conv.persona_id == "p1"


@pytest.mark.parametrize(
    "kwargs",
    [{"face_id": "r1", "replica_id": "r2"}, {"pal_id": "p1", "persona_id": "p2"}],
)
async def test_both_spellings_of_one_id_is_a_value_error(api, server, kwargs):
    with pytest.raises(ValueError, match="not both"):
        await api.create_conversation(**kwargs)
    with pytest.raises(ValueError, match="not both"):
        api.conversation(**kwargs)
    assert server.requests == []


async def test_extra_may_not_repeat_a_named_field(api):
    with pytest.raises(ValueError, match="callback_url"):
        await api.create_conversation(
            pal_id="p1", callback_url="https://a.test", extra={"callback_url": "https://b.test"}
        )


# ---------------------------------------------------------------------- retries and errors


async def test_get_retries_on_503_then_succeeds(api, server):
    conv = await api.create_conversation(pal_id="p1")
    path = f"{CONVERSATIONS}/{conv.conversation_id}"
    server.fail_next(503, times=2, path=path)
    got = await api.get_conversation(conv.conversation_id)
    assert got.conversation_id == conv.conversation_id
    assert len(server.requests_to("GET", path)) == 3


async def test_get_gives_up_after_max_retries(session, server):
    api = make_api(session, server, max_retries=2)
    server.fail_next(502, times=10)
    with pytest.raises(TavusAPIError) as info:
        await api.get_conversation("c000000000000")
    assert info.value.status == 502 and info.value.retryable
    assert len(server.requests) == 3


async def test_create_is_not_retried_on_5xx(api, server):
    server.fail_next(500, body={"error": "boom"})
    with pytest.raises(TavusAPIError) as info:
        await api.create_conversation(pal_id="p1")
    assert info.value.status == 500 and info.value.retryable
    assert "boom" in info.value.message
    assert len(server.requests) == 1
    assert server.conversations == {}


async def test_create_retries_429_honouring_retry_after(session, server):
    api = make_api(session, server, backoff_s=0.0)
    server.fail_next(429, retry_after="0.15", path=CONVERSATIONS)
    started = time.monotonic()
    conv = await api.create_conversation(pal_id="p1")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.15
    assert len(server.requests_to("POST", CONVERSATIONS)) == 2
    assert list(server.conversations) == [conv.conversation_id]


async def test_retry_after_is_capped(session, server):
    api = make_api(session, server, max_retry_delay_s=0.01)
    server.fail_next(429, retry_after=120)
    started = time.monotonic()
    await api.create_persona(name="n", system_prompt="s")
    assert time.monotonic() - started < 1.0
    assert len(server.requests) == 2


async def test_http_date_retry_after_is_understood(session, server):
    api = make_api(session, server, backoff_s=0.0, max_retry_delay_s=0.05)
    server.fail_next(503, retry_after="Wed, 21 Oct 2099 07:28:00 GMT")
    started = time.monotonic()
    await api.list_conversations()
    assert 0.05 <= time.monotonic() - started < 1.0


async def test_400_is_not_retried_and_carries_the_message(api, server):
    server.fail_next(400, body={"message": "Invalid replica_id"}, times=5)
    with pytest.raises(TavusAPIError) as info:
        await api.get_conversation("c000000000000")
    err = info.value
    assert err.status == 400 and err.retryable is False
    assert "Invalid replica_id" in err.message
    assert str(err).startswith("HTTP 400: Invalid replica_id")
    assert len(server.requests) == 1


async def test_plain_text_error_body(api, server):
    server.fail_next(418, body="short and stout")
    with pytest.raises(TavusAPIError, match="short and stout") as info:
        await api.create_conversation(pal_id="p1")
    assert info.value.status == 418 and not info.value.retryable


async def test_404_on_get(api):
    with pytest.raises(TavusAPIError) as info:
        await api.get_conversation("cdoesnotexist")
    assert info.value.status == 404
    assert "Conversation not found" in info.value.message


async def test_wrong_key_is_401_and_no_key_leaks(session, server):
    other = "tvs-OTHER-KEY-55d1"
    api = TavusAPI(api_key=other, session=session, base_url=server.base_url, backoff_s=0.001)
    with pytest.raises(TavusAPIError) as info:
        await api.create_conversation(pal_id="p1")
    assert info.value.status == 401 and not info.value.retryable
    assert not server.requests[0].authorized
    assert server.requests[0].headers["x-api-key"] == "***"
    assert other not in str(info.value) and other not in repr(api)


async def test_server_echoing_the_key_is_redacted(api, server):
    server.fail_next(403, body={"message": f"key {KEY} is not allowed"})
    with pytest.raises(TavusAPIError) as info:
        await api.create_conversation(pal_id="p1")
    assert KEY not in str(info.value) and KEY not in info.value.message
    assert "key *** is not allowed" in info.value.message


async def test_timeout_is_retryable_and_retried_for_get(session, server):
    api = make_api(session, server, timeout_s=0.1, max_retries=1)
    conv = await api.create_conversation(pal_id="p1")
    path = f"{CONVERSATIONS}/{conv.conversation_id}"
    server.delay_next(0.5, times=2, path=path)
    with pytest.raises(TavusAPIError) as info:
        await api.get_conversation(conv.conversation_id)
    assert info.value.status is None and info.value.retryable
    assert "no response within 0.1s" in info.value.message
    assert len(server.requests_to("GET", path)) == 2


async def test_connection_error_is_retryable(session):
    async with TavusRestSimulator(api_key=KEY) as gone:
        base_url = gone.base_url
    api = TavusAPI(api_key=KEY, session=session, base_url=base_url, max_retries=1, backoff_s=0)
    with pytest.raises(TavusAPIError) as info:
        await api.end_conversation("c000000000000")
    assert info.value.status is None and info.value.retryable
    assert KEY not in str(info.value)
    # A traceback rendered with locals (loguru diagnose=True) must not show the key either.
    logger.opt(exception=info.value).error("end failed")


# ---------------------------------------------------------------------- idempotent end


@pytest.mark.parametrize("already_ended_status", [400, 404, 409])
async def test_end_is_idempotent(session, already_ended_status):
    async with TavusRestSimulator(
        api_key=KEY, already_ended_status=already_ended_status, end_returns_json=True
    ) as server:
        api = make_api(session, server)
        conv = await api.create_conversation(pal_id="p1")
        await api.end_conversation(conv.conversation_id)
        await api.end_conversation(conv.conversation_id)
        await api.end_conversation(conv.conversation_id)
        assert len(server.requests_to("POST", end_path(conv.conversation_id))) == 3
        assert server.conversations[conv.conversation_id]["status"] == "ended"


async def test_end_unknown_conversation_is_not_an_error(api, server):
    await api.end_conversation("cffffffffffff")
    assert len(server.requests) == 1


async def test_end_400_on_an_active_conversation_is_raised(api, server):
    conv = await api.create_conversation(pal_id="p1")
    server.fail_next(400, body={"message": "bad request"}, path=end_path(conv.conversation_id))
    with pytest.raises(TavusAPIError) as info:
        await api.end_conversation(conv.conversation_id)
    assert info.value.status == 400 and "bad request" in info.value.message
    # the follow-up GET saw the conversation still active
    assert server.requests[-1].method == "GET"


async def test_end_retry_after_a_timed_out_end_is_safe(session, server):
    api = make_api(session, server, timeout_s=0.1)
    conv = await api.create_conversation(pal_id="p1")
    server.delay_next(0.5, path=end_path(conv.conversation_id))  # processed, answer lost
    await api.end_conversation(conv.conversation_id)
    assert len(server.requests_to("POST", end_path(conv.conversation_id))) == 2
    assert server.conversations[conv.conversation_id]["status"] == "ended"


async def test_end_is_retried_on_503(api, server):
    conv = await api.create_conversation(pal_id="p1")
    server.fail_next(503, times=2, path=end_path(conv.conversation_id))
    await api.end_conversation(conv.conversation_id)
    assert len(server.requests_to("POST", end_path(conv.conversation_id))) == 3
    assert server.conversations[conv.conversation_id]["status"] == "ended"


# ---------------------------------------------------------------------- conversation() scope


def ends_of(server, conversation_id):
    return server.requests_to("POST", end_path(conversation_id))


async def test_scope_ends_on_normal_exit(api, server):
    async with api.conversation(pal_id="p1", conversation_name="n") as conv:
        assert server.conversations[conv.conversation_id]["status"] == "active"
        assert server.requests[0].json == {"pal_id": "p1", "conversation_name": "n"}
    assert server.conversations[conv.conversation_id]["status"] == "ended"
    assert len(ends_of(server, conv.conversation_id)) == 1


async def test_scope_ends_once_when_the_body_raises(api, server):
    with pytest.raises(RuntimeError, match="bot crashed"):
        async with api.conversation(pal_id="p1") as conv:
            raise RuntimeError("bot crashed")
    assert len(ends_of(server, conv.conversation_id)) == 1
    assert server.conversations[conv.conversation_id]["status"] == "ended"


async def test_scope_ends_once_when_the_body_is_cancelled(api, server):
    entered = asyncio.Event()
    seen: list[Conversation] = []

    async def body():
        async with api.conversation(pal_id="p1") as conv:
            seen.append(conv)
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [conv] = seen
    assert len(ends_of(server, conv.conversation_id)) == 1
    assert server.conversations[conv.conversation_id]["status"] == "ended"


async def test_scope_second_cancellation_while_ending_still_ends_once(api, server):
    entered = asyncio.Event()
    seen: list[Conversation] = []

    async def body():
        async with api.conversation(pal_id="p1") as conv:
            seen.append(conv)
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await entered.wait()
    [conv] = seen
    server.delay_next(0.1, path=end_path(conv.conversation_id))
    task.cancel()
    await server.wait_for_request(path=end_path(conv.conversation_id))
    task.cancel()  # cancelled again while the end is in flight
    with pytest.raises(asyncio.CancelledError):
        await task
    # the end goes on in the background and is not repeated
    assert api._background
    await asyncio.gather(*api._background)
    assert len(ends_of(server, conv.conversation_id)) == 1
    assert server.conversations[conv.conversation_id]["status"] == "ended"


async def test_scope_ends_a_conversation_whose_create_was_cancelled(api, server):
    server.delay_next(0.2, method="POST", path=CONVERSATIONS)  # created at once, answered late
    reached_body = False

    async def body():
        nonlocal reached_body
        async with api.conversation(pal_id="p1"):
            reached_body = True

    task = asyncio.create_task(body())
    await server.wait_for_request(method="POST", path=CONVERSATIONS)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not reached_body
    [conversation_id] = server.conversations
    assert server.conversations[conversation_id]["status"] == "ended"
    assert len(ends_of(server, conversation_id)) == 1


async def test_scope_end_failure_is_logged_not_raised_over_the_original(api, server, log_lines):
    with pytest.raises(KeyError, match="original"):
        async with api.conversation(pal_id="p1") as conv:
            server.fail_next(500, times=10, path=end_path(conv.conversation_id))
            raise KeyError("original")
    assert len(ends_of(server, conv.conversation_id)) == 4  # 1 + max_retries
    assert any("could not end conversation" in line for line in log_lines)


async def test_scope_end_failure_on_normal_exit_is_raised(api, server):
    with pytest.raises(TavusAPIError) as info:
        async with api.conversation(pal_id="p1") as conv:
            server.fail_next(500, times=10, path=end_path(conv.conversation_id))
    assert info.value.status == 500


async def test_scope_create_failure_propagates_and_ends_nothing(api, server):
    server.fail_next(400, body={"message": "unknown pal"})
    with pytest.raises(TavusAPIError, match="unknown pal"):
        async with api.conversation(pal_id="p1"):
            pytest.fail("body must not run")
    assert [r.method for r in server.requests] == ["POST"]


async def test_scope_cannot_be_entered_twice(api):
    scope = api.conversation(pal_id="p1")
    async with scope:
        pass
    with pytest.raises(RuntimeError, match="only be entered once"):
        async with scope:
            pass


# ---------------------------------------------------------------------- personas and PALs

WEATHER = FunctionSchema(
    name="get_weather",
    description="Weather for a city.",
    properties={"city": {"type": "string"}},
    required=["city"],
)
WEATHER_TAVUS = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_create_persona_with_tools(api, server):
    persona = await api.create_persona(
        name="Support",
        system_prompt="Be helpful.",
        pipeline_mode="full",
        default_replica_id="r1",
        layers={"llm": {"model": "tavus-llama"}, "tts": {"tts_engine": "cartesia"}},
        tools=[WEATHER],
    )
    assert isinstance(persona, Persona)
    assert persona.persona_id.startswith("p") and persona.pal_id == persona.persona_id
    request = server.requests[-1]
    assert request.path == "/v2/personas"
    assert request.json == {
        "persona_name": "Support",
        "system_prompt": "Be helpful.",
        "pipeline_mode": "full",
        "default_replica_id": "r1",
        "layers": {
            "llm": {"model": "tavus-llama", "tools": [WEATHER_TAVUS]},
            "tts": {"tts_engine": "cartesia"},
        },
    }


async def test_create_pal_with_tools_schema(api, server):
    pal = await api.create_pal(
        name="Echo", pipeline_mode="echo", default_face_id="r2", tools=ToolsSchema([WEATHER])
    )
    assert pal.pal_id and pal.pal_name == pal.persona_name == "Echo"
    assert pal.default_face_id == pal.default_replica_id == "r2"
    request = server.requests[-1]
    assert request.path == "/v2/pals"
    assert request.json == {
        "pal_name": "Echo",
        "pipeline_mode": "echo",
        "default_face_id": "r2",
        "layers": {"llm": {"tools": [WEATHER_TAVUS]}},
    }


async def test_persona_argument_errors(api, server):
    with pytest.raises(ValueError, match="pipeline_mode"):
        await api.create_pal(name="x", pipeline_mode="half")
    with pytest.raises(ValueError, match="tools given twice"):
        await api.create_pal(name="x", layers={"llm": {"tools": []}}, tools=[WEATHER])
    assert server.requests == []
    server.fail_next(429, retry_after=0)
    with pytest.raises(TavusAPIError) as info:
        await api.create_persona(name="x", pipeline_mode="full")  # no system prompt
    assert info.value.status == 400 and "system_prompt" in info.value.message
    assert len(server.requests) == 2  # the 429 was retried, the 400 was not


# ---------------------------------------------------------------------- secrecy and config


def test_repr_shows_base_url_only(session):
    api = TavusAPI(api_key=KEY, session=session, base_url="http://127.0.0.1:9/v2/")
    assert repr(api) == str(api) == "TavusAPI(base_url='http://127.0.0.1:9')"
    assert api.base_url == "http://127.0.0.1:9"
    assert KEY not in repr(vars(api))


def test_constructor_validation(session):
    with pytest.raises(ValueError, match="api_key"):
        TavusAPI(api_key="", session=session)
    with pytest.raises(ValueError, match="timeout_s"):
        TavusAPI(api_key=KEY, session=session, timeout_s=0)


async def test_unexpected_success_body_is_an_error(api, server):
    server.fail_next(200, body={"no": "id"})
    with pytest.raises(TavusAPIError, match="conversation_id"):
        await api.create_conversation(pal_id="p1")


def test_a_conversation_repr_never_shows_its_meeting_token():
    from pipecat_tavus_interactions.api import Conversation

    conv = Conversation(conversation_id="c1", conversation_url="u", meeting_token="tok-SECRET")
    assert "tok-SECRET" not in repr(conv) and "tok-SECRET" not in str(conv)
    assert conv.meeting_token == "tok-SECRET"


def test_the_key_is_held_as_a_pydantic_secret_and_never_shown(session):
    import traceback

    from pydantic import SecretStr

    api = TavusAPI(api_key=KEY, session=session)
    held = [value for value in vars(api).values() if isinstance(value, SecretStr)]
    assert len(held) == 1 and held[0].get_secret_value() == KEY
    shown = [repr(api), str(api), repr(vars(api)), str(vars(api)), repr(held[0]), str(held[0])]
    assert not [text for text in shown if KEY in text]
    # A traceback rendered with its locals (what crash reporters show) masks it too.
    secret = held[0]
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError as exc:
        rendered = "".join(
            traceback.TracebackException.from_exception(exc, capture_locals=True).format()
        )
    assert "secret = SecretStr('**********')" in rendered
    assert KEY not in rendered


async def test_the_key_is_sent_as_the_x_api_key_header(api, server):
    await api.create_conversation(pal_id="p1")
    (request,) = server.requests
    assert request.authorized  # the simulator compared the real header value with the key
    assert request.headers["x-api-key"] == "***"  # and recorded it masked


# ---------------------------------------------------------------------- the error tree


def test_argument_errors_are_package_configuration_errors(session):
    from pipecat_tavus_interactions.exceptions import (
        ConfigurationError,
        ConfigurationTypeError,
        TavusInteractionsError,
    )

    cases = [
        (lambda: TavusAPI(api_key="", session=session), "TAVUS_API_KEY"),
        (lambda: TavusAPI(api_key=KEY, session=session, max_retries=-1), "max_retries"),
        (lambda: TavusAPI(api_key=KEY, session=session, backoff_s=-1), "backoff_s"),
        (lambda: TavusAPI(api_key=KEY, session=session, timeout_s=0), "timeout_s must be > 0"),
    ]
    for make, message in cases:
        with pytest.raises(ConfigurationError, match=message) as info:
            make()
        assert isinstance(info.value, TavusInteractionsError)
        assert isinstance(info.value, ValueError)  # existing `except ValueError` still works
        assert KEY not in str(info.value)

    api = TavusAPI(api_key=KEY, session=session)
    with pytest.raises(ConfigurationError, match="not both"):
        api.conversation(pal_id="p1", persona_id="p2")
    with pytest.raises(ConfigurationError, match="either by name or in extra"):
        api.conversation(pal_id="p1", extra={"pal_id": "p2"})
    with pytest.raises(ConfigurationTypeError, match="properties must be") as info:
        api.conversation(pal_id="p1", properties=["max_call_duration", 60])
    assert isinstance(info.value, TypeError) and isinstance(info.value, TavusInteractionsError)
    with pytest.raises(ConfigurationTypeError, match="unknown argument.*pal") as info:
        api.conversation(pal="p1")
    assert "pal_id" in str(info.value)  # the message lists what it takes
    assert isinstance(info.value, TypeError)


async def test_call_errors_are_package_errors(api, server):
    from pipecat_tavus_interactions.exceptions import ConfigurationError, UsageError

    with pytest.raises(ConfigurationError, match="conversation_id must be a non-empty string"):
        await api.get_conversation("")
    with pytest.raises(ConfigurationError, match="pipeline_mode must be 'full' or 'echo'"):
        await api.create_pal(name="x", pipeline_mode="half")
    with pytest.raises(ConfigurationError, match=r"layers\['llm'\] must be a mapping"):
        await api.create_pal(name="x", layers={"llm": "gpt"}, tools=[WEATHER])
    assert server.requests == []  # all refused before anything was sent

    scope = api.conversation(pal_id="p1")
    async with scope:
        pass
    with pytest.raises(UsageError, match="call api.conversation") as info:
        async with scope:
            pass
    assert isinstance(info.value, RuntimeError)
