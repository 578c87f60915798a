"""What the Pipecat drivers need from the object that owns the conversation.

The processors, the tool runner and the effect runner are given the facade
(:class:`~pipecat_tavus_interactions.TavusInteractions`) but know it only through this
protocol, so no module below the facade imports it (no import cycle, not even for types).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..core.connection import TavusConnection
from ..params import TavusInteractionsParams


class Driver(Protocol):
    """The facade as its processors see it."""

    @property
    def params(self) -> TavusInteractionsParams:
        """The configuration."""

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock of the core and the timers."""

    @property
    def connection(self) -> TavusConnection:
        """The conversation core."""

    @property
    def run(self) -> Callable[[list | None], Awaitable[None]]:
        """Carry out a core call's effects: ``await tavus.run(effects)``."""

    async def emit(self, event_name: str, *args: Any) -> None:
        """Call an event's handlers."""

    def handlers(self, event_name: str) -> list:
        """The live list of an event's handlers."""

    def has_handlers(self, event_name: str) -> bool:
        """Tell whether an event has handlers."""

    @property
    def input_started(self) -> bool:
        """True once ``tavus.input()`` has started in a pipeline."""

    async def processor_started(self, processor: Any) -> None:
        """A processor received its ``StartFrame``."""

    async def cleanup(self) -> None:
        """Stop timers and tools; wait for handler tasks."""


__all__ = ["Driver"]
