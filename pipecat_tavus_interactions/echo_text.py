"""Echo text: one LLM response at a time, streamed to the replica sentence by sentence.

:class:`EchoTextStream` owns the state of the response being echoed (its ``inference_id``,
the text not sent yet, the sentence held back) and decides *what* to send and *when*:

- ``text_echo="sentences"``: the first sentence leaves the moment it is complete; later
  ones wait for the next text, so that the last one can carry ``done: true``. When every
  sentence already left, the response is closed with an empty ``done: true`` echo.
- ``text_echo="whole"``: one echo per response, when the response ends.

*How* a piece is sent (built, split under the cap, held until the replica joins, pushed) is
the output processor's job, through the ``send`` callback. Sending may suspend; an
interruption during it calls :meth:`EchoTextStream.drop`, after which nothing more of that
response is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .sentences import find_sentence_end

if TYPE_CHECKING:
    from .params import TavusInteractionsParams

#: Sends one echo text: ``send(text, inference_id, done)``.
SendText = Callable[[str, str, bool], Awaitable[None]]


class EchoTextStream:
    """The echo-text state of one output processor: at most one response at a time."""

    def __init__(
        self,
        *,
        send: SendText,
        params: TavusInteractionsParams,
        count: Callable[[str], None],
    ):
        """Create an idle stream.

        Args:
            send: Sends one piece of text (``text``, ``inference_id``, ``done``).
            params: The configuration; ``text_echo`` is read on every response.
            count: Counts an event in the facade's stats (``echo_empty_close``: a response
                closed with an empty echo).
        """
        self._send = send
        self._params = params
        self._count = count
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
        """True once part of the open response was sent (or is held back to be sent)."""
        return bool(self._sent) or self._held is not None

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

    async def start(self) -> None:
        """Open a new response (``LLMFullResponseStartFrame``), closing one left open."""
        if self._iid is not None:
            # A new response without the previous one's end frame: close the old one.
            await self.end()
        self._reset()
        self._dead = False
        self._iid = str(uuid.uuid4())

    async def add(self, text: str) -> None:
        """Add streamed LLM text, sending every sentence it completes (``LLMTextFrame``).

        Args:
            text: The next piece of the response.
        """
        if self._dead:
            return
        if self._iid is None:
            self._iid = str(uuid.uuid4())
        self._buf += text
        if self._params.text_echo == "whole":
            return
        while True:
            end, self._scan = find_sentence_end(self._buf, self._scan)
            if end < 0:
                break
            sentence, self._buf, self._scan = self._buf[:end], self._buf[end:], 0
            if not sentence.strip():
                continue
            await self._release_held()
            if self._sent == 0:
                # The first sentence leaves the moment it is complete.
                await self._send_piece(sentence, done=False)
            else:
                # Later ones wait for the next text, so the last one can carry done=true.
                self._held = sentence
        if self._held is not None and self._buf.strip():
            await self._release_held()

    async def end(self) -> None:
        """Close the response (``LLMFullResponseEndFrame``): send the rest with ``done``."""
        if self._iid is None:
            self._dead = False
            return
        rest = self._buf
        if self._params.text_echo == "whole":
            if rest.strip():
                await self._send_piece(rest, done=True)
        elif self._held is not None:
            if rest.strip():
                await self._release_held()
                await self._send_piece(rest, done=True)
            else:
                held, self._held = self._held, None
                await self._send_piece(held, done=True)
        elif rest.strip():
            await self._send_piece(rest, done=True)
        elif self._sent:
            # Everything already left with done=false (a one-sentence answer goes out as
            # soon as it ends): close the utterance with an empty final message.
            self._count("echo_empty_close")
            await self._send_piece("", done=True)
        self._reset()

    async def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await self._send_piece(held, done=False)

    async def _send_piece(self, text: str, *, done: bool) -> None:
        iid = self._iid
        if iid is None:  # dropped by an interruption while an earlier piece was sent
            return
        self._sent += 1
        await self._send(text.strip(), iid, done)


__all__ = ["EchoTextStream", "SendText"]
