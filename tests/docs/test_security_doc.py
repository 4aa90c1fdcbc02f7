"""docs/SECURITY.md cites only tests that exist, and only settings with the defaults it states."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from kronos_server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "SECURITY.md"
TEST_REF = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")
SETTING = re.compile(r"\bKRONOS_[A-Z0-9_]+\b")
INLINE_DEFAULT = re.compile(r"`(KRONOS_[A-Z0-9_]+)`, default `([^`]*)`")
TABLE_ROW = re.compile(r"^\| `(KRONOS_[A-Z0-9_]+)` \| `([^`]*)` \|(.*)\|\s*$")
# the limits the document must give with their defaults and a test
LIMITS = {
    "max_request_size_mb",
    "max_batch_items",
    "min_history",
    "max_history",
    "max_sample_count",
    "max_context",
    "rate_limit",
    "max_queued_rows",
    "inference_timeout",
    "shutdown_grace",
    "max_connection_age",
}


def text() -> str:
    return DOC.read_text(encoding="utf-8")


@cache
def functions(path: str) -> frozenset[str]:
    """Names of the functions a test file defines (module level and in classes)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(
        node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )


def field_of(variable: str) -> str:
    return variable.removeprefix("KRONOS_").lower()


def shown(default: object) -> str:
    """A default as the document writes it."""
    return "none" if default is None else str(default)


def test_the_document_cites_tests() -> None:
    refs = TEST_REF.findall(text())
    assert len(set(refs)) >= 40, "the test references were not found: has the citation format changed?"


@pytest.mark.parametrize(("path", "name"), sorted(set(TEST_REF.findall(text()))))
def test_every_cited_test_exists(path: str, name: str) -> None:
    assert (ROOT / path).is_file(), f"{path} does not exist"
    assert name.startswith("test_"), f"{path}::{name} is not a test"
    assert name in functions(path), f"{path} defines no {name}"


def test_every_setting_named_is_real() -> None:
    named = set(SETTING.findall(text()))
    assert named, "no KRONOS_ setting named"
    unknown = sorted(v for v in named if field_of(v) not in Settings.model_fields)
    assert not unknown, f"not settings: {unknown}"


def test_every_default_stated_is_the_code_default() -> None:
    stated: list[tuple[str, str]] = INLINE_DEFAULT.findall(text())
    stated += [(m.group(1), m.group(2)) for line in text().splitlines() if (m := TABLE_ROW.match(line))]
    assert len(stated) >= len(LIMITS)
    for variable, default in stated:
        field = Settings.model_fields[field_of(variable)]
        assert default == shown(field.default), (
            f"{variable}: the document says {default!r}, the code {field.default!r}"
        )


def test_every_limit_is_in_the_table_with_a_test() -> None:
    rows = {field_of(m.group(1)): m.group(3) for line in text().splitlines() if (m := TABLE_ROW.match(line))}
    missing = sorted(LIMITS - set(rows))
    assert not missing, f"limits missing from the table: {missing}"
    for name, rest in rows.items():
        assert TEST_REF.search(rest), f"KRONOS_{name.upper()} names no test"
