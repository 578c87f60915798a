"""``TavusInteractions``: the facade that owns the state both processors share.

It holds the conversation id, the replica's identity and readiness, the turn ledger, the
tool bridge and the counters, and it hands out the two processors, like a Pipecat
transport does::

    tavus = TavusInteractions(params=TavusInteractionsParams(conversation_id=cid))
    pipeline = Pipeline([transport.input(), tavus.input(), ..., tavus.output(),
                         transport.output()])

The processors talk to each other only through this object (for example, the output asks
whether the replica is speaking before it sends ``conversation.interrupt``, and the input
asks whether a user utterance is the text we just sent with ``respond``).
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.utils.base_object import BaseObject

from .exceptions import LocalProtocolError, RemoteProtocolError
from .interactions import Interaction
from .params import TavusInteractionsParams
from .tools import ToolBridge
from .turns import TurnLedger

if TYPE_CHECKING:
    from .input import TavusInteractionsInput
    from .output import TavusInteractionsOutput

_SPACES = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


class TavusInteractions(BaseObject):
    """Drive a Tavus replica from a Pipecat pipeline through the Interactions Protocol.

    Place ``tavus.input()`` right after ``transport.input()`` and ``tavus.output()`` right
    before ``transport.output()``. Register tools with :meth:`register_function`.

    Event handlers available:

    - on_replica_joined(tavus, event): the replica joined (``event`` is the
      ``system.replica_joined`` event, or the first heartbeat). It fires again when
      heartbeats resume after ``on_replica_left`` (heartbeat lost), never after
      ``system.shutdown`` or after the replica left the room.
    - on_replica_left(tavus, reason): the replica left, or its heartbeat stopped.
    - on_event(tavus, event): every accepted Tavus event, after ordering.
    - on_utterance(tavus, utterance): a ``TavusUtteranceFrame`` (user or replica).
    - on_tool_call(tavus, event): the replica asked for a tool call.
    - on_turn_completed(tavus, turn): a ``TurnRecord`` completed.
    - on_shutdown(tavus, event): ``system.shutdown`` arrived.
    - on_protocol_error(tavus, error): a ``RemoteProtocolError`` for a message that was
      dropped (malformed, foreign sender, other conversation).
    - on_interaction_sent(tavus, message): a message was pushed towards the transport.
    - on_send_failed(tavus, interaction, error): an interaction could not be sent (for
      example, the replica did not join before ``ready_timeout_s``).

    Example::

        @tavus.event_handler("on_turn_completed")
        async def on_turn(tavus, turn):
            print(turn.turn_idx, turn.user_text, "->", turn.replica_spoken_text)
    """

    EVENTS = (
        "on_replica_joined",
        "on_replica_left",
        "on_event",
        "on_utterance",
        "on_tool_call",
        "on_turn_completed",
        "on_shutdown",
        "on_protocol_error",
        "on_interaction_sent",
        "on_send_failed",
    )

    def __init__(
        self,
        *,
        params: TavusInteractionsParams | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ):
        """Create the facade.

        Args:
            params: The configuration; defaults to ``TavusInteractionsParams()``.
            clock: Monotonic clock in seconds (injectable for tests).
            name: Optional name used in logs.
        """
        super().__init__(name=name)
        self._params = params or TavusInteractionsParams()
        self._clock = clock
        self._conversation_id = self._params.conversation_id
        self._replica_participant_id = self._params.replica_participant_id
        self._replica_ready = False
        self._replica_speaking = False
        self._shutting_down = False
        self._left_room = False
        self._remote_interruptions = 0
        self._recent_responds: deque[str] = deque(maxlen=16)
        self.stats: Counter[str] = Counter()
        self.ledger = TurnLedger(max_turns=self._params.max_turns)
        self.tools = ToolBridge(self)
        self._input: TavusInteractionsInput | None = None
        self._output: TavusInteractionsOutput | None = None
        for event in self.EVENTS:
            self._register_event_handler(event)

    def __repr__(self) -> str:
        return (
            f"TavusInteractions(name={self.name!r}, mode={self._params.mode!r}, "
            f"conversation_id={self._conversation_id!r})"
        )

    # --- configuration -------------------------------------------------------------

    @property
    def params(self) -> TavusInteractionsParams:
        """The configuration."""
        return self._params

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the processors use."""
        return self._clock

    @property
    def conversation_id(self) -> str | None:
        """The Tavus conversation id, once known."""
        return self._conversation_id

    def set_conversation_id(self, conversation_id: str) -> None:
        """Set the conversation id (when it is only known after the pipeline is built).

        Args:
            conversation_id: The id returned by create-conversation.

        Raises:
            LocalProtocolError: The id is empty or not a string.
        """
        if not isinstance(conversation_id, str) or not conversation_id:
            raise LocalProtocolError("conversation_id must be a non-empty string")
        self._conversation_id = conversation_id

    # --- processors ----------------------------------------------------------------

    def input(self) -> TavusInteractionsInput:
        """Return the inbound processor (place it right after ``transport.input()``)."""
        if self._input is None:
            from .input import TavusInteractionsInput

            self._input = TavusInteractionsInput(tavus=self, name=f"{self.name}::input")
        return self._input

    def output(self) -> TavusInteractionsOutput:
        """Return the outbound processor (place it right before ``transport.output()``)."""
        if self._output is None:
            from .output import TavusInteractionsOutput

            self._output = TavusInteractionsOutput(tavus=self, name=f"{self.name}::output")
        return self._output

    # --- replica identity and readiness ---------------------------------------------

    @property
    def replica_participant_id(self) -> str | None:
        """The replica's transport participant id, once known."""
        return self._replica_participant_id

    def set_replica_participant(self, participant_id: str) -> None:
        """Declare which transport participant is the replica.

        Args:
            participant_id: The replica's participant id.
        """
        if participant_id != self._replica_participant_id:
            logger.debug(f"{self}: replica participant is {participant_id}")
        self._replica_participant_id = participant_id

    def is_replica_participant(self, participant: Mapping[str, Any]) -> bool:
        """Tell whether a transport participant (Daily's dict shape) is the replica.

        Args:
            participant: A participant dict with ``id`` and ``info`` (``userId``,
                ``userName``).

        Returns:
            True when it matches the configured replica identity.
        """
        pid = participant.get("id")
        if self._params.replica_participant_id is not None:
            return pid == self._params.replica_participant_id
        info = participant.get("info") or {}
        user_id = str(info.get("userId") or participant.get("user_id") or "")
        user_name = info.get("userName") or participant.get("user_name")
        if self._params.replica_user_name is not None:
            return user_name == self._params.replica_user_name
        return bool(self._params.replica_user_id_match) and (
            self._params.replica_user_id_match in user_id
        )

    def attach_transport(self, transport: BaseObject) -> None:
        """Learn the replica's participant id from a transport's participant events.

        Works with ``DailyTransport`` and the simulator's transport (any transport with
        ``on_participant_joined``/``on_participant_left`` events in Daily's shape).

        Args:
            transport: The transport whose room the replica is in.
        """

        async def joined(_transport, participant):
            if self.is_replica_participant(participant):
                self._left_room = False
                self.set_replica_participant(participant["id"])

        async def left(_transport, participant, *args):
            if participant.get("id") == self._replica_participant_id:
                self._left_room = True
                await self._on_replica_gone("participant_left")

        transport.add_event_handler("on_participant_joined", joined)
        transport.add_event_handler("on_participant_left", left)

    def is_trusted_sender(self, participant_id: str | None) -> bool:
        """Tell whether Tavus messages from ``participant_id`` may be acted on.

        Args:
            participant_id: The sender's participant id (``None`` when the transport did
                not say).

        Returns:
            True for the replica participant, or for anyone with ``trust_any_sender``.
        """
        if self._params.trust_any_sender:
            return True
        return participant_id is not None and participant_id == self._replica_participant_id

    @property
    def replica_ready(self) -> bool:
        """True once the replica has joined (and until it leaves)."""
        return self._replica_ready

    @property
    def replica_speaking(self) -> bool:
        """True while the replica is speaking, per its speaking events."""
        return self._replica_speaking

    async def _on_replica_joined(self, event: Any) -> None:
        if self._replica_ready:
            return
        self._replica_ready = True
        logger.debug(f"{self}: replica joined")
        if self._output is not None:
            await self._output._on_replica_ready()
        await self._call_event_handler("on_replica_joined", event)

    async def _on_replica_gone(self, reason: str) -> None:
        if not self._replica_ready:
            return
        self._replica_ready = False
        self._replica_speaking = False
        if self._shutting_down:
            logger.debug(f"{self}: replica left ({reason}) after system.shutdown")
        else:
            logger.warning(f"{self}: replica left ({reason})")
        await self._call_event_handler("on_replica_left", reason)

    # --- interruption loop guard and respond recognition --------------------------------

    def _note_remote_interruption(self) -> None:
        """The input is about to broadcast an interruption that Tavus reported."""
        self._remote_interruptions += 1

    def _consume_remote_interruption(self) -> bool:
        """Return True (once) when the interruption reaching the output came from Tavus."""
        if self._remote_interruptions:
            self._remote_interruptions -= 1
            return True
        return False

    def _note_respond(self, text: str) -> None:
        self._recent_responds.append(_normalise(text))

    def _take_injected(self, text: str) -> bool:
        if not self._recent_responds:
            return False
        key = _normalise(text)
        try:
            self._recent_responds.remove(key)
        except ValueError:
            return False
        return True

    # --- reporting --------------------------------------------------------------------

    def _has_handlers(self, event_name: str) -> bool:
        """Tell whether anyone listens to ``event_name`` (saves building per-event calls)."""
        handlers = self._event_handlers.get(event_name)
        return bool(handlers is not None and handlers.handlers)

    async def _report_protocol_error(self, error: RemoteProtocolError) -> None:
        self.stats[f"dropped_{error.reason}"] += 1
        await self._call_event_handler("on_protocol_error", error)

    # --- sending and tools ---------------------------------------------------------

    async def send(self, interaction: Interaction) -> None:
        """Send an interaction from code outside the pipeline.

        The message goes through ``tavus.output()`` (held until the replica joins when
        ``wait_for_replica`` is on).

        Args:
            interaction: The interaction, e.g. ``interactions.Respond("Hi")``.

        Raises:
            LocalProtocolError: ``interaction`` is not an interaction, or ``output()`` is
                not in a running pipeline.
        """
        if self._output is None:
            raise LocalProtocolError(
                "send() needs tavus.output() in a running pipeline; add it before "
                "transport.output()"
            )
        await self._output.send_interaction(interaction)

    def register_function(
        self,
        function_name: str | None,
        handler: Callable[..., Any],
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Run ``handler`` when the replica calls ``function_name``.

        Handlers have Pipecat's shape: they take one ``FunctionCallParams``-like argument
        and call ``await params.result_callback(result)``.

        Args:
            function_name: The tool name, or ``None`` for a catch-all.
            handler: ``async def handler(params)``.
            timeout_s: Deadline for this handler (default ``params.tool_timeout_s``).
        """
        self.tools.register(function_name, handler, timeout_s=timeout_s)

    def register_perception_function(
        self,
        function_name: str | None,
        handler: Callable[..., Any],
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Run ``handler`` when Raven fires the perception tool ``function_name``.

        Args:
            function_name: The perception tool name, or ``None`` for a catch-all.
            handler: ``async def handler(params)``; ``params`` also has ``modality`` and
                ``frames``.
            timeout_s: Deadline for this handler.
        """
        self.tools.register(function_name, handler, timeout_s=timeout_s, perception=True)


__all__ = ["TavusInteractions"]
