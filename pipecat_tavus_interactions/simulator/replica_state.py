"""The simulated replica's state: turns, replies, tool calls, context.

:class:`ReplicaState` holds what the replica's "LLM" knows (``turn_idx``, the conversational
context, tool calls waiting for a result, echo audio received) and turns user speech and
the bot's interactions into wire events and replica activities run by the
:class:`~.speech.Voice`.

- A user turn (reference section 6, steps 1-5): user started speaking (role-specific and
  role-agnostic), growing streaming snapshots, user stopped speaking with ``duration``, the
  user ``conversation.utterance``, then the reply activity.
- A reply: the persona's decision; if it calls a tool, ``conversation.tool_call`` (JSON
  string ``arguments``, ``tool_call_id``), then a bounded wait for a matching
  ``conversation.tool_result`` or for any ``append_llm_context``; then the reply is spoken.
- ``tool_result`` and ``append_llm_context`` add to the context (``overwrite_llm_context``
  replaces it), which the persona's ``{context}`` placeholder sees on later replies.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque

from loguru import logger

from ..interactions import (
    AppendLLMContext,
    Echo,
    Interaction,
    Interrupt,
    OverwriteLLMContext,
    Respond,
    ToolResult,
)
from .channel import ReplicaChannel
from .persona import ScriptedPersona
from .speech import Utterance, Voice
from .wire import WireBuilder

__all__ = ["ReplicaState"]


class ReplicaState:
    """Turn and tool state of the simulated replica, and the handlers that change it."""

    def __init__(
        self,
        *,
        pipeline_mode: str,
        persona: ScriptedPersona,
        wire: WireBuilder,
        channel: ReplicaChannel,
        voice: Voice,
        tool_wait_s: float,
        response_latency_s: float,
        history: int,
    ):
        """Create the conversation state.

        Args:
            pipeline_mode: ``"full"`` or ``"echo"`` (the persona's ``pipeline_mode``).
            persona: Decides and renders replies.
            wire: Builds messages.
            channel: Emits them.
            voice: Runs activities and speaks.
            tool_wait_s: Wall-clock seconds a reply waits for a tool result.
            response_latency_s: Simulated seconds before a reply starts.
            history: Bound on the per-inference echo audio record.
        """
        self.pipeline_mode = pipeline_mode
        self.persona = persona
        self._wire = wire
        self._channel = channel
        self._voice = voice
        self.tool_wait_s = tool_wait_s
        self.response_latency_s = response_latency_s
        self._history = history
        self.turn_idx = 0
        self.context: deque[str] = deque(maxlen=100)
        self.echo_audio_s: OrderedDict[str | None, float] = OrderedDict()
        self._pending_tools: dict[str, asyncio.Future] = {}
        self.closed = False  # the replica left: start nothing new

    def __str__(self) -> str:
        return f"Conversation({self._wire.conversation_id})"

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self._voice.speed)

    def cancel_tool_waits(self) -> None:
        """Cancel every reply waiting for a tool result."""
        for fut in self._pending_tools.values():
            if not fut.done():
                fut.cancel()

    async def greet(self, text: str) -> None:
        """Start the greeting (turn 0)."""
        await self._voice.start(self._greet(text))

    async def _greet(self, text: str) -> None:
        sp = Utterance(
            kind="greeting", inference_id=self._wire.new_inference_id(), turn_idx=self.turn_idx
        )
        sp.add_text(text)
        await self._voice.speak(sp, announce=text)

    async def user_turn(self, text: str) -> None:
        """Speak a user turn on the wire (full mode), then start the reply.

        Args:
            text: What the user says (at least one word).
        """
        words = text.split()
        word_s = 1.0 / self._voice.words_per_second
        speech = self._voice.speech
        greeting = self._voice.busy
        if greeting is not None and speech is not None and speech.kind == "greeting":
            await asyncio.wait({greeting})  # the greeting is not interruptible by the user
        self.turn_idx += 1
        turn = self.turn_idx
        w, emit = self._wire, self._channel.emit
        inference_id = w.new_inference_id()
        # Speculative inference: the id on user.started_speaking is not the final one.
        emit(w.started_speaking("user", turn_idx=turn, inference_id=w.new_inference_id()))
        await self._voice.stop()  # barge-in
        for i in range(len(words)):
            await self._sleep(word_s)
            emit(
                w.streaming(
                    "user",
                    " ".join(words[: i + 1]),
                    content_index=i,
                    final=i == len(words) - 1,
                    is_interrupted=False,
                    turn_idx=turn,
                    inference_id=inference_id,
                )
            )
        emit(
            w.stopped_speaking(
                "user",
                duration=round(len(words) * word_s, 3),
                interrupted=False,
                turn_idx=turn,
                inference_id=inference_id,
            )
        )
        emit(w.utterance("user", text, turn_idx=turn, inference_id=inference_id))
        if not self.closed:
            await self._voice.start(self._reply(text, turn, inference_id))

    async def handle(self, ix: Interaction) -> None:
        """Apply one interaction from the bot.

        Args:
            ix: The parsed interaction.
        """
        if isinstance(ix, Echo):
            await self._on_echo(ix)
        elif isinstance(ix, Respond):
            if self.pipeline_mode == "full":  # an echo-mode PAL has no LLM to answer
                await self._on_respond(ix.text)
        elif isinstance(ix, Interrupt):
            logger.debug(f"{self}: interrupt")
            await self._voice.stop()
        elif isinstance(ix, OverwriteLLMContext):
            self.context.clear()
            self.context.append(ix.context)
        elif isinstance(ix, AppendLLMContext):
            self.context.append(ix.context)
            pending = next((f for f in self._pending_tools.values() if not f.done()), None)
            if pending is not None:
                pending.set_result(("success", ix.context))
        elif isinstance(ix, ToolResult):
            output = ix.output if isinstance(ix.output, str) else json.dumps(ix.output)
            self.context.append(output)
            fut = self._pending_tools.get(ix.tool_call_id)
            if fut is not None and not fut.done():
                fut.set_result((ix.status, output))
        # Sensitivity and objective confirmations change nothing the simulator models.

    async def _on_respond(self, text: str) -> None:
        await self._voice.stop()  # interrupt, then respond (reference 13.5)
        self.turn_idx += 1
        turn = self.turn_idx
        inference_id = self._wire.new_inference_id()
        self._channel.emit(
            self._wire.utterance("user", text, turn_idx=turn, inference_id=inference_id)
        )
        await self._voice.start(self._reply(text, turn, inference_id))

    async def _on_echo(self, ix: Echo) -> None:
        audio_s = None
        if ix.audio is not None:
            audio_s = len(ix.audio) / 2 / (ix.sample_rate or 16000)  # PCM16 mono
            key = ix.inference_id
            self.echo_audio_s[key] = self.echo_audio_s.pop(key, 0.0) + audio_s
            while len(self.echo_audio_s) > self._history:
                self.echo_audio_s.popitem(last=False)
        await self._voice.echo(
            text=ix.text,
            audio_s=audio_s,
            inference_id=ix.inference_id,
            done=ix.done,
            turn_idx=self.turn_idx,
            new_id=ix.inference_id or self._wire.new_inference_id(),
        )

    async def _reply(self, text: str, turn: int, user_inference_id: str) -> None:
        decision = self.persona.decide(text)
        result: str | None = None
        status: str | None = None
        if decision.tool_call is not None:
            call_id = self._wire.new_tool_call_id()
            self._channel.emit(
                self._wire.tool_call(
                    decision.tool_call.name,
                    decision.tool_call.arguments,
                    tool_call_id=call_id,
                    turn_idx=turn,
                    inference_id=user_inference_id,
                )
            )
            fut = asyncio.get_running_loop().create_future()
            self._pending_tools[call_id] = fut
            self._channel.flush_chaos()  # the bot must see the call before we wait on it
            try:
                async with asyncio.timeout(self.tool_wait_s):
                    status, result = await fut
            except TimeoutError:
                status = "timeout"
            finally:
                self._pending_tools.pop(call_id, None)
        await self._sleep(self.response_latency_s)
        reply = self.persona.render(
            decision, result=result, status=status, context=list(self.context)
        )
        if not reply.split():
            return
        sp = Utterance(kind="reply", inference_id=self._wire.new_inference_id(), turn_idx=turn)
        sp.add_text(reply)
        await self._voice.speak(sp, announce=reply)
