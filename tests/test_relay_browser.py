"""The relay example in a real browser: headless Chromium with fake media devices.

``examples/relay_webrtc.py`` runs as a subprocess (Pipecat's runner, SmallWebRTC, the relay
on the simulator); Chromium opens its page (``/relay``), connects, and the test checks what a
person would: the replica's video arrives at 640x360 and changes, its audio arrives with
energy in it, the greeting shows in the transcript, and a typed question comes back as the
replica's answer with the tool's result. About 15 s. Skipped only when Debian's
``chromium`` is not installed (``.ci/run`` installs it).

Set ``RELAY_SCREENSHOT=path.png`` to keep a screenshot of the page (``docs/relay_webrtc.png``
was taken this way).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)

FLAGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

#: Keeps every RTCPeerConnection the page makes, so the test can read its statistics.
KEEP_PEER_CONNECTIONS = """
window.__pcs = [];
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const pc = new Original(...args);
  window.__pcs.push(pc);
  return pc;
};
window.RTCPeerConnection.prototype = Original.prototype;
"""

INBOUND = """async (kind) => {
  let out = null;
  for (const pc of window.__pcs) {
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === kind) out = r;
    });
  }
  return out && {bytes: out.bytesReceived, energy: out.totalAudioEnergy || 0,
                 frames: out.framesDecoded || 0};
}"""

#: A digest of the frame the video element shows now.
FRAME_DIGEST = """() => {
  const v = document.getElementById("replica");
  const c = document.createElement("canvas");
  c.width = 160; c.height = 90;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0, 160, 90);
  const d = g.getImageData(0, 0, 160, 90).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0;
  return h;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def example_server(tmp_path):
    """The example on a free port, stopped (by its own pid) when the test ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAVUS_")}
    log = open(tmp_path / "example.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "examples/relay_webrtc.py", "--host", "localhost", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}/relay"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "the example did not start:\n" + (tmp_path / "example.log").read_text()
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def wait_for(page, expression: str, arg=None, *, limit_s: float = 30.0):
    """Poll a page expression until it is truthy; fail with its last value."""
    value = None
    for _ in range(int(limit_s * 10)):
        value = await page.evaluate(expression, arg)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{expression[:60]!r} stayed {value!r} for {limit_s} s")


async def test_the_replica_is_seen_heard_and_transcribed_in_a_browser(example_server, tmp_path):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1200, "height": 520},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await page.add_init_script(KEEP_PEER_CONNECTIONS)
            await page.goto(example_server)
            await page.click("#connect")

            # The replica's video: the size the relay forwards, and frames that change.
            size = await wait_for(
                page,
                "() => { const v = document.getElementById('replica');"
                " return v.videoWidth ? [v.videoWidth, v.videoHeight] : null; }",
            )
            assert size == [640, 360]
            first = await page.evaluate(FRAME_DIGEST)
            await wait_for(page, f"() => ({FRAME_DIGEST})() !== {first}")
            video = await wait_for(
                page,
                f"async () => {{ const s = await ({INBOUND})('video');"
                " return s && s.frames > 10 ? s : null; }",
            )
            assert video["bytes"] > 0

            # The replica's voice: audio packets with sound in them.
            audio = await wait_for(
                page,
                f"async () => {{ const s = await ({INBOUND})('audio');"
                " return s && s.energy > 0 ? s : null; }",
            )
            assert audio["bytes"] > 0

            # The greeting in the transcript, then a typed question answered with the tool.
            greeting = "Hi, I'm Anna. Ask me about the weather in Paris or London."
            await page.locator("#transcript li.bot", has_text=greeting).wait_for(timeout=30_000)
            await page.fill("#say", "What is the weather in Paris?")
            await page.click("#send")
            answer = "I checked for you: Paris: sunny and 21 degrees."
            await page.locator("#transcript li.bot", has_text=answer).wait_for(timeout=30_000)
            if os.environ.get("RELAY_SCREENSHOT"):
                await page.wait_for_timeout(1500)  # a few words into the answer's captions
                await page.screenshot(path=os.environ["RELAY_SCREENSHOT"])
        finally:
            await context.close()
