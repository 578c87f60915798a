"""Outbound wire messages under the size cap: build, check, and split what can be split.

Every message the output processor sends is built here *before* anything is pushed: a send
that fails inside Pipecat's queued output path stops the transport's audio task, so an
interaction either becomes messages that each fit ``max_bytes`` or is refused with a
:class:`~pipecat_tavus_interactions.exceptions.LocalProtocolError` that says what to do.

What can be split, and how:

- ``append_llm_context``: the text, at whitespace; only the last piece keeps ``job_status``.
- ``conversation.echo`` text: the text, at whitespace, under one ``inference_id``; only the
  last piece keeps ``done``.
- ``conversation.echo`` audio: whole 16-bit samples, in chunks sized by their *encoded*
  length (:func:`~pipecat_tavus_interactions.protocol.max_audio_bytes`).

Everything else over the cap (``respond``, ``overwrite_llm_context``, ...) is refused.

Text that is not valid Unicode: a lone UTF-16 surrogate (it reaches us in transcripts and LLM
text, e.g. an emoji cut in half) cannot be encoded as UTF-8. In the text of an echo or a
``respond`` (words to be spoken or heard) it is replaced with U+FFFD, so the replica still
says the rest (a surrogate *pair* is joined into its character). Anywhere else (context
messages and tool results are data the LLM reasons on, not to be altered silently) the
interaction is refused with a ``LocalProtocolError`` (``on_send_failed`` for frames; a tool
call gets an error result), never a raw ``UnicodeEncodeError``.
Echo audio chunks on the hot path are built by :func:`audio_message`, sized beforehand by
:func:`audio_chunk_bytes`. This module is the one place that builds, measures and splits
outbound messages. Pure protocol core: no asyncio or Pipecat.
"""

from __future__ import annotations

import uuid
from binascii import b2a_base64
from collections.abc import MutableMapping
from dataclasses import replace
from typing import Any

from .. import interactions as ix
from ..exceptions import LocalProtocolError
from ..protocol import build_message, encoded_size, max_audio_bytes, split_text

#: An interaction (or one piece of it) with its built wire message.
Part = tuple[ix.Interaction, dict[str, Any]]

# The spoken text of each interaction whose text may be cleaned.
_TEXT_FIELDS = {ix.Echo: "text", ix.Respond: "text"}


