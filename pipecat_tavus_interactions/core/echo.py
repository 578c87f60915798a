"""Echo planning: what to echo and when, for text responses and audio utterances.

Pure: no I/O and no clock of its own (time is passed in). The conversation core owns one of
each of these and turns what they return into messages:

- :class:`EchoText` (``echo_text`` mode): one LLM response at a time under one
  ``inference_id``. With ``text_echo="sentences"`` a completed sentence leaves as soon as
  more text follows it (the next token), and the last one waits for the end of the response,
  so the closing ``done: true`` message always carries text: an empty text echo is never
  sent (no Tavus document or client shows one), and a one-sentence answer is one message.
  A response with no text sends nothing. With ``"whole"``, one echo per response.
- :class:`EchoAudio` (``echo_audio`` mode): one utterance at a time. PCM16 mono at the wire
  rate accumulates and leaves in chunks of a fixed size (computed by the caller so the
  *encoded* message fits the cap); the utterance closes with ``done: true`` (a short
  silence when nothing is left to send) on ``close``, or when no audio came for the
  fallback delay (its :attr:`EchoAudio.deadline`).
- :class:`Pacer` (``echo_realtime``): built chunks wait and leave at playback speed, a
  little ahead of the playback clock, so an interruption finds most of a long utterance
  still here, where it can be dropped.
- :class:`InFlight`: whether an echo may still be playing, estimated from what was sent.
"""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any

from .sentences import find_sentence_end

#: Length of the silence that closes an audio utterance with nothing left to send
#: (Pipecat's Tavus transport closes with 40 ms of silence too).
DONE_SILENCE_S = 0.04
#: In real-time pacing, how far ahead of the playback clock chunks may be sent, so the
#: replica's buffer never runs dry on network jitter.
REALTIME_LEAD_S = 0.2
#: Seconds added to the estimated end of echo playback before an echo stops counting as
#: "in flight" (network, buffering and render start-up).
ECHO_GRACE_S = 1.0
#: Speaking rate used to estimate how long a text echo plays (about 150 words a minute).
TEXT_ECHO_CHARS_PER_S = 14.0

#: One piece of echo text to send: ``(text, inference_id, done)``.
TextPiece = tuple[str, str, bool]
#: One chunk of echo audio to send: ``(pcm, inference_id, done)``.
AudioChunk = tuple[bytes | memoryview, str, bool]


def new_inference_id() -> str:
    """Return a fresh ``inference_id`` (a UUID string)."""
    return str(uuid.uuid4())


class EchoText:
    """The echo text of one conversation: at most one response at a time."""

    def __init__(self, *, whole: bool = False):
        """Create an idle planner.

        Args:
            whole: One echo per response (``text_echo="whole"``) instead of one per sentence.
        """
        self.whole = whole
        self._iid: str | None = None
        self._buf = ""
        self._scan = 0
        self._held: str | None = None
        self._sent = 0
        # After an interruption, the rest of the interrupted response is ignored until the
        # next response starts (or ends).
        self._dead = False

    @property
    def inference_id(self) -> str | None:
        """The ``inference_id`` of the open response, or ``None`` between responses."""
        return self._iid

    @property
    def in_flight(self) -> bool:
        """True once part of the open response was sent (a held sentence is not playing)."""
        return bool(self._sent)

    def _reset(self) -> None:
        self._iid = None
        self._buf = ""
        self._scan = 0
        self._held = None
        self._sent = 0

    def drop(self) -> int:
        """Forget the open response (an interruption); return how many pieces were dropped."""
        dropped = 0
        if self._iid is not None:
            dropped += bool(self._buf.strip()) + (self._held is not None)
            self._dead = True
        self._reset()
        return dropped

    def start(self) -> list[TextPiece]:
        """Open a new response (``LLMFullResponseStartFrame``), closing one left open."""
        out = self.end() if self._iid is not None else []
        self._reset()
        self._dead = False
        self._iid = new_inference_id()
        return out

    def add(self, text: str) -> list[TextPiece]:
        """Add streamed LLM text; return the pieces it completes (``LLMTextFrame``).

        Args:
            text: The next piece of the response.
        """
        if self._dead:
            return []
        if self._iid is None:
            self._iid = new_inference_id()
        self._buf += text
        out: list[TextPiece] = []
        if self.whole:
            return out
        while True:
            end, self._scan = find_sentence_end(self._buf, self._scan)
            if end < 0:
                break
            sentence, self._buf, self._scan = self._buf[:end], self._buf[end:], 0
            if not sentence.strip():
                continue
            # Each sentence waits for the text after it: the last one must carry done=true.
            self._release_held(out)
            self._held = sentence
        if self._held is not None and self._buf.strip():
            self._release_held(out)
        return out

    def end(self) -> list[TextPiece]:
        """Close the response (``LLMFullResponseEndFrame``): the rest, with ``done``."""
        out: list[TextPiece] = []
        if self._iid is None:
            self._dead = False
            return out
        rest = self._buf
        if self.whole:
            if rest.strip():
                self._piece(out, rest, done=True)
        elif rest.strip():
            self._release_held(out)
            self._piece(out, rest, done=True)
        elif self._held is not None:
            held, self._held = self._held, None
            self._piece(out, held, done=True)
        self._reset()
        return out

    def _release_held(self, out: list[TextPiece]) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._piece(out, held, done=False)

    def _piece(self, out: list[TextPiece], text: str, *, done: bool) -> None:
        self._sent += 1
        out.append((text.strip(), self._iid or new_inference_id(), done))


