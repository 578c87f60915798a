"""What Pipecat's observers, metrics and RTVI expect, made from the replica's real events.

Pipecat's own services tell the rest of a pipeline what happened with a handful of frames,
and its observers key on exactly those: ``UserBotLatencyObserver`` measures from a
downstream ``VADUserStoppedSpeakingFrame`` to the next ``BotStartedSpeakingFrame`` and
collects ``MetricsFrame``s in between; ``TurnTrackingObserver`` keys on
``UserStartedSpeakingFrame`` and ``BotStarted/StoppedSpeakingFrame``; ``RTVIObserver`` turns
transcriptions, speaking frames, function-call frames, text that leaves the output transport
and ``RTVIServerMessageFrame`` into messages for RTVI clients. When Tavus runs the speech
recognition, the LLM or the voice, no Pipecat service is there to push them, so
:class:`PipecatSignals` pushes them from ``tavus.input()``, driven by the events the core
accepted and by what its turn ledger measured:

- ``VADUserStartedSpeakingFrame`` / ``VADUserStoppedSpeakingFrame`` when Tavus says the user
  started or stopped speaking (``emit_vad_frames``), in the modes where Tavus listens to the
  user (``full``, or an echo mode with ``user_turn_frames_in_echo``). They are pushed as the
  event arrives (``stop_secs=0``), on Pipecat's wall clock like a local VAD's, so a latency
  measured from them is the replica's ``user stopped -> replica started`` time as it reached
  the bot.
- a ``MetricsFrame`` with ``TTFBMetricsData`` (the ledger's ``response_latency_s`` for the
  turn, from Tavus's own timestamps) just before the turn's first ``BotStartedSpeakingFrame``,
  when the pipeline runs with ``enable_metrics``: the replica's time to first byte, as an LLM
  or TTS service reports its own.
- in ``full`` mode, what the replica really said (its final streaming snapshot) as a
  ``TTSTextFrame`` (``skip_tts``: nothing in Pipecat should voice it again) for transcripts,
  the assistant context and RTVI's ``bot-output`` (``emit_bot_output``).
- an ``RTVIServerMessageFrame`` for perception analysis, objective and guardrail events
  (``rtvi_server_messages``): RTVI clients get them as ``server-message``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipecat.frames.frames import (
    MetricsFrame,
    TTSTextFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData

from .. import events as ev

if TYPE_CHECKING:
    from .driver import Driver
    from .input import TavusInteractionsInput

#: ``model`` of the replica's metrics (``TTFBMetricsData.model``).
METRICS_MODEL = "tavus-cvi"

#: ``type`` of the data of the RTVI server messages made from Tavus events.
SERVER_MESSAGE_TYPE = "tavus-event"


def server_message_data(event: ev.Event) -> dict[str, Any]:
    """The ``data`` of the RTVI ``server-message`` for ``event``.

    Args:
        event: A perception analysis, objective or guardrail event.

    Returns:
        ``{"type": "tavus-event", "event_type": ..., "turn_idx": ..., "event": <the message
        as Tavus sent it>}``.
    """
    return {
        "type": SERVER_MESSAGE_TYPE,
        "event_type": event.event_type,
        "turn_idx": event.turn_idx,
        "event": event.raw,
    }


class PipecatSignals:
    """Pushes the frames Pipecat's observers, metrics and RTVI key on (see the module doc)."""

    def __init__(self, tavus: Driver, inbound: TavusInteractionsInput):
        """Create the signals for one facade.

        Args:
            tavus: The facade (params, core).
            inbound: ``tavus.input()``, which pushes the frames.
        """
        params = tavus.params
        full = params.mode == "full"
        self._in = inbound
        self._ledger = tavus.connection.ledger
        #: Push VAD frames for the user's speech (Tavus listens to the user in this mode).
        self.vad = params.emit_vad_frames and (full or params.user_turn_frames_in_echo)
        #: Push what the replica said as a TTSTextFrame.
        self.bot_output = params.emit_bot_output and full
        #: Push RTVIServerMessageFrame for perception, objective and guardrail events.
        self.server_messages = params.rtvi_server_messages
        self._user_speaking = False
        self._started_turn: int | None = None  # turn of the replica start just accepted
        self._reported_turn: int | None = None  # the last turn whose TTFB was pushed
        self._server_frame: Any = None

    async def speaking_event(self, event: ev.SpeakingEvent) -> None:
        """Take an accepted speaking event (one per transition, de-duplicated by the core).

        Args:
            event: The event.
        """
        if event.role == ev.ROLE_USER:
            if self.vad and event.speaking != self._user_speaking:
                self._user_speaking = event.speaking
                frame: Any = (
                    VADUserStartedSpeakingFrame(start_secs=0.0, timestamp=time.time())
                    if event.speaking
                    else VADUserStoppedSpeakingFrame(stop_secs=0.0, timestamp=time.time())
                )
                await self._in.push_frame(frame)
        elif event.speaking:
            turn = event.turn_idx
            self._started_turn = turn if turn is not None else self._ledger.current_turn_idx

    async def bot_started(self) -> None:
        """Push the turn's TTFB just before its first ``BotStartedSpeakingFrame``."""
        turn_idx, self._started_turn = self._started_turn, None
        if turn_idx is None or turn_idx == self._reported_turn or not self._in.metrics_enabled:
            return
        record = self._ledger.get(turn_idx)
        latency = record.response_latency_s if record is not None else None
        if latency is None or latency < 0:
            return
        self._reported_turn = turn_idx
        data = TTFBMetricsData(processor=self._in.name, model=METRICS_MODEL, value=latency)
        await self._in.push_frame(MetricsFrame(data=[data]))

    async def spoken(self, text: str) -> None:
        """Push what the replica really said (``full`` mode).

        Args:
            text: The final streaming snapshot's text.
        """
        if not self.bot_output or not text:
            return
        frame = TTSTextFrame(text, text_type="sentence")
        frame.skip_tts = True  # Tavus voiced it; RTVI sends it without waiting for speech
        frame.will_be_spoken = True
        await self._in.push_frame(frame)

    async def server_message(self, event: ev.Event) -> None:
        """Push an ``RTVIServerMessageFrame`` for a perception, objective or guardrail event.

        Args:
            event: The event.
        """
        if not self.server_messages:
            return
        cls = self._server_frame
        if cls is None:
            # Imported on first use: the RTVI package is heavy, and most bots never need it.
            from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame

            cls = self._server_frame = RTVIServerMessageFrame
        await self._in.push_frame(cls(data=server_message_data(event)))


__all__ = ["METRICS_MODEL", "SERVER_MESSAGE_TYPE", "PipecatSignals", "server_message_data"]
