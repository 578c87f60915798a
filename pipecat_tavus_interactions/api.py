"""The Tavus REST client: conversations, personas and PALs over aiohttp.

This module owns :class:`TavusAPI`, its typed results (:class:`Conversation`, :class:`Persona`)
and the create-conversation options (:class:`ConversationProperties`). It talks to the Tavus
REST API (``/v2``) on a caller-provided ``aiohttp.ClientSession`` and turns every failure into a
:class:`~pipecat_tavus_interactions.exceptions.TavusAPIError`.

Failure policy:

* **Retries.** Idempotent calls (get, list, end) are retried with exponential backoff on 429,
  5xx, connection errors and timeouts. Creating calls (conversation, persona, PAL) are retried
  only on 429, which means Tavus did not process the request; a create is never retried after a
  5xx or a timeout, because it may have been processed (and a conversation bills from creation).
  A ``Retry-After`` header, in seconds or as an HTTP date, replaces the backoff delay, capped by
  ``max_retry_delay_s``. Other 4xx answers are never retried.
* **Ending.** :meth:`TavusAPI.end_conversation` is idempotent (see its docstring for exactly
  which answers count as "already ended"), and :meth:`TavusAPI.conversation` ends what it
  created on every exit path, because Tavus bills a conversation from creation until it ends.
* **Secrets.** The API key is held as a ``pydantic.SecretStr``: it is never logged, never part
  of a repr, and never part of an error message; it is also scrubbed from any server message
  that echoes it.
* **Misuse.** Bad arguments raise :class:`~pipecat_tavus_interactions.exceptions.ConfigurationError`
  (a ``ValueError``) or :class:`~pipecat_tavus_interactions.exceptions.ConfigurationTypeError`
  (a ``TypeError``) before anything is sent, with a message that says what to change.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import inspect
import json
import math
from collections.abc import Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from enum import Enum
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from pipecat_tavus_interactions.exceptions import (
    ConfigurationError,
    ConfigurationTypeError,
    TavusAPIError,
    UsageError,
)
from pipecat_tavus_interactions.tool_schema import ToolsLike, export_tavus_tools

__all__ = [
    "ALREADY_ENDED_STATUSES",
    "Conversation",
    "ConversationProperties",
    "Persona",
    "TavusAPI",
    "TavusAPIError",
]

ALREADY_ENDED_STATUSES: frozenset[int] = frozenset({400, 404, 409})
"""Statuses of ``POST /v2/conversations/{id}/end`` that may mean "already ended".

