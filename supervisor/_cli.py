"""The ``voice-supervisor`` command line.

voice-supervisor run [--config PATH] [--playground]   run the daemon until SIGTERM/SIGINT
voice-supervisor check-config PATH [--bind-check] [--connect]
                                               validate a config file and what run would do with
                                               it: provider keys, URLs, data_dir; with --bind-check
                                               the port is free; with --connect LiveKit, the
                                               backend, Redis and the network providers answer
                                               (exit 2 on any error)
voice-supervisor check-providers [--config PATH]   one tiny real request to each provider
voice-supervisor sessions [--config PATH] [--json]
voice-supervisor messages CONVERSATION_ID [--config PATH] [--json]
voice-supervisor dead-letters [--config PATH] [--json]      list every outbox's dead letters
voice-supervisor dead-letters replay [ID ...] [--config PATH]   put them back (all without ids)
voice-supervisor backend --db PATH --port N [--host H] [--token T]   serve the reference backend
voice-supervisor config-docs                   print the configuration reference (Markdown)
voice-supervisor metrics-docs                  print the metrics reference (Markdown)

Exit status: 0 on success, 2 for a configuration error (an invalid file, a provider without its
key, a room host that cannot start for a configuration reason: service managers should not
restart on it), 1 for anything else (a failed check-providers, a dead letter not found).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from actors import ConfigError
from actors.persistence import (
    DeadLetter,
    EmbeddedStore,
    read_dead_letters,
    replay_dead_letters,
    run_backend,
)
from actors.room import dispose_rtc
from supervisor._config import Config, load_config
from supervisor._daemon import Daemon
from supervisor._logging import configure_logging

__all__ = ("main",)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voice-supervisor", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            type=Path,
            default=None,
            help="config.toml (default: ./config.toml if present, else built-in defaults)",
        )

    run = sub.add_parser("run", help="run the daemon in the foreground")
    with_config(run)
    run.add_argument(
        "--playground",
        action="store_true",
        help="serve the dev playground for this run ([playground] enabled = true; loopback only)",
    )
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path", type=Path)
    check.add_argument(
        "--bind-check",
        action="store_true",
        help="also check that [server] host:port is free to listen on",
    )
    check.add_argument(
        "--connect",
        action="store_true",
        help="also try LiveKit, the backend, Redis and the network providers with the config",
    )
    sub.add_parser("config-docs", help="print the configuration reference (Markdown)")
    sub.add_parser("metrics-docs", help="print the metrics reference (Markdown)")
    providers = sub.add_parser(
        "check-providers", help="one tiny real request to each configured provider"
    )
    with_config(providers)
    sessions = sub.add_parser("sessions", help="list stored session summaries")
    with_config(sessions)
    sessions.add_argument("--json", action="store_true", help="print JSON")
    messages = sub.add_parser("messages", help="print a conversation's stored messages")
    messages.add_argument("conversation_id")
    with_config(messages)
    messages.add_argument("--json", action="store_true", help="print JSON")
    dead = sub.add_parser("dead-letters", help="list the outboxes' dead letters, or replay them")
    with_config(dead)
    dead.add_argument("--json", action="store_true", help="print JSON")
    dead_sub = dead.add_subparsers(dest="dead_letters_command")
    replay = dead_sub.add_parser("replay", help="put dead letters back in their outbox")
    replay.add_argument("ids", nargs="*", metavar="ID", help="event ids (default: all of them)")
    # SUPPRESS: a --config given before "replay" is not reset by this parser's default.
    replay.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config.toml")
    backend = sub.add_parser("backend", help="serve the reference backend over a SQLite file")
    backend.add_argument("--db", type=Path, required=True, help="SQLite file (created if new)")
    backend.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    backend.add_argument("--host", default="127.0.0.1", help="address to bind")
    backend.add_argument("--token", default=None, help="bearer token every request must carry")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        match args.command:
            case "config-docs":
                from supervisor._config_docs import render_config_reference

                print(render_config_reference())
                return 0
            case "metrics-docs":
                from supervisor._metrics_docs import render_metrics_reference

                print(render_metrics_reference())
                return 0
            case "check-config":
                return _check_config(args.path, bind=args.bind_check, connect=args.connect)
            case "check-providers":
                from supervisor._check_providers import run_check_providers

                return run_check_providers(_load(args.config), sys.stdout)
            case "run":
                overrides = {"playground": {"enabled": True}} if args.playground else None
                config = load_config(_path(args.config), overrides=overrides)
                configure_logging(config.logging)
                daemon = Daemon(config, config_path=_path(args.config), config_overrides=overrides)
                anyio.run(_run_daemon, daemon, backend="asyncio")
                return 0
            case "sessions":
                return _print_sessions(_load(args.config), as_json=args.json)
            case "messages":
                return _print_messages(_load(args.config), args.conversation_id, as_json=args.json)
            case "dead-letters":
                if args.dead_letters_command == "replay":
                    return _replay_dead_letters(_load(args.config), args.ids)
                return _print_dead_letters(_load(args.config), as_json=args.json)
            case "backend":
                return run_backend(args.db, host=args.host, port=args.port, token=args.token)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


def _check_config(path: Path, *, bind: bool, connect: bool) -> int:
    from supervisor._connect import connect_checks
    from supervisor._preflight import bind_problem, config_problems, provider_problems

    config = load_config(path)
    building = provider_problems(config)
    problems = building + config_problems(config, providers=False)
    if bind:
        problem = bind_problem(config.server)
        problems += [problem] if problem else []
        if problem is None and config.server.port:
            print(f"ok: [server] {config.server.host}:{config.server.port} is free to listen on")
    if connect:
        # Provider chains that cannot even be built were named above; not twice.
        for probe in anyio.run(partial(connect_checks, config, providers=not building)):
            if probe.ok:
                print(f"ok: {probe.setting}: {probe.detail} ({probe.took_s * 1000:.0f} ms)")
            else:
                problems.append(probe.detail)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"{path}: OK")
    return 0


async def _run_daemon(daemon: Daemon) -> None:
    try:
        await daemon.run(handle_signals=True)
    except BaseExceptionGroup as group:
        # A room host that cannot start for a configuration reason ends the start-up inside
        # task groups: the reason leaves as itself, for the exit status 2.
        config_errors, _ = group.split(ConfigError)
        if config_errors is None:
            raise
        raise _first(config_errors) from group
    finally:
        dispose_rtc()


def _first(group: BaseExceptionGroup[ConfigError]) -> ConfigError:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, ConfigError)
    return exc


def _path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    default = Path("config.toml")
    return default if default.exists() else None


def _load(given: Path | None) -> Config:
    return load_config(_path(given))


def _print_sessions(config: Config, *, as_json: bool) -> int:
    store = EmbeddedStore(config.persistence.store_path)
    try:
        sessions = store.sessions()
    finally:
        store.close()
    if as_json:
        print(json.dumps(sessions, indent=2))
        return 0
    if not sessions:
        print("no sessions stored")
        return 0
    print(f"{'started (UTC)':<20} {'duration':>9} {'msgs':>5} {'people':>6}  room / conversation")
    for s in sessions:
        people = sum(1 for p in s.get("participants", []))
        print(
            f"{_when(s.get('started_at', 0)):<20} {s.get('duration_s', 0):>8.1f}s "
            f"{s.get('message_count', 0):>5} {people:>6}  "
            f"{s.get('room')} / {s.get('conversation_id')}"
        )
    return 0


def _print_messages(config: Config, conversation_id: str, *, as_json: bool) -> int:
    store = EmbeddedStore(config.persistence.store_path)
    try:
        messages = store.recent_messages(conversation_id, 1_000_000)
    finally:
        store.close()
    if as_json:
        print(json.dumps(messages, indent=2))
        return 0
    if not messages:
        print(f"no messages stored for conversation {conversation_id}")
        return 0
    for m in messages:
        who = m["role"] if not m.get("speaker") else f"{m['role']} ({m['speaker']})"
        flag = " [interrupted]" if m.get("interrupted") else ""
        print(f"{_when(m['ts'])}  {who}: {m['content']}{flag}")
    return 0


def _print_dead_letters(config: Config, *, as_json: bool) -> int:
    letters = read_dead_letters(config.persistence.data_dir)
    if as_json:
        print(json.dumps([_dead_letter_json(d) for d in letters], indent=2))
        return 0
    if not letters:
        print(f"no dead letters in {config.persistence.data_dir}")
        return 0
    print(f"{'failed (UTC)':<20} {'status':>6}  {'outbox':<26} {'id':<35} {'type':<24} reason")
    for d in letters:
        status = "-" if d.status is None else str(d.status)
        print(
            f"{_when(d.failed_at):<20} {status:>6}  {d.outbox:<26} {d.id:<35} {d.type:<24} "
            f"{d.reason}"
        )
    return 0


def _dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    out = {key: value for key, value in asdict(letter).items() if key != "body"}
    try:
        out["event"] = json.loads(letter.body)
    except ValueError:
        out["event"] = letter.body
    return out


def _replay_dead_letters(config: Config, ids: list[str]) -> int:
    replayed, missing = replay_dead_letters(
        config.persistence.data_dir, ids or None, datetime.now(UTC).timestamp()
    )
    print(f"replayed {replayed} dead letter{'' if replayed == 1 else 's'}")
    for event_id in sorted(missing):
        print(f"no dead letter with id {event_id}", file=sys.stderr)
    return 1 if missing else 0


def _when(ts: Any) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")
