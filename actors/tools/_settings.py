"""Settings of tools: ``[[tools]]`` (declared tools), ``[[mcp_servers]]`` and ``[tool_calls]``.

A declared tool is what the LLM is offered (name, description, JSON-Schema parameters) and how
it is invoked (an HTTP endpoint, a timeout, whether a retry is safe). The schema is checked
here, once, so a typo in config.toml is a ``check-config`` error rather than a refused call.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator, model_validator

from actors._settings import Settings

__all__ = ("NAME_PATTERN", "McpServerSettings", "ToolCallSettings", "ToolSettings")

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""A tool's name as the LLM APIs accept it (OpenAI: ``^[a-zA-Z0-9_-]{1,64}$``)."""

_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` if it is a valid JSON Schema (2020-12) for an object, else ``ValueError``."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    if schema.get("type", "object") != "object":
        raise ValueError('a tool\'s parameters must be a JSON Schema with "type": "object"')
    return schema


def _check_http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


class ToolSettings(Settings):
    name: str = Field(pattern=NAME_PATTERN)
    """The name the LLM calls it by (letters, digits, ``_`` and ``-``; at most 64)."""

    description: str = Field(min_length=1, max_length=1024)
    """What it does and when to use it, for the LLM (it decides from this alone)."""

    parameters: dict[str, Any] = Field(default_factory=lambda: dict(_EMPTY_OBJECT))
    """Its arguments as a JSON Schema object (``{type = "object", properties = {...},
    required = [...]}``); the LLM's arguments are validated against it before the call."""

    url: str | None = None
    """The endpoint that runs it (``POST`` with the contract's invoke body); unset = the
    backend's ``{backend_url}/v1/tools/{name}:invoke``. The backend token is sent only to URLs
    under ``[persistence] backend_url``."""

    timeout_s: float = Field(default=5.0, gt=0, le=120)
    """How long one attempt may take."""

    idempotent: bool = False
    """Safe to run twice with the same arguments: then a failed attempt is retried, and a
    barge-in cancels it. Not idempotent (booking, paying): never retried, and a barge-in lets
    it finish and records its result."""

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_schema(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_http_url(value)


class McpServerSettings(Settings):
    name: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$")
    """Names the server in readyz, metrics and logs."""

    transport: Literal["http", "stdio"] = "http"
    """``http``: MCP's streamable HTTP at ``url``; ``stdio``: ``command`` run as a child."""

    url: str | None = None
    """``http``: the server's MCP endpoint (``http://127.0.0.1:8000/mcp``)."""

    command: str | None = None
    """``stdio``: the program to run (its stdin/stdout speak MCP)."""

    args: tuple[str, ...] = ()
    """``stdio``: the program's arguments."""

    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """How long connecting, listing tools and one call may each take."""

    idempotent: bool = False
    """Whether this server's tools are safe to retry (MCP does not say; see ``[[tools]]``)."""

    retry_s: float = Field(default=30.0, gt=0, le=3600)
    """A server that is down (or dropped) is tried again after this long; its tools are left
    out meanwhile."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_http_url(value)

    @model_validator(mode="after")
    def _transport(self) -> Self:
        if self.transport == "http" and self.url is None:
            raise ValueError('transport = "http" needs url')
        if self.transport == "stdio" and not self.command:
            raise ValueError('transport = "stdio" needs command')
        return self


class ToolCallSettings(Settings):
    backend_tools: bool = True
    """With a ``[persistence] backend_url``: also offer the tools its ``GET /v1/tools`` lists
    (merged with ``[[tools]]``; a declared tool wins over a backend one of the same name)."""

    backend_refresh_s: float = Field(default=60.0, gt=0, le=86_400)
    """How often the backend's tool list is read again (a failed read keeps the last list)."""

    filler: str = Field(default="One moment.", max_length=200)
    """Said once in a reply when its tools have not answered after ``filler_after_ms``;
    empty = never."""

    filler_after_ms: int = Field(default=800, ge=0, le=60_000)
    """How long a tool call may run before the filler is said."""

    apology: str = Field(default="Sorry, I couldn't do that just now.", min_length=1)
    """Said when a tool call fails (a ``tool_error`` event says why); the room goes on."""

    goodbye: str = Field(default="Goodbye!", min_length=1)
    """Said by the built-in ``end_call`` tool before the agent leaves."""

    refusal: str = Field(default="Sorry, I'm not allowed to do that for you.", min_length=1)
    """Said when the model calls a built-in tool the caller may not use (``end_call`` needs a
    role ``[data] command_roles`` allows ``end``, unless the caller is alone in the room)."""

    builtins: tuple[str, ...] = ("end_call",)
    """Built-in tools offered to the LLM (``end_call``: say goodbye and end the session;
    ``hand_over``: another agent of the room answers next, for rooms with several agents)."""

    @field_validator("builtins")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from actors.tools._builtins import BUILTINS  # the registry imports these settings

        unknown = sorted(set(value) - set(BUILTINS))
        if unknown:
            raise ValueError(f"unknown built-in tool(s) {unknown}; known: {sorted(BUILTINS)}")
        return value

    max_result_kb: int = Field(default=16, ge=1, le=1024)
    """Largest tool result taken; a bigger one is an error (a model reads it all)."""

    max_rounds: int = Field(default=4, ge=1, le=20)
    """Most LLM rounds in one reply (each round may call tools); bounds a model that loops."""

    retries: int = Field(default=2, ge=0, le=10)
    """Extra attempts of a failed call, for idempotent tools only."""
