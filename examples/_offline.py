"""Shared pieces of the echo examples, chiefly offline stand-ins for an LLM and a TTS.

The stand-ins are real Pipecat services, so the echo examples run with no keys and no
network through exactly the code paths a real LLM and TTS take:

- :class:`ScriptedLLMService` is an ``LLMService``. It answers every ``LLMContextFrame`` the
  way a chat model would, from :class:`LLMRule` s: either a reply streamed token by token
  (``LLMFullResponseStartFrame``, ``LLMTextFrame`` ..., ``LLMFullResponseEndFrame``) or a
  function call through ``run_function_calls``, so registered handlers and Pipecat Flows
  functions run unchanged.
- :class:`ToneTTSService` is a ``TTSService``. It "speaks" each sentence as a short tone per
  word (``seconds_per_word`` of 24 kHz PCM), so the audio's duration follows the text.

Also here: :func:`user_turn_params`, the user-turn settings both echo examples use, and
:class:`Timeline`, the event log they print.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext, standard_message_text
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings, TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.turns.user_start import TranscriptionUserTurnStartStrategy, VADUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKENS = re.compile(r"\s*\S+")


def _fill(template: str, values: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


@dataclass(frozen=True, kw_only=True)
class LLMRule:
    """One behaviour of :class:`ScriptedLLMService`.

    Exactly one trigger is set:

    - ``on_user``: a regular expression searched (case-insensitive) in the user's latest
      message;
    - ``on_instruction``: a regular expression searched in the latest system/developer
      message, when that is the last message (a Flows node was just entered, or the
      pipeline asked for a first reply);
    - ``on_result``: the name of a function whose result is the last message.

    The rule then either calls ``call`` (its arguments are the named groups of the match,
    plus ``arguments``), or says ``reply``. Placeholders in ``reply``: the named groups,
    ``{result}`` (the function result) and the called function's arguments.

    Parameters:
        on_user: User-message pattern.
        on_instruction: Instruction-message pattern.
        on_result: Function name.
        call: Function to call instead of replying (only with ``on_user``).
        arguments: Fixed arguments added to the call.
        reply: Reply template.
    """

    on_user: str | None = None
    on_instruction: str | None = None
    on_result: str | None = None
    call: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    reply: str | None = None

    def __post_init__(self):
        triggers = [t for t in (self.on_user, self.on_instruction, self.on_result) if t]
        if len(triggers) != 1:
            raise ValueError("an LLMRule needs exactly one of on_user, on_instruction, on_result")
        if (self.call is None) == (self.reply is None):
            raise ValueError("an LLMRule either calls a function or replies")
        if self.call is not None and self.on_user is None:
            raise ValueError("only on_user rules call functions")


class ScriptedLLMService(LLMService):
    """A chat "model" that follows :class:`LLMRule` s: deterministic, offline, free.

    Function-calling rules fire only when the context advertises the function (as a Flows
    node does), like a real model that can only call the tools it was given.
    """

    def __init__(
        self,
        *,
        rules: Sequence[LLMRule],
        default_reply: str | None = "Sorry, could you say that again?",
        token_delay_s: float = 0.0,
        **kwargs: Any,
    ):
        """Create the service.

        Args:
            rules: The rules, tried in order.
            default_reply: Said when no rule matches (``None``: say nothing).
            token_delay_s: Pause between streamed tokens (0 streams them back to back).
            **kwargs: Passed to ``LLMService``.
        """
        # Every field set (None where a setting means nothing here): Pipecat reports
        # settings left NOT_GIVEN as an error when the service starts.
        settings = LLMSettings(
            model="scripted",
            system_instruction=None,
            temperature=None,
            max_tokens=None,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            filter_incomplete_user_turns=False,
            user_turn_completion_config=None,
            use_provider_thinking_default=False,
        )
        super().__init__(settings=settings, **kwargs)
        self._rules = tuple(rules)
        self._default_reply = default_reply
        self._token_delay_s = token_delay_s
        self._calls = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer ``LLMContextFrame`` s; forward everything else."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self.push_frame(LLMFullResponseStartFrame())
            try:
                await self._answer(frame.context)
            finally:
                await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)

    async def _answer(self, context: LLMContext) -> None:
        messages = context.get_messages()
        last = messages[-1] if messages else {}
        role = last.get("role") if isinstance(last, dict) else None
        text = standard_message_text(last) if isinstance(last, dict) else ""
        tools = _tool_names(context)
        for rule in self._rules:
            if role == "user" and rule.on_user:
                m = re.search(rule.on_user, text, re.IGNORECASE)
                if m is None or (rule.call is not None and rule.call not in tools):
                    continue
                values = {k: v for k, v in m.groupdict().items() if v is not None}
                if rule.call is not None:
                    await self._call(context, rule.call, {**values, **rule.arguments})
                    return
                await self._say(_fill(rule.reply or "", values))
                return
            if role == "tool" and rule.on_result:
                name, arguments = _called_function(messages, last.get("tool_call_id"))
                if name != rule.on_result:
                    continue
                result = _decoded(text)
                await self._say(_fill(rule.reply or "", {**arguments, "result": result}))
                return
            if role in ("system", "developer") and rule.on_instruction:
                m = re.search(rule.on_instruction, text, re.IGNORECASE)
                if m is not None:
                    await self._say(_fill(rule.reply or "", m.groupdict()))
                    return
        if self._default_reply:
            await self._say(self._default_reply)

    async def _say(self, text: str) -> None:
        for token in _TOKENS.findall(text):
            await self._push_llm_text(token)
            if self._token_delay_s:
                await asyncio.sleep(self._token_delay_s)

    async def _call(self, context: LLMContext, name: str, arguments: dict[str, Any]) -> None:
        self._calls += 1
        call = FunctionCallFromLLM(
            function_name=name,
            tool_call_id=f"call_{self._calls}",
            arguments=arguments,
            context=context,
        )
        await self.run_function_calls([call])


def _decoded(content: str) -> Any:
    """A function result as the handler returned it (the context holds it as JSON)."""
    try:
        return json.loads(content)
    except ValueError:
        return content


def _tool_names(context: LLMContext) -> set[str]:
    tools = context.tools
    standard = getattr(tools, "standard_tools", None) or []
    return {getattr(tool, "name", None) for tool in standard} - {None}


def _called_function(messages: Sequence[Any], tool_call_id: Any) -> tuple[str | None, dict]:
    """Find the name and arguments of the call that ``tool_call_id`` answers."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            if call.get("id") == tool_call_id:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                return function.get("name"), arguments if isinstance(arguments, dict) else {}
    return None, {}


