"""The offline voice: hibari-tts (a small neural voice in its wheel), espeak-ng if it cannot load.

``LocalTts`` synthesises sentence by sentence in a worker thread (onnxruntime releases the GIL,
so the event loop keeps running), converts to int16 at the configured rate and yields chunks of
``chunk_s``. Only voices already on disk are used: hibari would download any other voice on
first use, which a daemon must never do behind the operator's back, so those are refused.
When hibari cannot load at all, espeak-ng (a subprocess) speaks instead; when that is missing
too, the error says what to install. It never logs the text except at DEBUG under ``pii.*``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
import soxr

from actors._exceptions import ConfigError, ProviderError
from actors.providers._settings import TtsSettings

__all__ = ("DEFAULT_VOICE", "HIBARI_SAMPLE_RATE", "LocalTts")

logger = logging.getLogger(__name__)

HIBARI_SAMPLE_RATE = 24_000
DEFAULT_VOICE = "heart"  # the one hibari voice shipped inside its wheel
_WAV_HEADER_BYTES = 44
_INT16_MAX = 32767

FloatAudio = npt.NDArray[np.float32]


def _voice_on_disk(voice: str) -> bool:
    """True when hibari can load ``voice`` without downloading anything."""
    from hibari.voices import VOICES, voice_path

    if voice not in VOICES:
        return False
    try:
        voice_path(voice, download_missing=False)
    except FileNotFoundError:
        return False
    return True


def _load_hibari(voice: str) -> Any:
    """Load a hibari engine (blocking, ~0.1–0.4 s); any failure means "use espeak-ng"."""
    import hibari

    return hibari.Hibari(voice=voice)


def _to_int16(audio: npt.NDArray[Any], rate_in: int, rate_out: int) -> bytes:
    samples = np.asarray(audio, dtype=np.float32)
    if rate_in != rate_out and samples.size:
        samples = soxr.resample(samples, rate_in, rate_out).astype(np.float32)
    return (np.clip(samples, -1.0, 1.0) * _INT16_MAX).astype("<i2").tobytes()


class LocalTts:
    """hibari-tts with an espeak-ng fallback; implements ``TtsProvider``.

    Args:
        voice: the hibari voice; it must be on disk (``heart`` ships in the wheel).
        sample_rate: output rate; hibari's 24 kHz is resampled when it differs.
        chunk_s: length of each yielded chunk (the last one of a reply may be shorter).
        espeak_voice: espeak-ng voice used when hibari cannot load.
        espeak_command: the espeak-ng executable.

    Raises:
        ConfigError: ``voice`` is unknown to hibari or would need a download.
    """

    name = "local"

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        sample_rate: int = HIBARI_SAMPLE_RATE,
        chunk_s: float = 0.08,
        espeak_voice: str = "en-us",
        espeak_command: str = "espeak-ng",
    ) -> None:
        if not _voice_on_disk(voice):
            raise ConfigError(
                f"tts.voice = {voice!r}: not a hibari voice on this machine; use 'heart', the "
                "voice shipped with hibari-tts (others would be downloaded on first use)"
            )
        self.sample_rate = sample_rate
        self._voice = voice
        self._chunk_bytes = max(2, int(sample_rate * chunk_s) * 2)
        self._espeak_voice = espeak_voice
        self._espeak_command = espeak_command
        self._engines: dict[str, Any] = {}
        self._hibari_broken = False
        self._load_lock = anyio.Lock()
        # One synthesis at a time per provider: the model runs ~100x realtime on one core, and
        # parallel runs would only fight over the cores the event loops need.
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    def from_settings(cls, settings: TtsSettings, *, voice: str | None = None) -> LocalTts:
        return cls(
            voice=voice or settings.voice,
            sample_rate=settings.sample_rate,
            chunk_s=settings.chunk_s,
            espeak_voice=settings.espeak_voice,
        )

    async def synthesize(
        self, text: str, *, voice: str | None = None, language: str | None = None
    ) -> AsyncGenerator[bytes]:
        """Stream int16 PCM at ``sample_rate`` for ``text``, in chunks of ``chunk_s``.

        A ``voice`` that is not on disk is replaced by the configured voice (with a warning):
        refusing it would leave a room whose metadata names another vendor's voice mute.

        Raises:
            ProviderError: synthesis failed, or neither hibari nor espeak-ng is usable (not
                retryable: the same request would fail again).
        """
        text = text.strip()
        if not text:
            return
        logger.debug("local synthesis", extra={"pii.text": text})
        engine = await self._engine(voice or self._voice)
        buffer = bytearray()
        if engine is None:
            buffer += await self._espeak(text)
        else:
            sentences: Iterator[FloatAudio] = engine.stream(text)
            try:
                while (pcm := await self._next_sentence(sentences)) is not None:
                    buffer += pcm
                    while len(buffer) >= self._chunk_bytes:
                        yield bytes(buffer[: self._chunk_bytes])
                        del buffer[: self._chunk_bytes]
            finally:
                # A plain generator: closing it is synchronous and instant.
                close = getattr(sentences, "close", None)
                if close is not None:
                    close()
        for start in range(0, len(buffer), self._chunk_bytes):
            yield bytes(buffer[start : start + self._chunk_bytes])

    async def warm_up(self) -> None:
        """Load the default voice and run it once, so the first reply starts without delay."""
        async for _ in self.synthesize("Ready."):
            pass

    async def aclose(self) -> None:
        """Drop the loaded engines (they hold only memory)."""
        self._engines.clear()

    async def _next_sentence(self, sentences: Iterator[FloatAudio]) -> bytes | None:
        def step() -> bytes | None:
            audio = next(sentences, None)
            if audio is None:
                return None
            return _to_int16(audio, HIBARI_SAMPLE_RATE, self.sample_rate)

        try:
            return await anyio.to_thread.run_sync(step, limiter=self._limiter)
        except Exception as exc:
            logger.warning("hibari synthesis failed", exc_info=logger.isEnabledFor(logging.DEBUG))
            raise ProviderError(
                "local TTS: hibari failed to synthesise a sentence",
                vendor=self.name,
                retryable=False,
            ) from exc

    async def _engine(self, voice: str) -> Any | None:
        """The hibari engine for ``voice``; None when hibari cannot load (use espeak-ng)."""
        if voice in self._engines:
            return self._engines[voice]
        if self._hibari_broken:
            return None
        if voice != self._voice and not await anyio.to_thread.run_sync(_voice_on_disk, voice):
            # A room asked for a voice hibari does not have here (perhaps another vendor's id):
            # refusing would leave the room mute, so speak with the configured voice instead.
            logger.warning(
                "requested voice unavailable locally; using the configured one",
                extra={"voice": voice, "configured_voice": self._voice},
            )
            return await self._engine(self._voice)
        async with self._load_lock:
            if voice not in self._engines and not self._hibari_broken:
                try:
                    self._engines[voice] = await anyio.to_thread.run_sync(_load_hibari, voice)
                except Exception:
                    self._hibari_broken = True
                    logger.warning(
                        "hibari-tts could not load; falling back to espeak-ng", exc_info=True
                    )
            return self._engines.get(voice)

    async def _espeak(self, text: str) -> bytes:
        command = [self._espeak_command, "-v", self._espeak_voice, "--stdout", "--stdin"]
        try:
            # The text goes through stdin so that a reply starting with "-" is never an option.
            result = await anyio.run_process(command, input=text.encode(), check=False)
        except FileNotFoundError as exc:
            raise ProviderError(
                "local TTS: hibari-tts could not load and espeak-ng is not installed "
                "(install it, e.g. apt-get install espeak-ng)",
                vendor=self.name,
                retryable=False,
            ) from exc
        wav = result.stdout
        if result.returncode != 0 or len(wav) < _WAV_HEADER_BYTES or wav[:4] != b"RIFF":
            raise ProviderError(
                f"local TTS: espeak-ng failed (exit status {result.returncode})",
                vendor=self.name,
                retryable=False,
            )
        # --stdout writes placeholder RIFF/data sizes, so trust only the rate and the PCM after
        # the canonical 44-byte header.
        rate = int.from_bytes(wav[24:28], "little")
        body = wav[_WAV_HEADER_BYTES : len(wav) - (len(wav) - _WAV_HEADER_BYTES) % 2]
        pcm = np.frombuffer(body, dtype="<i2")
        if rate == self.sample_rate:
            return pcm.tobytes()
        audio = pcm.astype(np.float32) / _INT16_MAX
        return await anyio.to_thread.run_sync(_to_int16, audio, rate, self.sample_rate)
