from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from actors import ConfigError, ProviderError
from actors.providers import LocalTts
from actors.providers import local_tts as local_tts_module

SENTENCE = "Hello there. How can I help you today?"


async def synthesize(tts: LocalTts, text: str, **kwargs: str) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(text, **kwargs)]


@pytest.fixture(scope="module")
def tts() -> LocalTts:
    # One provider for the module: hibari loads once.
    return LocalTts(chunk_s=0.08)


async def test_hibari_speaks_real_audio_in_even_chunks(tts: LocalTts) -> None:
    chunks = await synthesize(tts, SENTENCE)
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
    seconds = len(pcm) / tts.sample_rate
    assert 1.5 < seconds < 6.0  # a short two-sentence reply
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300  # speech, not silence
    step = int(0.08 * tts.sample_rate) * 2
    assert all(len(chunk) == step for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= step


async def test_other_sample_rates_are_resampled(tts: LocalTts) -> None:
    native = b"".join(await synthesize(tts, "Testing one two."))
    tts16 = LocalTts(sample_rate=16_000)
    resampled = b"".join(await synthesize(tts16, "Testing one two."))
    assert len(resampled) / len(native) == pytest.approx(16_000 / 24_000, rel=0.02)


async def test_empty_text_gives_no_audio(tts: LocalTts) -> None:
    assert await synthesize(tts, "   ") == []


def test_voices_that_would_need_a_download_are_refused() -> None:
    with pytest.raises(ConfigError, match="heart"):
        LocalTts(voice="emma")
    with pytest.raises(ConfigError, match="not a hibari voice"):
        LocalTts(voice="no-such-voice")


async def test_a_room_voice_unknown_to_hibari_falls_back_to_the_configured_one(
    tts: LocalTts, caplog: pytest.LogCaptureFixture
) -> None:
    own = b"".join(await synthesize(tts, "Hi."))
    other = b"".join(await synthesize(tts, "Hi.", voice="some-cartesia-id"))
    assert abs(len(own) - len(other)) < len(own) * 0.2  # spoken, by the same voice
    assert "requested voice unavailable locally" in caplog.text


FAKE_ESPEAK = """\
import sys
import numpy as np
text = sys.stdin.read()
rate = 22050
pcm = (0.3 * 32767 * np.sin(np.arange(int(rate * 0.01 * len(text))) / 10)).astype("<i2")
placeholder = (0x7FFFF024).to_bytes(4, "little")
header = (b"RIFF" + placeholder + b"WAVEfmt " + (16).to_bytes(4, "little")
          + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
          + rate.to_bytes(4, "little") + (rate * 2).to_bytes(4, "little")
          + (2).to_bytes(2, "little") + (16).to_bytes(2, "little") + b"data" + placeholder)
sys.stdout.buffer.write(header + pcm.tobytes())
"""


def _break_hibari(voice: str) -> object:
    raise RuntimeError("onnxruntime cannot load the model")


async def test_espeak_speaks_when_hibari_cannot_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in with espeak-ng's --stdout quirk (placeholder RIFF sizes), so the test does not
    # depend on espeak-ng being installed.
    script = tmp_path / "espeak-ng"
    script.write_text(f"#!{sys.executable}\n{FAKE_ESPEAK}")
    script.chmod(0o755)
    monkeypatch.setattr(local_tts_module, "_load_hibari", _break_hibari)
    tts = LocalTts(sample_rate=16_000, espeak_command=str(script))
    text = "-v starts with a dash"
    pcm = b"".join(await synthesize(tts, text))
    expected_seconds = 0.01 * len(text)
    assert len(pcm) / 2 / 16_000 == pytest.approx(expected_seconds, rel=0.02)


async def test_missing_espeak_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_tts_module, "_load_hibari", _break_hibari)
    tts = LocalTts(espeak_command="/nonexistent/espeak-ng")
    with pytest.raises(ProviderError, match="espeak-ng is not installed") as caught:
        await synthesize(tts, "Hello.")
    assert not caught.value.retryable
