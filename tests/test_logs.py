"""Logging: one JSON object per line with bound fields; text as the alternative."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from loguru import logger

from kronos_server.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    logger.remove()


def test_json_lines_with_bound_fields() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    logger.bind(request_id="r-1", rows=3).info("forecast done")
    logger.debug("hidden below INFO")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["message"] == "forecast done"
    assert record["level"] == "INFO"
    assert record["logger"] == __name__
    assert record["request_id"] == "r-1" and record["rows"] == 3
    assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]


def test_json_exception_has_the_traceback_but_no_variable_values() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    secret = "token-123"
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("step failed")
    record = json.loads(stream.getvalue())
    assert record["level"] == "ERROR"
    assert "ValueError: boom" in record["exception"]
    assert secret not in stream.getvalue()


def test_text_format() -> None:
    stream = io.StringIO()
    configure_logging("debug".upper(), "text", stream)
    logger.bind(request_id="r-2").debug("hello")
    line = stream.getvalue().strip()
    assert "DEBUG" in line and "hello" in line and "request_id=r-2" in line
    assert not line.startswith("{")
