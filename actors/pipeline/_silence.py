"""Where a synthesised reply's voice starts: the near-silence a TTS puts in front of it.

hibari pads every sentence with ~0.3 s of near-silence before the first word; sent as it is,
the caller hears the agent that much later than the first audio frame left. The pipeline drops
that padding from the front of a reply (never from its middle, where it is the pause between
two sentences), keeping a few milliseconds so the first word does not start with a click.
"""

from __future__ import annotations

import numpy as np

__all__ = ("leading_silence_bytes",)

_SILENT_PEAK = 100  # int16; about -50 dBFS
_KEEP_S = 0.01


def leading_silence_bytes(pcm: bytes, sample_rate: int) -> int:
    """How many bytes at the front of ``pcm`` (int16 mono) are near-silence, less ~10 ms.

    All of it when no sample is loud yet (more audio may follow).
    """
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SILENT_PEAK)
    if not len(loud):
        return len(samples) * 2
    return max(0, int(loud[0]) - int(_KEEP_S * sample_rate)) * 2
