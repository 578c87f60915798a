"""Smoke tests for ``examples/``: each runs offline to completion, as a user would run it.

Every example runs in its own subprocess, bounded in time, and the three offline runs start
together so the module takes as long as the slowest one. They run with made-up Tavus and OpenAI
keys in the environment: with no runner arguments an example stays offline whatever the
environment holds. The live paths are checked as far as they go without a network: the settings
check (exit status 2 with what to set), the runner entry ``bot(runner_args)`` refusing sessions
it cannot serve, the Tavus conversation a session runs in (against the loopback REST
simulator), the runner's ``/tavus`` route, and the wiring of the live pipelines, built against a
made-up room URL without joining it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIME_LIMIT_S = 60
OFFLINE = {
    "quickstart": ["--speed", "4"],
    "echo_text_flows": ["--speed", "4"],
    "echo_audio": ["--speed", "4"],
}
SECRETS = (
    "TAVUS_API_KEY",
    "TAVUS_PAL_ID",
    "TAVUS_PERSONA_ID",
    "TAVUS_FACE_ID",
    "TAVUS_REPLICA_ID",
    "OPENAI_API_KEY",
    "CARTESIA_API_KEY",
    "CARTESIA_VOICE_ID",
)


def offline_env(**extra: str) -> dict[str, str]:
    # Set empty rather than removed: the examples read a .env file without overriding what
    # the environment already holds, so a developer's .env cannot fill these in.
    env = {**os.environ, **dict.fromkeys(SECRETS, "")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


#: Keys that would take an example live if the environment still decided it.
FAKE_KEYS = {"TAVUS_API_KEY": "tk-test", "TAVUS_PAL_ID": "p-test", "OPENAI_API_KEY": "sk-test"}


class Run:
    """One finished example run."""

    def __init__(self, returncode: int, stdout: str, stderr: str, seconds: float):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"rc={self.returncode} in {self.seconds:.1f}s\n{self.stdout}\n{self.stderr}"

    def has(self, pattern: str) -> bool:
        """Whether a line of stdout matches ``pattern`` (a regular expression)."""
        return re.search(pattern, self.stdout, re.MULTILINE) is not None


def start(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / f"{script}.py"), *args],
        cwd=EXAMPLES.parent,
        env=env or offline_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, started: float) -> Run:
    try:
        out, err = proc.communicate(timeout=max(1.0, started + TIME_LIMIT_S - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args[1]} did not finish within {TIME_LIMIT_S}s:\n{out}\n{err}")
    return Run(proc.returncode, out, err, time.monotonic() - started)


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    started = time.monotonic()
    procs = {
        name: start(name, *args, env=offline_env(**FAKE_KEYS)) for name, args in OFFLINE.items()
    }
    return {name: finish(proc, started) for name, proc in procs.items()}


def test_quickstart_runs_offline(runs):
    run = runs["quickstart"]
    assert run.returncode == 0, run
    assert run.has(r"^Replica joined conversation c-sim-")
    assert run.has(r"^\s+user: What's the weather in Paris today\?$")
    assert run.has(
        r"^\s+tool: get_weather\(\{'city': 'Paris'\}\) -> 'Paris: sunny and 21 degrees' "
        r"\[success, \d+ ms, tool_result\]$"
    )
    assert run.has(r"^\s+replica: I checked for you: Paris: sunny and 21 degrees\.$")
    assert run.has(r"^\s+\^ interrupted by the user$")
    assert run.has(r"^\s+user: Sorry to cut in, what's the weather in London\?$")
    assert run.has(r"^5 turns, 2 tool call\(s\), 1 interruption\(s\)\.$")


def test_echo_text_flows_runs_offline(runs):
    run = runs["echo_text_flows"]
    assert run.returncode == 0, run
    assert run.has(r"flow: -> greeting$")
    assert run.has(r"replica: Hi, welcome to Tony's Pizza! What can I get you today\?$")
    assert run.has(r"user: A large pepperoni, please\.$")
    assert run.has(r"replica: We make three pizzas: .*\[interrupted\]$")  # the barge-in
    assert run.has(r"tool: take_order\(large, pepperoni\) -> \{.*'price': '\$14\.99'\}$")
    assert run.has(r"flow: -> confirm$")
    assert run.has(r"replica: That's one large pepperoni pizza for \$14\.99\. Shall I place")
    assert run.has(r"tool: confirm_order\(True\)")
    assert run.has(
        r"replica: Great, your pizza will be ready in 20 minutes\. Thanks, and goodbye!$"
    )
    assert run.has(r"nodes: greeting -> confirm -> done; replica utterances: 4, interrupted: 1\.$")


def test_echo_audio_runs_offline(runs):
    run = runs["echo_audio"]
    assert run.returncode == 0, run
    assert run.has(r"tool: get_weather\(\{'city': 'Paris'\}\)$")
    assert run.has(r"tts: Paris: sunny and 21 degrees\. A fine day to be outside!$")
    assert run.has(r"echo: \d+\.\d\d s of audio sent in \d+ messages \(largest \d+ B\)$")
    assert run.has(r"replica: spoke for \d+\.\d\d s  \[interrupted\]$")
    rows = re.findall(
        r"^\s+(\d)\s+(\d+\.\d\d)\s+(\d+)\s+(\d+)\s+(\d+\.\d\d)(  interrupted)?$",
        run.stdout,
        re.MULTILINE,
    )
    assert len(rows) == 4, run
    for _, sent_s, messages, largest, played_s, _cut in rows:
        assert float(sent_s) > 0 and int(messages) > 0
        assert int(largest) <= 4096  # every message under Daily's documented cap
        assert float(played_s) <= float(sent_s) + 0.01
    assert [bool(row[5]) for row in rows] == [False, False, True, False]
    assert run.has(r"largest \d+ B \(cap 4096 B\), \d+ interrupt\(s\) sent\.$")


@pytest.mark.parametrize("name", list(OFFLINE))
def test_offline_runs_are_quick(runs, name):
    # Each run is mostly simulated waiting; --speed 4 keeps it to a few seconds.
    assert runs[name].seconds < 30, runs[name]


# --- the live paths, as far as they go without a network ---------------------------------


@pytest.mark.parametrize(
    "script, args, env, missing",
    [
        ("live_full", ["-t", "daily"], {}, "TAVUS_API_KEY, TAVUS_PAL_ID"),
        ("live_full", [], {"TAVUS_API_KEY": "tk-test"}, "TAVUS_PAL_ID"),
        (
            "echo_text_flows",
            ["-t", "daily"],
            {"TAVUS_API_KEY": "tk-test"},
            "TAVUS_PAL_ID, OPENAI_API_KEY",
        ),
        ("echo_audio", ["-d"], {"TAVUS_API_KEY": "tk", "TAVUS_PAL_ID": "p1"}, "OPENAI_API_KEY"),
    ],
)
def test_live_runs_say_what_to_set_and_exit_2(script, args, env, missing):
    run = finish(start(script, *args, env=offline_env(**env)), time.monotonic())
    assert run.returncode == 2, run
    assert run.has(rf"^Missing: {re.escape(missing)}$")
    assert run.has(r"^  TAVUS_API_KEY\s+your Tavus API key$")
    assert "Traceback" not in run.stderr


def test_live_full_prints_the_tool_for_the_pal():
    run = finish(start("live_full", "--print-tool"), time.monotonic())
    assert run.returncode == 0, run
    (tool,) = json.loads(run.stdout)
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["required"] == ["city"]


LIVE_WIRING = """
import json, sys
sys.path.insert(0, "examples")
from pipecat.transports.daily.transport import DailyTransport
from _offline import Timeline
import echo_audio, echo_text_flows

