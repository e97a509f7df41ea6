"""docs/benchmarks.md from bench/results/*.json: every committed figure with how it was made.

    python bench/report.py --out docs/benchmarks.md     # what `make bench` runs last

Each file's ``meta`` (``bench/_results.py``: command, commit, date, machine) says how it was
made. Files written before ``meta`` existed get their command and time from the table in
bench/results/README.md, and say that their commit and machine were not recorded. Never reruns
anything: it only reads the files, so the page can be regenerated (and checked, by
tests/test_docs_consistency.py) at any time.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

__all__ = ("render_benchmarks",)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

_FIGURES: dict[str, list[tuple[str, str]]] = {
    "join": [
        ("join p50 ms", "join_ms.p50"),
        ("join p95 ms", "join_ms.p95"),
        ("RSS idle MB", "rss_mb.idle"),
        ("RSS with the rooms MB", "rss_mb.with_rooms"),
    ],
    "soak": [
        ("rooms", "rooms"),
        ("PSS idle MB", "pss_mb.idle"),
        ("after warm-up", "pss_mb.after_warmup"),
        ("last", "pss_mb.last"),
        ("MB per 1,000 rooms", "growth_mb_per_1000_rooms"),
    ],
    "idle": [("PSS idle MB", "pss_mb.idle"), ("providers", "providers")],
    "flood": [
        ("sent", "sent"),
        ("refused", "refused"),
        ("RSS before MB", "rss_mb.before"),
        ("peak", "rss_mb.peak"),
        ("ping p50 ms before", "ping_ms.before_p50"),
        ("after", "ping_ms.after_p50"),
    ],
    "voice": [
        ("voice to voice p50 ms", "voice_to_voice_ms.p50"),
        ("p95", "voice_to_voice_ms.p95"),
        ("false cut-offs", "false_cutoff_rate"),
        ("false interruptions", "false_interruption_rate"),
        ("missed barge-ins", "missed_barge_in_rate"),
        ("CPU ms per room-second", "cpu_ms_per_room_s"),
    ],
    "providers": [
        ("deepgram final median ms", "deepgram.final.median_ms"),
        ("openai first token", "openai.first_token.median_ms"),
        ("cartesia first chunk", "cartesia.first_chunk.median_ms"),
    ],
    "agents": [
        ("hand-over p50 ms", "hand_over_ms.p50"),
        ("p95", "hand_over_ms.p95"),
        ("overlap ms", "overlap_ms.total"),
    ],
    "latency": [
        ("agent-added p50 ms", "agent_added_ms.p50"),
        ("p99", "agent_added_ms.p99"),
        ("LLM first token p50 ms", "stages_ms.llm_first_token.p50"),
        ("providers", "providers"),
    ],
    "persistence": [
        ("events", "events"),
        ("events/s end to end", "events_per_s"),
        ("emit p50 µs", "enqueue_us.p50"),
        ("p99", "enqueue_us.p99"),
        ("lost", "lost"),
        ("duplicates", "duplicates"),
        ("outbox KB per 1,000 turns", "disk.outbox_kb_per_1000_turns"),
        ("sink", "sink"),
    ],
    "deadletters": [
        ("poison dead-lettered after s, mean", "poison_dead_lettered_after_s_mean"),
        ("max", "poison_dead_lettered_after_s_max"),
        ("its attempts, mean", "poison_attempts_mean"),
        ("others lost", "others_lost"),
        ("outage dead letters", "outage.dead_lettered"),
        ("Retry-After 0: shortest gap s", "retry_after_zero.shortest_gap_s"),
    ],
    "rtc-floor": [  # modes in bench/_floor_agent.py's order
        ("CPU ms per room-second joined", "modes.0.agent_cpu_ms_per_room_s"),
        ("subscribed", "modes.1.agent_cpu_ms_per_room_s"),
        ("AudioStream read", "modes.2.agent_cpu_ms_per_room_s"),
        ("+ AudioSource", "modes.3.agent_cpu_ms_per_room_s"),
        ("+ published", "modes.4.agent_cpu_ms_per_room_s"),
    ],
    "webhooks": [
        ("requests/s on one core", "requests_per_s"),
        ("latency p50 ms", "latency_ms.p50"),
        ("p99", "latency_ms.p99"),
        ("server CPU µs per request", "server_cpu_us_per_request"),
        ("every forged one refused", "rejected_forged_ok"),
    ],
    "failover": [
        ("rooms", "rooms"),
        ("owned by a", "balance.a"),
        ("by b", "balance.b"),
        ("takeover per room p50 s", "takeover_s.per_room.p50"),
        ("max", "takeover_s.per_room.max"),
    ],
    "tools": [
        ("added by a tool p50 ms", "added_by_the_tool_ms.p50"),
        ("p99", "added_by_the_tool_ms.p99"),
    ],
}
"""The headline figures of each benchmark (by file name: ``soak-run-a.json`` is a soak);
any other file shows its first numeric fields."""

_GENERIC_MAX = 8

_HEADER = """# Benchmark results

