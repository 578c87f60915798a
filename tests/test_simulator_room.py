"""The relay's offline room: the drawn face, the toned voice, the ear, and messages."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from pipecat_tavus_interactions.exceptions import ConfigurationTypeError
from pipecat_tavus_interactions.relay_room import RoomCallbacks
from pipecat_tavus_interactions.simulator import ScriptedPersona, SimulatedRoom, TavusSimulator
from pipecat_tavus_interactions.simulator.media import ReplicaPicture, ReplicaVoice


def test_the_picture_is_an_rgb_frame_that_shows_the_mouth_and_the_words():
    picture = ReplicaPicture(width=320, height=180, name="Anna")
    closed = picture.frame("", mouth_open=False)
    opened = picture.frame("", mouth_open=True)
    worded = picture.frame("Hello there", mouth_open=True)
    blink = picture.frame("", mouth_open=False, eyes_open=False)
    assert len(closed) == 320 * 180 * 3
    assert len({closed, opened, worded, blink}) == 4
    assert picture.frame("Hello there", mouth_open=True) is worded  # cached


def test_the_voice_renders_the_asked_length_with_a_pitch_per_word():
    voice = ReplicaVoice(sample_rate=16000)
    pcm = np.frombuffer(voice.render(0.25, word="hello"), dtype=np.int16)
    assert pcm.size == 4000
    assert 0 < np.abs(pcm).max() <= 32767 * 0.25 + 1
    assert ReplicaVoice.pitch("hello") != ReplicaVoice.pitch("world")
    assert ReplicaVoice.pitch(None) == 180.0


class Collect:
    def __init__(self):
        self.messages: list = []
        self.joined: list = []
        self.audio: list = []
        self.video: list = []

    def callbacks(self) -> RoomCallbacks:
        async def message(m, sender):
            self.messages.append((m, sender))

        async def joined(p):
            self.joined.append(p)

        async def left(p, reason):
            pass

        async def video(v):
            self.video.append(v)

        async def audio(a):
            self.audio.append(a)

        return RoomCallbacks(message, joined, left, video, audio)


async def test_joining_brings_the_replica_and_its_greeting_and_media():
    sim = TavusSimulator(persona=ScriptedPersona(greeting="Hi there you."), speed=10)
    room = SimulatedRoom(sim, width=160, height=90, max_framerate=20)
    seen = Collect()
    await room.join(seen.callbacks(), sample_rate=16000, microphone=False)
    try:
        assert seen.joined == [room.replica_participant]
        await room.capture_replica(sim.participant_id, framerate=50)
        await sim.wait_idle()
        for _ in range(100):
            if seen.audio:
                break
            await asyncio.sleep(0.01)
    finally:
        await room.leave()
    kinds = [m["event_type"] for m, _ in seen.messages]
    assert kinds[0] == "system.replica_joined" and "conversation.utterance" in kinds
    assert {sender for _, sender in seen.messages} == {sim.participant_id}
    assert seen.video and seen.video[0].size == (160, 90)
    assert seen.audio and {a.sample_rate for a in seen.audio} == {16000}
    greeting_id = next(m for m, _ in seen.messages if m["event_type"] == "conversation.utterance")
    assert {a.inference_id for a in seen.audio} == {greeting_id["inference_id"]}


async def test_the_ear_turns_a_burst_of_sound_into_one_user_line():
    sim = TavusSimulator(persona=ScriptedPersona(default_reply="Yes."), speed=50)
    room = SimulatedRoom(sim, min_speech_s=0.2, end_silence_s=0.2)
    seen = Collect()
    await room.join(seen.callbacks(), sample_rate=16000, microphone=True)
    loud = (np.sin(np.arange(320) / 3.0) * 6000).astype(np.int16).tobytes()
    quiet = bytes(640)
    try:
        for chunk in [loud] * 5 + [quiet] * 15:  # 0.1 s of sound: too short
            await room.write_microphone(chunk, sample_rate=16000, num_channels=1)
        for chunk in [loud] * 15 + [quiet] * 15:  # 0.3 s of sound, then quiet
            await room.write_microphone(chunk, sample_rate=16000, num_channels=1)
        for _ in range(300):
            if any(m["event_type"] == "conversation.utterance" for m, _ in seen.messages):
                break
            await asyncio.sleep(0.01)
    finally:
        await room.leave()
    lines = [
        m["properties"]["speech"]
        for m, _ in seen.messages
        if m["event_type"] == "conversation.utterance" and m["properties"]["role"] == "user"
    ]
    assert lines == ["(the user spoke for 0.3 seconds)"]
    assert room.microphone_s == pytest.approx(1.0)


async def test_messages_to_the_replica_must_be_json():
    sim = TavusSimulator()
    room = SimulatedRoom(sim)
    with pytest.raises(ConfigurationTypeError):
        await room.send_app_message({"x": object()}, None)