class ToneTTSService(TTSService):
    """A TTS that renders each word as a short tone: audio whose length follows the text."""

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        seconds_per_word: float = 0.3,
        chunk_s: float = 0.04,
        **kwargs: Any,
    ):
        """Create the service.

        Args:
            sample_rate: Output sample rate (PCM16 mono).
            seconds_per_word: Audio per word, a short silence included.
            chunk_s: Duration of each ``TTSAudioRawFrame``.
            **kwargs: Passed to ``TTSService``.
        """
        super().__init__(
            sample_rate=sample_rate,
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice=None, language=None),
            **kwargs,
        )
        self._seconds_per_word = seconds_per_word
        self._chunk_s = chunk_s

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Yield the tones for ``text`` as ``TTSAudioRawFrame`` s.

        Args:
            text: The sentence to speak.
            context_id: The TTS context the audio belongs to.

        Yields:
            The audio frames.
        """
        await self.start_tts_usage_metrics(text)
        pcm = _tones(len(text.split()), self.sample_rate, self._seconds_per_word)
        step = int(self.sample_rate * self._chunk_s) * 2
        for pos in range(0, len(pcm), step):
            chunk = pcm[pos : pos + step]
            yield TTSAudioRawFrame(chunk, self.sample_rate, 1, context_id=context_id)


def _tones(words: int, rate: int, seconds_per_word: float) -> bytes:
    """PCM16 mono: per word, a tone (pitch varies with the word) then a short gap."""
    per_word = int(rate * seconds_per_word)
    voiced = int(per_word * 0.8)
    t = np.arange(voiced) / rate
    envelope = np.sin(np.pi * np.arange(voiced) / voiced)  # no clicks at the edges
    out = np.zeros(per_word * max(words, 1), dtype=np.int16)
    for i in range(words):
        pitch = 180.0 + 40.0 * math.sin(i)
        tone = 0.3 * envelope * np.sin(2 * np.pi * pitch * t)
        out[i * per_word : i * per_word + voiced] = (tone * 32767).astype(np.int16)
    return out.tobytes()


def user_turn_params(vad_analyzer: Any = None) -> LLMUserAggregatorParams:
    """The user aggregator's settings for an echo-mode bot.

    Offline the user arrives as transcripts only (no audio, no VAD): a transcript starts the
    user turn (and so interrupts the replica) and a short quiet spell after the last one ends
    it. Live, a VAD on the user's microphone starts turns as well.

    Args:
        vad_analyzer: The VAD for the user's audio (live), or ``None`` (transcripts only).

    Returns:
        The parameters for ``LLMContextAggregatorPair(user_params=...)``.
    """
    if vad_analyzer is None:
        strategies = UserTurnStrategies(
            start=[TranscriptionUserTurnStartStrategy()],
            stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.3)],
        )
    else:
        strategies = UserTurnStrategies(
            start=[VADUserTurnStartStrategy(), TranscriptionUserTurnStartStrategy()],
            stop=[SpeechTimeoutUserTurnStopStrategy()],
        )
    return LLMUserAggregatorParams(user_turn_strategies=strategies, vad_analyzer=vad_analyzer)


class Timeline:
    """Timestamped lines printed as they happen, kept for the summary."""

    def __init__(self):
        """Start the clock."""
        self._t0 = time.monotonic()
        self.entries: list[tuple[float, str, str]] = []

    def add(self, who: str, text: str) -> None:
        """Record and print one line.

        Args:
            who: The speaker or source (``user``, ``replica``, ``tool``, ...).
            text: What happened.
        """
        at = time.monotonic() - self._t0
        self.entries.append((at, who, text))
        print(f"  {at:6.2f}s {who:>9}: {text}", flush=True)

    def said(self, who: str) -> list[str]:
        """Return the texts recorded for ``who``, in order."""
        return [text for _, w, text in self.entries if w == who]
