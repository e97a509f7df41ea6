"""Test harness: real livekit-server, daemon runners, caller bots, waits with deadlines."""
