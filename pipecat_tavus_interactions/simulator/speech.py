"""The simulated replica's voice: one activity at a time, speech in simulated time, cut on demand.

An *activity* is what the replica is busy with: a reply (possibly waiting for a tool result
first), the greeting, or an echo utterance. :class:`Voice` runs at most one at a time:
:meth:`Voice.start` cuts the current one before starting the next, and :meth:`Voice.stop`
cuts it. Cutting a speaking activity lets its speech loop close the utterance on the wire
(final streaming snapshot with only the words spoken and ``is_interrupted: true``, then the
stopped events with ``interrupted: true``); cutting an activity that is not speaking yet
(an "LLM" or tool wait) cancels it silently.

Speech is paced in simulated time: a word lasts ``1 / words_per_second`` seconds and echo
audio lasts its PCM duration, each divided by ``speed`` in wall-clock time. The durations
reported on the wire are simulated seconds, so they do not depend on ``speed``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from .channel import ReplicaChannel
from .wire import WireBuilder

__all__ = ["Utterance", "Voice"]


@dataclass(eq=False)
class Utterance:
    """One replica utterance: what is left to say, and what has been said.

    Parameters:
        kind: ``"reply"``, ``"greeting"`` or ``"echo"``.
        inference_id: The envelope ``inference_id`` of all its events.
        turn_idx: The ``turn_idx`` of all its events.
        done: No more content will be appended.
        has_text: Whether it carries text (streaming snapshots are sent only then).
    """

    kind: str
    inference_id: str
    turn_idx: int
    done: bool = True
    has_text: bool = True
    items: deque = field(default_factory=deque)  # ("word", str) | ("audio", seconds)
    spoken_words: list[str] = field(default_factory=list)
    spoken_audio_s: float = 0.0
    content_index: int = 0
    final_sent: bool = False
    finished: bool = False
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def add_text(self, text: str) -> None:
        """Queue the words of ``text``."""
        self.items.extend(("word", word) for word in text.split())

    def add_audio(self, seconds: float) -> None:
        """Queue ``seconds`` of audio."""
        self.items.append(("audio", seconds))

    def interrupt(self) -> None:
        """Cut the utterance now."""
        self.cut.set()
        self.wake.set()


class Voice:
    """Runs the replica's activities one at a time and speaks utterances on the wire."""

    def __init__(
        self,
        *,
        wire: WireBuilder,
        channel: ReplicaChannel,
        words_per_second: float,
        speed: float,
        echo_idle_s: float,
        audio_step_s: float = 0.1,
    ):
        """Create the voice.

        Args:
            wire: Builds the messages.
            channel: Emits them.
            words_per_second: Speaking rate.
            speed: Time factor dividing every wait.
            echo_idle_s: Simulated seconds an unfinished echo utterance waits for more.
            audio_step_s: Granularity at which echo audio can be cut.
        """
        self._wire = wire
        self._channel = channel
        self.words_per_second = words_per_second
        self.speed = speed
        self.echo_idle_s = echo_idle_s
        self.audio_step_s = audio_step_s
        self._activity: asyncio.Task | None = None
        self._speech: Utterance | None = None

    @property
    def busy(self) -> asyncio.Task | None:
        """The running activity's task, if any."""
        task = self._activity
        return task if task is not None and not task.done() else None

    @property
    def speech(self) -> Utterance | None:
        """The utterance being spoken, if any."""
        sp = self._speech
        return sp if sp is not None and not sp.finished else None

    async def start(
        self, coro: Coroutine[Any, Any, None], *, speech: Utterance | None = None
    ) -> None:
        """Cut the current activity, then run ``coro`` as the new one.

        Args:
            coro: The activity.
            speech: The utterance ``coro`` speaks right away, if any: it counts as being
                spoken from now on (an echo appended or preempted before the task first
                runs must find it).
        """
        try:
            current = asyncio.current_task()
            # Loop: another caller may have started an activity while we waited.
            while (task := self.busy) is not None and task is not current:
                await self.stop()
        except BaseException:
            coro.close()
            raise
        self._speech = speech
        task = asyncio.get_running_loop().create_task(coro)
        self._activity = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        if self._activity is task:
            self._activity = None
            self._speech = None
            self._channel.flush_chaos()  # idle: nothing may stay held back
        if not task.cancelled() and task.exception() is not None:
            logger.error(f"{self}: replica activity failed: {task.exception()!r}")

    async def stop(self) -> None:
        """Cut the current activity and wait until it has closed its utterance."""
        task = self.busy
        if task is None or task is asyncio.current_task():
            return
        sp = self.speech
        if sp is not None:
            sp.interrupt()  # the speech loop emits the interrupted events itself
        else:
            task.cancel()
        await asyncio.wait({task})

    async def cancel(self) -> None:
        """Cancel the current activity without emitting anything."""
        task = self.busy
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def echo(
        self,
        *,
        text: str | None,
        audio_s: float | None,
        inference_id: str | None,
        done: bool,
        turn_idx: int,
        new_id: str,
    ) -> None:
        """Speak an echo: append to the current echo utterance, or preempt and start one.

        The same ``inference_id`` as an open echo utterance appends to it; any other or a
        missing one cuts what the replica is doing and starts a new utterance.

        Args:
            text: Text to speak, for a text echo.
            audio_s: Seconds of audio, for an audio echo.
            inference_id: The echo's ``inference_id``, if sent.
            done: Whether this closes the utterance.
            turn_idx: The current turn index.
            new_id: The id to use when the echo has none.
        """
        sp = self.speech
        if (
            sp is not None
            and sp.kind == "echo"
            and not sp.done
            and inference_id is not None
            and sp.inference_id == inference_id
        ):
            self._fill(sp, text, audio_s)
            sp.done = done
            sp.wake.set()
            return
        sp = Utterance(
            kind="echo",
            inference_id=inference_id or new_id,
            turn_idx=turn_idx,
            done=done,
            has_text=False,
        )
        self._fill(sp, text, audio_s)
        await self.start(self.speak(sp, announce=text), speech=sp)

    @staticmethod
    def _fill(sp: Utterance, text: str | None, audio_s: float | None) -> None:
        if text is not None:
            sp.has_text = True
            sp.add_text(text)
        if audio_s is not None:
            sp.add_audio(audio_s)

    async def _pause(self, seconds: float, sp: Utterance) -> bool:
        """Sleep simulated ``seconds``; return False if the utterance was cut meanwhile."""
        if sp.cut.is_set():
            return False
        try:
            async with asyncio.timeout(seconds / self.speed):
                await sp.cut.wait()
        except TimeoutError:
            return True
        return False

    async def _say_next(self, sp: Utterance) -> bool:
        """Say the next queued item; return False if cut."""
        kind, value = sp.items[0]
        if kind == "audio":
            step = min(value, self.audio_step_s)
            if not await self._pause(step, sp):
                return False
            sp.spoken_audio_s += step
            if value - step > 1e-9:
                sp.items[0] = ("audio", value - step)
            else:
                sp.items.popleft()
            return True
        if not await self._pause(1.0 / self.words_per_second, sp):
            return False
        sp.items.popleft()
        sp.spoken_words.append(value)
        final = sp.done and not sp.items
        self._channel.emit(
            self._wire.streaming(
                "pal",
                " ".join(sp.spoken_words),
                content_index=sp.content_index,
                final=final,
                is_interrupted=False,
                turn_idx=sp.turn_idx,
                inference_id=sp.inference_id,
            )
        )
        sp.content_index += 1
        sp.final_sent = final
        return True

    async def speak(self, sp: Utterance, *, announce: str | None) -> None:
        """Speak ``sp`` to the end, or until it is cut (reference section 6, steps 6-9).

        Args:
            sp: The utterance.
            announce: The intended text for the replica ``conversation.utterance``, or
                ``None`` to send none (audio echo).
        """
        w, emit = self._wire, self._channel.emit
        ids = {"turn_idx": sp.turn_idx, "inference_id": sp.inference_id}
        self._speech = sp
        try:
            if announce is not None:
                emit(w.utterance("pal", announce, **ids))
            emit(w.started_speaking("pal", **ids))
            while not sp.cut.is_set():
                if sp.items:
                    if not await self._say_next(sp):
                        break
                    continue
                if sp.done:
                    break
                self._channel.flush_chaos()  # waiting on the bot: let it see everything
                sp.wake.clear()
                try:
                    async with asyncio.timeout(self.echo_idle_s / self.speed):
                        await sp.wake.wait()
                except TimeoutError:
                    break  # never closed with done: true
            interrupted = sp.cut.is_set() and not sp.final_sent
            if sp.has_text and not sp.final_sent:
                emit(
                    w.streaming(
                        "pal",
                        " ".join(sp.spoken_words),
                        content_index=sp.content_index,
                        final=True,
                        is_interrupted=interrupted,
                        **ids,
                    )
                )
            duration = len(sp.spoken_words) / self.words_per_second + sp.spoken_audio_s
            emit(
                w.stopped_speaking(
                    "pal", duration=round(duration, 3), interrupted=interrupted, **ids
                )
            )
        finally:
            sp.finished = True
            if self._speech is sp:
                self._speech = None

    def __str__(self) -> str:
        return f"Voice({self._wire.conversation_id})"
