"""Test audio: speech made with hibari-tts, tones and silence, all 16 kHz mono int16."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import soxr

__all__ = ("RATE", "noise_burst", "silence", "speech", "tone", "words")

RATE = 16_000


@cache
def _hibari() -> Any:
    import hibari

    return hibari.Hibari()


@cache
def speech(text: str) -> bytes:
    """``text`` spoken by hibari (fixed seed), as 16 kHz mono int16."""
    audio = _hibari()(text, seed=1)
    audio16 = soxr.resample(audio.astype(np.float32), 24_000, RATE)
    pcm: bytes = (np.clip(audio16, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return pcm


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * RATE) * 2)


def tone(seconds: float, *, hz: float = 300.0, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def noise_burst(seconds: float = 0.3) -> bytes:
    """A cough-like burst: loud noise at once, then decaying."""
    n = int(seconds * RATE)
    envelope = np.exp(-np.arange(n) / (0.08 * RATE))
    noise = np.random.default_rng(7).normal(0, 0.35, n) * envelope
    return (noise.clip(-1, 1) * 32767).astype("<i2").tobytes()


def words(text: str) -> list[str]:
    return [w.strip(".,?!").lower() for w in text.split()]