404 always counts as already ended. 400 and 409 count only when a follow-up
``GET /v2/conversations/{id}`` reports ``status == "ended"`` (or itself answers 404).
"""

_MASK = "***"
_MAX_ERROR_TEXT = 300


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
            raise ValueError("the response has neither pal_id nor persona_id")
        return self


class _Retry(Enum):
    IDEMPOTENT = "idempotent"  # 429, 5xx, connection errors, timeouts
    RATE_LIMIT_ONLY = "rate_limit_only"  # 429 only: the request was not processed


class TavusAPI:
    """Async client for the Tavus REST API, on an injected ``aiohttp.ClientSession``.

    The session is not closed by this client; its owner closes it.

    Example::

        async with aiohttp.ClientSession() as session:
            api = TavusAPI(api_key=key, session=session)
            async with api.conversation(pal_id="p123", face_id="r456") as conv:
                print(conv.conversation_url)   # join it; it is ended when the block exits
    """

    DEFAULT_BASE_URL = "https://tavusapi.com"

    def __init__(
        self,
        *,
        api_key: str,
        session: aiohttp.ClientSession,
        base_url: str = DEFAULT_BASE_URL,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_retry_delay_s: float = 10.0,
        timeout_s: float = 30.0,
    ):
        """Create the client.

        Args:
            api_key: The Tavus API key, sent as the ``x-api-key`` header.
            session: The aiohttp session to send requests on.
            base_url: The API origin, without ``/v2`` (a trailing ``/v2`` is accepted and
                removed).
            max_retries: Retries after the first attempt for retryable failures (so at most
                ``max_retries + 1`` attempts).
            backoff_s: Delay before the first retry; doubled for each further retry.
            max_retry_delay_s: Upper bound for one retry delay, including one asked for by a
                ``Retry-After`` header.
            timeout_s: Total time allowed for one attempt (connect, send, read).

        Raises:
            ConfigurationError: An empty key, or a negative/zero retry or timeout setting
                (also a ``ValueError``).
        """
        if not isinstance(api_key, str) or not api_key:
            raise ConfigurationError(
                "api_key must be a non-empty string: pass your Tavus API key (for example "
                "from the TAVUS_API_KEY environment variable)"
            )
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, not {max_retries}")
        if backoff_s < 0 or max_retry_delay_s < 0:
            raise ConfigurationError(
                f"backoff_s and max_retry_delay_s must be >= 0, not {backoff_s} and "
                f"{max_retry_delay_s}"
            )
        if timeout_s <= 0:
            raise ConfigurationError(f"timeout_s must be > 0, not {timeout_s}")
        base = base_url.rstrip("/")
        if base.endswith("/v2"):
            base = base[: -len("/v2")]
        # SecretStr: its repr and str are masked, so tracebacks with locals cannot show it.
        self._api_key = SecretStr(api_key)
        self._session = session
        self._base_url = base
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_retry_delay_s = max_retry_delay_s
        self._timeout_s = timeout_s
        # Ends that outlived a second cancellation; kept referenced until they finish.
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def base_url(self) -> str:
        """The API origin requests go to (without ``/v2``)."""
        return self._base_url

    def __repr__(self) -> str:
        return f"TavusAPI(base_url={self._base_url!r})"

    # ------------------------------------------------------------------ conversations

    async def create_conversation(
        self,
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
    ) -> Conversation:
        """Create a conversation (``POST /v2/conversations``). Billing starts now.

        Prefer :meth:`conversation`, which also ends it. Arguments left as ``None`` are not
        sent. Retried only on 429.

        Args:
            face_id: The face (replica) to use; optional when the PAL has a default face.
            pal_id: The PAL (persona) to use.
            replica_id: Legacy name of ``face_id``; give one of the two.
            persona_id: Legacy name of ``pal_id``; give one of the two.
            callback_url: Webhook URL for system and application events.
            conversation_name: A name for the conversation.
            conversational_context: Text appended to the PAL's system prompt for this call.
            custom_greeting: The replica's (non-interruptible) opening line.
            audio_only: Voice only, no replica video.
            test_mode: Create it already ended: no replica joins and nothing is billed.
            require_auth: Private room; the result then carries ``meeting_token``.
            properties: Call properties (timeouts, recording, language, ...).
            extra: Further body fields sent as-is (for example ``memory_stores``); they may
                not repeat a field given by name.

        Returns:
            The created conversation.

        Raises:
            ConfigurationError: Both spellings of one id, or ``extra`` repeats a named field.
            ConfigurationTypeError: ``properties`` is not a ``ConversationProperties``, a
                mapping or ``None``.
            TavusAPIError: The API refused the request or could not be reached.
        """
        body = _conversation_body(
            face_id=face_id,
            pal_id=pal_id,
            replica_id=replica_id,
            persona_id=persona_id,
            callback_url=callback_url,
            conversation_name=conversation_name,
            conversational_context=conversational_context,
            custom_greeting=custom_greeting,
            audio_only=audio_only,
            test_mode=test_mode,
            require_auth=require_auth,
            properties=properties,
            extra=extra,
        )
        return await self._post_conversation(body)

    def conversation(self, **kwargs: Any) -> AbstractAsyncContextManager[Conversation]:
        """Create a conversation for the length of an ``async with`` block, then end it.

        The conversation is ended exactly once on every exit path: normal exit, an exception,
        or cancellation of the block. If the block is cancelled while the create request is
        in flight, the client waits for Tavus to answer and ends what was created before the
        cancellation propagates (a second cancellation leaves that to a background task).

        A failure to end is logged as a warning and never replaces an exception already
        leaving the block; on a normal exit it is raised as :class:`TavusAPIError`.

        Example::

            async with api.conversation(pal_id="p123", face_id="r456") as conv:
                await run_bot(conv.conversation_url)

        Args:
            **kwargs: The keyword arguments of :meth:`create_conversation`.

        Returns:
            An async context manager that yields the :class:`Conversation`.

        Raises:
            ConfigurationError: Invalid arguments (checked now, before anything is sent).
            ConfigurationTypeError: An unknown keyword argument, or an argument of the wrong
                type.
        """
        unknown = sorted(set(kwargs) - _CONVERSATION_ARGUMENTS)
        if unknown:
            raise ConfigurationTypeError(
                f"conversation() got unknown argument(s) {', '.join(unknown)}; it takes the "
                f"keyword arguments of create_conversation: "
                f"{', '.join(sorted(_CONVERSATION_ARGUMENTS))}"
            )
        return _ConversationScope(self, _conversation_body(**kwargs))

    async def get_conversation(
        self, conversation_id: str, *, verbose: bool = False
    ) -> Conversation:
        """Fetch a conversation (``GET /v2/conversations/{id}``). Retried when retryable.

        Args:
            conversation_id: The conversation id.
            verbose: Ask for the conversation's recorded events (kept as ``events``).

        Returns:
            The conversation.

        Raises:
            TavusAPIError: The API refused the request (404 for an unknown id) or could not
                be reached.
        """
        path = f"/v2/conversations/{_segment(conversation_id)}"
        params = {"verbose": "true"} if verbose else None
        status, raw = await self._request("GET", path, params=params, retry=_Retry.IDEMPOTENT)
        return _parse(Conversation, raw, status, f"GET {path}")

    async def list_conversations(
        self,
        *,
        limit: int | None = None,
        page: int | None = None,
        status: Literal["active", "ended"] | None = None,
    ) -> list[Conversation]:
        """List conversations (``GET /v2/conversations``). Retried when retryable.

        Args:
            limit: Page size.
            page: Page number.
            status: Only conversations in this status.

        Returns:
            The conversations of the requested page.

        Raises:
            TavusAPIError: The API refused the request or could not be reached.
        """
        query = {"limit": limit, "page": page, "status": status}
        params = {k: str(v) for k, v in query.items() if v is not None} or None
        path = "/v2/conversations"
        code, raw = await self._request("GET", path, params=params, retry=_Retry.IDEMPOTENT)
        data = _json_object(raw, code, f"GET {path}")
        items = data.get("data", [])
        if not isinstance(items, list):
            raise TavusAPIError(f"unexpected response to GET {path}: 'data' is not a list")
        return [_validate(Conversation, item, code, f"GET {path}") for item in items]

    async def end_conversation(self, conversation_id: str) -> None:
        """End a conversation (``POST /v2/conversations/{id}/end``). Idempotent.

        Retried when retryable. Success is any 2xx answer (204 or JSON). Ending a
        conversation that has already ended returns normally too. "Already ended" is:

        * **404**: the conversation does not exist (ended and deleted, or never created):
          there is nothing left to end and nothing is billed;
        * **400 or 409**, when a follow-up ``GET /v2/conversations/{id}`` reports
          ``status == "ended"`` or answers 404. Otherwise the original 400/409 is raised.

        This also makes a retry after a timed-out end safe: the first attempt may have ended
        the call, and the retry then sees "already ended".

        Args:
            conversation_id: The conversation id.

        Raises:
            TavusAPIError: Any other failure, after retries.
        """
        path = f"/v2/conversations/{_segment(conversation_id)}/end"
        try:
            await self._request("POST", path, retry=_Retry.IDEMPOTENT)
        except TavusAPIError as err:
            if err.status == 404:
                logger.debug(f"{self}: conversation {conversation_id} not found; nothing to end")
                return
            if err.status in ALREADY_ENDED_STATUSES and await self._confirm_ended(conversation_id):
                logger.debug(f"{self}: conversation {conversation_id} had already ended")
                return
            raise
        logger.debug(f"{self}: ended conversation {conversation_id}")

    async def _confirm_ended(self, conversation_id: str) -> bool:
        try:
            conversation = await self.get_conversation(conversation_id)
        except TavusAPIError as err:
            return err.status == 404
        return conversation.ended

    async def _post_conversation(self, body: dict[str, Any]) -> Conversation:
        path = "/v2/conversations"
        status, raw = await self._request("POST", path, body=body, retry=_Retry.RATE_LIMIT_ONLY)
        conversation = _parse(Conversation, raw, status, f"POST {path}")
        logger.debug(f"{self}: created conversation {conversation.conversation_id}")
        return conversation

    # ------------------------------------------------------------------ personas / PALs

    async def create_persona(
        self,
        *,
        name: str | None = None,
        system_prompt: str | None = None,
        pipeline_mode: Literal["full", "echo"] | None = None,
        default_replica_id: str | None = None,
        layers: Mapping[str, Any] | None = None,
        tools: ToolsLike = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Persona:
        """Create a persona, the legacy name of a PAL (``POST /v2/personas``).

        Retried only on 429. Arguments left as ``None`` are not sent.

        Args:
            name: Sent as ``persona_name``.
            system_prompt: The system prompt (Tavus requires it in ``full`` mode).
            pipeline_mode: ``"full"`` (Tavus runs STT, LLM, TTS) or ``"echo"``.
            default_replica_id: The replica used when a conversation names none.
            layers: Layer configuration (``perception``, ``stt``, ``conversational_flow``,
                ``llm``, ``tts``, ``transport``), sent as given apart from the tools.
            tools: Pipecat ``FunctionSchema``s or a ``ToolsSchema``, exported into
                ``layers.llm.tools`` (see :func:`export_tavus_tools`).
            extra: Further body fields sent as-is; they may not repeat a named field.

        Returns:
            The created persona.

        Raises:
            ConfigurationError: Bad ``pipeline_mode``, tools given both here and in
                ``layers``, or ``extra`` repeating a named field.
            TavusAPIError: The API refused the request or could not be reached.
        """
        body = _persona_body(
            names=("persona_name", "default_replica_id"),
            name=name,
            system_prompt=system_prompt,
            pipeline_mode=pipeline_mode,
            default_id=default_replica_id,
            layers=layers,
            tools=tools,
            extra=extra,
        )
        return await self._post_persona("/v2/personas", body)

    async def create_pal(
        self,
        *,
        name: str | None = None,
        system_prompt: str | None = None,
        pipeline_mode: Literal["full", "echo"] | None = None,
        default_face_id: str | None = None,
        layers: Mapping[str, Any] | None = None,
        tools: ToolsLike = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Persona:
        """Create a PAL (``POST /v2/pals``).

        Retried only on 429. Arguments left as ``None`` are not sent.

        Args:
            name: Sent as ``pal_name``.
            system_prompt: The system prompt (Tavus requires it in ``full`` mode).
            pipeline_mode: ``"full"`` (Tavus runs STT, LLM, TTS) or ``"echo"``.
            default_face_id: The face used when a conversation names none.
            layers: Layer configuration, sent as given apart from the tools.
            tools: Pipecat ``FunctionSchema``s or a ``ToolsSchema``, exported into
                ``layers.llm.tools`` (see :func:`export_tavus_tools`).
            extra: Further body fields sent as-is; they may not repeat a named field.

        Returns:
            The created PAL.

        Raises:
            ConfigurationError: Bad ``pipeline_mode``, tools given both here and in
                ``layers``, or ``extra`` repeating a named field.
            TavusAPIError: The API refused the request or could not be reached.
        """
        body = _persona_body(
            names=("pal_name", "default_face_id"),
            name=name,
            system_prompt=system_prompt,
            pipeline_mode=pipeline_mode,
            default_id=default_face_id,
            layers=layers,
            tools=tools,
            extra=extra,
        )
        return await self._post_persona("/v2/pals", body)

    async def _post_persona(self, path: str, body: dict[str, Any]) -> Persona:
        status, raw = await self._request("POST", path, body=body, retry=_Retry.RATE_LIMIT_ONLY)
        persona = _parse(Persona, raw, status, f"POST {path}")
        logger.debug(f"{self}: created {path.rsplit('/', 1)[-1][:-1]} {persona.pal_id}")
        return persona

    # ------------------------------------------------------------------ HTTP core

    async def _request(
        self,
        method: str,
        path: str,
        *,
        retry: _Retry,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one logical request, retrying per ``retry``; return (status, body) on 2xx."""
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                status, raw, retry_after = await self._send_once(method, path, body, params)
            except TavusAPIError as err:  # no response: connection error or timeout
                error = err
            else:
                if 200 <= status < 300:
                    logger.debug(f"{self}: {method} {path} -> {status}")
                    return status, raw
                error = TavusAPIError(
                    f"{self._error_text(raw, status)} ({method} {path})",
                    status=status,
                    retryable=status == 429 or status >= 500,
                )
            may_retry = error.status == 429 or (retry is _Retry.IDEMPOTENT and error.retryable)
            if not may_retry or attempt > self._max_retries:
                logger.debug(f"{self}: {method} {path} failed after {attempt} attempt(s): {error}")
                raise error
            delay = self._retry_delay(attempt, retry_after)
            logger.debug(
                f"{self}: {method} {path} failed ({error}); "
                f"retry {attempt}/{self._max_retries} in {delay:.3f}s"
            )
            await asyncio.sleep(delay)

    async def _send_once(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> tuple[int, bytes, float | None]:
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                json=body,
                params=params,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as response:
                raw = await response.read()
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                return response.status, raw, retry_after
        except TimeoutError:
            # "from None": the aiohttp exception chain carries request details (headers).
            raise TavusAPIError(
                f"no response within {self._timeout_s:g}s ({method} {path})", retryable=True
            ) from None
        except aiohttp.ClientError as exc:
            detail = self._redact(str(exc)) or type(exc).__name__
            raise TavusAPIError(
                f"{type(exc).__name__}: {detail} ({method} {path})", retryable=True
            ) from None

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key.get_secret_value(), "Accept": "application/json"}

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_retry_delay_s)
        return min(self._backoff_s * 2 ** (attempt - 1), self._max_retry_delay_s)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key.get_secret_value(), _MASK)

    def _error_text(self, raw: bytes, status: int) -> str:
        """A readable message from an error body: its ``message``/``error`` when JSON."""
        # Redact before any truncation, so a cut can never leave part of the key behind.
        text = self._redact(raw.decode("utf-8", errors="replace")).strip()
        message: str | None = None
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("message", "error", "detail"):
                value = data.get(key)
                if isinstance(value, dict):
                    value = value.get("message")
                if isinstance(value, str) and value.strip():
                    message = value.strip()
                    break
        if message is None and text and not isinstance(data, dict | list):
            message = text
        if message is None:
            try:
                message = HTTPStatus(status).phrase
            except ValueError:
                message = "error"
        if len(message) > _MAX_ERROR_TEXT:
            message = message[:_MAX_ERROR_TEXT] + "..."
        return message

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task that stays referenced until it finishes."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _log_if_failed(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning(f"{self}: background end failed: {task.exception()}")


