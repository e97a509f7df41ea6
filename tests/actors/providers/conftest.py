"""Fixtures of the provider tests: the vendor wire-protocol fakes."""

from __future__ import annotations

from tests.fakes.fixtures import cartesia_fake, deepgram_fake, openai_fake

__all__ = ("cartesia_fake", "deepgram_fake", "openai_fake")
