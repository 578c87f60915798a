"""The tool-call bridge: handlers, deadlines, delivery policies, stale results."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from pipecat.frames.frames import OutputTransportMessageUrgentFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.daily.transport import DailyInputTransportMessageFrame

from pipecat_tavus_interactions import (
    LocalProtocolError,
    TavusFunctionCallParams,
    TavusInteractions,
    TavusInteractionsParams,
)

REPLICA = "11111111-1111-4111-8111-111111111111"
CID = "c-tools"


class Wire:
    """Builds replica messages with increasing seq."""

    def __init__(self):
        self.seq = 0

    def __call__(self, event_type: str, props: dict | None = None, **env: Any):
        self.seq += 1
        msg = {
            "message_type": "system" if event_type.startswith("system.") else "conversation",
            "event_type": event_type,
            "conversation_id": CID,
            "seq": self.seq,
            **env,
        }
        if props is not None:
            msg["properties"] = props
        return DailyInputTransportMessageFrame(message=msg, participant_id=REPLICA)

    def joined(self):
        return self("system.replica_joined", {"replica_id": "r1"})

    def call(self, name, args: Any = "{}", call_id: str | None = "t1", turn_idx=1):
        props = {"name": name, "arguments": args}
        if call_id is not None:
            props["tool_call_id"] = call_id
        return self("conversation.tool_call", props, turn_idx=turn_idx)

    def user(self, text, turn_idx):
        return self("conversation.utterance", {"role": "user", "speech": text}, turn_idx=turn_idx)


def make(**params) -> tuple[TavusInteractions, list[tuple[float, dict]]]:
    p = {"conversation_id": CID, "replica_participant_id": REPLICA, "heartbeat_timeout_s": None}
    p.update(params)
    tavus = TavusInteractions(params=TavusInteractionsParams(**p))
    sent: list[tuple[float, dict]] = []
    tavus.add_event_handler(
        "on_interaction_sent", lambda _t, message: sent.append((time.monotonic(), message))
    )
    return tavus, sent


async def run(tavus: TavusInteractions, frames: list) -> list[dict]:
    down, _ = await run_test(Pipeline([tavus.input(), tavus.output()]), frames_to_send=frames)
    return [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]


def wire_types(messages: list[dict]) -> list[str]:
    return [m["event_type"] for m in messages]


async def test_a_handler_written_for_a_pipecat_llm_works_unchanged():
    tavus, _ = make()
    seen: list[FunctionCallParams] = []

    # Exactly what one writes for `llm.register_function("get_weather", get_weather)`.
    async def get_weather(params: FunctionCallParams):
        seen.append(params)
        await params.result_callback({"conditions": "sunny", "temp_c": 21})

    tavus.register_function("get_weather", get_weather)
    w = Wire()
    out = await run(
        tavus, [w.joined(), w.call("get_weather", '{"city": "Paris"}'), SleepFrame(0.1)]
    )
    assert isinstance(seen[0], FunctionCallParams) and isinstance(seen[0], TavusFunctionCallParams)
    assert (seen[0].function_name, seen[0].tool_call_id, dict(seen[0].arguments)) == (
        "get_weather",
        "t1",
        {"city": "Paris"},
    )
    assert seen[0].turn_idx == 1 and seen[0].event.name == "get_weather"
    assert out == [
        {
            "message_type": "conversation",
            "event_type": "conversation.tool_result",
            "conversation_id": CID,
            "properties": {
                "tool_call_id": "t1",
                "output": json.dumps({"conditions": "sunny", "temp_c": 21}),
                "status": "success",
            },
        }
    ]


async def _ok(params):
    await params.result_callback("21 C and sunny")


RESULT = {"tool_call_id": "t1", "output": "21 C and sunny", "status": "success"}
APPEND = ("conversation.append_llm_context", {"context": "Result of tool w: 21 C and sunny"})
RESPOND = ("conversation.respond", {"text": "The w lookup finished; please tell me what it found."})
ECHO = {"modality": "text", "text": "21 C and sunny", "done": True}


@pytest.mark.parametrize(
    ("policy", "call_id", "expected"),
    [
        ("auto", "t1", [("conversation.tool_result", RESULT)]),
        ("auto", None, [APPEND, RESPOND]),
        ("tool_result", "t1", [("conversation.tool_result", RESULT)]),
        ("append", "t1", [APPEND]),
        ("append_and_respond", "t1", [APPEND, RESPOND]),
        ("echo", "t1", [("conversation.echo", ECHO)]),
        ("respond", "t1", [("conversation.respond", {"text": "w returned: 21 C and sunny"})]),
        ("none", "t1", []),
    ],
)
async def test_each_delivery_policy_sends_the_exact_wire_messages(policy, call_id, expected):
    tavus, _ = make(tool_result_delivery=policy)
    tavus.register_function("w", _ok)
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("w", call_id=call_id), SleepFrame(0.1)])
    assert [(m["event_type"], m["properties"]) for m in out] == expected
    call = tavus.ledger.get(1).tool_calls[0]
    assert call.status == "success" and call.delivery == (
        "tool_result"
        if policy == "auto" and call_id
        else ("append_and_respond" if policy == "auto" else policy)
    )


async def test_a_raising_handler_gives_an_error_result_and_the_next_call_works():
    tavus, sent = make()

    async def broken(params):
        raise RuntimeError("database down")

    tavus.register_function("broken", broken)
    tavus.register_function("w", _ok)
    w = Wire()
    out = await run(
        tavus,
        [
            w.joined(),
            w.call("broken", call_id="t1"),
            SleepFrame(0.1),
            w.call("w", call_id="t2", turn_idx=2),
            SleepFrame(0.1),
        ],
    )
    assert [m["properties"]["status"] for m in out] == ["error", "success"]
    # The replica hears a generic error; the exception stays in the ledger (and the log).
    assert out[0]["properties"]["output"] == "the tool failed"
    record = tavus.ledger.get(1).tool_calls[0]
    assert record.status == "error" and record.error == "RuntimeError: database down"


async def test_exception_text_reaches_the_replica_only_when_the_app_opts_in():
    tavus, _ = make(tool_errors_verbatim=True)

    async def broken(params):
        raise RuntimeError("database down")

    tavus.register_function("broken", broken)
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("broken"), SleepFrame(0.1)])
    assert out[0]["properties"]["output"] == "RuntimeError: database down"


async def test_a_handler_past_its_deadline_gives_an_error_within_the_deadline_plus_50ms():
    tavus, sent = make()

    async def slow(params):
        await asyncio.sleep(10)
        await params.result_callback("too late")

    tavus.register_function("slow", slow, timeout_s=0.2)
    tavus.register_function("w", _ok)
    w = Wire()
    out = await run(
        tavus,
        [
            w.joined(),
            w.call("slow", call_id="t1"),
            SleepFrame(0.4),
            w.call("w", call_id="t2", turn_idx=2),
            SleepFrame(0.1),
        ],
    )
    assert [(m["properties"]["tool_call_id"], m["properties"]["status"]) for m in out] == [
        ("t1", "error"),
        ("t2", "success"),
    ]
    assert "timed out" in out[0]["properties"]["output"]
    record = tavus.ledger.get(1).tool_calls[0]
    assert record.status == "timeout"
    first_sent_at = sent[0][0]
    assert first_sent_at - record.started_at <= 0.2 + 0.05


async def test_two_parallel_calls_in_one_turn_both_complete_and_are_recorded():
    tavus, _ = make()
    running = 0
    peak = 0

    async def lookup(params):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        await params.result_callback(params.arguments["q"])

    tavus.register_function("lookup", lookup)
    w = Wire()
    out = await run(
        tavus,
        [
            w.joined(),
            w.call("lookup", '{"q": "a"}', "t1"),
            w.call("lookup", '{"q": "b"}', "t2"),
            SleepFrame(0.2),
        ],
    )
    assert peak == 2  # they ran concurrently
    assert sorted((m["properties"]["tool_call_id"], m["properties"]["output"]) for m in out) == [
        ("t1", "a"),
        ("t2", "b"),
    ]
    calls = tavus.ledger.get(1).tool_calls
    assert sorted((c.tool_call_id, c.status) for c in calls) == [
        ("t1", "success"),
        ("t2", "success"),
    ]
    assert all(c.duration_s is not None and c.duration_s >= 0.04 for c in calls)


async def test_a_result_after_a_new_user_turn_is_appended_not_spoken():
    tavus, _ = make()

    async def slow(params):
        await asyncio.sleep(0.15)
        await params.result_callback("the old answer")

    tavus.register_function("slow", slow)
    w = Wire()
    out = await run(
        tavus,
        [
            w.joined(),
            w.user("check my order", 1),
            w.call("slow", turn_idx=1),
            SleepFrame(0.02),
            w.user("never mind, new topic", 2),
            SleepFrame(0.3),
        ],
    )
    assert wire_types(out) == ["conversation.append_llm_context"]
    assert out[0]["properties"]["context"] == "Result of tool slow: the old answer"
    assert tavus.ledger.get(1).tool_calls[0].delivery == "stale_append"


async def test_invalid_argument_json_gives_an_error_result_without_running_the_handler():
    tavus, _ = make()
    ran = []
    tavus.register_function("w", lambda params: ran.append(params))
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("w", '{"city": "Par'), SleepFrame(0.1)])
    assert ran == []
    assert out[0]["properties"]["status"] == "error"
    assert "invalid arguments" in out[0]["properties"]["output"]


async def test_catch_all_handler_and_arguments_in_every_wire_shape():
    tavus, _ = make(tool_result_delivery="none")
    seen = []

    async def any_tool(params):
        seen.append((params.function_name, dict(params.arguments)))
        await params.result_callback(None)

    tavus.register_function(None, any_tool)
    w = Wire()
    nested = w(
        "conversation.tool_call",
        {"function": {"name": "n", "arguments": '{"x": 3}'}, "tool_call_id": "t3"},
        turn_idx=1,
    )
    await run(
        tavus,
        [
            w.joined(),
            w.call("s", '{"x": 1}', "t1"),
            w.call("o", {"x": 2}, "t2"),
            nested,
            SleepFrame(0.1),
        ],
    )
    assert sorted(seen) == [("n", {"x": 3}), ("o", {"x": 2}), ("s", {"x": 1})]


async def test_a_call_with_no_handler_gets_an_error_result():
    tavus, _ = make()
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("unknown_tool"), SleepFrame(0.1)])
    assert out[0]["properties"]["status"] == "error"
    assert "no handler" in out[0]["properties"]["output"]


async def test_perception_calls_go_to_perception_handlers_with_modality_and_frames():
    tavus, _ = make()
    seen = []

    async def id_shown(params):
        seen.append((params.modality, [f.data for f in params.frames], dict(params.arguments)))
        await params.result_callback("noted")

    tavus.register_perception_function("notify_if_id_shown", id_shown)
    tavus.register_function("notify_if_id_shown", lambda p: pytest.fail("wrong registry"))
    w = Wire()
    msg = w(
        "conversation.perception_tool_call",
        {"name": "notify_if_id_shown", "modality": "vision", "arguments": {"id_type": "passport"},
         "frames": [{"data": "AAAA", "mime_type": "image/jpeg"}], "tool_call_id": "p1"},
        turn_idx=1,
    )  # fmt: skip
    out = await run(tavus, [w.joined(), msg, SleepFrame(0.1)])
    assert seen == [("vision", ["AAAA"], {"id_type": "passport"})]
    assert out[0]["properties"] == {"tool_call_id": "p1", "output": "noted", "status": "success"}


async def test_an_oversized_result_is_appended_in_pieces_with_a_short_tool_result():
    tavus, _ = make(max_message_bytes=1024)
    big = "word " * 600

    async def dump(params):
        await params.result_callback(big)

    tavus.register_function("dump", dump)
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("dump"), SleepFrame(0.1)])
    types_ = wire_types(out)
    assert types_[-1] == "conversation.tool_result" and set(types_[:-1]) == {
        "conversation.append_llm_context"
    }
    assert len(types_) >= 4
    assert all(len(json.dumps(m, separators=(",", ":")).encode()) <= 1024 for m in out)
    appended = "".join(m["properties"]["context"] for m in out[:-1])
    assert appended == f"Result of tool dump: {big}"


async def test_a_handler_may_return_its_result_instead_of_calling_back():
    tavus, _ = make()
    tavus.register_function("w", lambda params: {"v": 1})
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("w"), SleepFrame(0.1)])
    assert out[0]["properties"]["output"] == '{"v": 1}'


async def test_a_repeated_delivery_of_one_call_runs_the_handler_once():
    tavus, _ = make(tool_result_delivery="none")
    ran = []
    tavus.register_function("w", lambda params: ran.append(1))
    w = Wire()
    await run(
        tavus, [w.joined(), w.call("w", call_id="t1"), w.call("w", call_id="t1"), SleepFrame(0.1)]
    )
    assert ran == [1]
    stats = tavus.input().orderer.stats
    dropped = stats["duplicate_twin"] + stats["duplicate_seq"] + tavus.stats["tool_call_repeats"]
    assert dropped == 1


def test_registering_misuse_raises_local_protocol_error():
    tavus, _ = make()
    with pytest.raises(LocalProtocolError, match="callable"):
        tavus.register_function("w", "not a function")
    with pytest.raises(LocalProtocolError, match="positive"):
        tavus.register_function("w", _ok, timeout_s=0)


async def test_a_long_result_delivered_as_echo_is_one_utterance_done_only_at_the_end():
    # Before the conversation core, the tool path split long echoes itself and sent every
    # piece as its own utterance (three separate done: true).
    tavus, _ = make(tool_result_delivery="echo", max_message_bytes=1024)
    story = "and then the weather changed again " * 60

    async def tell(params):
        await params.result_callback(story)

    tavus.register_function("tell", tell)
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("tell"), SleepFrame(0.1)])
    assert set(wire_types(out)) == {"conversation.echo"} and len(out) >= 3
    props = [m["properties"] for m in out]
    assert len({p["inference_id"] for p in props}) == 1
    assert [p["done"] for p in props] == [False] * (len(props) - 1) + [True]
    assert "".join(p["text"] + " " for p in props).split() == story.split()
    assert all(len(json.dumps(m, separators=(",", ":")).encode()) <= 1024 for m in out)


async def test_handlers_get_the_worker_and_its_runner_like_pipecat_handlers():
    from pipecat.pipeline.runner import WorkerRunner
    from pipecat.pipeline.worker import PipelineWorker

    tavus, _ = make()
    seen: list[FunctionCallParams] = []

    async def probe(params):
        seen.append(params)
        await params.result_callback("ok")

    tavus.register_function("probe", probe)
    w = Wire()

    worker = PipelineWorker(
        Pipeline([tavus.input(), tavus.output()]), enable_rtvi=False, idle_timeout_secs=None
    )
    await worker.queue_frames([w.joined(), w.call("probe")])
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run_task = asyncio.create_task(runner.run())
    for _ in range(200):
        if tavus.ledger.get(1) and tavus.ledger.get(1).tool_calls[0].status != "pending":
            break
        await asyncio.sleep(0.01)
    await worker.cancel()
    await asyncio.wait_for(run_task, 10)
    (params,) = seen
    assert params.pipeline_worker is worker
    assert params.worker_runner is runner


async def test_a_handler_that_raises_cancelled_error_itself_gets_one_error_result():
    tavus, _ = make()

    async def gives_up(params):
        raise asyncio.CancelledError("the handler gave up by itself")

    tavus.register_function("gives_up", gives_up)
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("gives_up"), SleepFrame(0.1)])
    assert [(m["event_type"], m["properties"]["status"]) for m in out] == [
        ("conversation.tool_result", "error")
    ]
    assert tavus.ledger.get(1).tool_calls[0].status == "error"


async def test_a_result_that_is_not_json_still_answers_the_call_once():
    tavus, _ = make()

    async def odd(params):
        await params.result_callback({"tags": {"a", "b"}})

    tavus.register_function("odd", odd)
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("odd"), SleepFrame(0.1)])
    assert [m["properties"] for m in out] == [
        {
            "tool_call_id": "t1",
            "output": "the tool's result could not be sent",
            "status": "error",
        }
    ]
    assert tavus.ledger.get(1).tool_calls[0].status == "error"


async def test_a_pipecat_registration_line_works_unchanged():
    tavus, _ = make()

    async def slow(params):
        await asyncio.sleep(5)

    tavus.register_function("slow", slow, timeout_secs=0.1, cancel_on_interruption=False)
    w = Wire()
    t0 = time.monotonic()
    out = await run(tavus, [w.joined(), w.call("slow"), SleepFrame(0.3)])
    assert [m["properties"]["status"] for m in out] == ["error"]
    assert tavus.ledger.get(1).tool_calls[0].status == "timeout"
    assert time.monotonic() - t0 < 2
    with pytest.raises(LocalProtocolError, match="disagree"):
        tavus.register_function("x", slow, timeout_s=1, timeout_secs=2)


def test_old_style_handlers_are_refused_at_registration():
    tavus, _ = make()

    async def old(function_name, tool_call_id, args, llm, context, result_callback):
        await result_callback("never")

    with pytest.raises(LocalProtocolError, match="must take one argument"):
        tavus.register_function("old", old)
    with pytest.raises(LocalProtocolError, match="must take one argument"):
        tavus.register_function("none", lambda: None)
    tavus.register_function("fine", lambda params, extra=1: None)  # extra defaults are fine


@pytest.mark.parametrize("returns", ["nothing", "params"])
async def test_a_handler_that_forgets_result_callback_gets_an_error_not_a_success(returns):
    tavus, _ = make()

    async def forgetful(params):
        return params if returns == "params" else None

    tavus.register_function("forgetful", forgetful)
    w = Wire()
    out = await run(tavus, [w.joined(), w.call("forgetful"), SleepFrame(0.1)])
    assert [(m["properties"]["status"], m["properties"]["output"]) for m in out] == [
        ("error", "the tool failed")
    ]
    assert "result_callback" in tavus.ledger.get(1).tool_calls[0].error


async def test_calls_over_the_cap_get_an_error_at_once_and_the_rest_run():
    tavus, _ = make(max_concurrent_tools=2)
    release = asyncio.Event()

    async def waits(params):
        await release.wait()
        await params.result_callback("done")

    tavus.register_function("waits", waits)
    w = Wire()
    frames = [w.joined(), *(w.call("waits", call_id=f"t{k}") for k in range(4)), SleepFrame(0.1)]

    async def let_go():
        await asyncio.sleep(0.05)
        release.set()

    go = asyncio.create_task(let_go())
    out = await run(tavus, frames)
    await go
    by_id = {m["properties"]["tool_call_id"]: m["properties"] for m in out}
    assert [by_id[f"t{k}"]["status"] for k in range(4)] == ["success", "success", "error", "error"]
    assert by_id["t2"]["output"] == "the tool is busy; try again"


async def test_a_handler_that_swallows_one_cancellation_does_not_outlive_the_pipeline():
    tavus, _ = make()
    state = {"stopped": False}

    async def stubborn(params):
        await params.result_callback("early")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # swallowed once
        try:
            await asyncio.sleep(30)
        finally:
            state["stopped"] = True

    tavus.register_function("stubborn", stubborn)
    w = Wire()
    await run(tavus, [w.joined(), w.call("stubborn"), SleepFrame(0.1)])
    assert state["stopped"]