class EchoAudio:
    """The echo audio of one conversation: at most one utterance at a time."""

    def __init__(self, *, sample_rate: int, fallback_s: float):
        """Create an idle chunker.

        Args:
            sample_rate: The wire sample rate of the PCM16 mono audio it is given.
            fallback_s: Close an utterance after this long without audio.
        """
        self.sample_rate = sample_rate
        self.fallback_s = fallback_s
        self._iid: str | None = None
        self._context_id: str | None = None
        self._chunk = 0
        self._pending = bytearray()
        self._last_audio = 0.0
        self._failed = False
        # TTS contexts of interrupted utterances: their late frames are dropped.
        self._dead_contexts: deque[str] = deque(maxlen=16)

    @property
    def inference_id(self) -> str | None:
        """The ``inference_id`` of the open utterance, or ``None``."""
        return self._iid

    @property
    def failed(self) -> bool:
        """True when the open utterance cannot be sent (its chunks would not fit)."""
        return self._failed

    @property
    def deadline(self) -> float | None:
        """When the open utterance closes for lack of audio, or ``None``."""
        if self._iid is None:
            return None
        return self._last_audio + self.fallback_s

    def is_dead_context(self, context_id: str | None) -> bool:
        """Tell whether ``context_id`` is a TTS context of an interrupted utterance.

        Args:
            context_id: A TTS context id (``None`` is never dead).
        """
        return context_id is not None and context_id in self._dead_contexts

    def open(self, *, context_id: str | None, chunk_bytes: int | None, now: float) -> str:
        """Open an utterance and return its ``inference_id``.

        Args:
            context_id: The TTS context it comes from.
            chunk_bytes: PCM bytes per chunk, or ``None`` when no chunk can fit the cap (the
                utterance is then failed: its audio is dropped until it closes).
            now: The current time.
        """
        self._iid = new_inference_id()
        self._context_id = context_id
        self._chunk = chunk_bytes or 0
        self._failed = chunk_bytes is None
        self._pending = bytearray()
        self._last_audio = now
        return self._iid

    @property
    def room(self) -> int | None:
        """How many more bytes complete the next chunk, or ``None`` (none open, or failed)."""
        if self._iid is None or self._failed:
            return None
        return self._chunk - len(self._pending)

    def add(self, audio: bytes | memoryview, now: float) -> list[AudioChunk]:
        """Add PCM16 mono audio to the open utterance; return every chunk it completes.

        Args:
            audio: Audio at ``sample_rate``, whole samples.
            now: The current time.
        """
        self._last_audio = now
        pending = self._pending
        chunk = self._chunk
        if self._failed or len(pending) + len(audio) < chunk:
            if not self._failed:
                pending += audio
            return []
        iid = self._iid or ""
        out: list[AudioChunk] = []
        view = memoryview(audio)
        pos = 0
        if pending:
            pos = chunk - len(pending)
            pending += view[:pos]
            # The full buffer leaves as it is (no copy); a new one collects what follows.
            out.append((memoryview(pending), iid, False))
            self._pending = pending = bytearray()
        end = len(view)
        while end - pos >= chunk:
            out.append((view[pos : pos + chunk], iid, False))
            pos += chunk
        if pos < end:
            pending += view[pos:]
        return out

    def close(self, tail: bytes = b"") -> list[AudioChunk]:
        """Close the open utterance: what is pending (and ``tail``), the last with ``done``.

        Args:
            tail: Last audio to add first (a resampler's flushed rest).
        """
        iid = self._iid
        if iid is None:
            return []
        self._iid = None
        if self._failed:
            return []
        rest = self._pending + tail
        self._pending = bytearray()
        if len(rest) % 2:
            del rest[-1]
        chunk = self._chunk
        view = memoryview(rest)
        out: list[AudioChunk] = []
        while len(view) > chunk:
            out.append((view[:chunk], iid, False))
            view = view[chunk:]
        if not len(view):
            silence = int(self.sample_rate * DONE_SILENCE_S) * 2
            view = memoryview(bytes(min(silence, chunk)))
        out.append((view, iid, True))
        return out

    def drop(self) -> int:
        """Forget the open utterance (an interruption); its late TTS frames are dropped too.

        Returns:
            1 when audio was pending (not sent yet), else 0.
        """
        if self._iid is None:
            return 0
        self._iid = None
        if self._context_id is not None:
            self._dead_contexts.append(self._context_id)
        pending, self._pending = self._pending, bytearray()
        return int(bool(pending))


