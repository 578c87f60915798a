"""Echo audio: your LLM and your TTS voice a Tavus replica, which only renders the face.

In ``echo_audio`` mode Pipecat runs speech-to-text, the LLM (with its own tools) and the
text-to-speech; the TTS audio never reaches the transport as a track. It goes to the replica
as ``conversation.echo`` app messages, base64 PCM16 at 24 kHz, cut into chunks whose *encoded*
size stays under the message cap, one ``inference_id`` per utterance and ``done: true`` to
close it. A user barge-in sends ``conversation.interrupt`` and drops the rest.

The bot answers a weather question with the quickstart's very own ``get_weather`` handler (a
Pipecat tool handler runs unchanged here, now called by Pipecat's LLM), gives some packing
advice that the user cuts short, and says goodbye. For every utterance it prints how many
seconds of audio went out, in how many messages, and the largest message.

Offline (the default: no keys, no network) a scripted ``LLMService`` plays the model, a tone
generator plays the TTS (a few hundred ms per word) and the local simulator plays an
echo-mode replica that speaks for as long as the audio lasts::

    python examples/echo_audio.py            # about 7 seconds
    python examples/echo_audio.py --speed 1  # real time

Live, ``bot(runner_args)`` runs under Pipecat's runner: any runner option switches to it (see
the README, "Going live")::

    python examples/echo_audio.py -t daily   # then open http://localhost:7860/tavus

with an echo-mode PAL, OpenAI for speech-to-text and the LLM, and Cartesia for the voice when
``CARTESIA_API_KEY`` and ``CARTESIA_VOICE_ID`` are set (OpenAI's TTS otherwise).

Exit status offline: 0 when the conversation went as scripted, 1 otherwise; 2 when a live
start is missing settings.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
from dataclasses import dataclass, field

from _live import missing_settings, run_with_pipecat_runner, session_problem, tavus_conversation
from _offline import LLMRule, ScriptedLLMService, Timeline, ToneTTSService, user_turn_params
from live_full import GET_WEATHER
from loguru import logger
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.workers.runner import WorkerRunner
from quickstart import get_weather

from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams
from pipecat_tavus_interactions.events import (
    ReplicaStartedSpeakingEvent,
    SpeakingEvent,
    StartedSpeakingEvent,
)
from pipecat_tavus_interactions.interactions import Interrupt
from pipecat_tavus_interactions.protocol import encoded_size
from pipecat_tavus_interactions.simulator import ScriptedPersona, SimulatedTransport, TavusSimulator

SYSTEM_PROMPT = (
    "You are Ada, a cheerful travel helper speaking through a video avatar. Answer in one to "
    "three short spoken sentences, with no lists, markdown or emoji. Use get_weather for "
    "weather questions."
)
GREETING_TASK = "Greet the user in one sentence and offer help with the weather or packing."


# --- what the bot sends ------------------------------------------------------------------


@dataclass
class Utterance:
    """The echo messages of one utterance (one ``inference_id``), and how it played."""

    messages: int = 0
    audio_bytes: int = 0
    max_bytes: int = 0
    sample_rate: int = 24000
    done: bool = False
    played_s: float | None = None
    cut: bool = False

    @property
    def seconds(self) -> float:
        """Seconds of PCM16 mono audio sent."""
        return self.audio_bytes / 2 / self.sample_rate


@dataclass
class EchoLog:
    """Every echo-audio message the bot sent, per utterance, and what the replica played."""

    timeline: Timeline
    utterances: dict[str, Utterance] = field(default_factory=dict)
    interrupts: int = 0
    _replica_speaking: bool = False

    def on_sent(self, message: dict) -> None:
        """Account for one outbound message (the facade's ``on_interaction_sent``)."""
        event_type = message.get("event_type")
        if event_type == "conversation.interrupt":
            self.interrupts += 1
            return
        props = message.get("properties") or {}
        if event_type != "conversation.echo" or props.get("modality") != "audio":
            return
        utt = self.utterances.setdefault(
            props["inference_id"], Utterance(sample_rate=props["sample_rate"])
        )
        utt.messages += 1
        utt.audio_bytes += len(base64.b64decode(props["audio"]))
        utt.max_bytes = max(utt.max_bytes, encoded_size(message))
        if props.get("done"):
            utt.done = True
            self.timeline.add(
                "echo",
                f"{utt.seconds:.2f} s of audio sent in {utt.messages} messages "
                f"(largest {utt.max_bytes} B)",
            )

    def on_event(self, event) -> None:
        """Follow the replica's speaking spans (the facade's ``on_event``)."""
        if not isinstance(event, SpeakingEvent) or event.role != "pal":
            return
        started = isinstance(event, StartedSpeakingEvent | ReplicaStartedSpeakingEvent)
        if started or not self._replica_speaking:
            self._replica_speaking = started
            return
        self._replica_speaking = False
        # The replica plays utterances in the order they were sent: this span is the oldest
        # one not accounted for yet.
        utt = next((u for u in self.utterances.values() if u.played_s is None), None)
        if utt is not None:
            utt.played_s = event.duration if event.duration is not None else utt.seconds
            utt.cut = event.interrupted
        played = "" if event.duration is None else f" for {event.duration:.2f} s"
        cut = "  [interrupted]" if event.interrupted else ""
        self.timeline.add("replica", f"spoke{played}{cut}")


# --- the bot (the same wiring offline and live) -----------------------------------------


def build_bot(transport, tavus: TavusInteractions, llm, tts, *, stt=None, vad_analyzer=None):
    """Assemble the echo-audio pipeline around ``transport`` and ``tavus``.

    Args:
        transport: The simulated or Daily transport.
        tavus: The facade in ``echo_audio`` mode.
        llm: The LLM service (``get_weather`` is registered on it here).
        tts: The TTS service.
        stt: A speech-to-text service (live), or ``None`` when the transport already pushes
            transcriptions (offline).
        vad_analyzer: A VAD for the user's microphone (live), or ``None``.

    Returns:
        ``(pipeline, context_aggregator)``.
    """
    llm.register_function("get_weather", get_weather)
    context = LLMContext(
        messages=[{"role": "developer", "content": GREETING_TASK}],
        tools=ToolsSchema(standard_tools=[GET_WEATHER]),
    )
    aggregators = LLMContextAggregatorPair(context, user_params=user_turn_params(vad_analyzer))
    processors = [
        transport.input(),
        tavus.input(),
        *([stt] if stt is not None else []),
        aggregators.user(),
        llm,
        tts,
        tavus.output(),  # TTS audio -> conversation.echo chunks; nothing reaches the track
        transport.output(),
        aggregators.assistant(),
    ]
    return Pipeline(processors), aggregators


def watch(tavus: TavusInteractions, aggregators, llm, log: EchoLog) -> None:
    """Print what happens: user turns, tool calls, TTS text, echo traffic, replica spans.

    The replica's speaking spans tell how much of each utterance it really played; the TTS
    text is what was synthesized (and sent), cut short or not.
    """
    timeline = log.timeline

    @aggregators.user().event_handler("on_user_turn_stopped")
    async def on_user_turn_stopped(aggregator, strategy, message):
        if message.content:
            timeline.add("user", message.content)

    @aggregators.assistant().event_handler("on_assistant_turn_stopped")
    async def on_assistant_turn_stopped(aggregator, message):
        if message.content:
            mark = "  [interrupted]" if message.interrupted else ""
            timeline.add("tts", message.content + mark)

    @llm.event_handler("on_function_calls_started")
    async def on_function_calls_started(llm, calls):
        for call in calls:
            timeline.add("tool", f"{call.function_name}({dict(call.arguments)})")

    @tavus.event_handler("on_interaction_sent")
    async def on_interaction_sent(tavus, message):
        log.on_sent(message)

    @tavus.event_handler("on_event")
    async def on_event(tavus, event):
        log.on_event(event)


async def run(tavus: TavusInteractions, worker: PipelineWorker, *, handle_sigint=False) -> None:
    """Greet when the replica joins, then run the worker to the end."""

    @tavus.event_handler("on_replica_joined")
    async def on_replica_joined(tavus, event):
        print(f"Replica joined conversation {tavus.conversation_id}")
        await worker.queue_frames([LLMRunFrame()])

    # SIGTERM (a process manager's stop) too: the pipeline is cancelled, the conversation ended.
    runner = WorkerRunner(handle_sigint=handle_sigint, handle_sigterm=handle_sigint)
    await runner.add_workers(worker)
    await runner.run()


def report(log: EchoLog, cap: int) -> bool:
    """Print the per-utterance table; return whether every message stayed under ``cap``."""
    utterances = list(log.utterances.values())
    print("\nutterance  sent s  messages  largest B  played s")
    for n, utt in enumerate(utterances, 1):
        played = "-" if utt.played_s is None else f"{utt.played_s:.2f}"
        cut = "  interrupted" if utt.cut else ""
        print(f"{n:>9}  {utt.seconds:6.2f}  {utt.messages:8}  {utt.max_bytes:9}  {played:>8}{cut}")
    largest = max((u.max_bytes for u in utterances), default=0)
    total = sum(u.messages for u in utterances)
    print(
        f"{len(utterances)} utterance(s), {total} echo message(s), largest {largest} B "
        f"(cap {cap} B), {log.interrupts} interrupt(s) sent."
    )
    return largest <= cap


# --- offline ------------------------------------------------------------------------------


def scripted_llm() -> ScriptedLLMService:
    """The offline stand-in for the LLM."""
    return ScriptedLLMService(
        rules=[
            LLMRule(
                on_instruction=r"^Greet the user",
                reply="Hi, I'm Ada! Ask me about the weather, or what to pack for a trip.",
            ),
            LLMRule(on_user=r"weather in (?P<city>[A-Za-z]+)", call="get_weather"),
            LLMRule(on_result="get_weather", reply="{result}. A fine day to be outside!"),
            LLMRule(
                on_user=r"\bpack\b",
                reply=(
                    "For a week in London, pack layers: a warm sweater, a waterproof jacket and "
                    "shoes that can handle puddles. The weather there changes quickly, so keep "
                    "a small umbrella in your bag, and leave some room for the books you will "
                    "certainly buy."
                ),
            ),
            LLMRule(on_user=r"\bthanks?\b", reply="You're welcome. Have a wonderful trip!"),
        ],
        token_delay_s=0.01,
    )


USER = [
    # (line, seconds of the replica's reply to let play before saying it; None: all of it)
    ("What's the weather in Paris?", None),
    ("And what should I pack for a week in London?", None),
    ("Thanks, that's plenty!", 2.0),  # cuts the packing advice short
]


async def user(sim: TavusSimulator) -> None:
    """The scripted user: each line after the replica's reply, or into it for a barge-in."""

    def started(m):
        return m["event_type"] == "conversation.replica.started_speaking"

    def finished(m):
        props = m.get("properties") or {}
        return m["event_type"] == "conversation.replica.stopped_speaking" and not props.get(
            "interrupted"
        )

    mark = 0  # the greeting is the first reply
    for text, after_s in USER:
        if after_s is None:
            await sim.wait_for_message(finished, since=mark, timeout_s=30)
            await sim.sleep(0.3)
        else:
            await sim.wait_for_message(started, since=mark, timeout_s=30)
            await sim.sleep(after_s)
        await sim.user_says(text)
        mark = sim.emitted_count
    await sim.wait_for_message(finished, since=mark, timeout_s=30)


async def main_offline(speed: float) -> int:
    """Run against the simulator; return the exit code."""
    print("Offline: echo-mode replica simulator, scripted LLM, tone TTS")
    print("(live: see the README, Going live)")
    sim = TavusSimulator(pipeline_mode="echo", persona=ScriptedPersona(name="Ada"), speed=speed)
    transport = SimulatedTransport(sim, user_transcription=True)
    params = TavusInteractionsParams(mode="echo_audio", conversation_id=sim.conversation_id)
    tavus = TavusInteractions(params=params)
    tavus.attach_transport(transport)
    log = EchoLog(Timeline())
    llm = scripted_llm()
    pipeline, aggregators = build_bot(
        transport, tavus, llm, ToneTTSService(sample_rate=24000, seconds_per_word=0.25)
    )
    watch(tavus, aggregators, llm, log)
    worker = PipelineWorker(pipeline, enable_rtvi=False, idle_timeout_secs=None)

    @tavus.event_handler("on_replica_joined")
    async def start_user(tavus, event):
        worker.create_task(sim.play(user), "scripted-user")  # shutdown ends the pipeline

    await run(tavus, worker)
    under_cap = report(log, params.max_message_bytes)

    # The replica's side, from the simulator's own record: the audio it received.
    received = {iid: s for iid, s in sim.echo_audio_seconds.items() if iid is not None}
    print(
        "The replica received " + ", ".join(f"{s:.2f}" for s in received.values()) + " s of audio."
    )
    utterances = list(log.utterances.values())
    sent = [round(u.seconds, 3) for u in utterances]
    interrupts = sum(isinstance(i, Interrupt) for i in sim.interactions)
    voiced = " ".join(text for _, who, text in log.timeline.entries if who == "tts")
    ok = (
        under_cap
        and len(utterances) == 4
        # Every utterance closes with done: true, except one cut before the TTS finished it
        # (on a loaded machine): after the interrupt nothing more is sent for it.
        and all((u.done or u.cut) and u.seconds > 0 for u in utterances)
        and sent == [round(s, 3) for s in received.values()]  # nothing lost on the way
        and [u.cut for u in utterances] == [False, False, True, False]  # the barge-in
        and interrupts >= 1
        and "sunny and 21 degrees" in voiced  # the tool result was spoken
    )
    if not ok:
        print("The conversation did not go as scripted.")
    return 0 if ok else 1


# --- live ---------------------------------------------------------------------------------

NAME = "pipecat-tavus-interactions echo_audio"
LIVE_EXTRA = ("OPENAI_API_KEY",)
LIVE_SETTINGS = """\
To run this example live, set (in the environment or a .env file):
  TAVUS_API_KEY      your Tavus API key
  TAVUS_PAL_ID       an echo-mode PAL (pipeline_mode "echo"); TAVUS_PERSONA_ID also works
  TAVUS_FACE_ID      the face to show, unless the PAL has a default; TAVUS_REPLICA_ID also works
  OPENAI_API_KEY     OpenAI, for speech-to-text and the LLM (and the voice, unless Cartesia)
Optional: CARTESIA_API_KEY and CARTESIA_VOICE_ID for a Cartesia voice, OPENAI_MODEL (default
gpt-4.1-mini), TAVUS_MAX_CALL_SECONDS (default 600)."""


def live_tts(openai_api_key: str):
    """The TTS for a live run: Cartesia when configured, OpenAI's otherwise (24 kHz)."""
    env = os.environ
    if env.get("CARTESIA_API_KEY") and env.get("CARTESIA_VOICE_ID"):
        from pipecat.services.cartesia.tts import CartesiaHttpTTSService

        return CartesiaHttpTTSService(
            api_key=env["CARTESIA_API_KEY"],
            sample_rate=24000,
            settings=CartesiaHttpTTSService.Settings(voice=env["CARTESIA_VOICE_ID"]),
        )
    from pipecat.services.openai.tts import OpenAITTSService

    return OpenAITTSService(api_key=openai_api_key, sample_rate=24000)


def build_live(conversation, log: EchoLog, *, openai_api_key: str):
    """Wire the bot to a created conversation (nothing is joined or called yet).

    Args:
        conversation: The created conversation (``api.Conversation`` or a mapping).
        log: Where the run is reported.
        openai_api_key: The OpenAI key for speech-to-text, the LLM and (without Cartesia)
            the voice.

    Returns:
        ``(session, pipeline)``.
    """
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.openai.stt import OpenAIRealtimeSTTService

    from pipecat_tavus_interactions import live

    session = live.connect(conversation, params=TavusInteractionsParams(mode="echo_audio"))
    llm = OpenAILLMService(
        api_key=openai_api_key,
        settings=OpenAILLMService.Settings(
            model=os.environ.get("OPENAI_MODEL") or "gpt-4.1-mini", system_instruction=SYSTEM_PROMPT
        ),
    )
    stt = OpenAIRealtimeSTTService(api_key=openai_api_key)
    pipeline, aggregators = build_bot(
        session.transport,
        session.tavus,
        llm,
        live_tts(openai_api_key),
        stt=stt,
        vad_analyzer=SileroVADAnalyzer(),
    )
    watch(session.tavus, aggregators, llm, log)
    return session, pipeline


async def bot(runner_args) -> None:
    """Run the bot in one Tavus conversation: the entry point of Pipecat's runner.

    Args:
        runner_args: The session's ``RunnerArguments`` (its ``body`` may name the
            conversation to join; see ``_live.py``).
    """
    problem = session_problem(runner_args)
    missing = missing_settings(LIVE_EXTRA)
    if problem or missing:
        logger.error(f"Not started: {problem or 'missing ' + ', '.join(missing)}")
        return
    log = EchoLog(Timeline())
    async with tavus_conversation(runner_args, name=NAME) as conversation:
        session, pipeline = build_live(
            conversation, log, openai_api_key=os.environ["OPENAI_API_KEY"]
        )
        handle_sigint = getattr(runner_args, "handle_sigint", False)
        await run(session.tavus, session.pipeline_worker(pipeline), handle_sigint=handle_sigint)
    report(log, session.tavus.params.max_message_bytes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Any other argument (-t daily, ...) goes to Pipecat's runner and runs it live.",
    )
    parser.add_argument("--speed", type=float, default=4.0, help="simulated time factor")
    args, runner_argv = parser.parse_known_args()
    if runner_argv:  # live, under Pipecat's runner
        sys.argv = [sys.argv[0], *runner_argv]
        run_with_pipecat_runner(bot, name=NAME, settings_help=LIVE_SETTINGS, extra=LIVE_EXTRA)
    else:
        logger.remove()
        logger.add(sys.stderr, level="WARNING")
        sys.exit(asyncio.run(main_offline(args.speed)))