def clean_text(text: str) -> str:
    """Return ``text`` as valid Unicode: lone surrogates become U+FFFD, pairs are joined.

    Args:
        text: Any string (it is returned as is when it encodes as UTF-8).
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _cleaned(interaction: ix.Interaction, stats: MutableMapping[str, int] | None):
    if isinstance(interaction, ix.Echo) and interaction.text is not None:
        if not interaction.text.strip():
            # No Tavus document or client shows one; what the replica does with it is unknown.
            raise LocalProtocolError(
                "echo text is empty: send nothing, or give the utterance's last text done=True"
            )
    field = _TEXT_FIELDS.get(type(interaction))
    text = getattr(interaction, field) if field else None
    if not isinstance(text, str) or (clean := clean_text(text)) is text:
        return interaction
    if stats is not None:
        stats["text_cleaned"] += 1
    return replace(interaction, **{field: clean})


def build(
    interaction: ix.Interaction, *, conversation_id: str | None, max_bytes: int | None = None
) -> dict[str, Any]:
    """Build one interaction's wire message.

    Args:
        interaction: The interaction.
        conversation_id: The conversation it is for (``None`` is sent as ``""``, which the
            protocol layer refuses for interactions that need one).
        max_bytes: When given, the message must fit in this many encoded bytes.

    Returns:
        The message dict.

    Raises:
        LocalProtocolError: The message cannot be built, or is over ``max_bytes``.
    """
    return build_message(interaction, conversation_id=conversation_id or "", max_bytes=max_bytes)


def build_all(
    interaction: ix.Interaction,
    *,
    conversation_id: str | None,
    max_bytes: int,
    stats: MutableMapping[str, int] | None = None,
) -> list[Part]:
    """Build an interaction's messages, splitting what can be split to fit ``max_bytes``.

    Args:
        interaction: The interaction to send.
        conversation_id: The conversation it is for.
        max_bytes: The cap on every message's encoded size.
        stats: When given, ``stats["append_split"]`` counts appends that had to be split
            and ``stats["text_cleaned"]`` texts whose lone surrogates were replaced.

    Returns:
        ``(interaction, message)`` pairs in send order: the interaction itself when it fits,
        else its pieces (an echo without an ``inference_id`` gets one, so its pieces form
        one utterance).

    Raises:
        LocalProtocolError: ``interaction`` is not an interaction, it cannot be built (or
            encoded: a lone surrogate outside its free text), or it is over the cap and
            cannot be split.
    """
    if not isinstance(interaction, ix.Interaction):
        raise LocalProtocolError(
            f"send_interaction takes an Interaction (e.g. interactions.Respond('hi')), got "
            f"{type(interaction).__name__}"
        )
    interaction = _cleaned(interaction, stats)
    message, size = _measured(interaction, conversation_id)
    if size <= max_bytes:
        return [(interaction, message)]
    if isinstance(interaction, ix.AppendLLMContext):
        parts = _split_append(interaction, conversation_id, max_bytes)
        if stats is not None:
            stats["append_split"] += 1
        return parts
    if isinstance(interaction, ix.Echo) and interaction.text is not None:
        iid = interaction.inference_id or str(uuid.uuid4())
        return _split_echo_text(
            interaction.text,
            inference_id=iid,
            done=interaction.done,
            conversation_id=conversation_id,
            max_bytes=max_bytes,
        )
    if isinstance(interaction, ix.Echo):
        return _split_echo_audio(interaction, conversation_id, max_bytes)
    hint = {
        ix.OverwriteLLMContext: "an overwrite replaces the whole context and cannot be "
        "split: shorten it, or send a short overwrite followed by appends",
        ix.Respond: "a respond is one user turn and cannot be split: shorten it",
    }.get(type(interaction), "shorten it")
    raise LocalProtocolError(
        f"{interaction.EVENT_TYPE} message is {size} bytes, over the {max_bytes}-byte cap "
        f"(max_message_bytes); {hint}"
    )


def _measured(interaction: ix.Interaction, conversation_id: str | None):
    try:
        message = build(interaction, conversation_id=conversation_id)
        return message, encoded_size(message)
    except UnicodeEncodeError as e:
        raise LocalProtocolError(
            f"{interaction.EVENT_TYPE} is not valid Unicode ({e.reason} at position {e.start} "
            f"of a string in it); remove the lone surrogate"
        ) from None


def _split_echo_text(
    text: str, *, inference_id: str, done: bool, conversation_id: str | None, max_bytes: int
) -> list[Part]:
    def probe(piece: str) -> dict[str, Any]:
        return build(
            ix.Echo(text=piece, inference_id=inference_id, done=False),
            conversation_id=conversation_id,
        )

    pieces = [p for p in split_text(text, build=probe, max_bytes=max_bytes) if p.strip()]
    out: list[Part] = []
    for k, piece in enumerate(pieces):
        last = k == len(pieces) - 1
        part = ix.Echo(text=piece, inference_id=inference_id, done=done and last)
        out.append((part, build(part, conversation_id=conversation_id, max_bytes=max_bytes)))
    return out


def _split_append(
    interaction: ix.AppendLLMContext, conversation_id: str | None, max_bytes: int
) -> list[Part]:
    job = interaction.job_status
    # Every piece is sized as if it carried job_status, so the last one (which does)
    # fits too.
    envelope = build(ix.AppendLLMContext("x", job), conversation_id=conversation_id)

    def probe(text: str) -> dict[str, Any]:
        return {**envelope, "properties": {**envelope["properties"], "context": text}}

    pieces = split_text(interaction.context, build=probe, max_bytes=max_bytes)
    out: list[Part] = []
    for k, piece in enumerate(pieces):
        if not piece.strip():
            continue
        part = ix.AppendLLMContext(piece, job if k == len(pieces) - 1 else None)
        out.append((part, build(part, conversation_id=conversation_id, max_bytes=max_bytes)))
    return out


def _split_echo_audio(echo: ix.Echo, conversation_id: str | None, max_bytes: int) -> list[Part]:
    iid = echo.inference_id or str(uuid.uuid4())
    rate = echo.sample_rate or 16000
    step = max_audio_bytes(
        conversation_id=conversation_id or "",
        sample_rate=rate,
        inference_id=iid,
        max_bytes=max_bytes,
    )
    view = memoryview(echo.audio)
    out: list[Part] = []
    for pos in range(0, len(view), step):
        last = pos + step >= len(view)
        part = replace(
            echo, audio=view[pos : pos + step], inference_id=iid, done=echo.done and last
        )
        # Sized by construction: the chunk length accounts for the envelope and base64.
        out.append((part, build(part, conversation_id=conversation_id)))
    return out


_ECHO = ix.Echo.EVENT_TYPE


def audio_message(
    conversation_id: str | None,
    audio: bytes | bytearray | memoryview,
    sample_rate: int,
    inference_id: str,
    done: bool,
    /,
) -> dict[str, Any]:
    """Build the wire message of one echo audio chunk.

    It equals ``build_message(Echo(audio=audio, sample_rate=sample_rate,
    inference_id=inference_id, done=done), conversation_id=conversation_id)``, without the
    intermediate object, because a conversation sends one every ~60 ms of speech. The chunk
    is not checked: its size comes from :func:`audio_chunk_bytes` for this envelope.

    Args:
        conversation_id: The conversation it is for.
        audio: PCM16 mono audio (any buffer; it is base64-encoded without a copy).
        sample_rate: Sample rate of ``audio``.
        inference_id: The utterance it belongs to.
        done: Whether it closes the utterance.

    Returns:
        The message dict.
    """
    return {
        "message_type": "conversation",
        "event_type": _ECHO,
        "conversation_id": conversation_id,
        "properties": {
            "modality": "audio",
            "audio": b2a_base64(audio, newline=False).decode("ascii"),
            "sample_rate": sample_rate,
            "inference_id": inference_id,
            "done": done,
        },
    }


def audio_chunk_bytes(
    *, conversation_id: str | None, sample_rate: int, inference_id: str, max_bytes: int
) -> int:
    """Return the PCM bytes per echo audio chunk whose message fits ``max_bytes``.

    Args:
        conversation_id: The conversation the messages carry.
        sample_rate: The sample rate they carry.
        inference_id: An inference id of the length used.
        max_bytes: The cap.

    Raises:
        LocalProtocolError: Not even one sample fits.
    """
    return max_audio_bytes(
        conversation_id=conversation_id or "",
        sample_rate=sample_rate,
        inference_id=inference_id,
        max_bytes=max_bytes,
    )


__all__ = ["Part", "audio_chunk_bytes", "audio_message", "build", "build_all", "clean_text"]