conversation = {"conversation_id": "c-wiring", "conversation_url": "https://example.invalid/c"}
session, pipeline, llm, flow, aggregators = echo_text_flows.build_live(
    conversation, Timeline(), openai_api_key="sk-test"
)
text = [type(p).__name__ for p in pipeline.processors[1:-1]]
audio_session, audio_pipeline = echo_audio.build_live(
    conversation, echo_audio.EchoLog(Timeline()), openai_api_key="sk-test"
)
audio = [type(p).__name__ for p in audio_pipeline.processors[1:-1]]
print(json.dumps({
    "text": text, "audio": audio,
    "modes": [session.mode, audio_session.mode],
    "daily": isinstance(session.transport, DailyTransport),
}))
"""


def test_live_pipelines_are_wired_without_joining():
    proc = subprocess.run(
        [sys.executable, "-c", LIVE_WIRING],
        cwd=EXAMPLES.parent,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S,
    )
    assert proc.returncode == 0, proc.stderr
    wiring = json.loads(proc.stdout.strip().splitlines()[-1])
    assert wiring["modes"] == ["echo_text", "echo_audio"]
    assert wiring["daily"] is True
    text = wiring["text"]
    for inner in (text, wiring["audio"]):
        # The Tavus processors sit right inside the transport's, STT before the aggregator.
        assert inner[1:4] == [
            "TavusInteractionsInput",
            "OpenAIRealtimeSTTService",
            "LLMUserAggregator",
        ]
        assert inner[-3:] == [
            "TavusInteractionsOutput",
            "DailyOutputTransport",
            "LLMAssistantAggregator",
        ]
    assert "OpenAILLMService" in text
    assert "OpenAITTSService" in wiring["audio"]


# --- the runner entry, in process ---------------------------------------------------------


@pytest.fixture
def examples_path():
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


@pytest.fixture
def errors():
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="ERROR")
    yield lines
    logger.remove(sink)


KEY = "tk-loopback-7c1e"


@pytest.fixture
async def tavus_rest(monkeypatch):
    from pipecat_tavus_interactions.simulator.rest import TavusRestSimulator

    async with TavusRestSimulator(api_key=KEY) as server:
        for name in SECRETS:
            monkeypatch.setenv(name, "")
        monkeypatch.setenv("TAVUS_API_KEY", KEY)
        monkeypatch.setenv("TAVUS_PAL_ID", "p-live")
        monkeypatch.setenv("TAVUS_FACE_ID", "r-face")
        monkeypatch.setenv("TAVUS_API_URL", server.base_url)
        yield server


@pytest.mark.parametrize("script", ["live_full", "echo_text_flows", "echo_audio"])
async def test_bot_refuses_a_session_with_its_own_daily_room(
    examples_path, tavus_rest, errors, monkeypatch, script
):
    import importlib

    from pipecat.runner.types import DailyRunnerArguments

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    module = importlib.import_module(script)
    await module.bot(DailyRunnerArguments(room_url="https://example.invalid/room"))
    assert any("its own Daily room" in line and "/tavus" in line for line in errors), errors
    assert tavus_rest.requests == []  # no conversation was created (nothing billed)


async def test_bot_with_settings_missing_names_them_and_starts_nothing(
    examples_path, tavus_rest, errors, monkeypatch
):
    import echo_audio
    from pipecat.runner.types import RunnerArguments

    monkeypatch.setenv("TAVUS_PAL_ID", "")
    await echo_audio.bot(RunnerArguments())
    assert any("missing TAVUS_PAL_ID, OPENAI_API_KEY" in line for line in errors), errors
    assert tavus_rest.requests == []


async def test_a_session_without_a_conversation_creates_one_and_ends_it(
    examples_path, tavus_rest, capsys
):
    from _live import tavus_conversation
    from pipecat.runner.types import RunnerArguments

    async with tavus_conversation(RunnerArguments(), name="test run") as conversation:
        record = tavus_rest.conversations[conversation.conversation_id]
        assert record["status"] == "active"
        assert record["pal_id"] == "p-live" and record["face_id"] == "r-face"
        assert record["conversation_name"] == "test run"
        assert record["properties"] == {"max_call_duration": 600, "participant_left_timeout": 30}
    assert tavus_rest.conversations[conversation.conversation_id]["status"] == "ended"
    out = capsys.readouterr().out
    assert f"Join it in a browser: {conversation.conversation_url}" in out
    assert KEY not in out


async def test_a_session_naming_a_conversation_joins_it_and_ends_it(examples_path, tavus_rest):
    import aiohttp
    from _live import tavus_conversation
    from pipecat.runner.types import RunnerArguments

    from pipecat_tavus_interactions.api import TavusAPI

    async with aiohttp.ClientSession() as http:
        api = TavusAPI(api_key=KEY, session=http, base_url=tavus_rest.base_url)
        created = await api.create_conversation(pal_id="p-web", require_auth=True)
    body = {
        "conversation_id": created.conversation_id,
        "conversation_url": created.conversation_url,
        "meeting_token": created.meeting_token,
    }
    async with tavus_conversation(RunnerArguments(body=body), name="unused") as conversation:
        assert conversation.conversation_id == created.conversation_id
        assert conversation.meeting_token == created.meeting_token
        assert len(tavus_rest.conversations) == 1  # nothing else was created
    assert tavus_rest.conversations[created.conversation_id]["status"] == "ended"

    with pytest.raises(ValueError, match="both its conversation_id and conversation_url"):
        async with tavus_conversation(RunnerArguments(body={"conversation_id": "c1"}), name="x"):
            pass


async def test_the_runner_route_creates_a_conversation_starts_the_bot_and_opens_the_room(
    examples_path, tavus_rest
):
    import asyncio

    import httpx
    from _live import add_tavus_route
    from fastapi import FastAPI

    started = []
    app = FastAPI()

    async def bot(runner_args):  # the example's bot would join the room from here
        started.append(runner_args)

    add_tavus_route(app, bot, name="route run")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runner") as client:
        response = await client.get("/tavus")
        await asyncio.sleep(0)  # the bot session is a task
    assert response.status_code == 307
    (record,) = tavus_rest.conversations.values()
    assert response.headers["location"] == record["conversation_url"]
    assert record["conversation_name"] == "route run"
    (runner_args,) = started
    assert runner_args.body == {
        "conversation_id": record["conversation_id"],
        "conversation_url": record["conversation_url"],
    }

    tavus_rest.fail_next(400, body={"message": "unknown pal"})
    async with httpx.AsyncClient(transport=transport, base_url="http://runner") as client:
        response = await client.get("/tavus")
    assert response.status_code == 502 and "unknown pal" in response.json()["detail"]
    assert KEY not in response.text


# --- the README's snippets and env.example ------------------------------------------------

ROOT = EXAMPLES.parent


def readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def test_the_readme_has_python_snippets():
    assert len(readme_snippets()) >= 3


@pytest.mark.parametrize("index", range(len(readme_snippets())))
def test_each_readme_snippet_is_self_contained_and_runs_offline(index):
    # Each snippet runs on its own, in a fresh interpreter with no keys: no name it uses is
    # left undefined, and nothing it does at module level needs a network (a snippet that
    # goes live does so under `if __name__ == "__main__"`, which is not run here).
    snippet = readme_snippets()[index]
    compile(snippet, f"README snippet {index}", "exec")
    code = f"exec(compile({snippet!r}, 'README snippet', 'exec'), {{'__name__': 'snippet'}})"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S,
    )
    assert proc.returncode == 0, proc.stderr


def test_env_example_lists_every_variable_an_example_reads():
    read: set[str] = set()
    for path in EXAMPLES.glob("*.py"):
        source = path.read_text()
        read |= set(
            re.findall(
                r"""(?:environ(?:\.get)?\(|environ\[|env\.get\(|env\[)["']([A-Z_]+)["']""", source
            )
        )
    assert {"TAVUS_API_KEY", "TAVUS_PAL_ID", "OPENAI_API_KEY"} <= read  # the scan works
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / "env.example").read_text(), re.MULTILINE))
    assert read - listed == set()
