"""Live wiring: a ``DailyTransport`` and a ``TavusInteractions`` for a real Tavus conversation.

This module owns the edge between a conversation created with
:class:`~pipecat_tavus_interactions.api.TavusAPI` and a running Pipecat bot:

- :func:`connect` builds a :class:`~pipecat.transports.daily.transport.DailyTransport` for the
  conversation's Daily room (``conversation_url``, plus ``meeting_token`` for a private room)
  and a :class:`~pipecat_tavus_interactions.TavusInteractions` bound to its
  ``conversation_id``, and ties them together: the facade learns the replica's participant id
  from the transport, and the bot stops listening to the replica's microphone as soon as the
  replica is in the room (an STT must hear the user, never the replica's own voice).
- :func:`daily_params_for` gives the ``DailyParams`` each mode needs.
- :meth:`LiveSession.pipeline_worker` builds a ``PipelineWorker`` with the settings a bot
  that joins a Tavus room needs (see :meth:`LiveSession.worker_kwargs`), which ends when the
  replica leaves, and ends early, with :attr:`LiveSession.failure` set, when the bot cannot
  join the room (at once) or the replica never arrives (after ``replica_join_timeout_s``).

Nothing here joins the room: construction works offline, and the room is joined when the
pipeline starts. The meeting token is handed to Daily and never logged or shown in a repr.

Example::

    async with aiohttp.ClientSession() as http:
        api = TavusAPI(api_key=key, session=http)
        async with api.conversation(pal_id=pal_id, face_id=face_id) as conversation:
            live = connect(conversation, params=TavusInteractionsParams(mode="full"))
            live.tavus.register_function("get_weather", get_weather)
            pipeline = Pipeline([live.transport.input(), live.tavus.input(),
                                 live.tavus.output(), live.transport.output()])
            runner = WorkerRunner(handle_sigint=True, handle_sigterm=True)
            await runner.add_workers(live.pipeline_worker(pipeline))
            await runner.run()
            if live.failure:          # the room could not be joined, or no replica came
                raise live.failure    # the conversation is still ended by the block
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from loguru import logger
from pipecat.frames.frames import CancelFrame, EndFrame
from pipecat.pipeline.base_pipeline import BasePipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.transports.daily.transport import DailyParams, DailyTransport

from .api import Conversation
from .exceptions import ConfigurationError, ConfigurationTypeError, ReplicaNotReadyError
from .params import Mode, TavusInteractionsParams
from .pipeline.facade import TavusInteractions
from .pipeline.rtvi import TavusRTVIProcessor

__all__ = ["LiveSession", "TavusRTVIProcessor", "connect", "daily_params_for"]

#: Seconds :meth:`LiveSession.pipeline_worker` waits for the replica before ending the bot,
#: counted from the pipeline's start, which Pipecat holds until the bot's own join finished.
#: Tavus puts the replica in the room when the conversation is created, so it is usually
#: there before the bot; and the conversation bills while the bot waits.
DEFAULT_REPLICA_JOIN_TIMEOUT_S = 30.0

_UNSUBSCRIBE_MICROPHONE = {"media": {"microphone": "unsubscribed"}}


def daily_params_for(mode: Mode, **overrides: Any) -> DailyParams:
    """Return the ``DailyParams`` a bot in a Tavus room needs in ``mode``.

    - ``full``: no media at all. Tavus hears the user and speaks; the bot only exchanges
      app messages (tool calls, context, transcripts).
    - ``echo_text``: the user's microphone in (for the bot's STT), nothing out: the replica
      voices the echoed text.
    - ``echo_audio``: the user's microphone in, no audio track out either: the bot's TTS
      audio travels as ``conversation.echo`` app messages and the replica plays it.

    In every mode the bot publishes no camera and no microphone, and, in the echo modes, it
    receives audio per participant (``audio_in_user_tracks``) so that the replica's track can
    be left out (see :func:`connect`).

    Args:
        mode: The :class:`~pipecat_tavus_interactions.TavusInteractionsParams` mode.
        **overrides: ``DailyParams`` fields to set on top (for example
            ``audio_in_sample_rate=16000``).

    Returns:
        The parameters.

    Raises:
        ConfigurationError: Unknown ``mode``, or overrides that would mix the replica's voice
            into the bot's audio input (also a ``ValueError``).
    """
    if mode not in ("full", "echo_text", "echo_audio"):
        raise ConfigurationError(f"mode must be 'full', 'echo_text' or 'echo_audio', not {mode!r}")
    listens = mode != "full"
    fields: dict[str, Any] = {
        "audio_in_enabled": listens,
        "audio_in_user_tracks": True,
        "audio_out_enabled": False,
        "microphone_out_enabled": False,
        "video_in_enabled": False,
        "video_out_enabled": False,
        "camera_out_enabled": False,
    }
    fields.update(overrides)
    params = DailyParams(**fields)
    _check_daily_params(mode, params)
    return params


def _check_daily_params(mode: Mode, params: DailyParams) -> None:
    if params.audio_in_enabled and not params.audio_in_user_tracks:
        # Without per-participant tracks Daily mixes the whole room into one stream, the
        # replica's voice included, and there is no track to unsubscribe from.
        raise ConfigurationError(
            f"{mode} mode: audio_in_user_tracks=False mixes the replica's voice into the "
            "bot's audio input (its STT would transcribe the replica); keep it True"
        )


def _conversation_fields(conversation: Conversation | Mapping[str, Any]) -> tuple[str, str, Any]:
    if isinstance(conversation, Conversation):
        cid = conversation.conversation_id
        url = conversation.conversation_url
        token = conversation.meeting_token
    elif isinstance(conversation, Mapping):
        cid = conversation.get("conversation_id")
        url = conversation.get("conversation_url")
        token = conversation.get("meeting_token")
    else:
        raise ConfigurationTypeError(
            "conversation must be an api.Conversation or a mapping with conversation_id and "
            f"conversation_url, not {type(conversation).__name__}"
        )
    if not isinstance(cid, str) or not cid:
        raise ConfigurationError(
            "the conversation has no conversation_id: pass the conversation TavusAPI created "
            "(or a mapping with its conversation_id and conversation_url)"
        )
    if not isinstance(url, str) or not url:
        raise ConfigurationError(
            f"conversation {cid} has no conversation_url to join: pass the conversation_url "
            "Tavus returned when the conversation was created"
        )
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigurationError(
            f"conversation {cid}: meeting_token must be a non-empty string, or left out for "
            "a public room"
        )
    return cid, url, token


class LiveSession:
    """A Tavus conversation wired for a Pipecat bot: its transport and its facade.

    Made by :func:`connect`. Put ``transport.input()``, ``tavus.input()`` first and
    ``tavus.output()``, ``transport.output()`` last in the pipeline, and run it with
    :meth:`pipeline_worker`.

    Attributes:
        transport: The ``DailyTransport`` for the conversation's room (not joined until the
            pipeline starts).
        tavus: The ``TavusInteractions`` bound to the conversation id.
        conversation: The conversation as given to :func:`connect`.
    """

    def __init__(
        self,
        *,
        transport: DailyTransport,
        tavus: TavusInteractions,
        conversation: Conversation | Mapping[str, Any],
        unsubscribe_replica_audio: bool = True,
    ):
        """Wire ``transport`` and ``tavus`` together (use :func:`connect` to build one).

        Args:
            transport: The transport for the conversation's room.
            tavus: The facade bound to the conversation.
            conversation: The conversation.
            unsubscribe_replica_audio: Stop receiving the replica's microphone once it is
                in the room.
        """
        self.transport = transport
        self.tavus = tavus
        self.conversation = conversation
        self._unsubscribe_replica_audio = unsubscribe_replica_audio
        self._muted: set[str] = set()
        self._joined_room = False
        self._join_error: str | None = None
        self._failure: ReplicaNotReadyError | None = None
        tavus.attach_transport(transport)
        transport.add_event_handler("on_participant_joined", self._on_participant_joined)
        transport.add_event_handler("on_joined", self._on_joined)
        transport.add_event_handler("on_error", self._on_transport_error)

    def __repr__(self) -> str:
        return f"LiveSession(conversation_id={self.conversation_id!r}, mode={self.mode!r})"

    __str__ = __repr__

    @property
    def conversation_id(self) -> str:
        """The Tavus conversation id."""
        cid = self.tavus.conversation_id
        assert cid is not None  # connect() always sets it
        return cid

    @property
    def mode(self) -> Mode:
        """The interaction mode (``full``, ``echo_text`` or ``echo_audio``)."""
        return self.tavus.params.mode

    @property
    def failure(self) -> ReplicaNotReadyError | None:
        """Why the pipeline was ended early, or ``None``.

        Set by a worker from :meth:`pipeline_worker` when the bot could not join the
        conversation's room, or when the replica did not arrive within
        ``replica_join_timeout_s``. Check it after the runner returns (and raise it, or
        report it): the pipeline itself ends without raising.
        """
        return self._failure

    # --- the replica's audio ------------------------------------------------------------

    async def _on_participant_joined(self, transport: DailyTransport, participant: Any) -> None:
        await self._maybe_mute_replica(participant)

    async def _on_transport_error(self, transport: DailyTransport, error: Any) -> None:
        # Pipecat joins while the input transport is set up, and reports a failed join as an
        # error before the pipeline starts; the worker's start handler acts on it.
        if not self._joined_room and self._join_error is None:
            self._join_error = str(error)

    async def _on_joined(self, transport: DailyTransport, data: Any) -> None:
        self._joined_room = True
        # The replica may already be in the room when the bot joins.
        for key, participant in transport.participants().items():
            if key != "local" and isinstance(participant, Mapping):
                await self._maybe_mute_replica(participant)

    async def _maybe_mute_replica(self, participant: Mapping[str, Any]) -> None:
        pid = participant.get("id")
        if not isinstance(pid, str) or not self.tavus.is_replica_participant(participant):
            return
        self.tavus.set_replica_participant(pid)
        if not self._unsubscribe_replica_audio or pid in self._muted:
            return
        self._muted.add(pid)
        logger.debug(f"{self}: no longer receiving the replica's ({pid}) microphone")
        await self.transport.update_subscriptions(
            participant_settings={pid: _UNSUBSCRIBE_MICROPHONE}
        )

    # --- running ----------------------------------------------------------------------

    def worker_kwargs(self) -> dict[str, Any]:
        """Return the ``PipelineWorker`` keyword arguments a bot in a Tavus room needs.

        - ``rtvi_processor=TavusRTVIProcessor()``: RTVI stays on, as Pipecat's default, so an
          RTVI client in the conversation's room (the Pipecat client SDKs on Daily) gets the
          replica's transcripts, speaking state, tool calls and other events; this processor
          leaves the Tavus app messages to ``tavus.input()`` without logging each one.
        - ``idle_timeout_secs=None`` and ``cancel_on_idle_timeout=False``: Pipecat's idle
          timer resets only on speech and transcription frames. A ``full`` mode bot writes
          no audio, and the input pushes those frames only while someone speaks, so a quiet
          stretch (a user reading, a long tool call) would cancel it. The conversation's
          life belongs to Tavus instead: ``system.shutdown`` ends the pipeline, the replica
          leaving ends it (see :meth:`pipeline_worker`), and Tavus's own
          ``max_call_duration``/``participant_left_timeout`` end the call.

        Returns:
            The keyword arguments.
        """
        return {
            "rtvi_processor": TavusRTVIProcessor(),
            "idle_timeout_secs": None,
            "cancel_on_idle_timeout": False,
        }

    def pipeline_worker(
        self,
        pipeline: BasePipeline,
        *,
        end_when_replica_leaves: bool = True,
        replica_join_timeout_s: float | None = DEFAULT_REPLICA_JOIN_TIMEOUT_S,
        **overrides: Any,
    ) -> PipelineWorker:
        """Build a ``PipelineWorker`` for ``pipeline`` with :meth:`worker_kwargs`.

        Args:
            pipeline: The bot's pipeline (with this session's transport and facade in it).
            end_when_replica_leaves: End the pipeline (``EndFrame``) when the replica's
                participant leaves the room.
            replica_join_timeout_s: End the pipeline (``EndFrame``) if the replica has not
                joined this many seconds after the pipeline started (a conversation that
                ended early, a replica that failed to start); ``None`` waits forever.
            **overrides: ``PipelineWorker`` arguments that replace or add to the defaults.

        Whatever the settings, a bot that could not join the room (Pipecat reports the failed
        join as a transport error) is cancelled as soon as the pipeline starts, instead of
        waiting for a replica that cannot reach it. Both early ends are logged as errors and
        set :attr:`failure`.

        Returns:
            The worker, ready for ``WorkerRunner.add_workers``/``run``.

        Raises:
            ConfigurationError: ``replica_join_timeout_s`` is zero or negative.
        """
        if replica_join_timeout_s is not None and replica_join_timeout_s <= 0:
            raise ConfigurationError(
                "replica_join_timeout_s must be > 0 (seconds) or None (wait forever), not "
                f"{replica_join_timeout_s}"
            )
        worker = PipelineWorker(pipeline, **{**self.worker_kwargs(), **overrides})
        if end_when_replica_leaves:

            async def on_participant_left(_transport, participant, *args):
                if participant.get("id") == self.tavus.replica_participant_id:
                    logger.debug(f"{self}: the replica left the room; ending the pipeline")
                    await worker.queue_frame(EndFrame(reason="replica left"))

            self.transport.add_event_handler("on_participant_left", on_participant_left)
        self._add_early_ends(worker, replica_join_timeout_s)
        return worker

    def _add_early_ends(self, worker: PipelineWorker, timeout_s: float | None) -> None:
        """End the pipeline when the bot could not join, or the replica does not come."""
        joined = asyncio.Event()
        watch: list[asyncio.Task] = []

        async def on_replica_joined(_tavus, _event):
            joined.set()

        async def wait_for_replica(limit_s: float):
            try:
                await asyncio.wait_for(joined.wait(), limit_s)
            except TimeoutError:
                self._fail(f"the replica did not join within {limit_s:g}s")
                await worker.queue_frame(EndFrame(reason="replica did not join"))

        async def on_pipeline_started(_worker, _frame):
            if self._join_error is not None and not self._joined_room:
                # Nothing can reach the replica: end now, not after the timeout.
                self._fail(f"the bot could not join the conversation's room ({self._join_error})")
                await worker.queue_frame(CancelFrame(reason="could not join the room"))
            elif timeout_s is not None and not joined.is_set():
                task = worker.create_task(wait_for_replica(timeout_s), "replica-join-timeout")
                watch.append(task)

        async def on_pipeline_finished(_worker, _frame):
            for task in watch:
                if not task.done():
                    await worker.cancel_task(task)

        self.tavus.add_event_handler("on_replica_joined", on_replica_joined)
        worker.add_event_handler("on_pipeline_started", on_pipeline_started)
        worker.add_event_handler("on_pipeline_finished", on_pipeline_finished)

    def _fail(self, why: str) -> None:
        token = _conversation_fields(self.conversation)[2]
        if token:  # Daily's own error text is not ours to trust with the meeting token
            why = why.replace(token, "***")
        if self._failure is None:
            self._failure = ReplicaNotReadyError(
                f"conversation {self.conversation_id}: {why}; the pipeline was ended"
            )
        logger.error(f"{self}: {why}; ending the pipeline")


def connect(
    conversation: Conversation | Mapping[str, Any],
    *,
    params: TavusInteractionsParams | None = None,
    bot_name: str = "Pipecat",
    daily_params: DailyParams | None = None,
    unsubscribe_replica_audio: bool = True,
) -> LiveSession:
    """Wire a Pipecat bot to a created Tavus conversation (nothing is joined yet).

    Args:
        conversation: An :class:`~pipecat_tavus_interactions.api.Conversation`, or a mapping
            with ``conversation_id``, ``conversation_url`` and optionally ``meeting_token``.
        params: The facade's configuration; its ``conversation_id`` is filled from the
            conversation (it may be left unset, or must match).
        bot_name: The bot's name in the room.
        daily_params: Transport parameters; :func:`daily_params_for` the mode by default.
        unsubscribe_replica_audio: Stop receiving the replica's microphone when it joins.
            The bot never needs the replica's voice (Tavus reports what it says as text),
            and in the echo modes an STT must not transcribe it.

    Returns:
        The :class:`LiveSession`.

    Raises:
        ConfigurationError: The conversation has no id or URL, ``params`` names another
            conversation, or ``daily_params`` would mix the replica into the audio input
            (also a ``ValueError``).
        ConfigurationTypeError: ``conversation`` is neither a ``Conversation`` nor a mapping
            (also a ``TypeError``).
    """
    cid, url, token = _conversation_fields(conversation)
    params = params or TavusInteractionsParams()
    if params.conversation_id is None:
        params = params.model_copy(update={"conversation_id": cid})
    elif params.conversation_id != cid:
        raise ConfigurationError(
            f"params.conversation_id is {params.conversation_id!r} but the conversation is "
            f"{cid!r}; leave it unset"
        )
    if daily_params is None:
        daily_params = daily_params_for(params.mode)
    else:
        _check_daily_params(params.mode, daily_params)
    transport = DailyTransport(url, token, bot_name, params=daily_params)
    tavus = TavusInteractions(params=params)
    session = LiveSession(
        transport=transport,
        tavus=tavus,
        conversation=conversation,
        unsubscribe_replica_audio=unsubscribe_replica_audio,
    )
    logger.debug(f"{session}: transport ready for the conversation's room (not joined)")
    return session
