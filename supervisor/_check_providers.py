"""``voice-supervisor check-providers``: one tiny real request to every configured provider.

For each stage (``[stt]``, ``[llm]``, ``[tts]``), and each stage an agent profile changes
(``[agents.NAME.llm]``...), every provider of its chain (the primary, then each fallback) is
built on its own from the config, with the real credentials, and asked one
small thing: a second of silence to recognise, "ping" to answer (only the first token is read,
to spend as little as possible), a word to speak. Each line says whether it worked, how long the
first output took (STT: the stream open; LLM: the first token; TTS: the first audio chunk) and,
for a failure, the setting to fix. It never starts rooms, never logs what was said, and never
prints a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TextIO

import anyio

from actors import ConfigError, ProviderError
from actors._exceptions import ProviderConnectionError, ProviderTimeoutError
from actors.providers import (
    STT_SAMPLE_RATE,
    ChatMessage,
    LlmSettings,
    SttSettings,
    TtsSettings,
    build_llm,
    build_stt,
    build_tts,
)
from supervisor._config import Config

__all__ = ("REMOTE_VENDORS", "CheckResult", "check_providers", "run_check_providers")

_SILENCE_S = 1.0
_CHUNK_S = 0.02
_PING = "ping"
_WORD = "Hello."
_TOTAL_S = 30.0  # no single check may hang the command for longer than this
_URL_SETTING = {"deepgram": "deepgram_url", "openai": "base_url", "cartesia": "cartesia_url"}
REMOTE_VENDORS = frozenset(_URL_SETTING)
"""The providers reached over the network (the others run in the room host)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One provider's check.

    Attributes:
        stage: ``stt``, ``llm`` or ``tts``; a profile's own chain: ``agents.NAME.llm``.
        provider: the provider's name in the config.
        ok: whether the request worked.
        first_output_s: time to the first output, when there was one.
        total_s: time for the whole request.
        detail: what was done, or (on failure) what went wrong and the setting to fix.
    """

    stage: str
    provider: str
    ok: bool
    first_output_s: float | None
    total_s: float
    detail: str


def _alone(settings: Any, vendor: str, index: int) -> Any:
    """``settings`` with ``vendor`` as the only provider, configured as in its chain."""
    update: dict[str, Any] = {"provider": vendor, "fallback": ()}
    if isinstance(settings, TtsSettings) and index > 0:
        # As build_tts does: a fallback speaks with its own default voice.
        update["voice"] = settings.cartesia_voice if vendor == "cartesia" else "heart"
    return settings.model_copy(update=update)


def _advice(stage: str, vendor: str, exc: Exception) -> str:
    """The error's sentence, plus the setting to look at when the error names none."""
    text = str(exc)
    if "[" in text:  # our messages name the setting, e.g. "[llm] compat"
        return text
    url = _URL_SETTING.get(vendor)
    if isinstance(exc, ProviderConnectionError) and url:
        return f"{text}: check [{stage}] {url} and the network"
    if isinstance(exc, ProviderTimeoutError):
        return f"{text}: the provider is slow or unreachable (see [{stage}] timeout_s)"
    return text


async def _stt(settings: SttSettings) -> tuple[float, str]:
    chain = build_stt(settings)
    began = time.perf_counter()
    try:
        async with chain.stream() as stream:
            opened = time.perf_counter() - began
            frame = bytes(int(STT_SAMPLE_RATE * _CHUNK_S) * 2)
            for _ in range(round(_SILENCE_S / _CHUNK_S)):
                await stream.send(frame)
            await stream.end_input()
            words = [e.text async for e in stream.events() if e.text]
    finally:
        await chain.aclose()
    heard = "words (on silence!)" if words else "no words"
    return opened, f"stream opened; {_SILENCE_S:g} s of silence sent, {heard}"


async def _llm(settings: LlmSettings) -> tuple[float, str]:
    chain = build_llm(settings)
    began = time.perf_counter()
    try:
        replies = chain.complete([ChatMessage("user", _PING)])
        try:
            async for delta in replies:
                if delta:  # "" is a reasoning model thinking
                    return time.perf_counter() - began, f'"{_PING}" answered'
        finally:
            await replies.aclose()
    finally:
        await chain.aclose()
    return time.perf_counter() - began, "the reply was empty"


