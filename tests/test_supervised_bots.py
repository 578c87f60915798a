"""The deployment shape of docs/scale.md: bot processes started and supervised by supervisord.

Two bot processes under the repository's ``deploy/supervisord.conf``; the scale benchmark's
load runs a few real-time conversations through them (events come out of both), a bot killed
with SIGKILL is started again by supervisord, and a stop (SIGTERM) during a session cancels
that bot's pipelines, reports them ended and exits 0. No network: unix sockets in a
temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import tempfile
import time

import pytest

pytest.importorskip(
    "supervisor", reason='needs supervisord: pip install -e ".[test]" (or ".[bench]")'
)

from benchmarks.scale import (  # noqa: E402 (after the skip)
    SupervisedBots,
    _prepare,
    _readline,
    measure,
    ping,
    start_sessions,
)

OPTIONS = {"tune_gc": True, "no_observers": True}


@pytest.fixture(scope="module")
def recording():
    # Two user turns of the simulator's scripted conversation, with their real-time offsets.
    return asyncio.run(_prepare(2))


@pytest.fixture
def bots():
    with tempfile.TemporaryDirectory(prefix="tavus-sup-") as run_dir:
        bots = SupervisedBots(2, run_dir)
        try:
            yield bots
        finally:
            bots.close()


def _restarted(bots: SupervisedBots, proc: int, old_pid: int, timeout: float = 60.0) -> int:
    """The pid of bot ``proc`` once it is a process other than ``old_pid``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = ping(bots.paths[proc], timeout=deadline - time.monotonic())["pid"]
        if pid != old_pid:
            return pid
        time.sleep(0.05)  # the old process is still dying: ask again
    raise AssertionError(f"bot {proc} was not started again within {timeout:g} s")


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.05)


def test_supervised_bots_serve_restart_and_stop_cleanly(bots, recording):
    timed, accepted = recording
    pids = [ping(path)["pid"] for path in bots.paths]
    assert len(set(pids)) == 2 and os.getpid() not in pids

    # Events flow: 4 conversations, 2 in each bot, a 1 s window.
    result = measure(
        bots, timed, accepted, 4, seconds=1.0, warmup=0.3, drain=10.0, options=OPTIONS, lead=0.3
    )
    assert [p["pid"] for p in result["per_proc"]] == pids
    assert all(p["events_measured"] > 0 for p in result["per_proc"]), result["per_proc"]
    assert result["missing"] == 0

    # A bot that dies is started again by supervisord, on the same socket (while bot 1 is
    # stopped in the middle of a session, below).
    os.kill(pids[0], signal.SIGKILL)

    # Stop during a session: the bot cancels its pipelines, says so, and exits 0.
    cid = timed[0][1]["conversation_id"]
    socks, hellos = start_sessions(bots.paths[1:], 3, cid, OPTIONS)
    assert hellos[0]["pid"] == pids[1]
    out = bots.ctl("stop", "tavus-bot:tavus-bot-1")
    assert "stopped" in out, out
    report = json.loads(_readline(socks[0], 60))
    assert report == {"stopped": "SIGTERM", "pipelines": 3, "finished": 3}
    socks[0].close()
    assert not os.path.exists(bots.paths[1])
    # supervisord copies the bot's output to its log as it reads it: give it the time to.
    _wait_for(lambda: "SIGTERM: 3 of 3 pipelines ended" in bots.log(1), "the bot's stop in its log")

    new_pid = _restarted(bots, 0, pids[0])
    assert new_pid not in pids
    assert f"pid {new_pid}" in bots.ctl("status", "tavus-bot:tavus-bot-0")

    # Stopping supervisord stops the remaining bot the same way, and supervisord exits 0.
    assert bots.close() == 0
    with open(os.path.join(bots.run_dir, "supervisord.log"), encoding="utf-8") as f:
        log = f.read()
    assert re.search(r"exited: tavus-bot-0 \(terminated by SIGKILL", log), log
    assert "stopped: tavus-bot-1 (exit status 0)" in log
    assert "stopped: tavus-bot-0 (exit status 0)" in log
    assert not any(os.path.exists(path) for path in bots.paths)
