"""A loopback Tavus REST server for tests and offline runs.

This module owns :class:`TavusRestSimulator`: an ``aiohttp.web`` server on ``127.0.0.1`` (an
ephemeral port) that serves, with in-memory state, the Tavus ``/v2`` endpoints that
:class:`~pipecat_tavus_interactions.api.TavusAPI` uses:

* ``POST /v2/conversations``, ``GET /v2/conversations``, ``GET /v2/conversations/{id}``,
  ``POST /v2/conversations/{id}/end``;
* ``POST /v2/personas``, ``GET /v2/personas/{id}``, ``POST /v2/pals``, ``GET /v2/pals/{id}``;
* ``GET /rooms/{id}``: a placeholder page behind each ``conversation_url``.

Every ``/v2`` request must carry the configured ``x-api-key`` (401 otherwise). Every request is
recorded (:attr:`TavusRestSimulator.requests`) with the key masked, and tests can inject
failures (:meth:`TavusRestSimulator.fail_next`) and slow answers
(:meth:`TavusRestSimulator.delay_next`). This module owns the server, the recording, the key
check and the fault injection; the endpoints and their state are in :mod:`.rest_endpoints`.
It depends on aiohttp only, never on pipecat.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from loguru import logger

from ..exceptions import ConfigurationError, UsageError
from .rest_endpoints import RestEndpoints, error_response

__all__ = ["RecordedRequest", "TavusRestSimulator"]

_MASKED = "***"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it.

    Parameters:
        method: HTTP method, upper case.
        path: URL path, without the query string.
        query: Query parameters.
        json: The parsed JSON body, or ``None`` when there was none (or it was not JSON).
        headers: Request headers, names lower-cased; the ``x-api-key`` value is replaced by
            ``"***"``.
        authorized: Whether the ``x-api-key`` header matched.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    authorized: bool


@dataclass
class _Fault:
    remaining: int
    method: str | None
    path: str | None
    status: int | None = None
    body: Any = None
    retry_after: float | str | None = None
    delay_s: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and (self.path is None or self.path == path)
        )


class TavusRestSimulator:
    """In-memory Tavus REST API on loopback, with request recording and fault injection.

    Example::

        async with TavusRestSimulator(api_key="test-key") as server:
            api = TavusAPI(api_key="test-key", session=session, base_url=server.base_url)
            server.fail_next(503, times=2)     # the next two requests fail
            conv = await api.get_conversation(cid)
            assert len(server.requests) == 3
    """

    def __init__(
        self,
        *,
        api_key: str,
        already_ended_status: int = 400,
        end_returns_json: bool = False,
    ):
        """Create the server (it does not listen until started).

        Args:
            api_key: The key clients must send as ``x-api-key``.
            already_ended_status: The answer to ending a conversation that has already ended
                (Tavus's exact answer is not documented; 400, 404 or 409 are plausible).
            end_returns_json: Answer a successful end with 200 and a JSON body instead of 204.
        """
        self._api_key = api_key
        self._endpoints = RestEndpoints(
            self, already_ended_status=already_ended_status, end_returns_json=end_returns_json
        )
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._request_event = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        return f"TavusRestSimulator(base_url={self.base_url if self._port else None!r})"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start listening on ``127.0.0.1`` on a free port.

        Raises:
            UsageError: The server is already running.
        """
        if self._runner is not None:
            raise UsageError("the simulator is already running")
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(self._endpoints.routes())
        self._closing.clear()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]
        logger.debug(f"{self}: listening")

    async def stop(self) -> None:
        """Stop the server; delayed answers still pending are released first."""
        if self._runner is None:
            return
        self._closing.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        logger.debug(f"{self}: stopped")

    async def __aenter__(self) -> TavusRestSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on (only once started)."""
        if self._port is None:
            raise UsageError("the simulator has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, to pass as ``TavusAPI(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ test knobs

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        retry_after: float | str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Make the next ``times`` matching requests fail, before any other handling.

        Failures are injected ahead of the key check and leave the state untouched (the
        request is not processed). Several calls queue up; the oldest matching one applies.

        Args:
            status: The HTTP status to answer with.
            times: How many requests fail.
            body: The answer body: a dict/list is sent as JSON, a string as plain text.
                Defaults to ``{"message": "injected failure <status>"}``.
            retry_after: A ``Retry-After`` header value to add (seconds, or any string).
            method: Only requests with this method (default: any).
            path: Only requests to this exact path (default: any).
        """
        if times < 1:
            raise ConfigurationError("times must be >= 1")
        self._faults.append(
            _Fault(
                remaining=times,
                method=method.upper() if method else None,
                path=path,
                status=status,
                body={"message": f"injected failure {status}"} if body is None else body,
                retry_after=retry_after,
            )
        )

    def delay_next(
        self,
        delay_s: float,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests late.

        The request is processed first (state changes happen at once), then the answer waits
        ``delay_s``: a client that gives up meanwhile still caused the change, as with a real
        server behind a slow network.

        Args:
            delay_s: Seconds to hold the answer.
            times: How many requests are delayed.
            method: Only requests with this method (default: any).
            path: Only requests to this exact path (default: any).
        """
        if times < 1:
            raise ConfigurationError("times must be >= 1")
        self._faults.append(
            _Fault(
                remaining=times,
                method=method.upper() if method else None,
                path=path,
                delay_s=delay_s,
            )
        )

    def clear_faults(self) -> None:
        """Drop every injected failure and delay that has not been used yet."""
        self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return list(self._requests)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests with this method and exact path.

        Args:
            method: HTTP method, any case.
            path: The exact URL path.

        Returns:
            The matching requests, oldest first.
        """
        method = method.upper()
        return [r for r in self._requests if r.method == method and r.path == path]

    async def wait_for_request(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        count: int = 1,
        timeout_s: float = 5.0,
    ) -> RecordedRequest:
        """Wait until ``count`` matching requests have arrived.

        Args:
            method: Only requests with this method (default: any).
            path: Only requests to this exact path (default: any).
            count: How many matching requests to wait for.
            timeout_s: Give up after this long.

        Returns:
            The ``count``-th matching request.

        Raises:
            TimeoutError: Fewer requests arrived in time.
        """
        method = method.upper() if method else None

        def matching() -> list[RecordedRequest]:
            return [
                r
                for r in self._requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

        async with asyncio.timeout(timeout_s):
            while len(found := matching()) < count:
                self._request_event.clear()
                await self._request_event.wait()
        return found[count - 1]

    @property
    def conversations(self) -> dict[str, dict[str, Any]]:
        """The stored conversations by id (a shallow copy)."""
        return {cid: dict(c) for cid, c in self._endpoints.state.conversations.items()}

    @property
    def personas(self) -> dict[str, dict[str, Any]]:
        """The stored personas and PALs by id (a shallow copy)."""
        merged = {**self._endpoints.state.personas, **self._endpoints.state.pals}
        return {pid: dict(p) for pid, p in merged.items()}

    def end_conversation(self, conversation_id: str) -> None:
        """End a conversation from the server side, as a Tavus timeout would.

        Args:
            conversation_id: The conversation to end.

        Raises:
            KeyError: No such conversation.
        """
        self._endpoints.state.conversations[conversation_id]["status"] = "ended"

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        provided = request.headers.get("x-api-key")
        authorized = provided is not None and secrets.compare_digest(provided, self._api_key)
        headers = {
            k: (_MASKED if k.lower() == "x-api-key" else v) for k, v in request.headers.items()
        }
        self._requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                json=payload,
                headers=headers,
                authorized=authorized,
            )
        )
        self._request_event.set()

        fault = next((f for f in self._faults if f.matches(request.method, request.path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
            if fault.status is not None:
                logger.debug(f"{self}: injected {fault.status} for {request.method} {request.path}")
                return self._fault_response(fault)
        if not authorized and not request.path.startswith("/rooms/"):
            # Rooms stand for the Daily URL a browser opens: no API key there.
            response: web.StreamResponse = error_response(401, "Invalid access token")
        elif raw and payload is None:
            response = error_response(400, "Request body is not valid JSON")
        else:
            response = await handler(request)
        if fault is not None and fault.delay_s > 0:
            try:
                await asyncio.wait_for(self._closing.wait(), fault.delay_s)
            except TimeoutError:
                pass
        return response

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        assert fault.status is not None
        if isinstance(fault.body, str):
            return web.Response(status=fault.status, text=fault.body, headers=headers)
        return web.json_response(fault.body, status=fault.status, headers=headers)
