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
from .pipeline.tool_runner import TavusFunctionCallParams
from .protocol import build_message, parse_message

__version__ = "0.1.0"

__all__ = [
    # facade and configuration
    "TavusInteractions",
    "TavusInteractionsParams",
    "TavusFunctionCallParams",
    "TavusReplicaRelay",
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


def __getattr__(name: str):
    """Import :class:`TavusReplicaRelay` on first use (it brings the relay's modules)."""
    if name == "TavusReplicaRelay":
        from .relay import TavusReplicaRelay

        return TavusReplicaRelay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