class Pacer:
    """Built echo chunks waiting to leave at playback speed (``echo_realtime``)."""

    def __init__(self, *, lead_s: float = REALTIME_LEAD_S):
        """Create an empty pacer.

        Args:
            lead_s: How far ahead of the playback clock a chunk may leave.
        """
        self._lead_s = lead_s
        self._queue: deque[tuple[Any, float]] = deque()
        self._next_at = 0.0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: Any, seconds: float) -> None:
        """Queue one chunk that plays for ``seconds``."""
        self._queue.append((item, seconds))

    @property
    def deadline(self) -> float | None:
        """When the next chunk may leave, or ``None`` when nothing waits."""
        if not self._queue:
            return None
        return self._next_at - self._lead_s

    def release(self, now: float) -> list[Any]:
        """Return the chunks whose time has come, in order."""
        out = []
        queue = self._queue
        while queue and self._next_at - self._lead_s <= now:
            item, seconds = queue.popleft()
            self._next_at = max(self._next_at, now) + seconds
            out.append(item)
        return out

    def drop(self) -> deque[tuple[Any, float]]:
        """Drop every queued chunk and restart the playback clock; return what was dropped."""
        dropped, self._queue = self._queue, deque()
        self._next_at = 0.0
        return dropped


class InFlight:
    """Estimates whether an echo may still be playing, from what was sent and when."""

    def __init__(self) -> None:
        """Start with nothing playing."""
        self.busy_until = float("-inf")

    def sent(self, seconds: float, now: float) -> None:
        """Note an echo that plays for ``seconds``, starting when the last one ends."""
        busy = self.busy_until
        self.busy_until = (busy if busy > now else now) + seconds

    def playing(self, now: float) -> bool:
        """True until ``ECHO_GRACE_S`` after the estimated end of playback."""
        return now < self.busy_until + ECHO_GRACE_S

    def stop(self) -> None:
        """Playback was interrupted."""
        self.busy_until = float("-inf")


def echo_seconds(text: str | None, audio_len: int, sample_rate: int | None) -> float:
    """Estimate how long an echo plays: audio by its length, text at speaking rate.

    Args:
        text: The echo's text, for a text echo.
        audio_len: PCM16 bytes, for an audio echo.
        sample_rate: The audio's sample rate.
    """
    if text is None:
        return audio_len / (2 * (sample_rate or 16000))
    return len(text) / TEXT_ECHO_CHARS_PER_S


__all__ = [
    "DONE_SILENCE_S",
    "ECHO_GRACE_S",
    "REALTIME_LEAD_S",
    "TEXT_ECHO_CHARS_PER_S",
    "EchoAudio",
    "EchoText",
    "InFlight",
    "Pacer",
    "echo_seconds",
    "new_inference_id",
]
