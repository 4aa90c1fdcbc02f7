"""Read a candle CSV (a timestamp column + OHLC[V[A]] columns) with the standard library.

The one CSV reader of the project: ``kronos-client predict --csv`` and ``kronos-serve
forecast --csv`` both call :func:`read_candles`, so they accept and refuse the same files
with the same messages.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

#: accepted timestamp headers (case-insensitive), the first one present wins;
#: ``Datetime`` is yfinance's intraday header, ``Date`` its daily one
TIME_COLUMNS = ("timestamps", "timestamp", "datetime", "date", "time")
PRICE_COLUMNS = ("open", "high", "low", "close")
OPTIONAL_COLUMNS = ("volume", "amount")


class CsvError(ValueError):
    """A bad CSV file; ``field`` names the place (``csv``, ``close[17]``, ``rows[3]``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = f"{field}: {message}"


@dataclass
class CandleTable:
    timestamps: list[str]
    columns: dict[str, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)

    def tail(self, n: int | None) -> CandleTable:
        if n is None or n >= len(self):
            return self
        return CandleTable(self.timestamps[-n:], {k: v[-n:] for k, v in self.columns.items()})


def _open(source: str | Path | TextIO) -> TextIO:
    if not isinstance(source, str | Path):
        return source
    path = Path(source)
    try:
        # utf-8-sig: a spreadsheet's byte-order mark must not become part of the first header
        return io.StringIO(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CsvError("csv", f"cannot read {path}: {why}") from None


def time_column(header: list[str]) -> int:
    """The index of the timestamp column in a header row; CsvError when there is none."""
    names = [name.strip().lower() for name in header]
    found = next((name for name in TIME_COLUMNS if name in names), None)
    if found is None:
        raise CsvError("csv", f"no timestamp column (one of {', '.join(TIME_COLUMNS)}) in header {header}")
    return names.index(found)


def read_rows(source: str | Path | TextIO) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, cells)]); blank lines are skipped, line 1 is the header."""
    reader = csv.reader(_open(source))
    header = next(reader, None)
    if header is None:
        raise CsvError("csv", "the file is empty")
    return header, [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]


def read_candles(source: str | Path | TextIO, *, tail: int | None = None) -> CandleTable:
    """Header names are case-insensitive; volume and amount are optional.

    ``tail`` keeps the last N rows before the cells are read, so field names in errors
    (``close[3]``) index the rows kept; the message gives the file's line number.
    """
    header, rows = read_rows(source)
    names = [name.strip().lower() for name in header]
    stamp_index = time_column(header)
    missing = [name for name in PRICE_COLUMNS if name not in names]
    if missing:
        raise CsvError("csv", f"missing column(s) {', '.join(missing)} in header {header}")
    if tail is not None:
        if tail < 1:
            raise CsvError("tail", f"must be >= 1, got {tail}")
        rows = rows[-tail:]
    if not rows:
        raise CsvError("csv", "no rows after the header")
    wanted = [name for name in (*PRICE_COLUMNS, *OPTIONAL_COLUMNS) if name in names]
    index = {name: names.index(name) for name in wanted}
    table = CandleTable([], {name: [] for name in wanted})
    for i, (line, cells) in enumerate(rows):
        if len(cells) < len(names):
            raise CsvError(f"rows[{i}]", f"line {line}: {len(cells)} cells, the header has {len(names)}")
        table.timestamps.append(cells[stamp_index].strip())
        for name in wanted:
            text = cells[index[name]].strip()
            try:
                table.columns[name].append(float(text))
            except ValueError:
                raise CsvError(f"{name}[{i}]", f"line {line}: not a number: {text[:40]!r}") from None
    return table


def read_timestamps(source: str | Path | TextIO, field: str = "--prediction-timestamps") -> list[str]:
    """Timestamps from a file: one ISO 8601 value per line, or a CSV with a timestamp column.
    Errors name ``field`` (the flag that gave the file)."""
    try:
        header, rows = read_rows(source)
    except CsvError as exc:
        raise CsvError(field, exc.message.removeprefix(f"{exc.field}: ")) from None
    names = [name.strip().lower() for name in header]
    if any(name in TIME_COLUMNS for name in names):
        stamp_index = time_column(header)
        body = rows
    else:  # no header: every non-blank line (its first cell) is a timestamp
        stamp_index, body = 0, [(1, header), *rows]
    out = []
    for line, cells in body:
        if len(cells) <= stamp_index or not cells[stamp_index].strip():
            raise CsvError(field, f"line {line}: no timestamp")
        out.append(cells[stamp_index].strip())
    if not out:
        raise CsvError(field, "the file holds no timestamps")
    return out
