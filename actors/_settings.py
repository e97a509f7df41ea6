"""Base class of every settings model: frozen, strict, unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ("Settings",)


class Settings(BaseModel):
    """Frozen, validated settings; an unknown key is an error naming it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
