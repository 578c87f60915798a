"""The sans-I/O conversation core: the whole protocol, with no asyncio, aiohttp or Pipecat.

:class:`TavusConnection` takes what happened (a wire message, an app send, a local
interrupt, a tool outcome, a participant change, a clock tick) and returns effects
(:mod:`.effects`). Its parts: ``seq`` ordering and de-duplication (:mod:`.ordering`), the
turn ledger (:mod:`.turns`), tool-call bookkeeping and result delivery (:mod:`.tools`),
echo planning (:mod:`.echo`, :mod:`.sentences`), the sending half (:mod:`.sender`) and the
one place that builds, measures and splits outbound messages (:mod:`.outbound`).

:class:`TavusConnection` is imported on first use, so importing one part (the records, the
effects) loads only that part.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import TavusConnection


def __getattr__(name: str):
    """Import :class:`TavusConnection` on first use."""
    if name != "TavusConnection":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .connection import TavusConnection

    globals()[name] = TavusConnection
    return TavusConnection


def __dir__() -> list[str]:
    """List the public names, ``TavusConnection`` included before its first use."""
    return sorted(set(globals()) | set(__all__))


__all__ = ["TavusConnection"]
