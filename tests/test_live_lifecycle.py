"""A live session's lifetime when the room cannot be joined, the replica never comes, or Ctrl-C.

Everything runs offline. The bot's transport is a real ``DailyTransport`` with Pipecat's real
join code; only the Daily call underneath (``DailyTransportClient._join``/``_leave``, which
would go to the network) is replaced, to answer with an error, to succeed, or to never answer.
The conversation lives on the loopback ``TavusRestSimulator``, so "the conversation was ended"
is a request the server recorded. Times are bounded by awaited conditions, never by sleeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from loguru import logger
from pipecat.pipeline.pipeline import Pipeline
from pipecat.transports.daily.transport import DailyTransport, DailyTransportClient
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.api import TavusAPI
from pipecat_tavus_interactions.exceptions import ReplicaNotReadyError
from pipecat_tavus_interactions.live import DEFAULT_REPLICA_JOIN_TIMEOUT_S, LiveSession, connect
from pipecat_tavus_interactions.simulator.rest import TavusRestSimulator

KEY = "tk-lifecycle-5d2e9a"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOCAL_ID = "33333333-3333-4333-8333-333333333333"
REPLICA_ID = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
async def rest():
    async with TavusRestSimulator(api_key=KEY) as server:
        yield server


@pytest.fixture
async def api(rest):
    async with aiohttp.ClientSession() as http:
        yield TavusAPI(api_key=KEY, session=http, base_url=rest.base_url, backoff_s=0.01)


@pytest.fixture
def errors():
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="ERROR")
    yield lines
    logger.remove(sink)


def daily_answers(transport: DailyTransport, *, join_error: str | None) -> None:
    """Make this transport's Daily call answer the join with ``join_error`` (or success)."""

    async def join():
        if join_error is not None:
            return None, join_error
        return {"participants": {"local": {"id": LOCAL_ID}}, "meetingSession": {"id": "m1"}}, None

    async def leave():
        return None

    transport._client._join = join
    transport._client._leave = leave


def full_pipeline(session: LiveSession) -> Pipeline:
    return Pipeline(
        [
            session.transport.input(),
            session.tavus.input(),
            session.tavus.output(),
            session.transport.output(),
        ]
    )


async def run_to_the_end(worker, bound_s: float) -> float:
    """Run ``worker`` alone; return how long it took (failing past ``bound_s``)."""
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    started = time.monotonic()
    await asyncio.wait_for(runner.run(), bound_s)
    return time.monotonic() - started


def ends_of(rest: TavusRestSimulator, conversation_id: str) -> int:
    return len(rest.requests_to("POST", f"/v2/conversations/{conversation_id}/end"))


async def test_a_failed_join_ends_the_pipeline_at_once_and_the_conversation_is_ended(
    api, rest, errors
):
    async with api.conversation(pal_id="p1", require_auth=True) as conversation:
        session = connect(conversation)
        token = conversation.meeting_token
        assert token
        # Daily's error text is not ours: even one that repeated the token is not shown.
        daily_answers(session.transport, join_error=f"simulated: the meeting has ended ({token})")
        # Default settings: before, the bot waited for the replica join timeout (120 s).
        worker = session.pipeline_worker(full_pipeline(session))
        took = await run_to_the_end(worker, bound_s=10.0)
        assert ends_of(rest, conversation.conversation_id) == 0  # the block has not exited
    assert took < 5.0, f"the pipeline took {took:.1f}s to end after a failed join"
    assert isinstance(session.failure, ReplicaNotReadyError)
    assert "could not join the conversation's room" in str(session.failure)
    assert "the meeting has ended" in str(session.failure)
    assert conversation.conversation_id in str(session.failure)
    assert any("could not join the conversation's room" in line for line in errors), errors
    assert token not in str(session.failure)
    assert not [line for line in errors if "live" in line and token in line]
    assert ends_of(rest, conversation.conversation_id) == 1
    assert rest.conversations[conversation.conversation_id]["status"] == "ended"


