"""The HTTP core of the Tavus REST client: one logical request, retried, redacted, decoded.

This module owns :class:`RetryingClient`, the base of
:class:`~pipecat_tavus_interactions.api.TavusAPI` that holds the key, the session and the
retry settings and sends one logical request: it retries per :class:`Retry` (honouring
``Retry-After``), bounds each attempt by a timeout, follows redirects only within the API's
origin (the key never leaves it), reads an answer incrementally up to a size limit, turns
every failure into a :class:`~pipecat_tavus_interactions.exceptions.TavusAPIError` and scrubs
the API key (and any 8+ character prefix of it) from every message. It also owns the decoding
of answers into the models of :mod:`.api_models` (:func:`json_object`, :func:`validate_model`,
:func:`parse_model`), which refuses JSON nested deeper than :data:`MAX_JSON_DEPTH`. The failure
policy is described in :mod:`.api`.
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
from yarl import URL

from .exceptions import ConfigurationError, TavusAPIError
from .redaction import MIN_SECRET_PREFIX, mask_key_prefixes

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_REDIRECTS",
    "Retry",
    "RetryingClient",
    "json_object",
    "parse_model",
    "redact_key",
    "validate_model",
]

_MASK = "***"
_MAX_ERROR_TEXT = 300

#: Default cap on the size of one answer body, in bytes (decompressed).
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: How deeply an answer's JSON may nest (Tavus answers nest a handful of levels).
MAX_JSON_DEPTH = 100
#: Same-origin redirects followed for one attempt; a redirect to another origin is refused.
MAX_REDIRECTS = 5
#: The shortest prefix of the key that is scrubbed from text (the whole key always is).
MIN_REDACTED_PREFIX = MIN_SECRET_PREFIX
_READ_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
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
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int):
            raise ConfigurationError(
                f"max_response_bytes must be an int (bytes), not {max_response_bytes!r}"
            )
        if max_response_bytes < 1024:
            raise ConfigurationError(
                f"max_response_bytes must be >= 1024, not {max_response_bytes}"
            )
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
        self._max_response_bytes = max_response_bytes

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
            async with asyncio.timeout(self._timeout_s):
                return await self._follow(method, path, body, params)
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

    async def _follow(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> tuple[int, bytes, float | None]:
        """One attempt: the request, and the same-origin redirects it is answered with.

        aiohttp's own redirect handling is off: it strips only ``Authorization`` when a
        redirect changes host, so it would carry ``x-api-key`` (and a POST body) anywhere.
        """
        url = URL(self._base_url + path)
        for _hop in range(MAX_REDIRECTS + 1):
            async with self._session.request(
                method,
                url,
                json=body,
                params=params,
                headers=self._headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as response:
                location = response.headers.get("Location")
                if response.status not in _REDIRECTS or not location:
                    raw = await self._read_body(response, method, path)
                    retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                    return response.status, raw, retry_after
                url = self._redirect_target(url, location, response.status, method, path)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None  # what browsers (and aiohttp) do
            params = None  # the Location carries its own query
        raise TavusAPIError(
            f"more than {MAX_REDIRECTS} redirects ({method} {path})", status=response.status
        )

    def _redirect_target(self, url: URL, location: str, status: int, method: str, path: str):
        """The URL a redirect points to, refused unless it is on the API's own origin."""
        try:
            target = url.join(URL(location))
        except ValueError:
            raise TavusAPIError(
                f"redirect to an invalid Location ({method} {path})", status=status
            ) from None
        base = URL(self._base_url)
        if _origin(target) != _origin(base):
            where = self._redact(f"{target.scheme}://{target.host}:{target.port}")
            raise TavusAPIError(
                f"refused a redirect to another origin ({where}): the API key is only sent to "
                f"{_origin_text(base)}; check base_url ({method} {path})",
                status=status,
            )
        logger.debug(f"{self}: {method} {path} redirected ({status}) within the API origin")
        return target

    async def _read_body(self, response: aiohttp.ClientResponse, method: str, path: str) -> bytes:
        """Read the answer body, at most ``max_response_bytes`` of it (decompressed).

        An error answer over the limit reads as empty (its status says enough); a success
        over it raises: a partial answer cannot be decoded.
        """
        limit = self._max_response_bytes
        declared = response.content_length
        if declared is None or declared <= limit:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(_READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
            else:
                return b"".join(chunks)
        if not 200 <= response.status < 300:
            return b""
        raise TavusAPIError(
            f"answer body over max_response_bytes={limit} ({method} {path})",
            status=response.status,
        )

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key.get_secret_value(), "Accept": "application/json"}

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_retry_delay_s)
        return min(self._backoff_s * 2 ** (attempt - 1), self._max_retry_delay_s)

    def _redact(self, text: str) -> str:
        return redact_key(text, self._api_key.get_secret_value())

    def _error_text(self, raw: bytes, status: int) -> str:
        """A readable message from an error body: its ``message``/``error`` when JSON."""
        # Redact before any truncation, so a cut can never leave part of the key behind.
        text = self._redact(raw.decode("utf-8", errors="replace")).strip()
        message: str | None = None
        try:
            data = _loads(text.encode()) if text else None
        except TavusAPIError:
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


def redact_key(text: str, key: str) -> str:
    """Replace the API key, and any prefix of it of 8+ characters, in ``text`` with ``***``.

    A server (or a proxy) that echoes a truncated key must not leak most of it. ASCII letters
    match in either case (a host name, for one, arrives lower-cased).

    Args:
        text: The text to scrub.
        key: The API key.

    Returns:
        The text without the key or its prefixes.
    """
    if not key:
        return text
    if len(key) < MIN_REDACTED_PREFIX:
        return text.replace(key, _MASK)
    # ASCII-only folding keeps every index of ``hay`` an index of ``text``.
    hay, key = text.translate(_ASCII_LOWER), key.translate(_ASCII_LOWER)
    return mask_key_prefixes(text, hay, key, _MASK)


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme.lower(), (url.host or "").lower(), url.port


def _origin_text(url: URL) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


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
        data = _loads(raw) if raw else None
    except TavusAPIError as err:
        raise TavusAPIError(f"unexpected response to {what}: {err}", status=status) from None
    if not isinstance(data, dict):
        raise TavusAPIError(f"unexpected response to {what}: not a JSON object", status=status)
    return data


def _loads(raw: bytes) -> Any:
    """Decode JSON, refusing what is not JSON or nests deeper than ``MAX_JSON_DEPTH``."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise TavusAPIError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise TavusAPIError("not JSON") from None
    # Iterative: a recursive walk would hit the recursion limit it is guarding against.
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise TavusAPIError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
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
