"""The flight recorder: every core call and every wire message, to a JSONL file.

Set ``TavusInteractionsParams(record_path="conversation.jsonl")`` and the facade builds a
:class:`RecordingConnection` instead of a plain ``TavusConnection``: the same core, which
also hands a record of each call it takes (the wire message in, an app send, an echo, a
local interrupt, a tool outcome, a clock tick), what the call returned, and each message it
sent to a :class:`RecordWriter`. The format is :mod:`~pipecat_tavus_interactions.core.recording`;
``python -m pipecat_tavus_interactions.replay`` replays, checks and draws a recording.

The writer never blocks the pipeline: records go into a bounded buffer (a full buffer drops
the record and counts it, reported in the ``end`` line) and a thread encodes, redacts and
writes them every 50 ms, flushing each batch to the file, so every line written survives a
crash of the process.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from loguru import logger

from .. import interactions as ix
from ..core.connection import TavusConnection
from ..core.recording import (
    FORMAT,
    bytes_arg,
    dumps,
    escape_line_separators,
    interaction_arg,
    message_arg,
    record_bytes,
    redact_bytes,
    summarize,
)
from ..exceptions import TavusInteractionsError
from ..params import TavusInteractionsParams


def _version() -> str:
    """The installed package's version, for the header."""
    try:
        return metadata.version("pipecat-tavus-interactions")
    except metadata.PackageNotFoundError:
        return "unknown"


