"""The Tavus REST client: conversations, personas and PALs over aiohttp.

This module owns :class:`TavusAPI`, its endpoints and this failure policy. It talks to the
Tavus REST API (``/v2``) on a caller-provided ``aiohttp.ClientSession`` and turns every failure
into a :class:`~pipecat_tavus_interactions.exceptions.TavusAPIError`. Its parts live beside it
and are re-exported here where public: the typed results (:class:`Conversation`,
:class:`Persona`) and the create-conversation options (:class:`ConversationProperties`) in
:mod:`.api_models`; retries, timeouts, redaction and answer decoding in :mod:`.api_http`;
request bodies in :mod:`.api_bodies`; the ``conversation()`` scope in :mod:`.api_scope`.

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
  of a repr, and never part of an error message; it, and any prefix of it of 8 or more
  characters, is also scrubbed from any server message that echoes it. The key is sent only to
  the ``base_url`` origin: a redirect within it is followed (at most 5 per attempt), a redirect
  to another origin is refused with a :class:`TavusAPIError` before anything is sent there.
* **Hostile answers.** An answer body is read incrementally up to ``max_response_bytes``, and
  JSON nested deeper than 100 levels is refused; both fail with a :class:`TavusAPIError`.
* **Misuse.** Bad arguments raise :class:`~pipecat_tavus_interactions.exceptions.ConfigurationError`
  (a ``ValueError``) or :class:`~pipecat_tavus_interactions.exceptions.ConfigurationTypeError`
  (a ``TypeError``) before anything is sent, with a message that says what to change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import aiohttp
from loguru import logger

from .api_bodies import CONVERSATION_ARGUMENTS, conversation_body, path_segment, persona_body
from .api_http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Retry,
    RetryingClient,
    json_object,
    parse_model,
    validate_model,
)
from .api_models import Conversation, ConversationProperties, Persona
from .api_scope import ConversationScope
from .exceptions import ConfigurationTypeError, TavusAPIError
from .tool_schema import ToolsLike

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


class TavusAPI(RetryingClient):
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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
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
            timeout_s: Total time allowed for one attempt (connect, send, same-origin
                redirects, read).
            max_response_bytes: The largest answer body read (16 MiB by default); a larger
                answer fails with :class:`TavusAPIError` after reading no more than this.

        Raises:
            ConfigurationError: An empty key, a negative/zero retry or timeout setting, or
                ``max_response_bytes`` under 1024 (also a ``ValueError``).
        """
        super().__init__(
            api_key=api_key,
            session=session,
            base_url=base_url,
            max_retries=max_retries,
            backoff_s=backoff_s,
            max_retry_delay_s=max_retry_delay_s,
            timeout_s=timeout_s,
            max_response_bytes=max_response_bytes,
        )
        # Ends that outlived a second cancellation; kept referenced until they finish.
        self._background: set[asyncio.Task[Any]] = set()

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
        # Every parameter is a body field: pass them all on to the shared body builder.
        given = locals()
        arguments = {name: given[name] for name in CONVERSATION_ARGUMENTS}
        return await self._post_conversation(conversation_body(**arguments))

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
        unknown = sorted(set(kwargs) - CONVERSATION_ARGUMENTS)
        if unknown:
            raise ConfigurationTypeError(
                f"conversation() got unknown argument(s) {', '.join(unknown)}; it takes the "
                f"keyword arguments of create_conversation: "
                f"{', '.join(sorted(CONVERSATION_ARGUMENTS))}"
            )
        return ConversationScope(
            self,
            conversation_body(**kwargs),
            self._post_conversation,
            self._spawn,
            self._log_if_failed,
        )

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
        path = f"/v2/conversations/{path_segment(conversation_id)}"
        params = {"verbose": "true"} if verbose else None
        status, raw = await self._request("GET", path, params=params, retry=Retry.IDEMPOTENT)
        return parse_model(Conversation, raw, status, f"GET {path}")

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
        code, raw = await self._request("GET", path, params=params, retry=Retry.IDEMPOTENT)
        data = json_object(raw, code, f"GET {path}")
        items = data.get("data", [])
        if not isinstance(items, list):
            raise TavusAPIError(f"unexpected response to GET {path}: 'data' is not a list")
        return [validate_model(Conversation, item, code, f"GET {path}") for item in items]

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
        path = f"/v2/conversations/{path_segment(conversation_id)}/end"
        try:
            await self._request("POST", path, retry=Retry.IDEMPOTENT)
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
        status, raw = await self._request("POST", path, body=body, retry=Retry.RATE_LIMIT_ONLY)
        conversation = parse_model(Conversation, raw, status, f"POST {path}")
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
        body = persona_body(
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
        body = persona_body(
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
        status, raw = await self._request("POST", path, body=body, retry=Retry.RATE_LIMIT_ONLY)
        persona = parse_model(Persona, raw, status, f"POST {path}")
        logger.debug(f"{self}: created {path.rsplit('/', 1)[-1][:-1]} {persona.pal_id}")
        return persona

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task that stays referenced until it finishes."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _log_if_failed(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning(f"{self}: background end failed: {task.exception()}")
