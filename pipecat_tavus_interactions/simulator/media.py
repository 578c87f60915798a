"""The simulated replica's picture and voice: a drawn face card and shaped tones.

:class:`ReplicaPicture` draws the replica as a video frame (RGB bytes): a face whose mouth
opens on each word and whose eyes blink now and then, the persona's name, and the last
words spoken, as captions. Frames are cached by what they show, so a steady picture costs
one dictionary look-up. :class:`ReplicaVoice` renders speech as audio: each word a tone
(its pitch from the word, a rise and fall over the word's length), and echoed audio a
steady hum, 16-bit mono PCM. Pillow and numpy are Pipecat's own dependencies.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["ReplicaPicture", "ReplicaVoice"]

_BACKGROUND = (24, 32, 48)
_SKIN = (236, 196, 160)
_INK = (40, 30, 30)
_CAPTION = (250, 250, 250)
_NAME = (150, 180, 220)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _wrap(text: str, width: int, font, draw: ImageDraw.ImageDraw) -> list[str]:
    """Greedy word wrap of ``text`` to lines no wider than ``width`` pixels."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


class ReplicaPicture:
    """Draws the replica's video frames.

    Example::

        picture = ReplicaPicture(width=640, height=360, name="Sim Persona")
        rgb = picture.frame("Hello there", mouth_open=True, eyes_open=True)
    """

    def __init__(self, *, width: int = 640, height: int = 360, name: str = "Replica"):
        """Create the painter.

        Args:
            width: Frame width in pixels.
            height: Frame height in pixels.
            name: The persona's name, drawn under the face.
        """
        self.width = width
        self.height = height
        self.name = name
        self._cache: dict[tuple[str, bool, bool], bytes] = {}

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return (self.width, self.height)

    def frame(self, caption: str, *, mouth_open: bool, eyes_open: bool = True) -> bytes:
        """Return one RGB frame.

        Args:
            caption: The words to show (the last ones spoken); empty for none.
            mouth_open: Draw the mouth open (a word is being said).
            eyes_open: Draw the eyes open (closed for a blink).

        Returns:
            ``width * height * 3`` bytes.
        """
        key = (caption, mouth_open, eyes_open)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 256:
                self._cache.clear()  # captions change without end: keep memory flat
            cached = self._cache[key] = self._draw(caption, mouth_open, eyes_open)
        return cached

    def _draw(self, caption: str, mouth_open: bool, eyes_open: bool) -> bytes:
        w, h = self.width, self.height
        image = Image.new("RGB", (w, h), _BACKGROUND)
        draw = ImageDraw.Draw(image)
        r = int(h * 0.22)
        cx, cy = w // 2, int(h * 0.36)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_SKIN)
        ex, ey, er = int(r * 0.4), cy - int(r * 0.25), max(2, r // 9)
        for x in (cx - ex, cx + ex):
            if eyes_open:
                draw.ellipse((x - er, ey - er, x + er, ey + er), fill=_INK)
            else:
                draw.line((x - er, ey, x + er, ey), fill=_INK, width=max(2, er // 2))
        mw, my = int(r * 0.45), cy + int(r * 0.4)
        mh = int(r * 0.28) if mouth_open else max(2, r // 20)
        draw.ellipse((cx - mw, my - mh, cx + mw, my + mh), fill=(150, 50, 60))
        name_font = _font(max(10, h // 24))
        draw.text((cx, cy + r + h // 30), self.name, fill=_NAME, font=name_font, anchor="mt")
        font = _font(max(12, h // 14))
        lines = _wrap(caption, int(w * 0.9), font, draw)[-2:]
        line_h = int(font.size * 1.25) if hasattr(font, "size") else h // 12
        top = h - len(lines) * line_h - h // 20
        for i, line in enumerate(lines):
            draw.text((cx, top + i * line_h), line, fill=_CAPTION, font=font, anchor="mt")
        return image.tobytes()


class ReplicaVoice:
    """Renders the replica's speech as 16-bit mono PCM.

    Words are tones whose pitch comes from the word, shaped by a rise and fall over the word;
    audio echo is a steady hum. The phase runs on across chunks, so there are no clicks.
    """

    def __init__(self, *, sample_rate: int, amplitude: float = 0.25):
        """Create the voice.

        Args:
            sample_rate: Samples a second.
            amplitude: Peak level, 0 to 1 of full scale.
        """
        self.sample_rate = sample_rate
        self.amplitude = amplitude
        self._t = 0  # samples rendered so far

    @staticmethod
    def pitch(word: str | None) -> float:
        """The tone of a word in Hz (a hum of 180 Hz for audio echo)."""
        if word is None:
            return 180.0
        return 160.0 + zlib.crc32(word.lower().encode()) % 200

    def render(self, seconds: float, *, word: str | None, progress: float = 0.5) -> bytes:
        """Render ``seconds`` of speech.

        Args:
            seconds: How long.
            word: The word being said, or ``None`` for audio echo.
            progress: How far into the word the chunk starts (0 to 1), for its envelope.

        Returns:
            The PCM bytes.
        """
        n = max(1, int(round(seconds * self.sample_rate)))
        t = (self._t + np.arange(n)) / self.sample_rate
        self._t += n
        f = self.pitch(word)
        wave = np.sin(2 * np.pi * f * t) + 0.35 * np.sin(4 * np.pi * f * t)
        if word is None:
            envelope = 0.6 + 0.2 * np.sin(2 * np.pi * 3.0 * t)
        else:
            ramp = progress + np.linspace(0.0, 1.0, n, endpoint=False) * 0.5
            envelope = np.sin(np.pi * np.clip(ramp, 0.0, 1.0)) ** 0.5
        pcm = wave * envelope * (self.amplitude * 32767 / 1.35)
        return pcm.astype(np.int16).tobytes()