class _ConversationScope(AbstractAsyncContextManager[Conversation]):
    """Creates a conversation on enter and ends it exactly once on exit."""

    def __init__(self, api: TavusAPI, body: dict[str, Any]):
        self._api = api
        self._body = body
        self._entered = False
        self._conversation: Conversation | None = None
        self._ended = False

    async def __aenter__(self) -> Conversation:
        if self._entered:
            raise UsageError(
                "a conversation() scope can only be entered once: call api.conversation(...) "
                "again for another conversation"
            )
        self._entered = True
        create = asyncio.ensure_future(self._api._post_conversation(self._body))
        try:
            self._conversation = await asyncio.shield(create)
        except asyncio.CancelledError:
            # Tavus may already have created (and started billing) the conversation: wait for
            # the answer and end it before the cancellation goes on.
            cleanup = self._api._spawn(self._end_when_created(create))
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                logger.debug(f"{self._api}: cancelled again; ending continues in background")
            raise
        return self._conversation

    async def _end_when_created(self, create: asyncio.Future[Conversation]) -> None:
        try:
            conversation = await create
        except (Exception, asyncio.CancelledError):
            return  # nothing was created, or there is no id to end
        self._ended = True
        try:
            await self._api.end_conversation(conversation.conversation_id)
        except Exception as err:
            logger.warning(
                f"{self._api}: could not end conversation {conversation.conversation_id} "
                f"after a cancelled create: {err}"
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._conversation is None or self._ended:
            return False
        self._ended = True
        conversation_id = self._conversation.conversation_id
        end = self._api._spawn(self._api.end_conversation(conversation_id))
        try:
            # Shielded: a second cancellation must not abort the end half-way.
            await asyncio.shield(end)
        except asyncio.CancelledError:
            logger.debug(f"{self._api}: cancelled while ending {conversation_id}; continuing")
            end.add_done_callback(self._api._log_if_failed)
            raise
        except Exception as err:
            if exc_type is None:
                raise
            logger.warning(
                f"{self._api}: could not end conversation {conversation_id} "
                f"(it bills until its timeouts end it): {err}"
            )
        return False


# ---------------------------------------------------------------------- request bodies


def _segment(value: str) -> str:
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


def _conversation_body(
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
    if props:
        body["properties"] = props
    return _merge_extra(body, extra)


_CONVERSATION_ARGUMENTS = frozenset(inspect.signature(_conversation_body).parameters)


def _persona_body(
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


# ---------------------------------------------------------------------- responses

_M = TypeVar("_M", bound=BaseModel)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _json_object(raw: bytes, status: int, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TavusAPIError(f"unexpected response to {what}: not a JSON object", status=status)
    return data


def _validate(model: type[_M], data: Any, status: int, what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or e["msg"] for e in exc.errors())
        raise TavusAPIError(
            f"unexpected response to {what}: {model.__name__} invalid ({fields})", status=status
        ) from None


def _parse(model: type[_M], raw: bytes, status: int, what: str) -> _M:
    return _validate(model, _json_object(raw, status, what), status, what)
