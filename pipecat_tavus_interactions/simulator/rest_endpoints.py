"""The in-memory Tavus ``/v2`` endpoints behind :class:`~.rest.TavusRestSimulator`.

This module owns what the loopback REST server answers once a request has passed its key
check and fault injection: the stored state (:class:`RestState`) and the request handlers of
:class:`RestEndpoints` (create, get, list and end conversations; create and get personas and
PALs; the placeholder room page behind each ``conversation_url``), with Tavus-style error
answers (:func:`error_response`). It depends on aiohttp only, never on pipecat.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web
from loguru import logger

__all__ = ["RestEndpoints", "RestState", "error_response"]


class _Server(Protocol):
    """The server the endpoints answer for: its URL, and its name in log lines."""

    @property
    def base_url(self) -> str: ...


@dataclass
class RestState:
    """The stored conversations, personas and PALs, by id."""

    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    personas: dict[str, dict[str, Any]] = field(default_factory=dict)
    pals: dict[str, dict[str, Any]] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _json_body(request: web.Request) -> Any:
    # The middleware already read (and aiohttp cached) the body and rejected non-JSON.
    raw = await request.read()
    return json.loads(raw) if raw else None


def error_response(status: int, message: str) -> web.Response:
    """Return a Tavus-style error answer: ``{"message": ...}`` with ``status``.

    Args:
        status: The HTTP status.
        message: The error message.

    Returns:
        The response.
    """
    return web.json_response({"message": message}, status=status)


class RestEndpoints:
    """The ``/v2`` request handlers and the state they read and change."""

    def __init__(self, server: _Server, *, already_ended_status: int, end_returns_json: bool):
        """Create the endpoints with empty state.

        Args:
            server: The server they answer for (rooms live under its ``base_url``).
            already_ended_status: The answer to ending a conversation that has already ended.
            end_returns_json: Answer a successful end with 200 and a JSON body, not 204.
        """
        self._server = server
        self._already_ended_status = already_ended_status
        self._end_returns_json = end_returns_json
        self.state = RestState()

    def routes(self) -> list[web.RouteDef]:
        """Return the routes of every endpoint, for ``web.Application.add_routes``."""
        return [
            web.post("/v2/conversations", self._create_conversation),
            web.get("/v2/conversations", self._list_conversations),
            web.get("/v2/conversations/{id}", self._get_conversation),
            web.post("/v2/conversations/{id}/end", self._end_conversation),
            web.post("/v2/personas", self._create_persona),
            web.get("/v2/personas/{id}", self._get_persona),
            web.post("/v2/pals", self._create_pal),
            web.get("/v2/pals/{id}", self._get_pal),
            web.get("/rooms/{id}", self._room),
        ]

    def _new_id(self, prefix: str) -> str:
        return prefix + secrets.token_hex(6)

    async def _create_conversation(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return error_response(400, "Request body must be a JSON object")
        for new, legacy in (("face_id", "replica_id"), ("pal_id", "persona_id")):
            if body.get(new) is not None and body.get(legacy) is not None:
                return error_response(400, f"Give {new} or {legacy}, not both")
        ids = ("face_id", "replica_id", "pal_id", "persona_id")
        if not any(isinstance(body.get(key), str) and body[key] for key in ids):
            return error_response(400, "A replica_id (face_id) or persona_id (pal_id) is required")
        properties = body.get("properties")
        if properties is not None and not isinstance(properties, dict):
            return error_response(400, "properties must be an object")
        conversation_id = self._new_id("c")
        record: dict[str, Any] = {
            **body,
            "conversation_id": conversation_id,
            "conversation_url": f"{self._server.base_url}/rooms/{conversation_id}",
            "status": "ended" if body.get("test_mode") else "active",
            "created_at": _now(),
        }
        if body.get("require_auth"):
            record["meeting_token"] = secrets.token_hex(16)
        self.state.conversations[conversation_id] = record
        logger.debug(f"{self._server}: created conversation {conversation_id}")
        return web.json_response(self._conversation_view(record))

    @staticmethod
    def _conversation_view(record: dict[str, Any]) -> dict[str, Any]:
        keys = (
            "conversation_id",
            "conversation_name",
            "conversation_url",
            "status",
            "callback_url",
            "created_at",
            "face_id",
            "replica_id",
            "pal_id",
            "persona_id",
            "meeting_token",
        )
        return {key: record[key] for key in keys if key in record}

    async def _list_conversations(self, request: web.Request) -> web.Response:
        items = list(self.state.conversations.values())
        status = request.query.get("status")
        if status:
            items = [c for c in items if c["status"] == status]
        try:
            limit = int(request.query.get("limit", "10"))
            page = int(request.query.get("page", "1"))
        except ValueError:
            return error_response(400, "limit and page must be integers")
        if limit < 1 or page < 1:
            return error_response(400, "limit and page must be >= 1")
        chunk = items[(page - 1) * limit : page * limit]
        return web.json_response(
            {"data": [self._conversation_view(c) for c in chunk], "total_count": len(items)}
        )

    async def _get_conversation(self, request: web.Request) -> web.Response:
        record = self.state.conversations.get(request.match_info["id"])
        if record is None:
            return error_response(404, "Conversation not found")
        view = self._conversation_view(record)
        if "properties" in record:
            view["properties"] = record["properties"]
        if request.query.get("verbose") == "true":
            view["events"] = []
        return web.json_response(view)

    async def _end_conversation(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["id"]
        record = self.state.conversations.get(conversation_id)
        if record is None:
            return error_response(404, "Conversation not found")
        if record["status"] == "ended":
            return error_response(self._already_ended_status, "Conversation has already ended")
        record["status"] = "ended"
        logger.debug(f"{self._server}: ended conversation {conversation_id}")
        if self._end_returns_json:
            return web.json_response({"conversation_id": conversation_id, "status": "ended"})
        return web.Response(status=204)

    async def _create_persona(self, request: web.Request) -> web.Response:
        return await self._create_persona_like(request, "persona", self.state.personas)

    async def _create_pal(self, request: web.Request) -> web.Response:
        return await self._create_persona_like(request, "pal", self.state.pals)

    async def _create_persona_like(
        self, request: web.Request, kind: str, store: dict[str, dict[str, Any]]
    ) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return error_response(400, "Request body must be a JSON object")
        mode = body.get("pipeline_mode", "full")
        if mode not in ("full", "echo"):
            return error_response(400, "pipeline_mode must be 'full' or 'echo'")
        if mode == "full" and not body.get("system_prompt"):
            return error_response(400, "system_prompt is required in full pipeline mode")
        layers = body.get("layers")
        if layers is not None and not isinstance(layers, dict):
            return error_response(400, "layers must be an object")
        tools = ((layers or {}).get("llm") or {}).get("tools")
        if tools is not None and not (
            isinstance(tools, list)
            and all(isinstance(t, dict) and t.get("type") == "function" for t in tools)
        ):
            return error_response(400, "layers.llm.tools must be a list of function tools")
        new_id = self._new_id("p")
        record = {**body, f"{kind}_id": new_id, "pipeline_mode": mode, "created_at": _now()}
        store[new_id] = record
        logger.debug(f"{self._server}: created {kind} {new_id}")
        return web.json_response(record)

    async def _get_persona(self, request: web.Request) -> web.Response:
        record = self.state.personas.get(request.match_info["id"])
        if record is None:
            return error_response(404, "Persona not found")
        return web.json_response(record)

    async def _get_pal(self, request: web.Request) -> web.Response:
        record = self.state.pals.get(request.match_info["id"])
        if record is None:
            return error_response(404, "PAL not found")
        return web.json_response(record)

    async def _room(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["id"]
        if conversation_id not in self.state.conversations:
            return web.Response(status=404, text="No such room")
        return web.Response(text=f"Simulated Tavus room {conversation_id}")
