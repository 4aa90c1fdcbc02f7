"""Calendar features (minute, hour, weekday, day, month) from local wall-clock time."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from kronos_server.errors import InvalidInputError

UTC_NAMES = frozenset({"", "UTC", "Etc/UTC", "Z"})


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo | None:
    """The IANA zone, or None for UTC; unknown names are a client error."""
    if name in UTC_NAMES:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. a name too long for a path
        raise InvalidInputError(
            f"timezone {name[:64]!r} is not a known IANA time zone", field="timezone"
        ) from None


def local_wall_clock(epoch_ns: np.ndarray, tz_name: str) -> np.ndarray:
    """UTC instants (int64 ns) -> naive local wall-clock datetime64[s]."""
    seconds = (epoch_ns // 1_000_000_000).astype(np.int64)
    tz = zone(tz_name)
    if tz is None:
        return seconds.astype("datetime64[s]")
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


def parse_timestamps(values: list[str], tz_name: str, field: str) -> np.ndarray:
    """ISO 8601 strings -> UTC epoch ns. Naive strings are wall-clock times in ``tz_name``."""
    tz = zone(tz_name)
    out = np.empty(len(values), dtype=np.int64)
    for i, text in enumerate(values):
        try:
            dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except (ValueError, AttributeError, TypeError):
            raise InvalidInputError(
                f"{field}[{i}] is not an ISO 8601 timestamp: {str(text)[:40]!r}", field=f"{field}[{i}]"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz or UTC)
        try:
            out[i] = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
        except (OverflowError, ValueError):  # int64 nanoseconds span the years 1678-2262
            raise InvalidInputError(
                f"{field}[{i}] is out of range (years 1678-2261): {str(text)[:40]!r}", field=f"{field}[{i}]"
            ) from None
    return out


def format_timestamps(epoch_ns: np.ndarray, tz_name: str) -> list[str]:
    """UTC epoch ns -> ISO 8601 strings in the series' local time (naive when UTC)."""
    tz = zone(tz_name)
    out = []
    for value in epoch_ns:
        seconds, rem = divmod(int(value), 1_000_000_000)
        dt = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rem // 1000)
        out.append(dt.replace(tzinfo=None).isoformat() if tz is None else dt.astimezone(tz).isoformat())
    return out
