"""``TavusInteractions``: the facade that owns one conversation and drives it from Pipecat.

It holds the conversation core (:class:`~pipecat_tavus_interactions.core.TavusConnection`),
hands out the two processors like a Pipecat transport does, runs tool handlers
(:class:`~.tool_runner.ToolRunner`) and the core's timers, and carries out the core's
effects: frames pushed from ``tavus.input()``, messages pushed from ``tavus.output()``,
``on_*`` event handlers::

    tavus = TavusInteractions(params=TavusInteractionsParams(conversation_id=cid))
    pipeline = Pipeline([transport.input(), tavus.input(), ..., tavus.output(),
                         transport.output()])

The processors only translate frames into core calls; neither holds protocol state, and the
two never talk to each other. ``docs/architecture.md`` follows one event from the wire to a
frame and one interaction back.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.utils.base_object import BaseObject
from pydantic import ValidationError

from .. import interactions as ix
from ..core.connection import TavusConnection
from ..core.turns import TurnLedger
from ..exceptions import ConfigurationError, ConfigurationTypeError, LocalProtocolError
from ..params import TavusInteractionsParams
from .effects import EffectRunner
from .input import TavusInteractionsInput
from .output import TavusInteractionsOutput
from .tool_runner import ToolRunner

if TYPE_CHECKING:
    from .recorder import RecordWriter


def _params_from(params: object) -> TavusInteractionsParams:
    """The facade's configuration from what its constructor was given."""
    if params is None:
        return TavusInteractionsParams()
    if isinstance(params, TavusInteractionsParams):
        return params
    if not isinstance(params, Mapping):
        raise ConfigurationTypeError(
            "params must be a TavusInteractionsParams (or a dict of its fields), not "
            f"{type(params).__name__}: TavusInteractions(params=TavusInteractionsParams("
            "mode='full', conversation_id=...))"
        )
    try:
        return TavusInteractionsParams.model_validate(dict(params))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(
            f"params is not a valid TavusInteractionsParams: {problems}"
        ) from None


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
        params: TavusInteractionsParams | Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ):
        """Create the facade.

        Args:
            params: The configuration: a ``TavusInteractionsParams``, or a dict of its fields
                (validated into one); defaults to ``TavusInteractionsParams()``.
            clock: Monotonic clock in seconds (injectable for tests); the core's time and
                every timer's deadline are on this clock.
            name: Optional name used in logs.

        Raises:
            ConfigurationError: A dict with an unknown field or a bad value (also a
                ``ValueError``).
            ConfigurationTypeError: ``params`` is neither (also a ``TypeError``).
        """
        super().__init__(name=name)
        self._params = _params_from(params)
        self._clock = clock
        self._input_started = False
        for event in self.EVENTS:
            self._register_event_handler(event)
        if self._params.record_path is None:  # the recorder's modules load only when used
            self._conn, self._recorder = TavusConnection(self._params, now=clock()), None
        else:
            from .recorder import connection_for

            self._conn, self._recorder = connection_for(self._params, now=clock())
        self._effects = EffectRunner(self)
        self.tools = ToolRunner(self)
        self._input = TavusInteractionsInput(tavus=self, name=f"{self.name}::input")
        self._output = TavusInteractionsOutput(tavus=self, name=f"{self.name}::output")
        self._effects.attach(self._input, self._output, self.tools)

    def __repr__(self) -> str:
        return (
            f"TavusInteractions(name={self.name!r}, mode={self._params.mode!r}, "
            f"conversation_id={self.conversation_id!r})"
        )

    # --- configuration and state ----------------------------------------------------------

    @property
    def params(self) -> TavusInteractionsParams:
        """The configuration."""
        return self._params

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the core and the timers use."""
        return self._clock

    @property
    def connection(self) -> TavusConnection:
        """The conversation core: the one source of truth for the protocol's state."""
        return self._conn

    @property
    def recorder(self) -> RecordWriter | None:
        """The flight recorder's writer (``record_path``; its ``dropped`` count), or ``None``."""
        return self._recorder

    @property
    def stats(self) -> Counter[str]:
        """Counters by name: messages sent by type, drops by reason, skipped interrupts."""
        return self._conn.stats

    @property
    def ledger(self) -> TurnLedger:
        """The turn ledger (the last ``max_turns`` turns)."""
        return self._conn.ledger

    @property
    def conversation_id(self) -> str | None:
        """The Tavus conversation id, once known."""
        return self._conn.conversation_id

    def set_conversation_id(self, conversation_id: str) -> None:
        """Set the conversation id (when it is only known after the pipeline is built).

        Args:
            conversation_id: The id returned by create-conversation.

        Raises:
            LocalProtocolError: The id is empty or not a string.
        """
        self._conn.set_conversation_id(conversation_id)

    def input(self) -> TavusInteractionsInput:
        """Return the inbound processor (place it right after ``transport.input()``)."""
        return self._input

    def output(self) -> TavusInteractionsOutput:
        """Return the outbound processor (place it right before ``transport.output()``)."""
        return self._output

    @property
    def replica_participant_id(self) -> str | None:
        """The replica's transport participant id, once known."""
        return self._conn.replica_participant_id

    def set_replica_participant(self, participant_id: str) -> None:
        """Declare which transport participant is the replica.

        Args:
            participant_id: The replica's participant id.
        """
        if participant_id != self._conn.replica_participant_id:
            logger.debug(f"{self}: replica participant is {participant_id}")
        self._conn.set_replica_participant(participant_id)

    def is_replica_participant(self, participant: Mapping[str, Any]) -> bool:
        """Tell whether a transport participant (Daily's dict shape) is the replica.

        Args:
            participant: A participant dict with ``id`` and ``info`` (``userId``,
                ``userName``).

        Returns:
            True when it matches the configured replica identity.
        """
        return self._conn.identity.matches(participant)

    def is_trusted_sender(self, participant_id: str | None) -> bool:
        """Tell whether Tavus messages from ``participant_id`` may be acted on.

        Args:
            participant_id: The sender's participant id (``None`` when unknown).

        Returns:
            True for the replica participant, or for anyone with ``trust_any_sender``.
        """
        return self._conn.identity.trusts(participant_id)

    @property
    def replica_ready(self) -> bool:
        """True once the replica has joined (and until it leaves)."""
        return self._conn.ready

    @property
    def replica_speaking(self) -> bool:
        """True while the replica is speaking, per its speaking events."""
        return self._conn.speaking

    def attach_transport(self, transport: BaseObject) -> None:
        """Learn the replica's participant id from a transport's participant events.

        Works with ``DailyTransport`` and the simulator's transport (any transport with
        ``on_participant_joined``/``on_participant_left`` events in Daily's shape).

        Args:
            transport: The transport whose room the replica is in.
        """

        async def joined(_transport, participant):
            known = self._conn.replica_participant_id
            await self.run(self._conn.participant_joined(participant, now=self._clock()))
            if self._conn.replica_participant_id != known:
                logger.debug(f"{self}: replica participant is {participant.get('id')}")

        async def left(_transport, participant, *args):
            pid = participant.get("id")
            await self.run(self._conn.participant_left(pid, now=self._clock()))

        transport.add_event_handler("on_participant_joined", joined)
        transport.add_event_handler("on_participant_left", left)

    def drive_with(self, inbound: Any, outbound: Any) -> None:
        """Carry out the core's effects through other processors than ``input()``/``output()``.

        The relay (:class:`~pipecat_tavus_interactions.TavusReplicaRelay`) calls this: the
        frames of inbound effects are then pushed from ``inbound`` and the messages go out
        through ``outbound.transmit``.

        Args:
            inbound: Has ``push_frame``, ``broadcast_interruption``, ``create_task``,
                ``name`` and ``metrics_enabled``.
            outbound: Has ``transmit`` and ``report_failure``.
        """
        self._effects.attach(inbound, outbound, self.tools)
        self._input_started = True  # the relay reads the room itself: no tavus.input()

    # --- sending and tools ----------------------------------------------------------------

    async def send(self, interaction: ix.Interaction) -> None:
        """Send an interaction from code outside the pipeline.

        The message goes out through ``tavus.output()`` (held until the replica joins when
        ``wait_for_replica`` is on).

        Args:
            interaction: The interaction, e.g. ``interactions.Respond("Hi")``.

        Raises:
            LocalProtocolError: ``interaction`` is not an interaction, the conversation id is
                not set, or the message is over the cap and cannot be split.
        """
        await self.run(self._conn.send(interaction, now=self._clock()))

    def register_function(
        self,
        function_name: str | None,
        handler: Callable[..., Any],
        *,
        timeout_s: float | None = None,
        timeout_secs: float | None = None,
        cancel_on_interruption: bool | None = None,
        cancellable_by_llm: bool | None = None,
    ) -> None:
        """Run ``handler`` when the replica calls ``function_name``.

        Handlers have Pipecat's shape: they take one ``FunctionCallParams``-like argument
        and call ``await params.result_callback(result)``; a Pipecat registration line works
        unchanged, keywords included.

        Args:
            function_name: The tool name, or ``None`` for a catch-all.
            handler: ``async def handler(params)``.
            timeout_s: Deadline for this handler (default ``params.tool_timeout_s``).
            timeout_secs: Pipecat's name for ``timeout_s``.
            cancel_on_interruption: Accepted for Pipecat compatibility; calls are not
                cancelled on an interruption, because a result for an interrupted turn is
                appended as context, never spoken.
            cancellable_by_llm: Accepted for Pipecat compatibility (Tavus cannot cancel).

        Raises:
            LocalProtocolError: ``handler`` is not callable, does not take one argument,
                ``timeout_s`` is not positive, or ``timeout_s`` and ``timeout_secs`` differ.
        """
        if timeout_secs is not None:
            if timeout_s is not None and timeout_s != timeout_secs:
                raise LocalProtocolError(
                    f"timeout_s={timeout_s} and timeout_secs={timeout_secs} disagree: pass one"
                )
            timeout_s = timeout_secs
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

    # --- driving the core -----------------------------------------------------------------

    @property
    def run(self) -> Callable[[list | None], Awaitable[None]]:
        """Carry out a core call's effects in order: ``await tavus.run(effects)``.

        The processors and the tool runner end every core call with it; code that drives
        :attr:`connection` directly (a replay, a test) can too.
        """
        return self._effects.run

    def handlers(self, event_name: str) -> list:
        """The live list of ``event_name``'s handlers (it grows as handlers are added).

        Args:
            event_name: One of :attr:`EVENTS`.
        """
        return self._event_handlers[event_name].handlers

    def has_handlers(self, event_name: str) -> bool:
        """Tell whether anyone listens to ``event_name`` (saves building per-event calls).

        Args:
            event_name: One of :attr:`EVENTS`.
        """
        handlers = self._event_handlers.get(event_name)
        return bool(handlers is not None and handlers.handlers)

    async def emit(self, event_name: str, *args: Any) -> None:
        """Call the handlers of ``event_name`` (each runs as its own task, Pipecat's way).

        Args:
            event_name: One of :attr:`EVENTS`.
            *args: The handler's arguments after ``tavus``.
        """
        await self._call_event_handler(event_name, *args)

    async def processor_started(self, processor: BaseObject) -> None:
        """A processor has its task manager: timers and tool tasks can run from now on.

        Args:
            processor: ``tavus.input()`` or ``tavus.output()``.
        """
        self._effects.set_task_owner(processor)
        if isinstance(processor, TavusInteractionsInput):
            self._input_started = True

    @property
    def input_started(self) -> bool:
        """True once ``tavus.input()`` has started in a pipeline (placement checks)."""
        return self._input_started

    async def cleanup(self) -> None:
        """Stop the timers and tool handlers, then wait for running event handlers.

        The processors' ``cleanup()`` calls this, so no handler task outlives the pipeline.
        """
        self._effects.stop_timer()
        await self.tools.cancel_all()
        await asyncio.sleep(0)  # let handler tasks created by the last effects start
        if self._recorder is not None:
            await self._recorder.aclose(self._conn.stats)
        await super().cleanup()


__all__ = ["TavusInteractions"]
