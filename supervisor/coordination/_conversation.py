"""The live conversation of a room whose agents run on several daemons: a Redis stream.

Each daemon's ``Team`` of a room tells the others what it adds to the history (a user's turn,
its agents' replies) and its hand-overs (``actors.room.TeamNews``) through
``conversation:{conversation_id}``, a stream trimmed to about the history limit. Each daemon
reads the entries of the others (its own are skipped by node id) into its team: another
daemon's agent's reply joins the history the next answer is composed from, a user turn heard
here already is not added twice, and a hand-over to an agent here makes it answer.

The stream is live news, not the record: an agent that starts (a restart, a takeover) restores
the history from the backend as always and reads the stream from then on. When Redis cannot
be reached news is dropped (each daemon goes on with what it has), logged once per stream.
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskStatus

from actors import CoordinationError
from actors.room import Team, TeamNews
from supervisor.coordination._redis import RedisStore

__all__ = ("RedisRelay",)

logger = logging.getLogger(__name__)

_QUEUE = 256
_RETRY_S = 1.0


class RedisRelay:
    """The ``actors.room.Relay`` of one room's team over a Redis stream.

    Args:
        store: the Redis calls.
        team: the room's agents on this daemon (news from the others goes to it).
        conversation_id: names the stream.
        node_id: this daemon's ``[redis] node_id`` (its own entries are skipped).
        keep: about how many entries the stream keeps (``[persistence] history_limit``).
        block_s: how long one read waits for news (below the Redis command timeout).
    """

    def __init__(
        self,
        store: RedisStore,
        team: Team,
        conversation_id: str,
        *,
        node_id: str,
        keep: int,
        block_s: float,
    ) -> None:
        self._store = store
        self._team = team
        self._key = store.conversation_key(conversation_id)
        self._node = node_id
        self._keep = max(1, keep)
        self._block_ms = max(1, int(block_s * 1000))
        self._send, self._receive = anyio.create_memory_object_stream[TeamNews](_QUEUE)
        self._warned = False

    def publish(self, news: TeamNews) -> None:
        try:
            self._send.send_nowait(news)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the others miss it; the backend has the turn anyway

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Send this daemon's news and read the others', until cancelled."""
        with self._send, self._receive:
            after = await self._last_id()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._send_loop, name="relay:send")
                task_status.started()
                await self._read_loop(after)

    async def _last_id(self) -> str:
        # Reading from "$" each time would miss what others add between two reads: read on
        # from the newest entry there is now (or from the start of an empty stream).
        try:
            return await self._store.last_news_id(self._key) or "0-0"
        except CoordinationError as exc:
            self._unreachable(exc)
            return "$"

    async def _send_loop(self) -> None:
        async for news in self._receive:
            fields = {
                "node": self._node,
                "kind": news.kind,
                "agent": news.agent,
                "role": news.role,
                "content": news.content,
                "speaker": news.speaker or "",
                "interrupted": "1" if news.interrupted else "0",
                "ts": repr(news.ts),
                "event_id": news.event_id,
                "to": news.to,
            }
            try:
                await self._store.append_news(self._key, fields, self._keep)
            except CoordinationError as exc:
                self._unreachable(exc)

    async def _read_loop(self, after: str) -> None:
        while True:
            try:
                entries = await self._store.read_news(self._key, after, self._block_ms)
            except CoordinationError as exc:
                self._unreachable(exc)
                await anyio.sleep(_RETRY_S)
                continue
            for entry_id, fields in entries:
                after = entry_id
                if fields.get("node") != self._node:
                    self._team.news(_news(fields))

    def _unreachable(self, exc: CoordinationError) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "conversation stream: Redis unreachable; agents on other daemons miss news",
                extra={"error": type(exc).__name__},
            )


def _news(fields: dict[str, str]) -> TeamNews:
    try:
        ts = float(fields.get("ts", "0"))
    except ValueError:
        ts = 0.0
    return TeamNews(
        kind=fields.get("kind", "turn"),
        agent=fields.get("agent", ""),
        role=fields.get("role", ""),
        content=fields.get("content", ""),
        speaker=fields.get("speaker") or None,
        interrupted=fields.get("interrupted") == "1",
        ts=ts,
        event_id=fields.get("event_id", ""),
        to=fields.get("to", ""),
    )
