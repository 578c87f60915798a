"""The error tree of pipecat-tavus-interactions.

Every error this package raises derives from :class:`TavusInteractionsError`::

    TavusInteractionsError
    ├── ProtocolError
    │   ├── LocalProtocolError    our own misuse: what to change is in the message
    │   └── RemoteProtocolError   (also a ValueError) bad input from the wire
    ├── ConfigurationError        (also a ValueError) a bad argument or setting
    │   └── ConfigurationTypeError    (also a TypeError) an argument of the wrong type
    ├── UsageError                (also a RuntimeError) a call made in the wrong state
    ├── ReplicaNotReadyError      interactions held past the readiness timeout
    └── TavusAPIError             the REST API answered with an error (status, retryable)

The configuration and usage errors keep the builtin they replace as a second base, so code
written as ``except ValueError`` (or ``TypeError``, ``RuntimeError``) still catches them.

Wire input never raises out of a processor: a ``RemoteProtocolError`` raised by
``parse_message`` is caught by the input processor, counted and reported through
``on_protocol_error``. ``LocalProtocolError`` is raised at the call site that misused the
package.
"""

from __future__ import annotations


class TavusInteractionsError(Exception):
    """Base class of every error raised by this package."""


class ProtocolError(TavusInteractionsError):
    """A message broke the Tavus Interactions Protocol."""


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol does not allow.

    The message always says what to change, for example "echo needs text or audio".
    """


class RemoteProtocolError(ProtocolError, ValueError):
    """A message received from the wire is malformed.

    Attributes:
        reason: A short machine-friendly reason, used as a counter key
            (for example ``"bad_json"``, ``"not_an_object"``, ``"missing_field"``).
        raw: The offending input, as received (may be truncated for logging).
    """

    def __init__(self, reason: str, detail: str, raw: object = None):
        """Create the error.

        Args:
            reason: Short reason key, e.g. ``"bad_json"``.
            detail: Human-readable explanation.
            raw: The input that could not be parsed.
        """
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.raw = raw


class ConfigurationError(TavusInteractionsError, ValueError):
    """A value given to this package (an argument, a setting) cannot be used.

    Raised at the call site, before anything is sent; the message names the argument and says
    what to change. Also a ``ValueError``.
    """


class ConfigurationTypeError(ConfigurationError, TypeError):
    """An argument given to this package has the wrong type.

    The message names the argument and the types it accepts. Also a ``TypeError`` (and a
    :class:`ConfigurationError`).
    """


class UsageError(TavusInteractionsError, RuntimeError):
    """An object was used in a state that does not allow the call (for example re-entered).

    Also a ``RuntimeError``.
    """


class ReplicaNotReadyError(TavusInteractionsError):
    """Interactions were held for the replica to join, and it did not join in time."""


class TavusAPIError(TavusInteractionsError):
    """The Tavus REST API answered with an error, or could not be reached.

    Attributes:
        status: The HTTP status code, or ``None`` when no response was received.
        message: A readable message (never contains the API key).
        retryable: Whether the same request may succeed if tried again
            (429, 5xx and connection errors).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        """Create the error.

        Args:
            message: Readable description; must not contain secrets.
            status: HTTP status code, if any.
            retryable: True when retrying the same request may succeed.
        """
        super().__init__(message if status is None else f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retryable = retryable
