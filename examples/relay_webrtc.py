"""The replica in your own transport: a SmallWebRTC bot with a Tavus face, in the browser.

The bot runs on Pipecat's SmallWebRTC transport with Pipecat's development runner and its
prebuilt web client. ``TavusReplicaRelay`` sits where ``TavusVideoService`` would (right
before ``transport.output()``): it joins the Tavus conversation's room as a second room,
forwards the replica's face and voice to the browser, sends the user's voice to the replica
as the bot's microphone (``full`` mode: Tavus hears, thinks and speaks), runs the
``get_weather`` tool when the replica calls it, and shows the replica's words and the user's
in the page's transcript. Typed text (the client's text box) reaches the replica as
``conversation.respond``.

    pip install -e ".[relay]"
    python examples/relay_webrtc.py          # then open http://localhost:7860/relay

With no ``TAVUS_API_KEY`` it runs offline against the simulator: a drawn face with captions,
a voice of shaped tones, and a persona that greets you, answers "what's the weather in
Paris?" typed in the text box with the tool's result, and treats a burst of microphone sound
as a user turn (there is no speech recognition offline). With ``TAVUS_API_KEY`` and
``TAVUS_PAL_ID`` (a full-mode PAL; ``TAVUS_FACE_ID`` optional) each browser session creates a
real conversation, and the relay ends it when the session ends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from _live import call_properties, conversation_ids, load_env, tavus_api
from loguru import logger
from pipecat.frames.frames import Frame, LLMMessagesAppendFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from pipecat_tavus_interactions import (
    TavusInteractionsParams,
    TavusReplicaRelay,
    TavusRespondFrame,
)
from pipecat_tavus_interactions.simulator import (
    PersonaRule,
    ScriptedPersona,
    TavusSimulator,
    ToolCallSpec,
)
from pipecat_tavus_interactions.simulator.room import SimulatedRoom

NAME = "pipecat-tavus-interactions relay_webrtc"
WIDTH, HEIGHT = 640, 360
FORECASTS = {"paris": "sunny and 21 degrees", "london": "light rain and 14 degrees"}


async def get_weather(params) -> None:
    """The tool the replica calls, written as for a Pipecat LLM's ``register_function``."""
    city = str(params.arguments.get("city", "")).strip()
    await params.result_callback(f"{city}: {FORECASTS.get(city.lower(), 'not available')}")


def persona() -> ScriptedPersona:
    """The simulated replica's "LLM"."""
    return ScriptedPersona(
        name="Anna",
        greeting="Hi, I'm Anna. Ask me about the weather in Paris or London.",
        rules=[
            PersonaRule(
                pattern=r"weather in (?P<city>[A-Za-z]+)",
                regex=True,
                tool_call=ToolCallSpec(name="get_weather", arguments={"city": "{city}"}),
                reply="I checked for you: {result}.",
            )
        ],
        default_reply="I hear you. Ask me about the weather in Paris.",
    )


class TypedText(FrameProcessor):
    """Text typed in the client (RTVI ``send-text``) goes to the replica as ``respond``."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Turn the user's typed message into a ``TavusRespondFrame``."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMMessagesAppendFrame) and direction is FrameDirection.DOWNSTREAM:
            text = " ".join(
                str(m.get("content", "")) for m in frame.messages if m.get("role") == "user"
            ).strip()
            if text:
                await self.push_frame(TavusRespondFrame(text=text))
            return  # there is no LLM here: Tavus's LLM answers
        await self.push_frame(frame, direction)


def replica_room(http: Any) -> Any:
    """The Tavus room: a real conversation with a key, the simulator without one."""
    if os.environ.get("TAVUS_API_KEY"):
        from pipecat_tavus_interactions.relay_room import DailyReplicaRoom

        create = {**conversation_ids(), "conversation_name": NAME, "properties": call_properties()}
        return DailyReplicaRoom(api=tavus_api(http), create=create)
    sim = TavusSimulator(persona=persona(), words_per_second=2.5)
    return SimulatedRoom(sim, width=WIDTH, height=HEIGHT, max_framerate=15)


async def bot(runner_args) -> None:
    """One browser session: the entry point of Pipecat's runner.

    Args:
        runner_args: The session's ``SmallWebRTCRunnerArguments``.
    """
    import aiohttp
    from pipecat.runner.utils import create_transport
    from pipecat.transports.base_transport import TransportParams

    transport = await create_transport(
        runner_args,
        {
            "webrtc": lambda: TransportParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                video_out_enabled=True,
                video_out_is_live=True,
                video_out_width=WIDTH,
                video_out_height=HEIGHT,
            )
        },
    )
    async with aiohttp.ClientSession() as http:
        relay = TavusReplicaRelay(
            room=replica_room(http),
            params=TavusInteractionsParams(mode="full"),
            video_framerate=15,
        )
        relay.tavus.register_function("get_weather", get_weather)

        @relay.tavus.event_handler("on_utterance")
        async def on_utterance(tavus, utterance):
            if utterance.role == "user" or utterance.spoken:
                logger.info(f"{utterance.role}: {utterance.text}")

        pipeline = Pipeline([transport.input(), TypedText(), relay, transport.output()])
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(enable_metrics=True),
            idle_timeout_secs=getattr(runner_args, "pipeline_idle_timeout_secs", None),
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport, client):
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=getattr(runner_args, "handle_sigint", False))
        await runner.add_workers(worker)
        await runner.run()


def add_page_route(app: Any) -> None:
    """Serve ``relay_page.html`` at ``GET /relay`` on the runner's FastAPI ``app``."""
    from fastapi.responses import HTMLResponse

    page = (Path(__file__).parent / "relay_page.html").read_text(encoding="utf-8")

    @app.get("/relay", response_class=HTMLResponse)
    async def relay_page() -> str:
        """The one-file client: the replica's video, its voice, the transcript."""
        return page


def main() -> None:
    """Start Pipecat's runner on SmallWebRTC (it prints the URL to open)."""
    try:
        from pipecat.runner.run import app
        from pipecat.runner.run import main as run
    except ImportError:
        print('Pipecat\'s runner is not installed. Install it with: pip install -e ".[relay]"')
        sys.exit(2)
    if not any(arg in ("-t", "--transport") for arg in sys.argv[1:]):
        sys.argv[1:1] = ["-t", "webrtc"]
    load_env()
    add_page_route(app)
    source = "Tavus" if os.environ.get("TAVUS_API_KEY") else "the simulator (no TAVUS_API_KEY)"
    port = sys.argv[sys.argv.index("--port") + 1] if "--port" in sys.argv else "7860"
    print(f"Relay example: the replica comes from {source}.", flush=True)
    print(
        f"Open http://localhost:{port}/relay (or Pipecat's prebuilt client at /client/,", flush=True
    )
    print("which loads a media bundle from the internet).", flush=True)
    run()


if __name__ == "__main__":
    main()
