"""The README's configuration table documents exactly the settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

from kronos_server.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\|\s*`(KRONOS_[A-Z0-9_]+)`\s*\|\s*`([^`]*)`\s*\|(.*)\|\s*$")


def documented() -> dict[str, tuple[str, str]]:
    """Variable -> (default as written, meaning) from the README's table rows."""
    rows: dict[str, tuple[str, str]] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3).strip())
    return rows


def variable(field: str) -> str:
    return f"KRONOS_{field.upper()}"


def test_every_setting_is_documented() -> None:
    missing = {variable(f) for f in Settings.model_fields} - set(documented())
    assert not missing, f"README configuration table lacks {sorted(missing)}"


def test_every_documented_variable_is_a_setting() -> None:
    unknown = set(documented()) - {variable(f) for f in Settings.model_fields}
    assert not unknown, f"README documents variables that are not settings: {sorted(unknown)}"


def test_documented_defaults_are_the_real_ones() -> None:
    table = documented()
    for name, info in Settings.model_fields.items():
        expected = "none" if info.default is None else str(info.default)
        written, meaning = table[variable(name)]
        assert written == expected, f"{variable(name)}: README says {written!r}, default is {expected!r}"
        assert meaning, f"{variable(name)} has no explanation"
