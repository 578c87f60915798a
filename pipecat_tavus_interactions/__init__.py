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
- Put the replica in the bot's own transport: :class:`TavusReplicaRelay`.

Every public name is imported on first use (PEP 562): ``import pipecat_tavus_interactions``
loads nothing but the exceptions, and importing one module of the package (the sans-I/O
core, :mod:`~pipecat_tavus_interactions.protocol`, the REST client) loads only what that
module needs: neither Pipecat's processors nor, until a bot asks for them, the LLM service
stack (:class:`TavusFunctionCallParams`) or the Daily client (:class:`TavusReplicaRelay`).
``from pipecat_tavus_interactions import TavusInteractions`` loads the facade, its
processors and frames, and the core.
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from . import events, interactions
    from .core.records import SpeakingSpan, ToolCallRecord, TurnRecord
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
    from .pipeline.tool_params import TavusFunctionCallParams
    from .protocol import build_message, parse_message
    from .relay import TavusReplicaRelay
    from .tuning import tune_gc

__version__ = "0.1.0"

#: Public name -> the module that defines it (relative), imported on first use. A name that
#: is the module itself (``events``, ``interactions``) maps to that module.
_LAZY = {
    "events": ".events",
    "interactions": ".interactions",
    "TurnRecord": ".core.records",
    "ToolCallRecord": ".core.records",
    "SpeakingSpan": ".core.records",
    "TavusInteractionsParams": ".params",
    "TavusInteractions": ".pipeline.facade",
    "TavusContextFrame": ".pipeline.frames",
    "TavusEchoFrame": ".pipeline.frames",
    "TavusEventFrame": ".pipeline.frames",
    "TavusGuardrailFrame": ".pipeline.frames",
    "TavusInteractionFrame": ".pipeline.frames",
    "TavusInterruptFrame": ".pipeline.frames",
    "TavusObjectiveConfirmFrame": ".pipeline.frames",
    "TavusObjectiveFrame": ".pipeline.frames",
    "TavusPerceptionAnalysisFrame": ".pipeline.frames",
    "TavusReplicaInterruptedFrame": ".pipeline.frames",
    "TavusRespondFrame": ".pipeline.frames",
    "TavusSensitivityFrame": ".pipeline.frames",
    "TavusToolCallFrame": ".pipeline.frames",
    "TavusTurnFrame": ".pipeline.frames",
    "TavusUtteranceFrame": ".pipeline.frames",
    "TavusFunctionCallParams": ".pipeline.tool_params",
    "build_message": ".protocol",
    "parse_message": ".protocol",
    "TavusReplicaRelay": ".relay",
    "tune_gc": ".tuning",
}


def __getattr__(name: str):
    """Import a public name, or a submodule, on first use (and keep it as an attribute)."""
    import sys

    module_name = _LAZY.get(name)
    if module_name is None:
        # A submodule (``pkg.protocol``), as when this module imported them all up front.
        from importlib.util import find_spec

        if name.startswith("_") or find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module_name = f".{name}"

    # The import statement's machinery (not importlib's), so that ``-X importtime`` shows
    # the module under its own name.
    full_name = __name__ + module_name
    __import__(full_name)
    module = sys.modules[full_name]
    value = module if module_name == f".{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names, the lazily imported ones included, before their first use."""
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
