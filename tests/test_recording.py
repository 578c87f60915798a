"""Flight recorder, replay --check, simulator playback and the turn timeline."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from recordings import (
    RECORDINGS,
    REPLICA,
    play_into_quickstart,
    record_quickstart,
)

from pipecat_tavus_interactions import interactions as ix
from pipecat_tavus_interactions.core.recording import (
    MASK,
    message_from_record,
    parse,
    redact_line,
)
from pipecat_tavus_interactions.core.replay import Replayer
from pipecat_tavus_interactions.core.tools import ToolCalls
from pipecat_tavus_interactions.exceptions import LocalProtocolError, UsageError
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.pipeline import recorder as recorder_module
from pipecat_tavus_interactions.pipeline.recorder import RecordingConnection, RecordWriter
from pipecat_tavus_interactions.replay import check, load, main
from pipecat_tavus_interactions.timeline import build_timeline, render_text
from pipecat_tavus_interactions.timeline_html import render_html

COMMITTED = sorted(RECORDINGS.glob("*.jsonl"))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _ledger(path: Path) -> list[dict]:
    replayer = Replayer(load(path))
    replayer.run(check=False)
    return [t.summary() for t in replayer.connection.ledger.turns]


# --- recording a live pipeline and checking it -------------------------------------------


async def test_a_recorded_simulator_conversation_replays_with_check(tmp_path, capsys):
    path = tmp_path / "rec.jsonl"
    turns = await record_quickstart(path)
    lines = _lines(path)
    kinds = {r["k"] for r in lines}
    assert kinds == {"header", "in", "call", "out", "end"}
    assert lines[-1]["dropped"] == 0
    calls = {r["name"] for r in lines if r["k"] == "call"}
    # the local causes of outbound messages are recorded as markers
    assert {"tool_finished", "interrupt", "participant_joined", "start", "tick"} <= calls
    outs = [r["msg"]["event_type"] for r in lines if r["k"] == "out"]
    assert outs == ["conversation.tool_result", "conversation.tool_result"]
    assert main([str(path), "--check"]) == 0
    assert "same effects and messages as recorded" in capsys.readouterr().out
    # the replayed ledger is the live one
    assert _ledger(path) == [t.summary() for t in turns]


async def test_changing_one_outbound_behaviour_fails_check_and_names_the_message(
    tmp_path, capsys, monkeypatch
):
    path = tmp_path / "rec.jsonl"
    await record_quickstart(path)
    original = ToolCalls.plan_delivery

    def append_instead(self, call, *, failed, output, fits):
        delivery, items = original(self, call, failed=failed, output=output, fits=fits)
        if delivery == "tool_result":  # a regression: results appended, not returned
            return "append", [ix.AppendLLMContext(f"Result of tool {call.name}: {output}")]
        return delivery, items

    monkeypatch.setattr(ToolCalls, "plan_delivery", append_instead)
    assert main([str(path), "--check"]) == 1
    out = capsys.readouterr().out
    first_tool = next(i for i, r in enumerate(_lines(path), 1) if r.get("name") == "tool_finished")
    assert f"line {first_tool}: tool_finished" in out
    assert "message 1 (event_type conversation.tool_result)" in out
    assert '"event_type": "conversation.append_llm_context"' in out


async def test_playing_a_recording_into_the_quickstart_bot_reproduces_its_ledger(tmp_path):
    path = tmp_path / "rec.jsonl"
    recorded = await record_quickstart(path)
    played, player = await play_into_quickstart(path, speed=1.0)
    assert player.done.is_set() and player.missing == []
    assert [t.summary() for t in played] == [t.summary() for t in recorded]
    assert [t.summary() for t in played] == _ledger(path)
    sent = [m["event_type"] for m in player.received]
    assert sent == ["conversation.tool_result", "conversation.tool_result"]


# --- the committed recordings ------------------------------------------------------------


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_committed_recordings_replay_with_check(path):
    code, report = check(load(path))
    assert code == 0, report


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_the_core_never_changes_a_received_message(path):
    # The recorder keeps a reference to each received message and encodes it later, on its
    # thread: that is only right if nothing changes the message after it was received.
    # These recordings hold every malformed case, chaos and a whole conversation.
    recording = load(path)
    before = copy.deepcopy([step.record for step in recording.steps])
    Replayer(recording).run(check=False)
    assert [step.record for step in recording.steps] == before


def test_malformed_messages_mixed_in_are_dropped_and_reported_one_by_one():
    mixed = load(RECORDINGS / "malformed_mixed.jsonl")
    fixture = json.loads((RECORDINGS.parent / "malformed/cases.json").read_text())
    receives = [s for s in mixed.steps if s.name == "receive"]
    lenient = receives[-len(fixture["lenient"]) :]
    before = {id(s) for s in lenient}

    def errors(steps):
        return [f[1] for s in steps for f in s.record["fx"] if f[0] == "protocol_error"]

    # each case that cannot be parsed is dropped and reported once, with its reason
    early = errors([s for s in receives if id(s) not in before])
    assert sorted(early) == sorted(c["reason"] for c in fixture["cases"])
    # a lenient case is an event with a bad field: the field is dropped and reported (the
    # event is then accepted, or dropped as a repeat of the one before)
    with_bad_field = [c for c in fixture["lenient"] if c["dropped"]]
    assert errors(lenient).count("bad_field") == len(with_bad_field)
    assert all(s.record["fx"] for s in lenient)
    # the garbage between the docs conversation's messages changed none of its turns
    mixed_turns = _ledger(RECORDINGS / "malformed_mixed.jsonl")
    docs_turns = _ledger(RECORDINGS / "docs_conversation.jsonl")
    assert mixed_turns[:2] == docs_turns[:2]
    assert mixed_turns[2]["user_text"].startswith(docs_turns[2]["user_text"])


def test_the_chaos_recording_holds_the_faults_it_survived():
    fx = [f for s in load(RECORDINGS / "chaos_quickstart.jsonl").steps for f in s.record["fx"]]
    reasons = {f[1] for f in fx if f[0] == "protocol_error"}
    assert {"foreign_sender", "bad_json"} <= reasons
    turns = _ledger(RECORDINGS / "chaos_quickstart.jsonl")
    assert [t["user_text"] for t in turns][1:] == [
        "What's the weather in Paris today?",
        "Tell me about the history of forecasting.",
        "Sorry to cut in, what's the weather in London?",
        "Thanks, that's all.",
    ]


# --- every kind of call replays ----------------------------------------------------------


def _echo_session(path: Path) -> None:
    writer = RecordWriter(path)
    params = TavusInteractionsParams(mode="echo_audio", replica_participant_id=REPLICA)
    conn = RecordingConnection(params, now=0.0, sink=writer.put)
    conn.set_conversation_id("c-echo")
    conn.start(now=0.0)
    conn.receive(
        {"message_type": "system", "event_type": "system.replica_joined", "seq": 1},
        sender_id=REPLICA,
        now=0.1,
    )
    conn.send(ix.Respond("Hello there"), now=0.2)
    conn.send_reported(ix.Echo(audio=b"\x01\x00" * 400, sample_rate=24000), now=0.3)
    conn.echo_audio(b"\x02\x00" * 4800, context_id="ctx-1", now=0.4)
    conn.echo_audio_close(now=0.5, tail=b"\x03\x00" * 10, context_id="ctx-1")
    conn.echo_text_start(now=0.6)
    conn.echo_text_add("One sentence. And a second", now=0.7)
    conn.echo_text_end(now=0.8)
    conn.interrupt(now=0.9, force=True)
    with pytest.raises(LocalProtocolError):
        conn.send("not an interaction", now=1.0)  # type: ignore[arg-type]
    conn.tick(now=5.0)
    conn.finish_output(now=5.1)
    conn.cancel()
    writer.close(conn.stats)


def test_app_sends_echo_audio_and_text_interrupts_and_errors_replay(tmp_path):
    path = tmp_path / "echo.jsonl"
    _echo_session(path)
    recording = load(path)
    names = [s.name for s in recording.steps]
    assert names[:3] == ["set_conversation_id", "start", "receive"]
    assert recording.steps[names.index("send")].record.get("error", "") == ""
    assert any("LocalProtocolError" in s.record.get("error", "") for s in recording.steps)
    outs = [o["msg"]["event_type"] for s in recording.steps for o in s.outs]
    assert outs.count("conversation.echo") >= 4 and "conversation.interrupt" in outs
    code, report = check(recording)
    assert code == 0, report


def test_ids_the_core_makes_up_must_pair_one_to_one(tmp_path):
    path = tmp_path / "echo.jsonl"
    _echo_session(path)
    lines = path.read_text().splitlines()
    # the recorded text echo reuses the audio echo's made-up id: no longer one to one
    outs = [json.loads(x)["msg"] for x in lines if x.startswith('{"k":"out"')]
    ids = [m.get("properties", {}).get("inference_id") for m in outs]
    audio_id, text_id = sorted(set(filter(None, ids)), key=ids.index)
    path.write_text("\n".join(lines).replace(text_id, audio_id))
    code, report = check(load(path))
    assert code == 1
    assert "echo_text_add" in report and "message 1 (event_type conversation.echo)" in report
    assert "properties.inference_id" in report


# --- the writer --------------------------------------------------------------------------


def started_recording(path) -> tuple[RecordWriter, RecordingConnection]:
    """A started recording core writing to ``path`` (the key is read from the environment)."""
    writer = RecordWriter(path)
    params = TavusInteractionsParams(conversation_id="c1", replica_participant_id=REPLICA)
    conn = RecordingConnection(params, now=0.0, sink=writer.put)
    conn.start(now=0.0)
    return writer, conn


def test_secrets_never_reach_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVUS_API_KEY", "tvs-secret-0123456789")
    path = tmp_path / "rec.jsonl"
    writer, conn = started_recording(path)
    joined = {"message_type": "system", "event_type": "system.replica_joined"}
    conn.receive(joined, sender_id=REPLICA, now=0.05)
    message = {
        "message_type": "conversation",
        "event_type": "conversation.custom",
        "properties": {
            "meeting_token": "eyJhbGciOi.meeting",
            "url": "https://tavus.daily.co/room?t=eyJroomtoken&x=1",
            "note": "key tvs-secret-0123456789 pasted",
        },
    }
    conn.receive(message, sender_id=REPLICA, now=0.1)
    conn.send(ix.AppendLLMContext("the key is tvs-secret-0123456789"), now=0.2)
    writer.close()
    text = path.read_text()
    for secret in ("tvs-secret-0123456789", "eyJhbGciOi.meeting", "eyJroomtoken"):
        assert secret not in text
    assert text.count(MASK) == 5  # token, URL token, note, the call's text, the sent message
    assert "x=1" in text


def test_secrets_nested_in_fields_text_and_raw_messages_never_reach_the_file(tmp_path, monkeypatch):
    key = "tvs-secret-0123456789abcdef"
    monkeypatch.setenv("TAVUS_API_KEY", key)
    path = tmp_path / "rec.jsonl"
    writer, conn = started_recording(path)
    base = {"message_type": "conversation", "event_type": "conversation.custom"}
    embedded = json.dumps({"Access_Token": 'tok-"quoted"-1', "keep": "visible-1"})
    nested = {
        "items": [{"deep": {"API_KEY": "nested-secret-1"}}, {"password": "nested-secret-2"}],
        "payload": embedded,  # JSON text held by a string field
        "echoed": "the server said TVS-SECRET-01234 (cut)",  # an 8+ prefix, other case
    }
    conn.receive({**base, "properties": nested}, sender_id=REPLICA, now=0.1)
    text_message = json.dumps(
        {**base, "properties": {"token": "text-secret-3", "room": "https://x/r?t=text-secret-4"}}
    )
    conn.receive(text_message, sender_id=REPLICA, now=0.2)  # a str message, as it travelled
    raw = json.dumps({**base, "properties": {"note": f"key {key}"}}).encode()
    conn.receive(raw, sender_id=REPLICA, now=0.3)  # bytes: base64 in the file
    writer.close()
    data = path.read_bytes()
    recording = load(path)
    texts = [data.decode()] + [json.dumps(s.record) for s in recording.steps]
    texts += [base64.b64decode(s.record["msg_b64"]).decode() for s in recording.steps
              if "msg_b64" in s.record]  # fmt: skip
    secrets = ("nested-secret-1", "nested-secret-2", "quoted", "text-secret-3", "text-secret-4")
    for secret in (*secrets, "TVS-SECRET-01234", key, key[:8]):
        assert not any(secret in t for t in texts), secret
    received = [message_from_record(s.record) for s in recording.steps if s.name == "receive"]
    assert json.loads(received[0]["properties"]["payload"]) == {
        "Access_Token": MASK,
        "keep": "visible-1",
    }
    assert received[0]["properties"]["echoed"] == f"the server said {MASK} (cut)"
    assert json.loads(received[1])["properties"] == {"token": MASK, "room": f"https://x/r?t={MASK}"}
    assert json.loads(received[2])["properties"] == {"note": f"key {MASK}"}


def test_a_recording_is_utf8_with_one_record_per_line_whatever_the_text(tmp_path):
    path = tmp_path / "rec.jsonl"
    writer = RecordWriter(path)
    params = TavusInteractionsParams(conversation_id="c1", replica_participant_id=REPLICA)
    conn = RecordingConnection(params, now=0.0, sink=writer.put)
    speech = "line\u2028para\u2029nel\x85 caf\u00e9 \U0001f600 \ud800 end"  # a lone surrogate too
    message = {
        "message_type": "conversation",
        "event_type": "conversation.utterance",
        "conversation_id": "c1",
        "turn_idx": 0,
        "properties": {"role": "replica", "speech": speech},
    }
    conn.receive(message, sender_id=REPLICA, now=0.1)
    conn.receive({**message, "properties": {"role": "user", "speech": "caf\u00e9"}},
                 sender_id=REPLICA, now=0.2)  # fmt: skip
    writer.close()
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 4  # header, two messages, end
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["msg"]["properties"]["speech"] for r in records if r["k"] == "in"] == [
        speech,
        "caf\u00e9",
    ]
    assert check(load(path))[0] == 0


def test_redact_line_masks_named_keys_whatever_their_case():
    line = '{"Authorization":"Bearer abc","API_KEY":"k","max_tokens":12,"tokens":"keep"}'
    assert redact_line(line) == (
        f'{{"Authorization":"{MASK}","API_KEY":"{MASK}","max_tokens":12,"tokens":"keep"}}'
    )


def test_redact_line_masks_json_text_held_by_a_string_even_cut_short():
    inner = '{"Token": "ab\\"c\\\\d", "keep": "k", "api_key": "cut-short-secret'
    line = json.dumps({"msg_text": inner, "after": 1}, separators=(",", ":"))
    out = json.loads(redact_line(line))
    assert out == {"msg_text": f'{{"Token": "{MASK}", "keep": "k", "api_key": "{MASK}', "after": 1}


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path, monkeypatch):
    entered, gate = threading.Event(), threading.Event()
    real = recorder_module.record_bytes

    def slow(record):
        entered.set()
        assert gate.wait(10)
        return real(record)

    monkeypatch.setattr(recorder_module, "record_bytes", slow)
    writer = RecordWriter(tmp_path / "rec.jsonl", max_queue=3)
    writer.put({"k": "call", "n": 0})
    assert entered.wait(10)  # the thread holds record 0; the queue is empty
    for n in range(1, 6):
        writer.put({"k": "call", "n": n})  # 1-3 fit, 4 and 5 are dropped
    assert writer.dropped == 2
    gate.set()
    writer.close()
    lines = _lines(tmp_path / "rec.jsonl")
    assert [r.get("n") for r in lines[:-1]] == [0, 1, 2, 3]
    assert lines[-1] == {**lines[-1], "k": "end", "dropped": 2}


def test_written_lines_survive_a_crash(tmp_path):
    path = tmp_path / "rec.jsonl"
    code = f"""
