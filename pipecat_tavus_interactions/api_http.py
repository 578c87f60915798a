"""The HTTP core of the Tavus REST client: one logical request, retried, redacted, decoded.

This module owns :class:`RetryingClient`, the base of
:class:`~pipecat_tavus_interactions.api.TavusAPI` that holds the key, the session and the
retry settings and sends one logical request: it retries per :class:`Retry` (honouring
``Retry-After``), bounds each attempt by a timeout, turns every failure into a
:class:`~pipecat_tavus_interactions.exceptions.TavusAPIError` and scrubs the API key from
every message. It also owns the decoding of answers into the models of :mod:`.api_models`
(:func:`json_object`, :func:`validate_model`, :func:`parse_model`). The failure policy is
described in :mod:`.api`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
from datetime import UTC, datetime
from enum import Enum
from http import HTTPStatus
from typing import Any, TypeVar

import aiohttp
from loguru import logger
from pydantic import BaseModel, SecretStr, ValidationError

from .exceptions import ConfigurationError, TavusAPIError

__all__ = ["Retry", "RetryingClient", "json_object", "parse_model", "validate_model"]

_MASK = "***"
_MAX_ERROR_TEXT = 300


class Retry(Enum):
    """Which failures of a request are retried."""

    IDEMPOTENT = "idempotent"  # 429, 5xx, connection errors, timeouts
    RATE_LIMIT_ONLY = "rate_limit_only"  # 429 only: the request was not processed


class RetryingClient:
    """Sends requests to the Tavus REST API with retries; the base of ``TavusAPI``.

    It holds the key (as a ``pydantic.SecretStr``), the session and the retry and timeout
    settings, checked here; its subclass adds the endpoints.
    """

    def __init__(
        self,
        *,
        api_key: str,
        session: aiohttp.ClientSession,
        base_url: str,
        max_retries: int,
        backoff_s: float,
        max_retry_delay_s: float,
        timeout_s: float,
    ):
        # The arguments are documented on TavusAPI.__init__.
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

    @property
    def base_url(self) -> str:
        """The API origin requests go to (without ``/v2``)."""
        return self._base_url

    async def _request(
        self,
        method: str,
        path: str,
        *,
        retry: Retry,
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
            may_retry = error.status == 429 or (retry is Retry.IDEMPOTENT and error.retryable)
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


def json_object(raw: bytes, status: int, what: str) -> dict[str, Any]:
    """Decode a 2xx answer body that must be a JSON object.

    Args:
        raw: The answer body.
        status: Its HTTP status (carried by the error).
        what: The request, e.g. ``"GET /v2/conversations"`` (named in the error).

    Returns:
        The object.

    Raises:
        TavusAPIError: The body is not a JSON object.
    """
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TavusAPIError(f"unexpected response to {what}: not a JSON object", status=status)
    return data


def validate_model(model: type[_M], data: Any, status: int, what: str) -> _M:
    """Validate decoded answer data into ``model``.

    Args:
        model: The pydantic model of the answer.
        data: The decoded JSON.
        status: The HTTP status (carried by the error).
        what: The request (named in the error).

    Returns:
        The model instance.

    Raises:
        TavusAPIError: The data does not fit the model; the message names the fields.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or e["msg"] for e in exc.errors())
        raise TavusAPIError(
            f"unexpected response to {what}: {model.__name__} invalid ({fields})", status=status
        ) from None


def parse_model(model: type[_M], raw: bytes, status: int, what: str) -> _M:
    """Decode a 2xx answer body (a JSON object) into ``model``.

    Args:
        model: The pydantic model of the answer.
        raw: The answer body.
        status: The HTTP status (carried by the error).
        what: The request (named in the error).

    Returns:
        The model instance.

    Raises:
        TavusAPIError: The body is not a JSON object or does not fit the model.
    """
    return validate_model(model, json_object(raw, status, what), status, what)