async def _tts(settings: TtsSettings) -> tuple[float, str]:
    chain = build_tts(settings)
    began = time.perf_counter()
    first: float | None = None
    samples = 0
    try:
        async for pcm in chain.synthesize(_WORD):
            first = time.perf_counter() - began if first is None else first
            samples += len(pcm) // 2
    finally:
        await chain.aclose()
    if first is None:
        raise ProviderError(f"{chain.name} returned no audio", vendor=chain.name, retryable=False)
    return first, f"{samples / chain.sample_rate:.2f} s of audio for one word"


async def _check(stage: str, vendor: str, run: Callable[[], Any], deadline_s: float) -> CheckResult:
    began = time.perf_counter()
    try:
        with anyio.fail_after(deadline_s):
            first, detail = await run()
    except TimeoutError:
        took = time.perf_counter() - began
        detail = f"no answer within {deadline_s:g} s: see [{stage}] timeout_s and the network"
        return CheckResult(stage, vendor, False, None, took, detail)
    except (ConfigError, ProviderError) as exc:
        took = time.perf_counter() - began
        return CheckResult(stage, vendor, False, None, took, _advice(stage, vendor, exc))
    return CheckResult(stage, vendor, True, first, time.perf_counter() - began, detail)


async def check_providers(config: Config, *, remote_only: bool = False) -> list[CheckResult]:
    """Check every provider of every stage's chain, one after the other.

    Args:
        config: the configuration whose chains are checked.
        remote_only: only the vendors reached over the network (``REMOTE_VENDORS``), as
            ``check-config --connect`` does: the local ones need no connection, and building
            them (which ``check-config`` always does) is their check.

    Returns:
        One result per provider, in stage order (stt, llm, tts), primary first; then the
        profiles' own chains, profile by profile.
    """
    results: list[CheckResult] = []
    for stage, settings, request in _chains(config):
        for index, vendor in enumerate(settings.chain):
            if remote_only and vendor not in REMOTE_VENDORS:
                continue
            alone = _alone(settings, vendor, index)
            deadline = min(_TOTAL_S, settings.timeout_s + _SILENCE_S + 5.0)
            results.append(await _check(stage, vendor, partial(request, alone), deadline))
    return results


def _chains(config: Config) -> list[tuple[str, Any, Callable[[Any], Any]]]:
    """Every chain a room may use: the shared three, then each stage a profile changes."""
    requests: dict[str, Callable[[Any], Any]] = {"stt": _stt, "llm": _llm, "tts": _tts}
    chains: list[tuple[str, Any, Callable[[Any], Any]]] = [
        (stage, getattr(config, stage), request) for stage, request in requests.items()
    ]
    for name, profile in config.agents.items():
        own = dict(zip(requests, config.stages(name), strict=True))
        for stage, request in requests.items():
            if getattr(profile, stage):
                chains.append((f"agents.{name}.{stage}", own[stage], request))
    return chains


def render(results: list[CheckResult], out: TextIO) -> None:
    """One line per provider; failures carry the setting to fix."""
    width = max([6, *(len(r.stage) + 2 for r in results)])
    out.write(f"{'stage':<{width}}{'provider':<10}{'result':<8}{'first output':>13}  detail\n")
    for r in results:
        latency = f"{r.first_output_s * 1000:.0f} ms" if r.first_output_s is not None else "-"
        result = "ok" if r.ok else "FAILED"
        out.write(f"{r.stage:<{width}}{r.provider:<10}{result:<8}{latency:>13}  {r.detail}\n")
    failed = sum(not r.ok for r in results)
    summary = "all providers answered" if not failed else f"{failed} provider(s) failed"
    out.write(f"{summary}\n")


def run_check_providers(config: Config, out: TextIO) -> int:
    """Run the checks and print them; the command's exit status (0: all worked, 1: not)."""
    # The table says everything; the providers' own warnings would only repeat it on stderr.
    quiet = logging.NullHandler()
    actors_logger = logging.getLogger("actors")
    actors_logger.addHandler(quiet)
    try:
        results = anyio.run(check_providers, config, backend="asyncio")
    finally:
        actors_logger.removeHandler(quiet)
    render(results, out)
    return 0 if all(r.ok for r in results) else 1
