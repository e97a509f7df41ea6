"""Turn-taking helpers shared by room actors: sentence chunking, spoken-text accounting, and
whether a turn reads finished or is only a backchannel."""

from __future__ import annotations

from actors.pipeline._chunker import BREAK, SentenceChunker
from actors.pipeline._pause import ReplyHold
from actors.pipeline._silence import leading_silence_bytes
from actors.pipeline._spoken import SpokenText
from actors.pipeline._turns import PauseHabit, is_backchannel, likely_complete, meaningful_words

__all__ = (
    "BREAK",
    "PauseHabit",
    "ReplyHold",
    "SentenceChunker",
    "SpokenText",
    "is_backchannel",
    "leading_silence_bytes",
    "likely_complete",
    "meaningful_words",
)
