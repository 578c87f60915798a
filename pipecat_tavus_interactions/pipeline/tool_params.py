"""``TavusFunctionCallParams``: what a tool handler receives for a Tavus tool call.

A module of its own so that importing the package does not import Pipecat's LLM service
stack (``pipecat.services.llm_service`` and, through it, aiohttp and the LLM adapters):
the tool runner imports it at the first tool call, and
``pipecat_tavus_interactions.TavusFunctionCallParams`` imports it when the name is first
used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecat.services.llm_service import FunctionCallParams

from .. import events as ev


@dataclass
class TavusFunctionCallParams(FunctionCallParams):
    """``FunctionCallParams`` for a call that Tavus asked for.

    ``llm`` is ``None`` (no Pipecat LLM made the call) and ``context`` is an empty
    ``LLMContext``. The extra fields carry what Tavus sent.

    Parameters:
        turn_idx: The Tavus turn the call belongs to.
        event: The ``tool_call`` / ``perception_tool_call`` event.
        modality: ``"vision"`` or ``"audio"`` for perception calls.
        frames: Images attached to a vision perception call.
    """

    turn_idx: int | None = None
    event: ev.ToolCallEvent | None = None
    modality: str | None = None
    frames: tuple[ev.PerceptionFrame, ...] = field(default_factory=tuple)


__all__ = ["TavusFunctionCallParams"]
