"""Turn-taking helpers shared by room actors: sentence chunking, spoken-text accounting."""

from __future__ import annotations

from actors.pipeline._chunker import SentenceChunker
from actors.pipeline._spoken import SpokenText

__all__ = ("SentenceChunker", "SpokenText")
