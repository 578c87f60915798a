"""The sans-I/O conversation core: the whole protocol, with no asyncio, aiohttp or Pipecat.

:class:`TavusConnection` takes what happened (a wire message, an app send, a local
interrupt, a tool outcome, a participant change, a clock tick) and returns effects
(:mod:`.effects`). Its parts: ``seq`` ordering and de-duplication (:mod:`.ordering`), the
turn ledger (:mod:`.turns`), tool-call bookkeeping and result delivery (:mod:`.tools`),
echo planning (:mod:`.echo`, :mod:`.sentences`), the sending half (:mod:`.sender`) and the
one place that builds, measures and splits outbound messages (:mod:`.outbound`).
"""

from .connection import TavusConnection

__all__ = ["TavusConnection"]
