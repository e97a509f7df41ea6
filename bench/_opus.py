"""Pre-encoded Opus packets for the Go load generator (bench/loadgen): a silence frame and a tone.

Encodes with the system's libopus through ctypes (Debian ``libopus0``), once per benchmark run,
so the callers send real Opus without encoding anything themselves:

    python bench/_opus.py --burst-ms 300 > packets.json
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import math
import sys

import numpy as np

RATE = 48_000
FRAME = RATE // 50  # 20 ms
OPUS_APPLICATION_VOIP = 2048


class OpusError(RuntimeError):
    """libopus is missing or refused to encode."""


def _libopus() -> ctypes.CDLL:
    name = ctypes.util.find_library("opus") or "libopus.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise OpusError(f"libopus not found ({exc}); install it: apt-get install libopus0") from exc
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [
        ctypes.c_int32,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int16),
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int32,
    ]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    return lib


def encode(frames: list[np.ndarray]) -> list[bytes]:
    """Encode 20 ms mono int16 frames at 48 kHz with one encoder (so packets follow on)."""
    lib = _libopus()
    error = ctypes.c_int(0)
    encoder = lib.opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, ctypes.byref(error))
    if error.value != 0 or not encoder:
        raise OpusError(f"opus_encoder_create failed with {error.value}")
    try:
        packets = []
        out = ctypes.create_string_buffer(4000)
        for pcm in frames:
            data = np.ascontiguousarray(pcm, dtype=np.int16)
            size = lib.opus_encode(
                encoder, data.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), FRAME, out, 4000
            )
            if size < 0:
                raise OpusError(f"opus_encode failed with {size}")
            packets.append(out.raw[:size])
        return packets
    finally:
        lib.opus_encoder_destroy(encoder)


def tone_frames(ms: int, hz: float = 300.0, amplitude: int = 9000) -> list[np.ndarray]:
    count = math.ceil(ms / 20)
    t = np.arange(count * FRAME) / RATE
    pcm = (np.sin(2 * math.pi * hz * t) * amplitude).astype(np.int16)
    return [pcm[i * FRAME : (i + 1) * FRAME] for i in range(count)]


def packets(burst_ms: int) -> dict[str, object]:
    silence = np.zeros(FRAME, dtype=np.int16)
    tone = tone_frames(burst_ms)
    # Silence before and well after the tone: the tone's packets then follow the encoder state a
    # caller would have, and the last packet is settled silence (a few bytes).
    encoded = encode([silence, *tone, *[silence] * 25])
    return {"silence": encoded[-1].hex(), "tone": [p.hex() for p in encoded[1 : 1 + len(tone)]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst-ms", type=int, default=300)
    args = parser.parse_args()
    json.dump(packets(args.burst_ms), sys.stdout)


if __name__ == "__main__":
    main()
