"""A per-process pool of pocketsphinx decoders, and the blocking calls made on them.

A pocketsphinx ``Decoder`` with the English model costs ~95 MB and ~0.3–0.6 s to load, so the
local recogniser shares a few of them between all its streams: a stream holds one only for the
length of an utterance. Every call here blocks (and, measured, holds the GIL for the length of
the C call), so callers run them with ``anyio.to_thread.run_sync`` and feed audio in 20 ms
slices: the GIL is then released between slices and the event loop stays responsive.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from actors._exceptions import ProviderError

__all__ = ("DecoderPool", "SphinxDecoder")

logger = logging.getLogger(__name__)

# Measured on hibari speech: without the second "fwdflat" pass, end_utt() takes ~25 ms instead
# of ~150 ms and decoding runs at 0.23x realtime instead of 0.34x, with the same transcripts.
_DECODER_OPTIONS: dict[str, Any] = {"samprate": 16000, "loglevel": "FATAL", "fwdflat": False}
_SLICE_BYTES = 640  # 20 ms at 16 kHz, int16


class SphinxDecoder:
    """One loaded decoder; its methods block and run in a worker thread."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(**_DECODER_OPTIONS)
        self.in_utterance = False

    def start(self) -> None:
        if self.in_utterance:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self.in_utterance = True

    def feed(self, pcm: bytes, *, partial: bool) -> str:
        """Decode ``pcm``; with ``partial``, return the current hypothesis (else "")."""
        for offset in range(0, len(pcm), _SLICE_BYTES):
            self._decoder.process_raw(pcm[offset : offset + _SLICE_BYTES], full_utt=False)
        return self._hypothesis() if partial else ""

    def hypothesis(self) -> str:
        """The best transcript of the utterance so far (the turn detector reads it)."""
        return self._hypothesis()

    def finish(self) -> str:
        """End the utterance and return its transcript ("" when nothing was recognised)."""
        self._decoder.end_utt()
        self.in_utterance = False
        return self._hypothesis()

    def reset(self) -> None:
        """Abandon a half-decoded utterance so the decoder can be reused."""
        if self.in_utterance:
            self._decoder.end_utt()
            self.in_utterance = False

    def _hypothesis(self) -> str:
        hyp = self._decoder.hyp()
        return str(hyp.hypstr).strip() if hyp is not None else ""


class DecoderPool:
    """At most ``size`` decoders, loaded on first need and reused across streams.

    Args:
        size: most decoders alive at once; further ``acquire()`` calls wait for a release.
        vendor: provider name used in errors.
    """

    def __init__(self, size: int, *, vendor: str) -> None:
        self._slots = anyio.Semaphore(size)
        self._idle: list[SphinxDecoder] = []
        self._vendor = vendor

    async def acquire(self) -> SphinxDecoder:
        """A ready decoder (loading one in a thread if none is idle).

        Raises:
            ProviderError: pocketsphinx could not load its model (not retryable).
        """
        await self._slots.acquire()
        try:
            if self._idle:
                decoder = self._idle.pop()
                if decoder.in_utterance:
                    await anyio.to_thread.run_sync(decoder.reset)
                return decoder
            try:
                return await anyio.to_thread.run_sync(SphinxDecoder)
            except Exception as exc:
                logger.exception("pocketsphinx could not load")
                raise ProviderError(
                    "local STT: pocketsphinx could not load its English model",
                    vendor=self._vendor,
                    retryable=False,
                ) from exc
        except BaseException:
            self._slots.release()
            raise

    def release(self, decoder: SphinxDecoder) -> None:
        """Give a decoder back (a half-decoded utterance is reset on the next acquire)."""
        self._idle.append(decoder)
        self._slots.release()

    def clear(self) -> None:
        """Drop idle decoders (their memory is freed once no stream holds them)."""
        self._idle.clear()
