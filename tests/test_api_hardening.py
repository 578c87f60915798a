"""The REST client against hostile answers: redirects, deep or huge bodies, echoed key prefixes.

Every server here is a loopback ``aiohttp.web`` app (or the ``TavusRestSimulator``) on
``127.0.0.1``; two servers on different ports are two origins, as two hosts would be.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from loguru import logger

from pipecat_tavus_interactions.api import TavusAPI, TavusAPIError
from pipecat_tavus_interactions.exceptions import ConfigurationError
from pipecat_tavus_interactions.simulator.rest import TavusRestSimulator

KEY = "tvs-SECRET-9f2b7c41d0e3a8"
PREFIX = KEY[:8]  # the shortest prefix that must never be shown
CONVERSATIONS = "/v2/conversations"
CREATED = {"conversation_id": "c1", "conversation_url": "https://tavus.daily.co/c1"}


@pytest.fixture(autouse=True)
def log_lines():
    """Capture every loguru line and check that none shows the key or an 8-char prefix."""
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG", format="{level} {name} {message}")
    yield lines
    logger.remove(sink_id)
    leaked = [line for line in lines if PREFIX in line]
    assert not leaked, leaked


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@dataclass
class Seen:
    """One request as a test server received it."""

    method: str
    path: str
    api_key: str | None
    body: bytes


@dataclass
class Server:
    """A loopback server: its URL and every request it received."""

    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)


@asynccontextmanager
async def serve(handler) -> AsyncIterator[Server]:
    """Run ``handler(request, server)`` for every request on a loopback port."""
    server = Server()

    async def entry(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        server.seen.append(
            Seen(request.method, request.path, request.headers.get("x-api-key"), body)
        )
        return await handler(request, server)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", entry)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


def make_api(session, base_url: str, **overrides) -> TavusAPI:
    settings = dict(max_retries=0, backoff_s=0.001, timeout_s=5.0)
    settings.update(overrides)
    return TavusAPI(api_key=KEY, session=session, base_url=base_url, **settings)


async def answer_created(request: web.Request, server: Server) -> web.StreamResponse:
    return web.json_response(CREATED)


# ---------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_to_another_origin_is_refused_and_never_gets_the_key(session, status):
    async with serve(answer_created) as other:

        async def redirect_away(request, server):
            return web.Response(status=status, headers={"Location": f"{other.base_url}/collect"})

        async with serve(redirect_away) as api_server:
            api = make_api(session, api_server.base_url)
            with pytest.raises(TavusAPIError) as info:
                await api.create_conversation(pal_id="p1", conversational_context="private")
    assert info.value.status == status and not info.value.retryable
    assert "another origin" in info.value.message
    assert other.base_url.removeprefix("http://") in info.value.message
    assert [(s.method, s.api_key) for s in api_server.seen] == [("POST", KEY)]
    assert other.seen == []  # neither the key nor the body went there


async def test_a_get_redirected_to_another_origin_is_refused_too(session):
    async with serve(answer_created) as other:

        async def redirect_away(request, server):
            return web.Response(status=302, headers={"Location": f"{other.base_url}/v2/x"})

        async with serve(redirect_away) as api_server:
            api = make_api(session, api_server.base_url, max_retries=2)
            with pytest.raises(TavusAPIError, match="another origin"):
                await api.get_conversation("c1")
    assert len(api_server.seen) == 1  # refused, not retried
    assert other.seen == []


async def test_a_redirect_within_the_origin_is_followed_with_key_and_body(session):
    async def moved(request, server):
        if request.path == CONVERSATIONS:
            return web.Response(status=307, headers={"Location": "/v2/conversations/new"})
        return web.json_response(CREATED)

    async with serve(moved) as api_server:
        api = make_api(session, api_server.base_url)
        conversation = await api.create_conversation(pal_id="p1")
    assert conversation.conversation_id == "c1"
    assert [(s.method, s.path, s.api_key) for s in api_server.seen] == [
        ("POST", CONVERSATIONS, KEY),
        ("POST", "/v2/conversations/new", KEY),
    ]
    assert json.loads(api_server.seen[1].body) == {"pal_id": "p1"}


async def test_a_303_within_the_origin_becomes_a_get_without_the_body(session):
    async def see_other(request, server):
        if request.method == "POST":
            return web.Response(status=303, headers={"Location": "/v2/conversations/c1"})
        return web.json_response(CREATED)

    async with serve(see_other) as api_server:
        api = make_api(session, api_server.base_url)
        assert (await api.create_conversation(pal_id="p1")).conversation_id == "c1"
    assert [(s.method, s.body) for s in api_server.seen][1] == ("GET", b"")


async def test_a_redirect_loop_stops_after_five_hops(session):
    async def loop(request, server):
        return web.Response(status=307, headers={"Location": request.path})

    async with serve(loop) as api_server:
        api = make_api(session, api_server.base_url)
        with pytest.raises(TavusAPIError, match="more than 5 redirects"):
            await api.get_conversation("c1")
    assert len(api_server.seen) == 6


# ---------------------------------------------------------------------- deep and huge bodies


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [150, 100_000])
async def test_deeply_nested_json_is_a_tavus_api_error(session, depth):
    body = json.dumps(CREATED)[:-1] + f', "events": {nested(depth)}}}'

    async def deep(request, server):
        return web.Response(body=body.encode(), content_type="application/json")

    async with serve(deep) as api_server:
        api = make_api(session, api_server.base_url)
        with pytest.raises(TavusAPIError, match="nested deeper than 100 levels") as info:
            await api.get_conversation("c1")
    assert info.value.status == 200


async def test_deeply_nested_json_in_an_error_answer_is_a_tavus_api_error(session):
    async def deep(request, server):
        return web.Response(status=400, body=nested(100_000).encode())

    async with serve(deep) as api_server:
        api = make_api(session, api_server.base_url)
        with pytest.raises(TavusAPIError) as info:
            await api.create_conversation(pal_id="p1")
    assert info.value.status == 400 and len(info.value.message) < 400


async def test_json_nested_within_the_limit_is_accepted(session):
    body = {**CREATED, "events": json.loads(nested(90))}

    async def fine(request, server):
        return web.json_response(body)

    async with serve(fine) as api_server:
        conversation = await make_api(session, api_server.base_url).get_conversation("c1")
    assert conversation.model_extra["events"] == body["events"]


async def test_an_answer_over_max_response_bytes_is_refused(session):
    # Valid JSON, so only the size can refuse it.
    body = json.dumps({**CREATED, "padding": "x" * (4 << 20)}).encode()

    async def big(request, server):
        return web.Response(body=body, content_type="application/json")

    async with serve(big) as api_server:
        api = make_api(session, api_server.base_url, max_response_bytes=1 << 20)
        with pytest.raises(TavusAPIError, match="max_response_bytes=1048576") as info:
            await api.get_conversation("c1")
        assert info.value.status == 200 and not info.value.retryable
        # The same answer fits a larger limit.
        roomy = make_api(session, api_server.base_url, max_response_bytes=8 << 20)
        assert (await roomy.get_conversation("c1")).conversation_id == "c1"


async def test_a_streamed_answer_is_read_only_up_to_the_limit(session):
    """A chunked body with no length: the client stops reading at the limit and hangs up."""
    total = 256 << 20
    chunk = b"x" * (256 << 10)
    written: list[int] = [0]

    async def endless(request, server):
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            while written[0] < total:
                await response.write(chunk)
                written[0] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up
        return response

    async with serve(endless) as api_server:
        api = make_api(session, api_server.base_url, max_response_bytes=1 << 20)
        with pytest.raises(TavusAPIError, match="max_response_bytes"):
            await api.get_conversation("c1")
    # What the server wrote before the hang-up: the limit plus socket buffers, far from all.
    assert written[0] < total // 4


async def test_a_declared_length_over_the_limit_is_refused_before_reading(session):
    async def declared(request, server):
        response = web.StreamResponse(headers={"Content-Length": str(512 << 20)})
        await response.prepare(request)
        await response.write(b"{")
        return response

    async with serve(declared) as api_server:
        api = make_api(session, api_server.base_url, max_response_bytes=1 << 20)
        with pytest.raises(TavusAPIError, match="max_response_bytes"):
            await api.get_conversation("c1")


async def test_a_huge_error_answer_keeps_its_status_and_is_retried(session):
    calls: list[int] = []

    async def flaky(request, server):
        calls.append(1)
        if len(calls) == 1:
            return web.Response(status=503, body=b"e" * (2 << 20))
        return web.json_response(CREATED)

    async with serve(flaky) as api_server:
        api = make_api(session, api_server.base_url, max_retries=1, max_response_bytes=1 << 20)
        assert (await api.get_conversation("c1")).conversation_id == "c1"
    assert len(calls) == 2


@pytest.mark.parametrize("bad", [0, 1023, -1, 1.5, True, "1MB"])
def test_max_response_bytes_is_checked(bad):
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        TavusAPI(api_key=KEY, session=object(), max_response_bytes=bad)


# ---------------------------------------------------------------------- key prefixes


@pytest.mark.parametrize("shown", [KEY[:8], KEY[:12], KEY[:-1], f"{KEY}{KEY[:9]}"])
async def test_a_server_echoing_a_prefix_of_the_key_never_shows_it(session, shown):
    async with TavusRestSimulator(api_key=KEY) as server:
        server.fail_next(403, body={"message": f"key {shown}... is not allowed here"})
        api = make_api(session, server.base_url)
        with pytest.raises(TavusAPIError) as info:
            await api.create_conversation(pal_id="p1")
    assert PREFIX not in str(info.value) and PREFIX not in repr(info.value)
    assert info.value.message.startswith("key ***")
    assert "is not allowed here" in info.value.message


async def test_short_matches_and_other_text_are_left_alone(session):
    async with TavusRestSimulator(api_key=KEY) as server:
        server.fail_next(403, body={"message": f"key {KEY[:7]} and tvs-OTHER-1234 refused"})
        api = make_api(session, server.base_url)
        with pytest.raises(TavusAPIError) as info:
            await api.create_conversation(pal_id="p1")
    assert (
        info.value.message == f"key {KEY[:7]} and tvs-OTHER-1234 refused (POST /v2/conversations)"
    )
