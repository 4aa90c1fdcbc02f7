"""Logging set-up, called once from the entry point; modules only ``from loguru import logger``.

JSON lines carry ``timestamp`` (ISO 8601 UTC), ``level``, ``logger``, ``message``, every
field bound with ``logger.bind(...)`` (``request_id`` and the like) and, for errors,
``error_type`` (the exception's class name) and ``exception`` (the traceback as text).
``diagnose`` stays off so variable values never reach the logs.
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

TEXT_PREFIX = "{time:YYYY-MM-DD HH:mm:ss.SSS!UTC}Z | {level: <7} | {name} | {message}"


def json_line(record: Record) -> str:
    """One log record as a compact JSON object (no trailing newline)."""
    out: dict[str, Any] = {
        "timestamp": record["time"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record["level"].name,
        "logger": record["name"],
        "message": record["message"],
    }
    for key, value in record["extra"].items():
        out.setdefault(key, value)
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        out["error_type"] = exc.type.__name__
        out["exception"] = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip()
    return json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))


class _JsonSink:
    def __init__(self, stream: TextIO):
        self.stream = stream

    def __call__(self, message: Message) -> None:
        self.stream.write(json_line(message.record) + "\n")
        self.stream.flush()


def _text_format(record: Record) -> str:
    """The text line's template: bound fields follow the message as `` key=value``."""
    extra = "".join(f" {k}={v}" for k, v in record["extra"].items())
    # the result is a template: braces in the values must not be read as fields
    return TEXT_PREFIX + extra.replace("{", "{{").replace("}", "}}") + "\n{exception}"


def configure_logging(
    level: str = "INFO",
    fmt: Literal["json", "text"] = "json",
    stream: TextIO | None = None,
) -> None:
    """Replace every loguru handler with one writing to ``stream`` (stdout by default).

    Commands whose stdout is their result (``kronos-serve forecast``) pass stderr.
    """
    logger.remove()
    target = stream if stream is not None else sys.stdout
    if fmt == "json":
        logger.add(_JsonSink(target), level=level, format="{message}", backtrace=False, diagnose=False)
    else:
        logger.add(
            target,
            level=level,
            format=_text_format,
            colorize=False,
            backtrace=False,
            diagnose=False,
        )