import os, time
from pipecat_tavus_interactions.params import TavusInteractionsParams
from pipecat_tavus_interactions.pipeline.recorder import RecordingConnection, RecordWriter
writer = RecordWriter({str(path)!r})
params = TavusInteractionsParams(conversation_id="c1", replica_participant_id={REPLICA!r})
conn = RecordingConnection(params, now=0.0, sink=writer.put)
msg = {{"message_type": "system", "event_type": "system.replica_joined", "seq": 1}}
conn.receive(msg, sender_id={REPLICA!r}, now=0.5)
deadline = time.monotonic() + 30
while open({str(path)!r}).read().count("\\n") < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
os._exit(3)  # no close, no end line
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == 3
    recording = load(path)
    assert recording.end is None and [s.name for s in recording.steps] == ["receive"]
    assert check(recording)[0] == 0


def test_a_file_that_is_not_a_recording_is_refused(tmp_path, capsys):
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(UsageError):
        parse(path.read_text().splitlines())
    assert main([str(path)]) == 2
    assert "not a recording" in capsys.readouterr().err


# --- the timeline ------------------------------------------------------------------------


def test_the_text_timeline_shows_turns_tools_cuts_and_latency():
    text = render_text(build_timeline(load(RECORDINGS / "docs_conversation.jsonl")))
    assert text.splitlines()[0] == (
        "conversation c8d1e7f0a2b4 (full): 10.0 s, 3 turns, 1 tool call(s), "
        "1 interruption(s), 0 protocol error(s)"
    )
    assert "  user said: Book a demo for twelve seats, please." in text
    assert "delivered as tool_result: {'booked': True, 'seats': 12}" in text
    assert "  replica said: Our enterprise plan\n" in text
    assert "  cut before:   includes single sign-on and a dedicated account manager." in text
    assert "  latency: 1200 ms from user stop to replica start" in text


