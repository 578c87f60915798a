"""Drive a Tavus CVI replica from Pipecat through the Tavus Interactions Protocol.

The public API, by what you do with it:

- Wire a bot: :class:`TavusInteractions` with :class:`TavusInteractionsParams`;
  ``tavus.input()`` after ``transport.input()``, ``tavus.output()`` before
  ``transport.output()``.
- Steer the replica: the outbound frames (:class:`TavusRespondFrame`, ...) or
  ``await tavus.send(interactions.Respond(...))``.
- Observe it: the inbound frames (:class:`TavusUtteranceFrame`, ...), the ``on_*`` event
  handlers and the turn ledger (:class:`TurnRecord`).
- Wire models: :mod:`pipecat_tavus_interactions.events`,
  :mod:`pipecat_tavus_interactions.interactions` and
  :mod:`pipecat_tavus_interactions.protocol`.
- Run offline: :mod:`pipecat_tavus_interactions.simulator`; live:
  :mod:`pipecat_tavus_interactions.api`.
- Put the replica in the bot's own transport: :class:`TavusReplicaRelay` (imported on
  first use, so the Daily client is not loaded by ``import pipecat_tavus_interactions``).
"""

from typing import TYPE_CHECKING

from . import events, interactions
from .core.records import SpeakingSpan, ToolCallRecord, TurnRecord
from .exceptions import (
    ConfigurationError,
    ConfigurationTypeError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    ReplicaNotReadyError,
    TavusAPIError,
    TavusInteractionsError,
    UsageError,
)
from .params import TavusInteractionsParams
from .pipeline.facade import TavusInteractions
from .pipeline.frames import (
    TavusContextFrame,
    TavusEchoFrame,
    TavusEventFrame,
    TavusGuardrailFrame,
    TavusInteractionFrame,
    TavusInterruptFrame,
    TavusObjectiveConfirmFrame,
    TavusObjectiveFrame,
    TavusPerceptionAnalysisFrame,
    TavusReplicaInterruptedFrame,
    TavusRespondFrame,
    TavusSensitivityFrame,
    TavusToolCallFrame,
    TavusTurnFrame,
    TavusUtteranceFrame,
)
from .protocol import build_message, parse_message

if TYPE_CHECKING:
    from .pipeline.tool_params import TavusFunctionCallParams
    from .relay import TavusReplicaRelay
    from .tuning import tune_gc

__version__ = "0.1.0"

#: Public names imported on first use: ``TavusFunctionCallParams`` derives from Pipecat's
#: ``FunctionCallParams``, whose module pulls in the LLM service stack (aiohttp, adapters),
#: which a bot without tools never needs; ``TavusReplicaRelay`` brings the relay's modules
#: (the Daily client).
_LAZY = {
    "TavusFunctionCallParams": ".pipeline.tool_params",
    "TavusReplicaRelay": ".relay",
    "tune_gc": ".tuning",
}


def __getattr__(name: str):
    """Import the lazily exported names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names, the lazily exported ones included, before their first use."""
    return sorted(set(globals()) | set(__all__))


__all__ = [
    # facade and configuration
    "TavusInteractions",
    "TavusInteractionsParams",
    "TavusFunctionCallParams",
    "TavusReplicaRelay",
    "tune_gc",
    # wire models and codec
    "events",
    "interactions",
    "parse_message",
    "build_message",
    # inbound frames
    "TavusEventFrame",
    "TavusUtteranceFrame",
    "TavusToolCallFrame",
    "TavusReplicaInterruptedFrame",
    "TavusPerceptionAnalysisFrame",
    "TavusObjectiveFrame",
    "TavusGuardrailFrame",
    "TavusTurnFrame",
    # outbound frames
    "TavusInteractionFrame",
    "TavusEchoFrame",
    "TavusRespondFrame",
    "TavusContextFrame",
    "TavusSensitivityFrame",
    "TavusObjectiveConfirmFrame",
    "TavusInterruptFrame",
    # turn ledger records
    "TurnRecord",
    "ToolCallRecord",
    "SpeakingSpan",
    # errors
    "TavusInteractionsError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ReplicaNotReadyError",
    "TavusAPIError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "UsageError",
]
