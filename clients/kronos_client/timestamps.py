"""Timestamps in (datetime, ISO string, epoch ms, numpy/pandas) -> UTC epoch milliseconds, and back.

Naive values are wall-clock times in the series' time zone, as on the server.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from kronos_client.errors import InvalidInputError

UTC_NAMES = frozenset({"", "UTC", "Etc/UTC", "Z"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TimestampLike = datetime | date | str | int | np.datetime64 | np.integer[Any]


# a fixed UTC offset as a zone name, as the server accepts it: "+08:00", "-05:30"
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def zone(name: str | None) -> tzinfo:
    if not name or name in UTC_NAMES:
        return UTC
    fixed = _OFFSET.match(name)
    if fixed and int(fixed.group(2)) < 24 and int(fixed.group(3)) < 60:
        offset = timedelta(hours=int(fixed.group(2)), minutes=int(fixed.group(3)))
        return dt_timezone(-offset if fixed.group(1) == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"timezone {name!r} is not a known IANA time zone"
        raise InvalidInputError(message, field="timezone") from None


def _datetime_ms(value: datetime, tz: tzinfo) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=tz)
    return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000


def to_epoch_ms_one(value: object, tz: tzinfo, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidInputError(f"{field}: a boolean is not a timestamp", field=field)
    if isinstance(value, int | np.integer):
        return int(value)  # already epoch milliseconds
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise InvalidInputError(f"{field} is NaT", field=field)
        value = value.astype("datetime64[us]").item()
    if value is None:
        raise InvalidInputError(f"{field} is missing (None/NaT)", field=field)
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(
                f"{field} is not an ISO 8601 timestamp: {text[:40]!r}", field=field
            ) from None
    if isinstance(value, datetime):
        try:
            return _datetime_ms(value, tz)
        except (ValueError, OverflowError):  # pandas NaT is a datetime that has no time
            raise InvalidInputError(f"{field} is not a valid time: {value!r}", field=field) from None
    if isinstance(value, date):
        return _datetime_ms(datetime(value.year, value.month, value.day), tz)
    raise InvalidInputError(
        f"{field}: {type(value).__name__} is not a timestamp (use datetime, ISO string or int epoch ms)",
        field=field,
    )


def to_epoch_ms(values: Iterable[Any], timezone: str | None = None, field: str = "timestamps") -> list[int]:
    """Any sequence of timestamp-likes (incl. numpy datetime64 arrays, pandas Series) -> epoch ms."""
    tz = zone(timezone)
    if isinstance(values, np.ndarray) and values.dtype.kind == "M" and tz is UTC:
        if np.isnat(values).any():
            raise InvalidInputError(f"{field} holds NaT", field=field)
        return [int(v) for v in values.astype("datetime64[ms]").astype(np.int64)]
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        values = values.astype("datetime64[us]")  # tolist() of [ns] would give bare ints
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    return [to_epoch_ms_one(v, tz, f"{field}[{i}]") for i, v in enumerate(items)]


def from_epoch_ms(values: Iterable[int], timezone: str | None = None) -> list[datetime]:
    """Epoch ms -> aware datetimes in the series' time zone (UTC when unset)."""
    tz = zone(timezone)
    return [(EPOCH + timedelta(milliseconds=int(v))).astimezone(tz) for v in values]


def format_iso(values: Iterable[int], timezone: str | None = None) -> list[str]:
    """Epoch ms -> ISO 8601 in the series' local time; naive when UTC (like the server)."""
    tz = zone(timezone)
    out = []
    for dt in from_epoch_ms(values, timezone):
        out.append(dt.replace(tzinfo=None).isoformat() if tz is UTC else dt.isoformat())
    return out


def _offset_name(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def shared_offset(offsets: Iterable[timedelta | None], field: str = "timestamps") -> timedelta | None:
    """The one UTC offset a series' timestamps carry (None where they carry none).

    Offsets that differ within the series (a DST change) are refused naming the first that
    differs: only an IANA timezone says whose wall clock the series keeps. The server applies
    this same rule to what it receives.
    """
    first: tuple[int, timedelta] | None = None
    for i, offset in enumerate(offsets):
        if offset is None:
            continue
        if first is None:
            first = (i, offset)
        elif offset != first[1]:
            raise InvalidInputError(
                f"{field}[{i}]: UTC offset {_offset_name(offset)} differs from {field}[{first[0]}]'s "
                f"{_offset_name(first[1])}; give timezone (an IANA name such as America/New_York) "
                "to say whose wall clock the series keeps",
                field=f"{field}[{i}]",
            )
    return first[1] if first is not None else None


def _utcoffset(text: str) -> timedelta | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).utcoffset()
    except ValueError:
        return None  # to_epoch_ms names the bad timestamp


def series_offset(values: Iterable[str], field: str = "timestamps") -> str:
    """The UTC offset ISO strings carry ("+08:00"), as a zone name; "" when none (or zero)."""
    offset = shared_offset((_utcoffset(text) for text in values), field)
    return _offset_name(offset) if offset else ""
