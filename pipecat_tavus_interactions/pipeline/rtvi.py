"""Pipecat's RTVI processor, for a bot that shares its Daily room with a Tavus replica.

With RTVI on (Pipecat's default), ``PipelineWorker`` puts an ``RTVIProcessor`` in front of
the pipeline. Daily's input transport pushes every app message of the room both ways; the
downstream copy of a Tavus event reaches ``tavus.input()``, which consumes it, and the
upstream copy reaches the RTVI processor, which consumes every app message it gets and logs
each one that is not an RTVI message as a warning, with its content: one warning per
replica event (heartbeats, every streaming snapshot, the user's words).

:class:`TavusRTVIProcessor` is Pipecat's ``RTVIProcessor`` except that it drops those upstream
copies of Tavus events quietly, and passes a Tavus event that comes downstream on to
``tavus.input()`` (Pipecat's processor would swallow it: it consumes app messages in both
directions, so with ``RTVIProcessor`` placed between ``transport.input()`` and
``tavus.input()`` no replica event would arrive). Both are counted in
:attr:`TavusRTVIProcessor.tavus_messages`. RTVI messages from clients, and any other app
message, are handled exactly as Pipecat does.
Give it to the worker: ``PipelineWorker(pipeline, rtvi_processor=TavusRTVIProcessor())``
(``live.LiveSession.worker_kwargs`` does).
"""

from __future__ import annotations

from pipecat.frames.frames import Frame, InputTransportMessageFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.processors.frameworks.rtvi import RTVIProcessor

from ..core.identity import looks_like_tavus


class TavusRTVIProcessor(RTVIProcessor):
    """``RTVIProcessor`` that leaves Tavus's app messages to ``tavus.input()``, quietly."""

    def __init__(self, **kwargs):
        """Create the processor.

        Args:
            **kwargs: Passed to ``RTVIProcessor``.
        """
        super().__init__(**kwargs)
        #: How many Tavus app messages reached this processor (and were dropped quietly).
        self.tavus_messages = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Drop the upstream copy of a Tavus event quietly; handle the rest as RTVI does.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        if isinstance(frame, InputTransportMessageFrame) and looks_like_tavus(frame.message):
            await super(RTVIProcessor, self).process_frame(frame, direction)  # FrameProcessor's
            self.tavus_messages += 1
            if direction == FrameDirection.DOWNSTREAM:
                # Placed before tavus.input() (inside the pipeline, or frames queued at the
                # worker's head): pass it on. RTVIProcessor would swallow it.
                await self.push_frame(frame, direction)
            # Upstream: Daily's broadcast copy, whose sibling went downstream to
            # tavus.input(). RTVIProcessor drops it too, after a warning with its content.
            return
        await super().process_frame(frame, direction)


__all__ = ["TavusRTVIProcessor"]