Generated from `bench/results/*.json` by `python bench/report.py --out docs/benchmarks.md`
(`make bench` runs it after the benchmarks); do not edit by hand. Each row is one file: the
command that wrote it, its headline figures, when and on which commit and machine it ran.
Files from before runs recorded that (their `meta`) take their command and time from
[bench/results/README.md](../bench/results/README.md); their commit and machine were not
recorded (the development machine: 2 cores, shared with other work). Figures quoted in the
README and the docs come from these files; benchmarks without a file here have no committed
figure.
"""


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


def _generic(data: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in data.items():
        if key == "meta":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | dict):
            continue
        if isinstance(value, dict):
            if depth < 2:
                found += _generic(value, f"{prefix}{key}.", depth + 1)
        else:
            found.append((prefix + key, value))
    return found


def _figures(stem: str, data: dict[str, Any]) -> str:
    kind = next((k for k in sorted(_FIGURES, key=len, reverse=True) if stem.startswith(k)), None)
    pairs: list[tuple[str, Any]]
    if kind is None:
        pairs = _generic(data)[:_GENERIC_MAX]
    else:
        pairs = [(label, _get(data, path)) for label, path in _FIGURES[kind]]
    return "; ".join(f"{label} {_number(value)}" for label, value in pairs if value is not None)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _manifest(readme: Path) -> tuple[dict[str, tuple[str, str]], str]:
    """File → (command, run time) from bench/results/README.md's table, and its date."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    date = m.group(1) if (m := re.search(r"\bon (\d{4}-\d{2}-\d{2})\b", text)) else ""
    rows: dict[str, tuple[str, str]] = {}
    command = ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        files = re.findall(r"`([^`]+\.json)`", cells[0])
        times = [t.strip() for t in cells[1].split(",")]
        commands = re.findall(r"`([^`]+)`", cells[2])
        command = commands[0] if commands else command  # "the same": the row above's
        for index, name in enumerate(files):
            rows[name] = (command, times[min(index, len(times) - 1)])
    return rows, date


def _provenance(name: str, data: dict[str, Any], manifest: Any, date: str) -> list[str]:
    meta = data.get("meta")
    if isinstance(meta, dict):
        machine = meta.get("machine") or {}
        where = (
            f"{machine.get('cpus')} cores ({machine.get('cpu_model')}), "
            f"{machine.get('memory_gb')} GB, load {machine.get('load_avg_1m')}"
        )
        return [
            f"`{meta.get('command')}`",
            str(meta.get("date", "")).replace("T", " ").rstrip("Z"),
            f"`{meta.get('commit')}`" if meta.get("commit") else "not recorded",
            where,
        ]
    command, time = manifest.get(name, ("", ""))
    when = f"{date} {time}".strip() if time else date
    return [f"`{command}`" if command else "not recorded", when, "not recorded", "not recorded"]


def render_benchmarks(results: Path = RESULTS) -> str:
    """The Markdown page, one row per JSON file, by name."""
    manifest, date = _manifest(results / "README.md")
    lines = [_HEADER]
    lines += [
        "| file | command | figures | date (UTC) | commit | machine |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        command, when, commit, machine = _provenance(path.name, data, manifest, date)
        figures = _figures(path.stem, data).replace("|", "\\|")
        lines.append(f"| `{path.name}` | {command} | {figures} | {when} | {commit} | {machine} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write here (default: print)")
    args = parser.parse_args()
    page = render_benchmarks()
    if args.out is None:
        print(page)
    else:
        args.out.write_text(page + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