class RecordWriter:
    """Writes records to a JSONL file from a thread, through a bounded buffer.

    The pipeline only appends to a deque (no lock, no wake-up); the thread wakes every
    ``flush_interval_s``, encodes and redacts what accumulated, and writes and flushes it in
    one call. A crash loses at most the records of the last interval.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_queue: int = 10_000,
        secrets: Iterable = (),
        flush_interval_s: float = 0.05,
    ):
        """Open the file (truncated) and start the writer thread.

        Args:
            path: The file to write.
            max_queue: How many records may wait; more are dropped and counted.
            secrets: Values masked wherever they appear, with their prefixes of 8+
                characters (the ``TAVUS_API_KEY`` environment variable's value is always
                added).
            flush_interval_s: How often the thread writes what accumulated.
        """
        self.path = Path(path)
        api_key = os.environ.get("TAVUS_API_KEY")
        self._secrets = tuple(s.encode("utf-8", "surrogatepass") for s in (*secrets, api_key) if s)
        self._file = self.path.open("wb")  # flushed after each batch
        self._buffer: deque[dict[str, Any]] = deque()
        self._max = max_queue
        self._interval = flush_interval_s
        #: Records dropped because the buffer was full.
        self.dropped = 0
        #: Records that could not be encoded (written as an error line instead).
        self.failed = 0
        self._closing = False
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tavus-recorder", daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any]) -> None:
        """Buffer one record; never blocks (a full buffer drops it and counts)."""
        if len(self._buffer) < self._max:
            self._buffer.append(record)
        else:
            self.dropped += 1

    def _encode(self, record: dict[str, Any]) -> bytes:
        try:
            if "msg_b64" in record:  # a bytes message: redact what base64 would hide
                raw = redact_bytes(base64.b64decode(record["msg_b64"]), self._secrets)
                record = {**record, "msg_b64": bytes_arg(raw)}
            return record_bytes(record)
        except Exception as e:  # noqa: BLE001 - a record must never stop the recorder
            self.failed += 1
            return dumps({"k": "error", "error": f"unencodable record: {e!r}"}).encode()

    def _drain(self) -> None:
        buffer, encode = self._buffer, self._encode
        lines = []
        append, popleft = lines.append, buffer.popleft
        while buffer:
            append(encode(popleft()))
        if lines:
            lines.append(b"")
            # One redaction pass over the batch: no secret pattern crosses a line.
            data = redact_bytes(b"\n".join(lines), self._secrets)
            self._file.write(escape_line_separators(data))
            self._file.flush()

    def _loop(self) -> None:
        wake = self._wake
        while not self._closing:
            wake.wait(self._interval)
            self._drain()
        self._drain()
        self._file.close()

    def close(self, stats: Mapping[str, int] | None = None, *, timeout_s: float = 5.0) -> None:
        """Write the ``end`` line, then wait (up to ``timeout_s``) for the thread to finish.

        Only the first call does anything.

        Args:
            stats: The connection's counters, written in the ``end`` line.
            timeout_s: How long to wait for the buffer to drain.
        """
        if self._closed:
            return
        self._closed = True
        self._finish(stats, timeout_s)

    def _finish(self, stats: Mapping[str, int] | None, timeout_s: float) -> None:
        end = {"k": "end", "w": time.time(), "dropped": self.dropped, "stats": dict(stats or {})}
        self._buffer.append(end)  # past the bound: the end line is never dropped
        self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning(f"recorder: {self.path} did not drain in {timeout_s} s")

    async def aclose(self, stats: Mapping[str, int] | None = None) -> None:
        """:meth:`close` without blocking the event loop (both processors call it)."""
        if self._closed:
            return
        self._closed = True  # set on the loop: a second caller returns at once
        await asyncio.to_thread(self._finish, stats, 5.0)


class RecordingConnection(TavusConnection):
    """A :class:`TavusConnection` that records every call it takes (see the module doc).

    Only the outermost call is recorded (a call the core makes on itself is part of it),
    and a call that raises is recorded with its error before the error goes on.
    """

    def __init__(
        self,
        params: TavusInteractionsParams | None = None,
        *,
        now: float = 0.0,
        sink: Callable[[dict[str, Any]], None],
        wall: Callable[[], float] = time.time,
    ):
        """Create the connection and record its header.

        Args:
            params: The configuration.
            now: The current time.
            sink: Takes each record (e.g. :meth:`RecordWriter.put`).
            wall: Wall clock (epoch seconds) for the ``w`` of each record.
        """
        super().__init__(params, now=now)
        self._sink = sink
        self._wall = wall
        self._depth = 0
        self._t = now
        header = {"k": "header", "format": FORMAT, "version": _version(), "t": now, "w": wall()}
        header["params"] = self.params.model_dump(mode="json", exclude={"record_path"})
        sink(header)

    def _emit(self, record: dict[str, Any], effects: list | None) -> None:
        summaries, outs = summarize(effects or ())
        record["fx"] = summaries
        sink = self._sink
        sink(record)
        if outs:
            t = record["t"]
            for out in outs:
                out["t"] = t
                sink(out)

    def _call(self, name: str, now: float | None, args: dict[str, Any], call: Callable):
        if self._depth:
            return call()
        if now is not None:
            self._t = now
        record = {"k": "call", "name": name, "t": self._t, "w": self._wall(), "args": args}
        self._depth += 1
        try:
            result = call()
        except TavusInteractionsError as e:
            record["error"] = f"{type(e).__name__}: {e}"
            self._emit(record, [])
            raise
        finally:
            self._depth -= 1
        self._emit(record, result if isinstance(result, list) else [])
        return result

    def receive(self, message: Any, *, sender_id: str | None, now: float) -> list | None:
        """Take one app message (see :meth:`TavusConnection.receive`) and record it.

        The message is not copied: the writer encodes it up to ``flush_interval_s`` later,
        and nothing in this package changes a received message (a test holds the core to
        that); handlers see it as ``event.raw`` and must not change it either.
        """
        out = _core_receive(self, message, sender_id=sender_id, now=now)
        if out is None or self._depth:
            return out
        self._t = now
        if message.__class__ is dict:
            record = {"k": "in", "t": now, "w": self._wall(), "from": sender_id, "msg": message}
        else:
            record = {"k": "in", "t": now, "w": self._wall(), "from": sender_id}
            record.update(message_arg(message))
        if out:
            self._emit(record, out)
        else:  # most messages (a streaming snapshot, a heartbeat) have no effect
            record["fx"] = ()  # written as []; the empty tuple is never allocated
            self._sink(record)
        return out

    def set_conversation_id(self, conversation_id: str) -> None:
        """Set the conversation id (recorded)."""
        sup = super().set_conversation_id
        args = {"conversation_id": conversation_id}
        self._call("set_conversation_id", None, args, lambda: sup(conversation_id))

    def set_replica_participant(self, participant_id: str) -> None:
        """Declare the replica's participant (recorded)."""
        sup = super().set_replica_participant
        args = {"participant_id": participant_id}
        self._call("set_replica_participant", None, args, lambda: sup(participant_id))

    def participant_joined(self, participant: Mapping[str, Any], *, now: float) -> list:
        """A participant joined (recorded)."""
        sup = super().participant_joined
        args = {"participant": dict(participant)}
        return self._call("participant_joined", now, args, lambda: sup(participant, now=now))

    def participant_left(self, participant_id: str | None, *, now: float) -> list:
        """A participant left (recorded)."""
        sup = super().participant_left
        args = {"participant_id": participant_id}
        return self._call("participant_left", now, args, lambda: sup(participant_id, now=now))

    def start(self, *, now: float) -> list:
        """The transport can send (recorded)."""
        return self._call("start", now, {}, lambda: super(RecordingConnection, self).start(now=now))

    def send(self, interaction: ix.Interaction, *, now: float, urgent: bool | None = None):
        """Send an interaction (recorded; see :meth:`TavusConnection.send`)."""
        sup = super().send
        args = {"interaction": interaction_arg(interaction), "urgent": urgent}
        return self._call("send", now, args, lambda: sup(interaction, now=now, urgent=urgent))

    def send_reported(self, interaction: ix.Interaction, *, now: float) -> list:
        """Send, a failure becoming an effect (recorded)."""
        sup = super().send_reported
        args = {"interaction": interaction_arg(interaction)}
        return self._call("send_reported", now, args, lambda: sup(interaction, now=now))

    def echo_text_start(self, *, now: float) -> list:
        """An LLM response starts (recorded)."""
        sup = super().echo_text_start
        return self._call("echo_text_start", now, {}, lambda: sup(now=now))

    def echo_text_add(self, text: str, *, now: float) -> list:
        """More LLM text (recorded)."""
        sup = super().echo_text_add
        return self._call("echo_text_add", now, {"text": text}, lambda: sup(text, now=now))

    def echo_text_end(self, *, now: float) -> list:
        """The LLM response ends (recorded)."""
        sup = super().echo_text_end
        return self._call("echo_text_end", now, {}, lambda: sup(now=now))

    def echo_audio(self, pcm: bytes | memoryview, *, context_id: str | None, now: float) -> list:
        """Echo audio (recorded, as base64)."""
        sup = super().echo_audio
        args = {"pcm": bytes_arg(pcm), "context_id": context_id}
        return self._call("echo_audio", now, args, lambda: sup(pcm, context_id=context_id, now=now))

    def echo_audio_close(self, *, now: float, tail: bytes = b"", context_id: str | None = None):
        """Close the open audio utterance (recorded)."""
        sup = super().echo_audio_close
        args = {"tail": bytes_arg(tail), "context_id": context_id}
        return self._call(
            "echo_audio_close", now, args, lambda: sup(now=now, tail=tail, context_id=context_id)
        )

    def interrupt(self, *, now: float, force: bool = False) -> list:
        """A local interruption (recorded: the marker of an ``InterruptionFrame``)."""
        sup = super().interrupt
        return self._call("interrupt", now, {"force": force}, lambda: sup(now=now, force=force))

    def tool_finished(self, call_id: str, *, now: float, **outcome: Any) -> list:
        """A tool handler settled (recorded: the tool's finish marker)."""
        sup = super().tool_finished
        args = {"call_id": call_id, **outcome}
        return self._call("tool_finished", now, args, lambda: sup(call_id, now=now, **outcome))

    def tick(self, *, now: float) -> list:
        """Do what is due (recorded)."""
        return self._call("tick", now, {}, lambda: super(RecordingConnection, self).tick(now=now))

    def finish(self, *, now: float) -> list:
        """The inbound side ends (recorded)."""
        sup = super().finish
        return self._call("finish", now, {}, lambda: sup(now=now))

    def finish_output(self, *, now: float) -> list:
        """The outbound side ends (recorded)."""
        sup = super().finish_output
        return self._call("finish_output", now, {}, lambda: sup(now=now))

    def cancel(self) -> None:
        """The pipeline is cancelled (recorded)."""
        sup = super().cancel
        self._call("cancel", None, {}, sup)


_core_receive = TavusConnection.receive


def connection_for(
    params: TavusInteractionsParams, *, now: float
) -> tuple[TavusConnection, RecordWriter | None]:
    """The core for ``params``: a recording one when ``params.record_path`` is set.

    Returns:
        The connection, and the writer to close when the pipeline ends (or ``None``).
    """
    if params.record_path is None:
        return TavusConnection(params, now=now), None
    writer = RecordWriter(params.record_path, max_queue=params.record_max_queue)
    logger.info(f"recording the Tavus conversation to {writer.path}")
    return RecordingConnection(params, now=now, sink=writer.put), writer


__all__ = ["RecordWriter", "RecordingConnection", "connection_for"]
