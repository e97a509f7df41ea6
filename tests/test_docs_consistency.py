"""The operator's docs name only what exists: every metric in README.md and docs/*.md is
registered by the code (and ``docs/metrics.md`` is generated from them), every
``voice-supervisor`` command they show is a subcommand of the CLI, and every config key they,
``config.toml`` and ``deploy/*.toml`` name is in the settings models (the issue-16 check: docs
that drifted from the code misled an on-call engineer)."""

from __future__ import annotations

import argparse
import re
import typing
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from pydantic import BaseModel

import supervisor  # noqa: F401 (imports every module that registers a metric)
from supervisor._cli import _parser
from supervisor._config import Config
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


def test_the_metrics_reference_is_up_to_date() -> None:
    from supervisor._metrics_docs import render_metrics_reference

    shipped = (ROOT / "docs" / "metrics.md").read_text()
    assert shipped.strip() == render_metrics_reference().strip(), (
        "docs/metrics.md is stale: run `python -m supervisor metrics-docs > docs/metrics.md`"
    )


# -- config keys ------------------------------------------------------------------------------

_NOT_IN_CONFIG_TOML = {"tools", "mcp_servers", "tool_calls", "agents"}
"""Optional tables config.toml leaves to their own docs (they hold nothing by default)."""
_TOML_FILES = [ROOT / "config.toml", *sorted((ROOT / "deploy").glob("*.toml"))]
_SECTION = re.compile(r"^#?\s*\[\[?([a-z_]+)(?:\.[A-Za-z0-9_*-]+)?\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^#?\s*([a-z_][a-z0-9_]*)\s*=")
_MENTION = re.compile(r"^\[([a-z_]+)(?:\.[A-Za-z0-9_*-]+)?\] ([a-z_][a-z0-9_]*)\b")


def _model_of(section: str) -> type[BaseModel] | None:
    """The settings model of a config section: ``[name]``, ``[name.X]`` (a table of
    profiles) or ``[[name]]`` (an array of tables); None when the section is unknown."""
    field = Config.model_fields.get(section)
    if field is None:
        return None
    annotation: Any = field.annotation
    for _ in range(2):  # dict[str, Model] and tuple[Model, ...]: the model is an argument
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        annotation = args[-1] if args else None
    return None


def _known(section: str, key: str | None) -> bool:
    model = _model_of(section)
    return model is not None and (key is None or key in model.model_fields)


def _toml_keys(text: str) -> set[tuple[str, str]]:
    """(section, key) of every key in a TOML text, commented-out ones (``# key = 1``)
    included: they are what an operator uncomments."""
    keys: set[tuple[str, str]] = set()
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if header := _SECTION.match(stripped):
            section = header.group(1)
        elif (key := _KEY.match(stripped)) and section:
            keys.add((section, key.group(1)))
    return keys


def _documented_keys() -> set[tuple[str, str, str]]:
    """(where, section, key) of every config key the docs and example files name."""
    found = {(p.name, s, k) for p in _TOML_FILES for s, k in _toml_keys(p.read_text())}
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"^```toml\n(.*?)^```", text, flags=re.M | re.S):
            found |= {(doc.name, s, k) for s, k in _toml_keys(block)}
        for code in _code(text):  # "`[server] host`", "`[stt] provider = \"deepgram\"`"
            found |= {(doc.name, s, k) for s, k in _MENTION.findall(code.strip())}
    return found


def test_every_documented_config_key_exists() -> None:
    documented = _documented_keys()
    assert len(documented) > 100, "the docs name config keys; did the parsing break?"
    assert _known("server", "port") and not _known("server", "prot") and not _known("x", None)
    unknown = sorted(f"{where}: [{s}] {k}" for where, s, k in documented if not _known(s, k))
    assert not unknown, unknown
    # Every section of the model is documented in config.toml, the file operators start from.
    shipped = {s for s, _ in _toml_keys((ROOT / "config.toml").read_text())}
    missing = sorted(set(Config.model_fields) - shipped - _NOT_IN_CONFIG_TOML)
    assert not missing, f"sections config.toml does not show: {missing}"


def test_the_benchmark_page_is_generated_from_the_committed_results() -> None:
    from bench.report import render_benchmarks

    shipped = (ROOT / "docs" / "benchmarks.md").read_text()
    assert shipped.strip() == render_benchmarks().strip(), (
        "docs/benchmarks.md is stale: run `python bench/report.py --out docs/benchmarks.md`"
    )
    # Every result file says which command wrote it (its meta, or bench/results/README.md).
    rows = [line for line in shipped.splitlines() if line.startswith("| `") and ".json`" in line]
    assert rows and all(row.split(" | ")[1].startswith("`python bench/") for row in rows), rows
