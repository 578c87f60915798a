"""``TavusInteractionsParams``: every setting of one conversation, core and drivers alike.

One pydantic model, read by the conversation core and the Pipecat drivers, so a bot is
configured in one place. Each inbound mapping can be switched off.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from .exceptions import ConfigurationError
from .protocol import DEFAULT_MAX_MESSAGE_BYTES

Mode = Literal["full", "echo_text", "echo_audio"]
ToolResultDelivery = Literal[
    "auto", "tool_result", "append", "append_and_respond", "echo", "respond", "none"
]


#: The durations in seconds: each is also accepted under Pipecat's spelling, ``*_secs``.
SECONDS_FIELDS = (
    "heartbeat_timeout_s",
    "bot_speaking_interval_s",
    "echo_done_fallback_s",
    "ready_timeout_s",
    "tool_timeout_s",
)


def _secs(name: str) -> AliasChoices:
    """Accept ``name`` (``..._s``) and Pipecat's ``..._secs`` for one setting."""
    return AliasChoices(name, pipecat_name(name))


def pipecat_name(name: str) -> str:
    """Pipecat's spelling of one of :data:`SECONDS_FIELDS` (``tool_timeout_secs``)."""
    return name.removesuffix("_s") + "_secs"


class TavusInteractionsParams(BaseModel):
    """Configuration of a :class:`~pipecat_tavus_interactions.TavusInteractions`.

    Durations in seconds are named ``*_s``; each is also accepted under Pipecat's spelling,
    ``*_secs`` (``tool_timeout_secs=5`` is ``tool_timeout_s=5``), as Pipecat's own settings
    are named (``idle_timeout_secs``, ``timeout_secs``). Giving both spellings is an error.

    Parameters:
        mode: ``"full"`` (Tavus talks, Pipecat runs tools and steers), ``"echo_text"``
            (Pipecat's LLM writes, Tavus voices) or ``"echo_audio"`` (Pipecat's TTS
            speaks, Tavus renders).
        conversation_id: The Tavus conversation; required before anything is sent.
        replica_participant_id: The replica's Daily participant id, when known up front.
            Otherwise it is learned from the transport's participant events.
        replica_user_id_match: A participant whose ``info.userId`` contains this is the
            replica (what ``@tavus/cvi-ui`` does).
        replica_user_name: A participant with exactly this ``info.userName`` is the
            replica (what Pipecat's TavusTransport does), when set.
        trust_any_sender: Accept Tavus messages from any participant. Off by default: a
            browser in the room must not be able to fake a tool call.
        reorder_window_ms: How long a ``seq`` gap is held before later events are
            released anyway.
        max_turns: How many turn records the ledger keeps.
        heartbeat_timeout_s: After this long without any replica message once it has
            joined, ``on_replica_left`` fires. ``None`` disables the check.
        emit_transcriptions: Push ``TranscriptionFrame``/``InterimTranscriptionFrame``
            for user speech.
        user_turn_frames: ``"speaking"`` pushes ``UserStarted/StoppedSpeakingFrame``,
            ``"proposed"`` pushes the ``Proposed*`` frames for external turn strategies,
            ``"none"`` pushes neither. Only in ``full`` mode by default; set
            ``user_turn_frames_in_echo`` to push them in echo modes too.
        user_turn_frames_in_echo: Also push user turn frames in echo modes.
        emit_vad_frames: Push ``VADUserStarted/StoppedSpeakingFrame`` when Tavus reports
            the user started or stopped speaking, where Tavus listens to the user (``full``
            mode, or an echo mode with ``user_turn_frames_in_echo``), so Pipecat's
            ``UserBotLatencyObserver`` and RTVI's VAD messages work. Turn it off when a
            user aggregator downstream uses Pipecat's VAD turn start strategy and should not
            start turns (and interrupt) on them.
        emit_bot_speaking: Push ``BotStarted/StoppedSpeakingFrame`` and periodic
            ``BotSpeakingFrame`` from the replica's speaking state.
        emit_bot_output: In ``full`` mode, push what the replica really said as a
            ``TTSTextFrame`` (for transcripts, the assistant context and RTVI's
            ``bot-output``).
        rtvi_server_messages: Push an ``RTVIServerMessageFrame`` for perception analysis,
            objective and guardrail events (RTVI clients get a ``server-message``).
        bot_speaking_interval_s: Period of ``BotSpeakingFrame`` while the replica speaks.
            What reads it refreshes a timeout: the worker's idle timeout (300 s by default)
            and the wake-phrase strategy's (10 s by default); the period must stay well
            below the shortest one in the bot. 1 s (Pipecat's output transport uses 0.2 s)
            costs a fifth of the frames.
        interrupt_pipeline_on_barge_in: When Tavus reports the user cut the replica off,
            broadcast an ``InterruptionFrame`` in the pipeline (no interrupt is sent back).
        end_on_shutdown: Push an ``EndFrame`` when ``system.shutdown`` arrives.
        emit_event_frames: Push a ``TavusEventFrame`` for every accepted event, not only
            for unknown ones.
        text_echo: ``"sentences"`` streams one echo per completed sentence under one
            ``inference_id``; ``"whole"`` sends one echo per response.
        echo_sample_rate: Sample rate of echo audio on the wire (Tavus recommends 24000).
        echo_realtime: Pace echo audio at real time instead of sending it as fast as it
            comes (Tavus buffers, so faster is the default).
        echo_done_fallback_s: Close an audio utterance (``done: true``) when no audio and
            no ``TTSStoppedFrame`` arrived for this long.
        max_message_bytes: Cap on every outbound message's encoded size (Daily documents
            4 KB for app messages).
        wait_for_replica: Hold interactions until the replica has joined.
        ready_timeout_s: How long interactions may be held before they fail with an error.
        max_pending: How many interactions may be held before the replica joins.
        target_replica: Address messages to the replica participant instead of
            broadcasting them.
        mirror_context: Mirror ``LLMMessagesUpdateFrame``/``LLMMessagesAppendFrame`` to
            ``overwrite_llm_context``/``append_llm_context``.
        tool_result_delivery: How tool results go back (``core/tools.py`` lists the policies).
        tool_timeout_s: Default deadline of a tool handler.
        tool_errors_verbatim: Tell the replica a failing handler's exception text. Off by
            default: the replica hears "the tool failed" (it may say it aloud), and the
            exception goes to the log and the turn ledger.
        max_concurrent_tools: How many tool handlers may run at once; a call over the cap
            gets an error result at once.
        tool_respond_text: Text of the ``respond`` that follows an appended result with
            ``append_and_respond`` (``{name}`` is the function name).
        record_path: Record every wire message in and out, and every local cause of an
            outbound message, to this JSONL file (``docs/recording.md``); ``None``: off.
        record_max_queue: How many records may wait for the recorder's writer thread; more
            are dropped and counted, never waited for.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        """Refuse a duration given under both its names (``tool_timeout_s`` and ``_secs``)."""
        if isinstance(data, dict):
            both = [n for n in SECONDS_FIELDS if n in data and pipecat_name(n) in data]
            if both:
                raise ConfigurationError(
                    f"{both[0]} and {pipecat_name(both[0])} are the same setting; give only one"
                )
        return data

    mode: Mode = "full"
    conversation_id: str | None = None
    replica_participant_id: str | None = None
    replica_user_id_match: str = "tavus-replica"
    replica_user_name: str | None = None
    trust_any_sender: bool = False

    reorder_window_ms: float = Field(default=50.0, ge=0)
    max_turns: int = Field(default=100, ge=1)
    heartbeat_timeout_s: float | None = Field(
        default=5.0, gt=0, validation_alias=_secs("heartbeat_timeout_s")
    )
    emit_transcriptions: bool = True
    user_turn_frames: Literal["speaking", "proposed", "none"] = "speaking"
    user_turn_frames_in_echo: bool = False
    emit_vad_frames: bool = True
    emit_bot_speaking: bool = True
    emit_bot_output: bool = True
    rtvi_server_messages: bool = True
    bot_speaking_interval_s: float = Field(
        default=1.0, gt=0, validation_alias=_secs("bot_speaking_interval_s")
    )
    interrupt_pipeline_on_barge_in: bool = True
    end_on_shutdown: bool = True
    emit_event_frames: bool = False

    text_echo: Literal["sentences", "whole"] = "sentences"
    echo_sample_rate: int = Field(default=24000, ge=8000, le=48000)
    echo_realtime: bool = False
    echo_done_fallback_s: float = Field(
        default=3.0, gt=0, validation_alias=_secs("echo_done_fallback_s")
    )
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, ge=512)
    wait_for_replica: bool = True
    ready_timeout_s: float = Field(default=15.0, gt=0, validation_alias=_secs("ready_timeout_s"))
    max_pending: int = Field(default=256, ge=1)
    target_replica: bool = False
    mirror_context: bool = False

    tool_result_delivery: ToolResultDelivery = "auto"
    tool_timeout_s: float = Field(default=10.0, gt=0, validation_alias=_secs("tool_timeout_s"))
    tool_errors_verbatim: bool = False
    max_concurrent_tools: int = Field(default=64, ge=1)
    tool_respond_text: str = "The {name} lookup finished; please tell me what it found."

    record_path: Path | None = None
    record_max_queue: int = Field(default=10_000, ge=1)

    @field_validator("conversation_id")
    @classmethod
    def _conversation_id_not_empty(cls, value: str | None) -> str | None:
        # An empty id would be sent on every message and refused by Tavus; reject it here,
        # as set_conversation_id("") does.
        if value is not None and not value:
            raise ConfigurationError(
                "conversation_id must be a non-empty string: pass the id create-conversation "
                "returned, or leave it unset and call set_conversation_id() later"
            )
        return value


__all__ = [
    "SECONDS_FIELDS",
    "Mode",
    "pipecat_name",
    "TavusInteractionsParams",
    "ToolResultDelivery",
]
