from __future__ import annotations

import pytest
from pydantic import ValidationError

import actors.providers
from actors.providers import LlmSettings, Rule, SttSettings, TtsSettings


@pytest.mark.parametrize("model", [SttSettings, LlmSettings, TtsSettings, Rule])
def test_every_field_is_documented(model: type[SttSettings]) -> None:
    undocumented = [name for name, f in model.model_fields.items() if not f.description]
    assert undocumented == []


def _isort_style(name: str) -> tuple[int, str]:
    # Constants, then classes, then functions (ruff's RUF022 order, as elsewhere in the repo).
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_exist() -> None:
    names = actors.providers.__all__
    assert list(names) == sorted(names, key=_isort_style)
    assert all(hasattr(actors.providers, name) for name in names)


def test_defaults_work_offline() -> None:
    assert SttSettings().chain == ("local",)
    assert LlmSettings().chain == ("scripted",)
    assert TtsSettings().chain == ("local",)


def test_fallback_cannot_repeat_the_primary() -> None:
    with pytest.raises(ValidationError, match="repeats the primary"):
        SttSettings(provider="local", fallback=("local",))
    with pytest.raises(ValidationError, match="twice"):
        LlmSettings(provider="openai", fallback=("scripted", "scripted"))


def test_unknown_keys_and_out_of_range_values_are_errors() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SttSettings.model_validate({"endpointing": 300})
    with pytest.raises(ValidationError, match="endpointing_ms"):
        SttSettings(endpointing_ms=0)
    with pytest.raises(ValidationError, match="sample_rate"):
        TtsSettings(sample_rate=12345)
    with pytest.raises(ValidationError, match="deepgram_url"):
        SttSettings(deepgram_url="ftp://example")


def test_a_rule_needs_exactly_one_matcher_and_a_valid_regex() -> None:
    assert Rule(keywords=("hours",), reply="Nine to five.").keywords == ("hours",)
    with pytest.raises(ValidationError, match="exactly one"):
        Rule(reply="x")
    with pytest.raises(ValidationError, match="exactly one"):
        Rule(match="a", keywords=("b",), reply="x")
    with pytest.raises(ValidationError, match="regular expression"):
        Rule(match="(unclosed", reply="x")


def test_cartesia_needs_a_cartesia_voice() -> None:
    with pytest.raises(ValidationError, match="Cartesia voice id"):
        TtsSettings(provider="cartesia")
    with pytest.raises(ValidationError, match="cartesia_voice"):
        TtsSettings(provider="local", fallback=("cartesia",))
    settings = TtsSettings(provider="cartesia", voice="voice-1", fallback=("local",))
    assert settings.chain == ("cartesia", "local")


def test_urls_lose_their_trailing_slash() -> None:
    assert LlmSettings(base_url="http://127.0.0.1:1/v1/").base_url == "http://127.0.0.1:1/v1"


def test_llm_compat_is_openai_or_strict() -> None:
    assert LlmSettings().compat == "openai"
    assert LlmSettings(compat="strict").compat == "strict"
    with pytest.raises(ValidationError, match="compat"):
        LlmSettings(compat="gemma")


def test_retry_after_is_bounded() -> None:
    assert LlmSettings().retry_after_max_s == 2.0
    with pytest.raises(ValidationError, match="retry_after_max_s"):
        LlmSettings(retry_after_max_s=-1)