def test_the_html_timeline_is_self_contained(tmp_path):
    out = tmp_path / "t.html"
    assert main([str(RECORDINGS / "malformed_mixed.jsonl"), "--html", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.count("<tr>") == 1 + 3
    assert "<script" not in page and "http" not in page and "<link" not in page
    assert '<span class="cut">includes single sign-on' in page
    assert "bad_json: 6" in page


def test_html_escapes_what_was_said():
    timeline = build_timeline(load(RECORDINGS / "docs_conversation.jsonl"))
    timeline.rows[1].record.user_text = "<script>alert(1)</script>"
    page = render_html(timeline)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_every_call_that_changes_the_core_is_recorded_and_replayed():
    import inspect

    from pipecat_tavus_interactions.core.connection import TavusConnection
    from pipecat_tavus_interactions.core.replay import _calls

    # They change nothing a replay can see.
    queries = {"echo_in_flight", "echo_audio_interrupted", "next_deadline"}
    public = {
        name
        for name, member in vars(TavusConnection).items()
        if inspect.isfunction(member) and not name.startswith("_") and name not in queries
    }
    recorded = {n for n, m in vars(RecordingConnection).items() if inspect.isfunction(m)}
    replayed = set(_calls(TavusConnection(), {}, 0.0)) | {"receive"}
    assert public <= recorded
    assert public <= replayed


def test_an_absurd_turn_idx_makes_no_timeline_row(tmp_path):
    path = tmp_path / "rec.jsonl"
    writer = RecordWriter(path)
    params = TavusInteractionsParams(conversation_id="c1", replica_participant_id=REPLICA)
    conn = RecordingConnection(params, now=0.0, sink=writer.put)
    base = {"message_type": "conversation", "conversation_id": "c1"}
    messages = [
        {**base, "event_type": "conversation.user.started_speaking", "seq": 1, "turn_idx": 1},
        {**base, "event_type": "conversation.user.stopped_speaking", "seq": 2, "turn_idx": 2**63},
        {**base, "event_type": "conversation.utterance", "seq": 3, "turn_idx": 1,
         "properties": {"role": "user", "speech": "Hello"}},
    ]  # fmt: skip
    for i, message in enumerate(messages):
        conn.receive(message, sender_id=REPLICA, now=1.0 + i)
    conn.finish(now=5.0)
    writer.close(conn.stats)
    timeline = build_timeline(load(path))
    assert [row.turn_idx for row in timeline.rows] == [1]
    (span,) = timeline.rows[0].user
    assert (span.start, span.end) == (1.0, 2.0)


def test_every_effect_has_a_summary():
    import typing

    from pipecat_tavus_interactions.core import effects as fx
    from pipecat_tavus_interactions.core import recording

    assert set(typing.get_args(fx.Effect)) <= set(recording._SUMMARIES)
