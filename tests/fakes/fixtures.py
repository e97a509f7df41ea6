"""Pytest fixtures serving the vendor wire-protocol fakes on 127.0.0.1 (a free port each).

Import them into a conftest (``from tests.fakes.fixtures import deepgram_fake, ...``). Each
fixture yields the fake's configuration object, with the server already listening; tests set
its fault knobs (``fail_status``, delays, ``drop_after_*``) and read what it recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.cartesia_fake import CartesiaFake
from tests.fakes.deepgram_fake import DeepgramFake
from tests.fakes.openai_fake import OpenAiFake

__all__ = ("cartesia_fake", "deepgram_fake", "openai_fake")


@pytest.fixture
async def deepgram_fake() -> AsyncIterator[DeepgramFake]:
    """A Deepgram ``/v1/listen`` fake; point ``stt.deepgram_url`` at ``.url``."""
    async with DeepgramFake().serve() as fake:
        yield fake


@pytest.fixture
async def openai_fake() -> AsyncIterator[OpenAiFake]:
    """An OpenAI chat-completions fake; point ``llm.base_url`` at ``.base_url``."""
    async with OpenAiFake().serve() as fake:
        yield fake


@pytest.fixture
async def cartesia_fake() -> AsyncIterator[CartesiaFake]:
    """A Cartesia ``/tts/websocket`` fake; point ``tts.cartesia_url`` at ``.url``."""
    async with CartesiaFake().serve() as fake:
        yield fake
