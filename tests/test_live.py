"""Live wiring (``pipecat_tavus_interactions.live``), exercised offline on real DailyTransports.

``DailyTransport`` can be built without joining, and its Daily callbacks
(``_on_participant_joined``, ``_on_joined``, ``_on_participant_left``) are what daily-python
calls when the room changes; the tests call them directly with Daily-shaped participants. The
only thing replaced is ``update_subscriptions`` on the one transport instance under test (it
would need a joined call), and ``participants`` where the room's membership matters.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from loguru import logger
from pipecat.pipeline.pipeline import Pipeline
from pipecat.transports.daily.transport import (
    DailyInputTransportMessageFrame,
    DailyParams,
    DailyTransport,
)
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import TavusInteractionsParams
from pipecat_tavus_interactions.api import Conversation
from pipecat_tavus_interactions.live import LiveSession, connect, daily_params_for
from pipecat_tavus_interactions.pipeline.rtvi import TavusRTVIProcessor

CID = "c0123456789"
URL = f"https://tavus.daily.co/{CID}"
TOKEN = "mtok-7f3a9c2e-do-not-log"
REPLICA_ID = str(uuid.UUID(int=1))
USER_ID = str(uuid.UUID(int=2))


def participant(pid: str, user_id: str, name: str) -> dict:
    return {"id": pid, "info": {"userId": user_id, "userName": name, "isLocal": False}}


REPLICA = participant(REPLICA_ID, "tavus-replica-r90bbd427f71", "Anna")
USER = participant(USER_ID, USER_ID, "Guest")


def conversation(**extra) -> dict:
    return {"conversation_id": CID, "conversation_url": URL, **extra}


def record_subscriptions(transport: DailyTransport) -> list[dict]:
    """Replace ``update_subscriptions`` on this one instance with a recorder."""
    calls: list[dict] = []

    async def update_subscriptions(participant_settings=None, profile_settings=None):
        calls.append({"participant_settings": participant_settings, "profile": profile_settings})

    transport.update_subscriptions = update_subscriptions
    return calls


async def settle(transport: DailyTransport) -> None:
    """Wait for the event-handler tasks a Daily callback started (handlers run as tasks)."""
    while transport._event_tasks:
        await asyncio.gather(*(task for _, task in list(transport._event_tasks)))


# --- construction -------------------------------------------------------------------------


def test_connect_builds_a_daily_transport_for_the_url_without_joining():
    session = connect(conversation(meeting_token=TOKEN))
    assert isinstance(session, LiveSession)
    assert isinstance(session.transport, DailyTransport)
    assert session.transport.room_url == URL
    assert session.transport.participant_id == ""  # Daily assigns one only on join
    assert session.tavus.conversation_id == CID
    assert session.conversation_id == CID
    assert session.mode == "full"


def test_connect_accepts_an_api_conversation_and_keeps_the_given_params():
    created = Conversation(conversation_id=CID, conversation_url=URL, status="active")
    params = TavusInteractionsParams(mode="echo_text", tool_timeout_s=3.0)
    session = connect(created, params=params, bot_name="Tony's bot")
    assert session.conversation is created
    assert session.tavus.params.mode == "echo_text"
    assert session.tavus.params.tool_timeout_s == 3.0
    assert session.tavus.params.conversation_id == CID
    assert params.conversation_id is None  # the caller's object is not modified


@pytest.mark.parametrize(
    "bad, error",
    [
        ({"conversation_url": URL}, ValueError),
        ({"conversation_id": CID}, ValueError),
        ({"conversation_id": CID, "conversation_url": ""}, ValueError),
        ({"conversation_id": CID, "conversation_url": URL, "meeting_token": ""}, ValueError),
        ("https://tavus.daily.co/c1", TypeError),
    ],
)
def test_connect_rejects_a_conversation_it_cannot_join(bad, error):
    with pytest.raises(error):
        connect(bad)


def test_connect_refuses_params_for_another_conversation():
    with pytest.raises(ValueError, match="leave it unset"):
        connect(conversation(), params=TavusInteractionsParams(conversation_id="c-other"))
    # The same id is fine.
    assert connect(conversation(), params=TavusInteractionsParams(conversation_id=CID))


# --- per-mode transport parameters ---------------------------------------------------------


@pytest.mark.parametrize(
    "mode, audio_in",
    [("full", False), ("echo_text", True), ("echo_audio", True)],
)
def test_daily_params_per_mode(mode, audio_in):
    session = connect(conversation(), params=TavusInteractionsParams(mode=mode))
    # DailyTransport has no public accessor for its parameters.
    params = session.transport._params
    assert params == daily_params_for(mode)
    assert params.audio_in_enabled is audio_in  # the user's microphone, for the bot's STT
    assert params.audio_in_user_tracks is True  # one track per participant
    # The bot never publishes media: echo audio travels as app messages.
    assert params.audio_out_enabled is False
    assert params.microphone_out_enabled is False
    assert params.video_out_enabled is False
    assert params.camera_out_enabled is False
    assert params.video_in_enabled is False


def test_daily_params_overrides_and_validation():
    assert daily_params_for("echo_audio", audio_in_sample_rate=16000).audio_in_sample_rate == 16000
    with pytest.raises(ValueError, match="mode"):
        daily_params_for("pipecat")
    with pytest.raises(ValueError, match="replica's voice"):
        daily_params_for("echo_text", audio_in_user_tracks=False)


def test_given_daily_params_are_used_but_must_not_mix_the_replica_into_the_input():
    own = DailyParams(audio_in_enabled=True, audio_in_sample_rate=24000)
    session = connect(
        conversation(), params=TavusInteractionsParams(mode="echo_text"), daily_params=own
    )
    assert session.transport._params is own
    mixed = DailyParams(audio_in_enabled=True, audio_in_user_tracks=False)
    with pytest.raises(ValueError, match="audio_in_user_tracks"):
        connect(
            conversation(), params=TavusInteractionsParams(mode="echo_text"), daily_params=mixed
        )


# --- the replica's participant and microphone ----------------------------------------------


def test_attach_transport_handlers_are_registered():
    session = connect(conversation())
    handlers = session.transport._event_handlers
    for event in ("on_participant_joined", "on_participant_left", "on_joined"):
        assert handlers[event].handlers, f"nothing listens to {event}"


@pytest.mark.parametrize("mode", ["full", "echo_text", "echo_audio"])
async def test_replica_joining_is_learned_and_its_microphone_unsubscribed(mode):
    session = connect(conversation(), params=TavusInteractionsParams(mode=mode))
    calls = record_subscriptions(session.transport)

    await session.transport._on_participant_joined(USER)  # Daily's callback
    await settle(session.transport)
    assert calls == []
    assert session.tavus.replica_participant_id is None

    await session.transport._on_participant_joined(REPLICA)
    await settle(session.transport)
    assert session.tavus.replica_participant_id == REPLICA_ID
    assert calls == [
        {
            "participant_settings": {REPLICA_ID: {"media": {"microphone": "unsubscribed"}}},
            "profile": None,
        }
    ]

    # Once is enough, whatever Daily repeats.
    await session.transport._on_participant_joined(REPLICA)
    await settle(session.transport)
    assert len(calls) == 1


async def test_a_replica_already_in_the_room_is_found_when_the_bot_joins():
    session = connect(conversation(), params=TavusInteractionsParams(mode="echo_audio"))
    calls = record_subscriptions(session.transport)
    session.transport.participants = lambda: {
        "local": {"id": str(uuid.UUID(int=3)), "info": {"isLocal": True}},
        USER_ID: USER,
        REPLICA_ID: REPLICA,
    }
    await session.transport._on_joined({"participants": {}})
    await settle(session.transport)
    assert session.tavus.replica_participant_id == REPLICA_ID
    assert [list(c["participant_settings"]) for c in calls] == [[REPLICA_ID]]


async def test_the_unsubscription_can_be_switched_off():
    session = connect(
        conversation(),
        params=TavusInteractionsParams(mode="echo_text"),
        unsubscribe_replica_audio=False,
    )
    calls = record_subscriptions(session.transport)
    await session.transport._on_participant_joined(REPLICA)
    await settle(session.transport)
    assert session.tavus.replica_participant_id == REPLICA_ID  # still learned
    assert calls == []


async def test_a_configured_replica_user_name_decides_who_is_the_replica():
    params = TavusInteractionsParams(mode="echo_text", replica_user_name="Anna")
    session = connect(conversation(), params=params)
    calls = record_subscriptions(session.transport)
    impostor = participant(str(uuid.UUID(int=9)), "tavus-replica-x", "Not Anna")
    await session.transport._on_participant_joined(impostor)
    await settle(session.transport)
    assert calls == []
    await session.transport._on_participant_joined(REPLICA)
    await settle(session.transport)
    assert [list(c["participant_settings"]) for c in calls] == [[REPLICA_ID]]


# --- secrets ----------------------------------------------------------------------------


async def test_the_meeting_token_never_appears_in_logs_or_reprs():
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE")
    try:
        session = connect(
            conversation(meeting_token=TOKEN), params=TavusInteractionsParams(mode="echo_text")
        )
        record_subscriptions(session.transport)
        await session.transport._on_participant_joined(REPLICA)
        await session.transport._on_participant_left(REPLICA, "leftCall")
        await settle(session.transport)
        session.pipeline_worker(Pipeline([session.tavus.input(), session.tavus.output()]))
    finally:
        logger.remove(sink)
    assert lines, "expected the wiring to log something"
    shown = [*lines, repr(session), str(session), repr(session.tavus), str(session.transport)]
    assert not [text for text in shown if TOKEN in text]
    assert repr(session) == f"LiveSession(conversation_id={CID!r}, mode='echo_text')"


# --- the worker ---------------------------------------------------------------------------


def test_worker_kwargs_keep_rtvi_on_and_turn_the_idle_timeout_off():
    session = connect(conversation())
    kwargs = session.worker_kwargs()
    assert isinstance(kwargs.pop("rtvi_processor"), TavusRTVIProcessor)
    assert kwargs == {"idle_timeout_secs": None, "cancel_on_idle_timeout": False}
    worker = session.pipeline_worker(Pipeline([session.tavus.input(), session.tavus.output()]))
    assert isinstance(worker.rtvi, TavusRTVIProcessor)  # Pipecat's default: RTVI on
    off = session.pipeline_worker(
        Pipeline([session.tavus.input(), session.tavus.output()]), enable_rtvi=False
    )
    with pytest.raises(Exception, match="RTVI is not enabled"):
        _ = off.rtvi
    assert worker._idle_timeout_secs is None  # no public accessor
    custom = session.pipeline_worker(
        Pipeline([session.tavus.input(), session.tavus.output()]), idle_timeout_secs=600
    )
    assert custom._idle_timeout_secs == 600


async def run_worker(worker, timeout_s: float = 10.0) -> None:
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(runner.run(), timeout_s)


def joined_message() -> dict:
    return {
        "message_type": "system",
        "event_type": "system.replica_joined",
        "conversation_id": CID,
        "properties": {"replica_id": "r90bbd427f71"},
    }


async def test_the_pipeline_ends_when_the_replica_never_joins():
    session = connect(conversation())
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    worker = session.pipeline_worker(
        Pipeline([session.tavus.input(), session.tavus.output()]), replica_join_timeout_s=0.2
    )
    try:
        await run_worker(worker)  # ends by itself
    finally:
        logger.remove(sink)
    assert worker.has_finished()
    assert any("did not join within 0.2s" in line for line in lines)


async def test_the_pipeline_runs_while_the_replica_is_there_and_ends_when_it_leaves():
    session = connect(conversation())
    record_subscriptions(session.transport)
    worker = session.pipeline_worker(
        Pipeline([session.tavus.input(), session.tavus.output()]), replica_join_timeout_s=0.2
    )
    seen: dict[str, bool] = {}

    @session.tavus.event_handler("on_replica_joined")
    async def on_replica_joined(tavus, event):
        seen["joined"] = True

    @worker.event_handler("on_pipeline_started")
    async def on_started(worker, frame):
        await session.transport._on_participant_joined(REPLICA)
        await settle(session.transport)
        await worker.queue_frame(
            DailyInputTransportMessageFrame(message=joined_message(), participant_id=REPLICA_ID)
        )
        # Past the join timeout: the replica joined, so the bot keeps running.
        await asyncio.sleep(0.4)
        seen["running_after_timeout"] = not worker.has_finished()
        await session.transport._on_participant_left(REPLICA, "leftCall")

    await run_worker(worker)
    assert seen == {"joined": True, "running_after_timeout": True}
    assert worker.has_finished()


async def test_a_foreign_participant_leaving_does_not_end_the_pipeline():
    session = connect(conversation())
    record_subscriptions(session.transport)
    worker = session.pipeline_worker(
        Pipeline([session.tavus.input(), session.tavus.output()]), replica_join_timeout_s=None
    )
    seen: dict[str, bool] = {}

    @worker.event_handler("on_pipeline_started")
    async def on_started(worker, frame):
        await session.transport._on_participant_joined(REPLICA)
        await session.transport._on_participant_left(USER, "leftCall")
        await settle(session.transport)
        await asyncio.sleep(0.1)
        seen["running"] = not worker.has_finished()
        await session.transport._on_participant_left(REPLICA, "leftCall")

    await run_worker(worker)
    assert seen == {"running": True}


def test_join_timeout_must_be_positive():
    session = connect(conversation())
    with pytest.raises(ValueError):
        session.pipeline_worker(
            Pipeline([session.tavus.input(), session.tavus.output()]), replica_join_timeout_s=0
        )


# --- the error tree -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, builtin, message",
    [
        ({"conversation_url": URL}, ValueError, "has no conversation_id"),
        ({"conversation_id": CID}, ValueError, "pass the conversation_url"),
        (conversation(meeting_token=""), ValueError, "left out for a public room"),
        ("https://tavus.daily.co/c1", TypeError, "not str"),
    ],
)
def test_connect_errors_are_package_errors_that_say_what_to_pass(bad, builtin, message):
    from pipecat_tavus_interactions.exceptions import ConfigurationError, TavusInteractionsError

    with pytest.raises(ConfigurationError, match=message) as info:
        connect(bad)
    assert isinstance(info.value, builtin)  # `except ValueError`/`TypeError` still catch it
    assert isinstance(info.value, TavusInteractionsError)


def test_settings_errors_are_configuration_errors():
    from pipecat_tavus_interactions.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="leave it unset"):
        connect(conversation(), params=TavusInteractionsParams(conversation_id="c-other"))
    with pytest.raises(ConfigurationError, match="not 'pipecat'"):
        daily_params_for("pipecat")
    with pytest.raises(ConfigurationError, match="keep it True"):
        daily_params_for("echo_audio", audio_in_user_tracks=False)
    session = connect(conversation())
    with pytest.raises(ConfigurationError, match="None \\(wait forever\\), not -1"):
        session.pipeline_worker(
            Pipeline([session.tavus.input(), session.tavus.output()]), replica_join_timeout_s=-1
        )
