"""The operator's docs name only what exists: every metric in README.md and docs/*.md is
registered by the code, and every ``voice-supervisor`` command they show is a subcommand of
the CLI (the issue-16 check: docs that drifted from the code misled an on-call engineer)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from prometheus_client import REGISTRY

import supervisor  # noqa: F401 (imports every module that registers a metric)
from supervisor._cli import _parser
from supervisor.workers import WorkerPool  # noqa: F401 (the room hosts' metrics too)

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_PREFIX = "voice_supervisor_"
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def _registered() -> set[str]:
    # Family names: a counter's lacks "_total", and a labelled metric has no sample until used.
    return {family.name for family in REGISTRY.collect()}


def _documented_metrics(text: str) -> set[str]:
    names = set(re.findall(rf"\b{_PREFIX}[a-z_]*[a-z]", text))
    # docs/operations.md tabulates them without the prefix: "| `webhooks_total` | ...".
    section = (
        text.split("\n## Metrics", 1)[1].split("\n## ", 1)[0] if "\n## Metrics" in text else ""
    )
    rows = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    names |= {n if n.startswith(_PREFIX) else _PREFIX + n for n in rows}
    return names


def _code(text: str) -> list[str]:
    """Fenced blocks and inline code spans: where the docs show commands."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.M | re.S)
    return fenced + re.findall(r"`([^`\n]+)`", prose)


def _subcommands() -> set[str]:
    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def _log_messages() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "supervisor").rglob("*.py"))
    return set(re.findall(r'"(voice-supervisor [a-z ]+)"', source))


def test_every_documented_metric_is_registered() -> None:
    registered = _registered()
    missing = {
        f"{doc.name}: {name}"
        for doc in DOCS
        for name in _documented_metrics(doc.read_text())
        if name not in registered
        and not any(name.endswith(s) and name.removesuffix(s) in registered for s in _SUFFIXES)
    }
    assert not missing, sorted(missing)


def test_every_documented_command_exists() -> None:
    commands, logged = _subcommands(), _log_messages()
    shown: set[tuple[str, str]] = set()
    for doc in DOCS:
        for code in _code(doc.read_text()):
            for before, word in re.findall(
                r"(^|\S*\s?)voice-supervisor ([a-z][a-z-]*)(?![\w.-])", code, flags=re.M
            ):
                # "sudo -u voice-supervisor sh", "-g voice-supervisor file": the service user.
                if before.strip() in ("-u", "-g") or f"voice-supervisor {word}" in logged:
                    continue
                shown.add((doc.name, word))
    assert {word for _, word in shown} >= {"run", "check-config", "dead-letters"}
    unknown = sorted(
        f"{doc}: voice-supervisor {word}" for doc, word in shown if word not in commands
    )
    assert not unknown, unknown
