"""``python -m tests.failover._daemon_main --config PATH``: the daemon as ``voice-supervisor run``
runs it, with offline providers whose answers show what the agent remembers.

``RecallLlm`` answers "<n> things so far; first you said: <first user message>", so an answer
after a takeover proves the new agent restored the conversation and uses it.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

import anyio

from actors.providers import ChatMessage
from actors.room import Providers, dispose_rtc
from supervisor import Daemon, load_config
from supervisor._logging import configure_logging
from tests.fakes.instant import InstantStt, ToneTts


class RecallLlm:
    name = "recall"

    async def complete(
        self, messages: Sequence[ChatMessage], *, instructions: str | None = None
    ) -> AsyncGenerator[str]:
        said = [m.content for m in messages if m.role == "user"]
        first = said[0] if said else ""
        reply = f"{len(said)} things so far; first you said: {first.rstrip('.')}."
        for i, word in enumerate(reply.split(" ")):
            yield word if i == 0 else " " + word

    async def aclose(self) -> None:
        pass


async def _run(daemon: Daemon) -> None:
    try:
        await daemon.run(handle_signals=True)
    finally:
        dispose_rtc()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()
    config = load_config(args.config)
    configure_logging(config.logging)
    providers = Providers(InstantStt(), RecallLlm(), ToneTts(ms_per_word=20))
    daemon = Daemon(config, config_path=args.config, providers=providers)
    anyio.run(_run, daemon, backend="asyncio")


if __name__ == "__main__":
    main()
