"""``docs/metrics.md``, generated from the registered metrics so it cannot drift from them.

Every Prometheus metric the code defines (in the supervisor and in the room hosts, whose
samples ``/metrics`` merges) is listed with its type, its labels and its help text, which is
therefore written for operators: what it counts and what each label value means.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from prometheus_client.metrics import MetricWrapperBase

__all__ = ("render_metrics_reference",)

_PACKAGES = ("supervisor", "supervisor.workers")
"""Importing these imports every module that defines a metric (the room hosts' too)."""

_SECTIONS = {
    "supervisor._metrics": "Supervisor: webhooks, rooms, restarts, LiveKit",
    "actors._metrics": "Room actors: turns, replies, data messages",
    "actors.providers._metrics": "Providers (STT, LLM, TTS)",
    "actors.persistence._metrics": "Persistence (labelled by `outbox`)",
    "supervisor.coordination._metrics": "Redis coordination (with `[redis] url`)",
}

_HEADER = """# Metrics reference

Generated from the metrics the code registers by `voice-supervisor metrics-docs`; do not edit
by hand. `GET /metrics` serves them in Prometheus text, one scrape for the whole daemon:
samples from room-worker processes carry a `worker` label (`"supervisor"` for the supervisor's
own where both exist). Counters are exposed with `_total`; a histogram as `_bucket`, `_sum`
and `_count`. Which ones to alert on: [operations](operations.md#metrics).
"""


@dataclass(frozen=True, slots=True)
class _Metric:
    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


def _defined() -> dict[str, list[_Metric]]:
    """Every metric object of the loaded modules, by the module that defines it."""
    for package in _PACKAGES:
        importlib.import_module(package)
    found: dict[int, tuple[str, MetricWrapperBase]] = {}
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith(("actors", "supervisor")):
            continue
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                home, _ = found.get(id(value), (module_name, value))
                # A metric is imported by its users: file it under its "_metrics" module.
                if module_name.endswith("_metrics") and not home.endswith("_metrics"):
                    home = module_name
                found[id(value)] = (home, value)
    by_home: dict[str, list[_Metric]] = {}
    for home, metric in found.values():
        (family,) = metric.describe()
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = tuple(getattr(metric, "_labelnames", ()))  # public only as constructor args
        entry = _Metric(name, family.type, labels, " ".join(family.documentation.split()))
        by_home.setdefault(home, []).append(entry)
    return by_home


def render_metrics_reference() -> str:
    """The Markdown reference: one table per defining module, each metric once."""
    lines = [_HEADER]
    by_home = _defined()
    homes = [h for h in _SECTIONS if h in by_home] + sorted(set(by_home) - set(_SECTIONS))
    for home in homes:
        lines += [f"## {_SECTIONS.get(home, home)}", ""]
        lines += ["| metric | type | labels | meaning |", "|---|---|---|---|"]
        for m in sorted(by_home[home], key=lambda m: m.name):
            labels = ", ".join(f"`{label}`" for label in m.labels)
            text = m.help.replace("|", "\\|")
            lines.append(f"| `{m.name}` | {m.kind} | {labels} | {text} |")
        lines.append("")
    return "\n".join(lines)
