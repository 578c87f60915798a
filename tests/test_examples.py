"""Smoke tests for ``examples/``: each runs offline to completion, as a user would run it.

Every example runs in its own subprocess, with the Tavus, OpenAI and Cartesia keys removed
from the environment (so nothing can go live or touch the network), bounded in time, and the
four offline runs start together so the module takes as long as the slowest one. The live
paths are checked as far as they go without a network: the settings check (exit status 2 with
what to set) and the wiring of the live pipelines, built against a made-up room URL without
joining it.
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
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


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
    procs = {name: start(name, *args) for name, args in OFFLINE.items()}
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
    "script, env, missing",
    [
        ("live_full", {}, "TAVUS_API_KEY, TAVUS_PAL_ID"),
        ("quickstart", {"TAVUS_API_KEY": "tk-test"}, "TAVUS_PAL_ID"),
        ("echo_text_flows", {"TAVUS_API_KEY": "tk-test"}, "TAVUS_PAL_ID, OPENAI_API_KEY"),
        ("echo_audio", {"TAVUS_API_KEY": "tk", "TAVUS_PAL_ID": "p1"}, "OPENAI_API_KEY"),
    ],
)
def test_live_runs_say_what_to_set_and_exit_2(script, env, missing):
    run = finish(start(script, env=offline_env(**env)), time.monotonic())
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
