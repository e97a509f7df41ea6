"""Prometheus metrics across processes: a worker sends snapshots, the supervisor merges them.

Each worker's families travel in its heartbeat answers; the supervisor's ``/metrics`` shows
them with a ``worker`` label beside its own samples (labelled ``worker="supervisor"`` where a
family exists in both), so one scrape sees the whole daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ("MergedRegistry", "snapshot")

_SKIP_PREFIXES = ("process_", "python_")


def snapshot() -> list[dict[str, Any]]:
    """This process's metric families as JSON data (``_created`` samples left out)."""
    families = []
    for family in REGISTRY.collect():
        if family.name.startswith(_SKIP_PREFIXES):
            continue
        samples = [
            [s.name, dict(s.labels), s.value]
            for s in family.samples
            if not s.name.endswith("_created")
        ]
        families.append(
            {
                "name": family.name,
                "type": family.type,
                "documentation": family.documentation,
                "samples": samples,
            }
        )
    return families


class _Merged(Collector):
    def __init__(self, workers: Callable[[], Mapping[str, list[dict[str, Any]]]]) -> None:
        self._workers = workers

    def collect(self) -> Iterable[Metric]:
        remote: dict[str, Metric] = {}
        for worker, families in self._workers().items():
            for wire in families:
                metric = remote.get(wire["name"])
                if metric is None:
                    metric = Metric(wire["name"], wire["documentation"], wire["type"])
                    remote[wire["name"]] = metric
                for name, labels, value in wire["samples"]:
                    metric.add_sample(name, {**labels, "worker": worker}, value)
        for family in REGISTRY.collect():
            merged = remote.pop(family.name, None)
            if merged is None:
                yield family
                continue
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    merged.add_sample(
                        sample.name, {**sample.labels, "worker": "supervisor"}, sample.value
                    )
            yield merged
        yield from remote.values()


class MergedRegistry(CollectorRegistry):
    """A registry whose only collector merges this process's metrics with the workers'."""

    def __init__(self, workers: Callable[[], Mapping[str, list[dict[str, Any]]]]) -> None:
        super().__init__(auto_describe=False)
        self.register(_Merged(workers))
