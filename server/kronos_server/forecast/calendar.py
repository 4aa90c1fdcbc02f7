"""Calendar features (minute, hour, weekday, day, month) from local wall-clock time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from kronos_server.errors import InvalidInputError

UTC_NAMES = frozenset({"", "UTC", "Etc/UTC", "Z"})


# a fixed UTC offset used as a zone name: "+08:00", "-05:30" (what ISO 8601 timestamps carry)
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@lru_cache(maxsize=256)
def zone(name: str) -> tzinfo | None:
    """The IANA zone or fixed UTC offset ("+08:00"), or None for UTC; unknown names are a
    client error."""
    if name in UTC_NAMES:
        return None
    fixed = _OFFSET.match(name)
    if fixed:
        sign, hours, minutes = fixed.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        if offset >= timedelta(hours=24) or int(minutes) >= 60:
            raise InvalidInputError(f"timezone {name!r} is not a valid UTC offset", field="timezone")
        return None if not offset else dt_timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. a name too long for a path
        raise InvalidInputError(
            f"timezone {name[:64]!r} is not a known IANA time zone or UTC offset (+08:00)", field="timezone"
        ) from None


def offset_name(offset: timedelta) -> str:
    """A UTC offset as a zone name :func:`zone` accepts: "+08:00", "-05:30"; "UTC" for zero."""
    if not offset:
        return "UTC"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local_wall_clock(epoch_ns: np.ndarray, tz_name: str) -> np.ndarray:
    """UTC instants (int64 ns) -> naive local wall-clock datetime64[s]."""
    seconds = (epoch_ns // 1_000_000_000).astype(np.int64)
    tz = zone(tz_name)
    if tz is None:
        return seconds.astype("datetime64[s]")
    if isinstance(tz, dt_timezone):  # a fixed offset: one value for every instant
        return (seconds + int(tz.utcoffset(None).total_seconds())).astype("datetime64[s]")
    offsets = np.fromiter(
        (
            int(datetime.fromtimestamp(int(s), UTC).astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]
            for s in seconds
        ),
        dtype=np.int64,
        count=seconds.size,
    )
    return (seconds + offsets).astype("datetime64[s]")


def stamps(epoch_ns: np.ndarray, tz_name: str) -> np.ndarray:
    """[n] instants -> int64 [n, 5] (minute, hour, weekday Mon=0, day 1-31, month 1-12)."""
    local = local_wall_clock(epoch_ns, tz_name)
    minutes = local.astype("datetime64[m]")
    days = local.astype("datetime64[D]")
    months = local.astype("datetime64[M]")
    minute = (minutes - local.astype("datetime64[h]")).astype(np.int64)
    hour = (local.astype("datetime64[h]") - days).astype(np.int64)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (3 when Monday = 0)
    day = (days - months).astype(np.int64) + 1
    month = months.astype(np.int64) % 12 + 1
    return np.stack((minute, hour, weekday, day, month), axis=-1).astype(np.int64)


def _parse(values: list[str], field: str) -> list[datetime]:
    out = []
    for i, text in enumerate(values):
        try:
            out.append(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
        except (ValueError, AttributeError, TypeError):
            raise InvalidInputError(
                f"{field}[{i}] is not an ISO 8601 timestamp: {str(text)[:40]!r}", field=f"{field}[{i}]"
            ) from None
    return out


def _instants(parsed: list[datetime], values: list[str], tz: tzinfo | None, field: str) -> np.ndarray:
    out = np.empty(len(parsed), dtype=np.int64)
    for i, dt in enumerate(parsed):
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz or UTC)
        try:
            out[i] = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
        except (OverflowError, ValueError):  # int64 nanoseconds span the years 1678-2262
            raise InvalidInputError(
                f"{field}[{i}] is out of range (years 1678-2261): {str(values[i])[:40]!r}",
                field=f"{field}[{i}]",
            ) from None
    return out


def parse_timestamps(values: list[str], tz_name: str, field: str) -> np.ndarray:
    """ISO 8601 strings -> UTC epoch ns. Naive strings are wall-clock times in ``tz_name``."""
    return _instants(_parse(values, field), values, zone(tz_name), field)


def parse_series_timestamps(
    values: list[str], tz_name: str | None, field: str
) -> tuple[np.ndarray, str | None]:
    """A history's timestamps -> (UTC epoch ns, the series' zone name).

    With ``tz_name`` given it wins (offsets are converted, naive strings are wall-clock
    times there). Without it, the UTC offset the timestamps carry becomes the zone ("+08:00"),
    so calendar features use the series' own wall clock and the forecast carries its offset;
    naive strings are then read in that offset too. Offsets that differ within the series
    (a DST change) are refused naming the first that differs: only an IANA ``timezone``
    says which wall clock the series keeps.
    """
    parsed = _parse(values, field)
    if tz_name is None:
        first: tuple[int, timedelta] | None = None
        for i, dt in enumerate(parsed):
            offset = dt.utcoffset()
            if offset is None:
                continue
            if first is None:
                first = (i, offset)
            elif offset != first[1]:
                raise InvalidInputError(
                    f"{field}[{i}]: UTC offset {offset_name(offset)} differs from {field}[{first[0]}]'s "
                    f"{offset_name(first[1])}; give timezone (an IANA name such as America/New_York) "
                    "to say whose wall clock the series keeps",
                    field=f"{field}[{i}]",
                )
        if first is not None and first[1]:
            tz_name = offset_name(first[1])
    return _instants(parsed, values, zone(tz_name or "UTC"), field), tz_name


def format_timestamps(epoch_ns: np.ndarray, tz_name: str) -> list[str]:
    """UTC epoch ns -> ISO 8601 strings in the series' local time (naive when UTC)."""
    tz = zone(tz_name)
    out = []
    for value in epoch_ns:
        seconds, rem = divmod(int(value), 1_000_000_000)
        dt = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rem // 1000)
        out.append(dt.replace(tzinfo=None).isoformat() if tz is None else dt.astimezone(tz).isoformat())
    return out
