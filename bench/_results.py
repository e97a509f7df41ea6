"""What every benchmark's ``--json`` file carries besides its figures: how it was made.

``write_result(path, result)`` adds a ``meta`` object: the command line, the commit it ran on
(with ``+dirty`` when the tree had uncommitted changes), the date (UTC), and the machine (cores,
CPU model, memory, the load average when the run ended: the machines here are shared, and a
figure means little without it). ``bench/report.py`` turns the files into docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ("run_meta", "write_result")

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def run_meta(argv: list[str] | None = None) -> dict[str, Any]:
    """How this run was made (see the module docstring)."""
    args = sys.argv if argv is None else argv
    script = Path(args[0])
    try:
        shown = script.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        shown = str(script)
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {
        "command": shlex.join(["python", shown, *args[1:]]),
        "commit": commit or None,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "memory_gb": _memory_gb(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
    }


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` as JSON with its ``meta``, creating the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**result, "meta": run_meta()}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
