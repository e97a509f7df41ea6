"""``docs/configuration.md``, generated from the config model so it cannot drift from it."""

from __future__ import annotations

from typing import Any, get_args, get_origin

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
        heading = f"[{section}]"
        item = _item_model(field.annotation)
        if item is not None:  # a list of tables ([[tools]]) or named tables ([agents.NAME])
            model, heading = item
            heading = f"[[{section}]]" if heading == "list" else f"[{section}.NAME]"
            intro = " ".join((field.description or "").split())
            lines += [f"## {heading}", "", *([intro, ""] if intro else [])]
        else:
            lines += [f"## {heading}", ""]
        lines += ["| key | default | meaning |", "|---|---|---|"]
        model_cls: type[BaseModel] = model if isinstance(model, type) else type(model)
        for name, sub in model_cls.model_fields.items():
            if name == "node_id":  # machine-specific default
                default = "hostname-pid"
            elif sub.is_required():
                default = "(required)"
            elif not isinstance(model, BaseModel):
                default = _default(sub.get_default(call_default_factory=True))
            else:
                default = _default(getattr(model, name))
            text = " ".join((sub.description or "").split()).replace("|", "\\|")
            lines.append(f"| `{name}` | `{default}` | {text} |")
        lines.append("")
    return "\n".join(lines)


def _item_model(annotation: Any) -> tuple[Any, str] | None:
    """For ``tuple[Model, ...]`` or ``dict[str, Model]``: the item model (as a class, its
    fields read from it) and ``list`` or ``dict``; else None."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is tuple and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], "list"
    if origin is dict and len(args) == 2 and isinstance(args[1], type):
        if issubclass(args[1], BaseModel):
            return args[1], "dict"
    return None
