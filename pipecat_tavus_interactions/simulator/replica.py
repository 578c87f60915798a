"""The simulated Tavus replica: a protocol-faithful peer that speaks and listens on the wire.

:class:`TavusSimulator` emits the Tavus -> app messages a real replica would (built by
:mod:`.wire`, stamped and delivered by :mod:`.channel`) and receives the bot's interactions
(parsed and recorded by :mod:`.inbox`). It runs in simulated time: ``speed`` divides every
wait, so tests run a minute of conversation in a fraction of a second while durations and
timestamps stay at nominal speed.

Behaviour, where the protocol reference leaves a choice:

- At most one replica *activity* runs at a time (a reply, the greeting, or an echo
  utterance). Anything that starts a new one (user barge-in, ``respond``, an echo with a new
  or missing ``inference_id``) first cuts the current one; cut speech ends with a final
  streaming snapshot holding only the words spoken (``is_interrupted: true``) and stopped
  events with ``interrupted: true``.
- ``conversation.respond`` while the replica speaks: interrupt, then respond (reference
  13.5). ``conversation.interrupt`` also cancels a reply still waiting for a tool result.
- ``turn_idx`` is 0 for the greeting and increments on every user turn and every respond.
- The greeting is not interruptible by the user: a user line waits for it to end.
- the ``echo`` pipeline mode has no STT or LLM: user lines emit nothing on the wire (the connected
  transport may hand them to the bot as transcriptions) and ``respond`` is only recorded.
- Text echo emits one replica utterance (the text known when speech starts), then streaming
  snapshots of everything spoken, appended chunks included. Audio echo emits only speaking
  events. An utterance not closed by ``done: true`` ends after ``echo_idle_s`` without content.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from loguru import logger

from ..exceptions import ConfigurationError, UsageError
from ..interactions import Interaction
from .channel import ReplicaChannel, SendCallback
from .chaos import Chaos, Delivery
from .inbox import Inbox
from .persona import ScriptedPersona, ScriptedUser
from .replica_state import ReplicaState
from .speech import Utterance, Voice
from .wire import WireBuilder

__all__ = ["TavusSimulator"]

PipelineMode = Literal["full", "echo"]


class TavusSimulator:
    """A local Tavus replica for tests, examples and the quickstart (no account, no network).

    Example::

        sim = TavusSimulator(persona=ScriptedPersona(default_reply="Hello!"), speed=100)
        async with sim:
            await sim.user_says("Hi there")
            await sim.wait_idle()
        [m["event_type"] for m in sim.emitted]

    Pass it to :class:`~.transport.SimulatedTransport` to put it in a Pipecat pipeline.
    """

    def __init__(
        self,
        *,
        conversation_id: str | None = None,
        pipeline_mode: PipelineMode = "full",
        persona: ScriptedPersona | None = None,
        words_per_second: float = 3.0,
        speed: float = 1.0,
        heartbeat_interval_s: float | None = 1.0,
        chaos: Chaos | None = None,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        replica_id: str = "r-sim",
        tool_wait_s: float = 10.0,
        response_latency_s: float = 0.4,
        echo_idle_s: float = 3.0,
        history: int = 10_000,
        send: SendCallback | None = None,
        mode: PipelineMode | None = None,
    ):
        """Create the simulator (it does nothing until :meth:`start`).

        Args:
            conversation_id: The conversation id; a seeded ``c-sim-...`` id by default.
            pipeline_mode: The persona's ``pipeline_mode``: ``"full"`` (STT, LLM, TTS on the
                replica side) or ``"echo"``.
            persona: The scripted persona; a default one when omitted.
            words_per_second: Speaking rate of the replica and of the user.
            speed: Time factor: every simulated wait is divided by it (tests use 50-200).
            heartbeat_interval_s: Simulated seconds between ``system.replica_present``
                heartbeats; ``None`` disables them.
            chaos: Fault knobs for the outbound channel.
            seed: Seed of every generated id (conversation, participant, inference, tool).
            clock: Returns the ``timestamp`` to stamp; by default simulated epoch seconds
                (wall clock at creation plus elapsed time times ``speed``).
            replica_id: Sent in ``system.replica_joined`` and ``system.shutdown``.
            tool_wait_s: Wall-clock seconds a reply waits for a tool result (not scaled:
                the bot's tools run in real time).
            response_latency_s: Simulated "LLM" seconds before a reply starts.
            echo_idle_s: Simulated seconds an echo utterance without ``done`` waits for more.
            history: How many entries each record keeps (memory stays flat); also bounds
                the transport's records.
            send: ``async send(message, sender_id)``; :meth:`connect` can set it later.
            mode: Deprecated name of ``pipeline_mode``.
        """
        pipeline_mode = _check_settings(mode or pipeline_mode, mode, words_per_second, speed)
        rng = random.Random(seed)
        self.conversation_id = conversation_id or f"c-sim-{rng.getrandbits(40):010x}"
        self.participant_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.pipeline_mode: PipelineMode = pipeline_mode
        self.persona = persona or ScriptedPersona()
        self.words_per_second = words_per_second
        self.speed = speed
        self.heartbeat_interval_s = heartbeat_interval_s
        self.replica_id = replica_id
        self.history = history
        self._build_parts(rng, clock, chaos, send, tool_wait_s, response_latency_s, echo_idle_s)

    def _build_parts(
        self,
        rng: random.Random,
        clock: Callable[[], float] | None,
        chaos: Chaos | None,
        send: SendCallback | None,
        tool_wait_s: float,
        response_latency_s: float,
        echo_idle_s: float,
    ) -> None:
        """Create the moving parts: wire, channel, voice, conversation, inbox and lifecycle."""
        self._wire = WireBuilder(conversation_id=self.conversation_id, rng=rng)
        self._channel = ReplicaChannel(
            sender_id=self.participant_id,
            conversation_id=self.conversation_id,
            clock=clock if clock is not None else _simulated_clock(self.speed),
            chaos=chaos,
            history=self.history,
        )
        self._channel.connect(send, self._on_signal)
        self._on_user_speech: Callable[[str], Any] | None = None
        self._on_left: Callable[[str], Any] | None = None
        self._inbox = Inbox(owner=self, history=self.history)
        self._voice = Voice(
            wire=self._wire,
            channel=self._channel,
            words_per_second=self.words_per_second,
            speed=self.speed,
            echo_idle_s=echo_idle_s,
        )
        self._conv = ReplicaState(
            pipeline_mode=self.pipeline_mode,
            persona=self.persona,
            wire=self._wire,
            channel=self._channel,
            voice=self._voice,
            tool_wait_s=tool_wait_s,
            response_latency_s=response_latency_s,
            history=self.history,
        )
        self._heartbeat: asyncio.Task | None = None
        self._user_lock = asyncio.Lock()
        self._started = asyncio.Event()
        self._gone = False  # shut down or closed

    def __str__(self) -> str:
        return f"TavusSimulator({self.conversation_id})"

    def connect(
        self,
        send: SendCallback | None,
        *,
        on_user_speech: Callable[[str], Any] | None = None,
        on_left: Callable[[str], Any] | None = None,
    ) -> None:
        """Connect the peer that carries the replica's messages (a transport does this).

        Args:
            send: ``async send(message, sender_id)`` for every delivered message.
            on_user_speech: ``async f(text)`` for user lines in echo mode (the room's
                transcription of the user, in order with the messages).
            on_left: ``async f(reason)`` when the replica leaves after :meth:`shutdown`.
        """
        self._channel.connect(send, self._on_signal)
        self._on_user_speech = on_user_speech
        self._on_left = on_left

    async def _on_signal(self, kind: str, value: Any) -> None:
        callback = self._on_user_speech if kind == "user_speech" else self._on_left
        if callback is not None:
            await callback(value)

    @property
    def emitted(self) -> list[dict[str, Any]]:
        """Every message the replica emitted, clean (before chaos), oldest first."""
        return self._channel.emitted

    @property
    def emitted_count(self) -> int:
        """Total number of messages emitted so far."""
        return self._channel.emitted_count

    @property
    def delivered(self) -> list[Delivery]:
        """What went on the wire (after chaos), in order."""
        return self._channel.delivered

    @property
    def chaos_counts(self) -> dict[str, int]:
        """How often each chaos fault was applied."""
        return dict(self._channel.chaos.counts) if self._channel.chaos else {}

    @property
    def foreign_participant_ids(self) -> list[str]:
        """Participant ids that chaos sends foreign messages from."""
        chaos = self._channel.chaos
        return [chaos.foreign_participant_id] if chaos and chaos.config.foreign_sender_rate else []

    @property
    def received(self) -> list[Any]:
        """Every message delivered to the replica, as received."""
        return self._inbox.received

    @property
    def interactions(self) -> list[Interaction]:
        """The accepted interactions, parsed, in order."""
        return self._inbox.interactions

    @property
    def rejected(self) -> list[tuple[Any, str]]:
        """Messages the replica refused, with the reason (never raised)."""
        return self._inbox.rejected

    @property
    def echo_audio_seconds(self) -> dict[str | None, float]:
        """Seconds of echo audio received per ``inference_id`` (``None``: sent without)."""
        return dict(self._conv.echo_audio_s)

    @property
    def context(self) -> list[str]:
        """The conversational context (overwritten/appended by the bot, tool results)."""
        return list(self._conv.context)

    @property
    def turn_idx(self) -> int:
        """The current turn index."""
        return self._conv.turn_idx

    @property
    def is_speaking(self) -> bool:
        """Whether the replica is speaking now."""
        return self._voice.speech is not None

    @property
    def speech(self) -> Utterance | None:
        """The utterance being spoken now (read-only use: the simulated room draws it)."""
        return self._voice.speech

    @property
    def started(self) -> bool:
        """Whether the replica has joined."""
        return self._started.is_set()

    async def __aenter__(self) -> TavusSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Join: emit ``system.replica_joined``, start heartbeats, speak the greeting."""
        if self._started.is_set() or self._gone:
            return
        logger.debug(f"{self}: replica joined")
        self._channel.emit(self._wire.replica_joined(self.replica_id))
        self._started.set()
        if self.heartbeat_interval_s:
            self._heartbeat = asyncio.get_running_loop().create_task(self._heartbeat_loop())
        if self.pipeline_mode == "full" and self.persona.greeting:
            await self._conv.greet(self.persona.greeting)

    async def shutdown(self, reason: str = "end_conversation_endpoint_hit") -> None:
        """End the conversation: stop speaking, emit ``system.shutdown``, leave the room.

        Args:
            reason: The ``shutdown_reason`` to send.
        """
        if not self._started.is_set() or self._gone:
            return
        logger.debug(f"{self}: shutting down ({reason})")
        await self._voice.stop()
        await self._stop_heartbeat()
        self._gone = True
        self._channel.emit(self._wire.shutdown(reason, self.replica_id))
        self._channel.seal()
        self._conv.closed = True
        self._channel.signal("left", reason)
        await self._channel.drain()

    async def close(self) -> None:
        """Stop everything at once, emitting nothing more (the bot left the room)."""
        self._gone = True
        self._conv.closed = True
        await self._stop_heartbeat()
        await self._voice.cancel()
        self._conv.cancel_tool_waits()
        await self._channel.close()

    async def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None

    async def _heartbeat_loop(self) -> None:
        attempt = 0
        interval = self.heartbeat_interval_s or 1.0
        chaos = self._channel.chaos
        while True:
            delay = chaos.heartbeat_delay(interval) if chaos else interval
            await asyncio.sleep(delay / self.speed)
            attempt += 1
            self._channel.emit(self._wire.replica_present(attempt))

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        await asyncio.sleep(seconds / self.speed)

    async def wait_started(self) -> None:
        """Wait until the replica has joined."""
        await self._started.wait()

    async def wait_idle(self) -> None:
        """Wait until the user is silent and the replica has nothing left to do or send."""
        while True:
            task = self._voice.busy
            if task is not None:
                await asyncio.wait({task})
                continue
            if self._user_lock.locked():
                async with self._user_lock:
                    pass
                continue
            break
        self._channel.flush_chaos()
        await self._channel.drain()

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        since: int | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Wait for an emitted message matching ``predicate``.

        Args:
            predicate: Called with each clean emitted message.
            since: Search from this emission index (see :attr:`emitted_count`); by default
                only messages emitted from now on.
            timeout_s: Wall-clock seconds, or ``None``.

        Returns:
            The first matching message.

        Raises:
            TimeoutError: Nothing matched in time.
        """
        return await self._channel.wait_for(predicate, since=since, timeout_s=timeout_s)

    async def wait_for_interaction(
        self, predicate: Callable[[Interaction], bool], *, timeout_s: float | None = None
    ) -> Interaction:
        """Wait until an accepted interaction matches ``predicate`` (already handled then).

        Interactions accepted earlier count too: check :attr:`interactions` first.

        Args:
            predicate: Called with each accepted interaction.
            timeout_s: Wall-clock seconds, or ``None``.

        Returns:
            The first matching interaction.

        Raises:
            TimeoutError: Nothing matched in time.
        """
        return await self._inbox.wait_for(predicate, timeout_s=timeout_s)

    async def run_script(self, user: ScriptedUser) -> None:
        """Let a scripted user speak all its lines, then wait for the replica to finish.

        Args:
            user: The scripted user.
        """
        await user.run(self)

    async def play(
        self,
        script: ScriptedUser | Callable[[TavusSimulator], Awaitable[Any]],
        *,
        shutdown_reason: str = "end_conversation_endpoint_hit",
    ) -> None:
        """Play a whole conversation: the script, then the replica's last words, then shutdown.

        The usual driver of an offline bot: start it when the replica joins, e.g.
        ``worker.create_task(sim.play(user), "scripted-user")`` in ``on_replica_joined``;
        ``system.shutdown`` then ends the bot's pipeline.

        Args:
            script: A scripted user, or ``async f(sim)`` that drives the simulator itself.
            shutdown_reason: The ``shutdown_reason`` of the closing ``system.shutdown``.
        """
        if isinstance(script, ScriptedUser):
            await self.run_script(script)
        else:
            await script(self)
        await self.wait_idle()
        await self.shutdown(shutdown_reason)

    async def user_says(self, text: str) -> None:
        """The user speaks ``text`` (returns once the user stopped; the reply runs on).

        In full mode this emits the user's speaking, streaming and utterance events, cuts
        the replica if it was speaking (barge-in), and starts the persona's reply. In echo
        mode nothing goes on the wire; the connected transport hears the user instead.

        Args:
            text: What the user says.

        Raises:
            ConfigurationError: ``text`` has no words.
            UsageError: The replica has not joined, or has left.
        """
        words = text.split()
        if not words:
            raise ConfigurationError("the user must say at least one word")
        if not self._started.is_set() or self._gone:
            raise UsageError(f"{self}: the replica is not in the call (start() it first)")
        async with self._user_lock:
            if self.pipeline_mode == "echo":
                await self.sleep(len(words) / self.words_per_second)
                self._channel.signal("user_speech", text)
                return
            await self._conv.user_turn(text)

    async def receive(self, message: Any, *, sender_id: str | None = None) -> Interaction | None:
        """Receive one app message from the bot (never raises for bad input).

        Args:
            message: The message as delivered (dict, JSON string, ...).
            sender_id: The sender's participant id, if known.

        Returns:
            The accepted interaction, or ``None`` when the message was rejected (see
            :attr:`rejected`).
        """
        interaction = self._inbox.accept(
            message,
            present=self._started.is_set() and not self._gone,
            conversation_id=self.conversation_id,
            sender_id=sender_id,
        )
        if interaction is None:
            return None
        await self._conv.handle(interaction)
        self._inbox.handled(interaction)
        return interaction


def _check_settings(
    pipeline_mode: str, old_mode: str | None, words_per_second: float, speed: float
) -> PipelineMode:
    if old_mode is not None:
        message = "TavusSimulator(mode=...) is deprecated: use pipeline_mode=..."
        warnings.warn(message, DeprecationWarning, stacklevel=3)
    if pipeline_mode not in ("full", "echo"):
        raise ConfigurationError(f"pipeline_mode must be 'full' or 'echo', got {pipeline_mode!r}")
    if words_per_second <= 0 or speed <= 0:
        raise ConfigurationError("words_per_second and speed must be > 0")
    return pipeline_mode  # type: ignore[return-value]


def _simulated_clock(speed: float) -> Callable[[], float]:
    """Simulated epoch seconds: the wall clock now, plus elapsed time times ``speed``."""
    wall0, mono0 = time.time(), time.monotonic()

    def clock() -> float:
        return wall0 + (time.monotonic() - mono0) * speed

    return clock
