"""Provider health: the chains record each provider's last success and failure, a host's pong
carries them, and the supervisor's readyz shows them merged across hosts (without turning
503: a chain's fallbacks answer while one provider fails)."""

from __future__ import annotations

import pytest

from actors.providers import FallbackLlm, merge_health, provider_health
from supervisor import Daemon, parse_config
from supervisor.host import Pong, decode, encode
from supervisor.workers import WorkerPool
from tests.actors.providers.test_fallback import MESSAGES, StubLlm, collect, down, unique


def seen(stage: str, vendor: str) -> dict[str, object]:
    return next(h for h in provider_health() if (h["stage"], h["vendor"]) == (stage, vendor))


@pytest.mark.anyio
async def test_a_failing_provider_is_reported_failing_and_its_fallback_ok() -> None:
    first = StubLlm(unique("a"), error=down("a"))
    second = StubLlm(unique("b"), ["fine"])
    chain = FallbackLlm([first, second], timeout_s=1.0)
    assert await collect(chain.complete(MESSAGES)) == "fine"
    failing = seen("llm", first.name)
    assert failing["failing"] is True and failing["last_error"] == "ProviderConnectionError"
    assert failing["last_ok_age_s"] is None and failing["last_failure_age_s"] is not None
    working = seen("llm", second.name)
    assert working["failing"] is False and working["last_error"] is None


def test_hosts_reports_merge_into_the_latest_outcome() -> None:
    a = {"stage": "stt", "vendor": "deepgram", "last_ok_age_s": 30.0}
    b = {"stage": "stt", "vendor": "deepgram", "last_ok_age_s": 50.0, "last_failure_age_s": 2.0}
    b["last_error"] = "ProviderTimeoutError"
    assert merge_health([[a], [b]]) == {
        "stt:deepgram": {
            "last_ok_age_s": 30.0,
            "last_failure_age_s": 2.0,
            "last_error": "ProviderTimeoutError",
            "failing": True,
        }
    }
    a["last_ok_age_s"] = 1.0  # another host got an answer since: not failing
    assert merge_health([[a], [b]])["stt:deepgram"]["failing"] is False


def test_readyz_shows_the_providers_from_the_pongs_and_stays_ready() -> None:
    report = {
        "stage": "tts",
        "vendor": "cartesia",
        "last_ok_age_s": None,
        "last_failure_age_s": 0.5,
        "last_error": "ProviderStatusError",
        "failing": True,
    }
    pong = Pong(3, 100.0, [], None, [report])
    assert decode(encode(pong)) == pong
    config = parse_config({"supervisor": {"workers": 2}}, environ={})
    daemon = Daemon(config)
    daemon.pool = WorkerPool(config)
    daemon.pool.workers[0].providers = pong.providers
    ready, details = daemon._readiness()
    assert ready
    assert details["providers"] == {
        "tts:cartesia": {
            "last_ok_age_s": None,
            "last_failure_age_s": 0.5,
            "last_error": "ProviderStatusError",
            "failing": True,
        }
    }