async def test_the_replica_never_arriving_ends_the_pipeline_with_an_error(api, rest, errors):
    async with api.conversation(pal_id="p1") as conversation:
        session = connect(conversation)
        daily_answers(session.transport, join_error=None)  # the bot is in; no replica
        failed: list[Exception] = []
        session.tavus.add_event_handler("on_send_failed", lambda _t, _i, e: failed.append(e))
        worker = session.pipeline_worker(full_pipeline(session), replica_join_timeout_s=0.3)

        @worker.event_handler("on_pipeline_started")
        async def greet(worker, frame):
            await session.tavus.send(ix.Respond("hello?"))  # held for the replica

        took = await run_to_the_end(worker, bound_s=10.0)
    assert 0.3 <= took < 5.0
    assert isinstance(session.failure, ReplicaNotReadyError)
    assert "the replica did not join within 0.3s" in str(session.failure)
    assert any("did not join within 0.3s" in line for line in errors), errors
    # What was held for the replica is reported, not silently dropped.
    assert [type(e) for e in failed] == [ReplicaNotReadyError]
    assert rest.conversations[conversation.conversation_id]["status"] == "ended"


async def test_a_joined_bot_is_not_ended_by_a_later_transport_error(api, rest):
    async with api.conversation(pal_id="p1") as conversation:
        session = connect(conversation)
        daily_answers(session.transport, join_error=None)
        worker = session.pipeline_worker(full_pipeline(session), replica_join_timeout_s=None)
        replica = {"id": REPLICA_ID, "info": {"userId": "tavus-replica-r1", "userName": "Anna"}}

        @worker.event_handler("on_pipeline_started")
        async def error_then_replica_comes_and_goes(worker, frame):
            await session.transport._on_error("Unable to start transcription: quota")
            await session.transport._on_participant_joined(replica)
            await session.transport._on_participant_left(replica, "leftCall")

        await run_to_the_end(worker, bound_s=10.0)  # ended by the replica leaving
    assert session.failure is None


def test_the_default_replica_wait_is_bounded():
    assert DEFAULT_REPLICA_JOIN_TIMEOUT_S <= 30.0


# --- Ctrl-C ---------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from pipecat.transports.daily.transport import DailyTransportClient

async def join_that_never_answers(self):
    print("JOINING", flush=True)
    await asyncio.Event().wait()

DailyTransportClient._join = join_that_never_answers
import live_full
from pipecat.runner.types import RunnerArguments

args = RunnerArguments()
args.handle_sigint = True  # as when the bot runs on its own, not under the dev runner
asyncio.run(live_full.bot(args))
print("BOT RETURNED", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_ctrl_c_during_the_join_exits_within_seconds_and_ends_the_conversation(rest, signum):
    # SIGTERM is what a process manager (supervisord, systemd, a container stop) sends.
    env = {
        **os.environ,
        "TAVUS_API_KEY": KEY,
        "TAVUS_PAL_ID": "p-live",
        "TAVUS_FACE_ID": "",
        "TAVUS_API_URL": rest.base_url,
        "PYTHONUNBUFFERED": "1",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        cwd=EXAMPLES,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):  # imports on a loaded machine
            while b"JOINING" not in (line := await child.stdout.readline()):
                assert line, "the bot exited before joining"
        (conversation_id,) = rest.conversations
        child.send_signal(signum)
        interrupted = time.monotonic()
        output = await asyncio.wait_for(child.stdout.read(), 10)
        await child.wait()
        took = time.monotonic() - interrupted
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 0, output.decode()[-2000:]
    assert b"BOT RETURNED" in output
    assert took < 3.0, f"exit took {took:.1f}s after {signum.name}"
    assert ends_of(rest, conversation_id) == 1
    assert rest.conversations[conversation_id]["status"] == "ended"
    assert KEY.encode() not in output


async def test_cancelling_a_bot_session_during_the_join_ends_the_conversation(rest, monkeypatch):
    """Under Pipecat's dev runner Ctrl-C stops the server, and the session task is cancelled."""
    joining = asyncio.Event()

    async def join_that_never_answers(self):
        joining.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(DailyTransportClient, "_join", join_that_never_answers)
    monkeypatch.setenv("TAVUS_API_KEY", KEY)
    monkeypatch.setenv("TAVUS_PAL_ID", "p-live")
    monkeypatch.setenv("TAVUS_API_URL", rest.base_url)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import live_full
    from pipecat.runner.types import RunnerArguments

    session = asyncio.create_task(live_full.bot(RunnerArguments()))
    await asyncio.wait_for(joining.wait(), 30)
    (conversation_id,) = rest.conversations
    session.cancel()
    cancelled = time.monotonic()
    await asyncio.wait_for(
        rest.wait_for_request(method="POST", path=f"/v2/conversations/{conversation_id}/end"), 5
    )
    took = time.monotonic() - cancelled
    await asyncio.wait([session], timeout=5)
    assert session.done()
    assert took < 3.0
    assert rest.conversations[conversation_id]["status"] == "ended"
