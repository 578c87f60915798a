"""``TavusInteractionsInput``: app messages from the transport into the conversation core.

Placed right after ``transport.input()``. For every ``InputTransportMessageFrame``, the core
(:meth:`~pipecat_tavus_interactions.core.TavusConnection.receive`) decides: non-Tavus app
messages pass through untouched; Tavus messages are consumed, checked (sender, conversation,
shape), ordered, de-duplicated and turned into effects, which the facade carries out as
frames pushed from here and ``on_*`` handlers.

Daily (like every Pipecat transport with app messages) broadcasts each one both ways: one
copy downstream to this processor, one upstream from ``transport.input()`` to the pipeline's
source, where nothing uses a Tavus message but every hop and observer still pays for it.
When this processor sits right after a ``BaseInputTransport``, it wraps that transport's
``broadcast_frame`` (on the instance, at setup; undone at cleanup) so that a message this
processor would consume goes straight to the core, in the transport's task, as if its frame
had been pushed here: the frame is never built, it makes no hop and no upstream copy is made.
So observers and the transport's push event handlers do not see Tavus messages as frames
(the recorder, ``on_event`` and the ``on_*`` handlers do). Other app messages are still
broadcast both ways. A Tavus message that reaches this processor as a frame (another
placement, or an upstream copy) is handled in ``process_frame`` as before.

The processor runs in Pipecat's direct mode: each frame is processed in the task that
pushed it (the input transport's), with no queue hops of its own. Frames keep the order the
transport pushes them in; what this processor pushes goes into the next processor's queue
as before. Handlers run as tasks, so nothing here holds the transport for long.

Frames it pushes (downstream, in protocol order) are listed in the README's "Events and
frames" table; :mod:`~pipecat_tavus_interactions.pipeline.frames` says which survive an
interruption.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputTransportMessageFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.errors import ErrorCategory

if TYPE_CHECKING:
    from pipecat.processors.frame_processor import FrameProcessorSetup
    from pipecat.transports.base_input import BaseInputTransport

    from ..core.ordering import EventOrderer
    from .driver import Driver


class TavusInteractionsInput(FrameProcessor):
    """Feeds Tavus replica events to the conversation core; forwards everything else.

    Create it with ``tavus.input()``; see
    :class:`~pipecat_tavus_interactions.TavusInteractions` for the event handlers.
    """

    #: Process frames in the pushing processor's task (no queues of its own).
    DIRECT_MODE = True

    def __init__(self, *, tavus: Driver, name: str | None = None, **kwargs):
        """Create the processor (use ``tavus.input()`` instead of calling this).

        Args:
            tavus: The facade that owns the conversation.
            name: Optional processor name.
            **kwargs: Passed to ``FrameProcessor`` (``enable_direct_mode`` defaults to
                :attr:`DIRECT_MODE`).
        """
        kwargs.setdefault("enable_direct_mode", self.DIRECT_MODE)
        super().__init__(name=name, **kwargs)
        self._tavus = tavus
        self._conn = tavus.connection
        self._clock = tavus.clock
        self._run = tavus.run
        self._transport: BaseInputTransport | None = None
        self._one_way: Any = None

    @property
    def orderer(self) -> EventOrderer:
        """The ``seq`` re-ordering window (its ``stats`` count gaps and duplicates)."""
        return self._conn.orderer

    @property
    def consumes_upstream_copies(self) -> bool:
        """Whether the transport before this processor skips the upstream copy of Tavus messages."""
        return self._transport is not None

    async def setup(self, setup: FrameProcessorSetup):
        """Set up, then make the input transport before this one send Tavus messages one way."""
        await super().setup(setup)
        # Imported here: the transport base module (and what it imports) is loaded by the
        # time a pipeline runs, but not needed to import the package.
        from pipecat.transports.base_input import BaseInputTransport

        transport = self.previous
        if isinstance(transport, BaseInputTransport) and "broadcast_frame" not in vars(transport):
            self._one_way = self._one_way_broadcast(transport)
            transport.broadcast_frame = self._one_way  # type: ignore[method-assign]
            self._transport = transport

    def _one_way_broadcast(self, transport: BaseInputTransport) -> Any:
        """``transport.broadcast_frame``, but a message this processor consumes is taken in place.

        A Tavus message goes straight to the core, in the task that would have pushed it, as
        if its frame had been pushed to this direct-mode processor: same order, same task,
        but no frame built, no hop and no copy upstream. Anything else is broadcast as before.
        Queued (``DIRECT_MODE = False``), the message is pushed downstream only, as a frame,
        so it keeps its place behind the frames already queued here.
        """
        broadcast = transport.broadcast_frame
        push = transport.push_frame
        claims = self._conn.identity.claims
        direct = self._enable_direct_mode

        async def broadcast_frame(frame_cls: type[Frame], **kwargs: Any) -> None:
            message = kwargs.get("message")
            sender = kwargs.get("participant_id")
            if not (issubclass(frame_cls, InputTransportMessageFrame) and claims(message, sender)):
                await broadcast(frame_cls, **kwargs)
            elif not direct:
                await push(frame_cls(**kwargs))
            elif not self._cancelling:  # as ``queue_frame`` drops frames once cancelling
                await self._take(frame_cls, kwargs, message, sender)

        return broadcast_frame

    async def _take(self, frame_cls: type[Frame], kwargs: dict, message: Any, sender: Any) -> None:
        """Feed a message the transport handed over to the core (see ``_one_way_broadcast``)."""
        try:
            if not await self._feed(message, sender):  # after all not one the core acts on
                await self.push_frame(frame_cls(**kwargs))
        except Exception as e:  # what Pipecat does around ``process_frame``
            await self.push_error(
                error_msg=f"Error processing an app message: {e}",
                exception=e,
                category=ErrorCategory.UNKNOWN,
            )

    async def _feed(self, message: Any, sender: Any) -> bool:
        """Give an app message to the core and carry out its effects; ``False``: not Tavus's."""
        effects = self._conn.receive(message, sender_id=sender, now=self._clock())
        if effects is None:
            return False
        await self._run(effects)
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Consume Tavus messages, feed them to the core, and forward everything else."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputTransportMessageFrame):
            sender = getattr(frame, "participant_id", None)
            if direction is FrameDirection.UPSTREAM:
                # Daily broadcasts both ways; the downstream copy is the one acted on.
                if not self._conn.identity.claims(frame.message, sender):
                    await self.push_frame(frame, direction)
                return
            if not await self._feed(frame.message, sender):
                await self.push_frame(frame, direction)
            return
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._tavus.processor_started(self)
            return
        if isinstance(frame, EndFrame):
            # Release held events and complete the open turn before the end goes on.
            await self._run(self._conn.finish(now=self._clock()))
        elif isinstance(frame, CancelFrame):
            self._conn.cancel()
        await self.push_frame(frame, direction)

    async def cleanup(self):
        """Stop the core's timers and the tool handlers; wait for event handler tasks."""
        transport, self._transport = self._transport, None
        if transport is not None and vars(transport).get("broadcast_frame") is self._one_way:
            del transport.broadcast_frame  # the class's method again
        await self._tavus.cleanup()
        await super().cleanup()


__all__ = ["TavusInteractionsInput"]
