"""``docs/configuration.md``, generated from the config model so it cannot drift from it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from supervisor._config import Config

__all__ = ("render_config_reference",)

_HEADER = """# Configuration reference

Generated from the config model by `python -m supervisor config-docs`; do not edit by hand.
Every section and key is optional; unknown keys and bad values are errors naming the key.
Secrets come from the environment: `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`, `BACKEND_TOKEN`,
`DEEPGRAM_API_KEY`, `OPENAI_API_KEY`, `CARTESIA_API_KEY`, `REDIS_URL`.
"""


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        return "…"
    if isinstance(value, tuple):
        value = list(value)
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "…"


def render_config_reference() -> str:
    """The Markdown reference of every section and key, with defaults and descriptions."""
    lines = [_HEADER]
    config = Config()
    for section, field in Config.model_fields.items():
        model = getattr(config, section)
        lines += [f"## [{section}]", "", "| key | default | meaning |", "|---|---|---|"]
        for name, sub in type(model).model_fields.items():
            if name == "node_id":  # machine-specific default
                default = "hostname-pid"
            else:
                default = _default(getattr(model, name))
            text = " ".join((sub.description or "").split()).replace("|", "\\|")
            lines.append(f"| `{name}` | `{default}` | {text} |")
        lines.append("")
        _ = field
    return "\n".join(lines)
