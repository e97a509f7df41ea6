"""Prometheus metrics of room actors (their names are listed in the README)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = (
    "AUDIO_FRAMES_DROPPED",
    "BARGE_INS",
    "DATA_MESSAGES",
    "FALSE_INTERRUPTIONS",
    "PREEMPTIVE_GENERATIONS",
    "REPLIES",
    "TOOL_CALLS",
    "TOOL_SECONDS",
    "TOOL_SOURCE_UP",
    "TURN_LATENCY",
)

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)

TURN_LATENCY = Histogram(
    "voice_supervisor_turn_latency_seconds",
    "Latency of a reply by stage: end_of_turn (last speech heard to the recogniser's "
    "end-of-turn decision), stt_final (that decision to the final transcript), llm_first_token, "
    "tts_first_audio, agent_added (final transcript to first audio frame captured), "
    "voice_to_voice (last speech heard to first audio frame captured).",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
AUDIO_FRAMES_DROPPED = Counter(
    "voice_supervisor_audio_frames_dropped_total",
    "Incoming audio frames dropped (oldest first) because STT could not keep up.",
)
BARGE_INS = Counter("voice_supervisor_barge_ins_total", "Replies cut short by a user speaking.")
FALSE_INTERRUPTIONS = Counter(
    "voice_supervisor_false_interruptions_total",
    "Replies paused for speech over the agent that was no barge-in (a cough, an uh-huh), "
    "then resumed where they stopped.",
)
REPLIES = Counter(
    "voice_supervisor_replies_total",
    "Agent replies by outcome: complete, interrupted (cut by a barge-in), provider_error (every "
    "provider of a chain failed; the agent apologised).",
    ["outcome"],
)
PREEMPTIVE_GENERATIONS = Counter(
    "voice_supervisor_preemptive_generations_total",
    "LLM calls started on a likely-final transcript, by outcome: used (the final said the "
    "same words) or discarded.",
    ["outcome"],
)
DATA_MESSAGES = Counter(
    "voice_supervisor_data_messages_total",
    "Data messages and streams by topic (agent.command, lk.chat, agent.file, agent.reply, "
    "lk.transcription) and result (ok, refused, forbidden, over_quota, too_large, aborted, "
    "dropped, error).",
    ["topic", "result"],
)
TOOL_CALLS = Counter(
    "voice_supervisor_tool_calls_total",
    "Tool calls by source (builtin, config, backend, mcp) and outcome (ok, or the error: "
    "timeout, unavailable, refused, invalid_arguments, too_large, unknown_tool, cancelled; "
    "forbidden: a built-in the caller's role may not use).",
    ["source", "outcome"],
)
TOOL_SECONDS = Histogram(
    "voice_supervisor_tool_call_seconds",
    "Time from a tool call's start to its result, by source.",
    ["source"],
    buckets=_LATENCY_BUCKETS,
)
TOOL_SOURCE_UP = Gauge(
    "voice_supervisor_tool_source_up",
    "Whether a tool source (an MCP server, source mcp:NAME) answered its last check: 1 up, "
    "0 down (its tools are left out meanwhile).",
    ["source"],
)
