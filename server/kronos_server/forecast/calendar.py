"""Calendar features (minute, hour, weekday, day, month) from local wall-clock time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from kronos_client.errors import InvalidInputError as ClientInputError
from kronos_client.timestamps import shared_offset
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _instants(parsed: list[datetime], values: list[str], tz: tzinfo | None, field: str) -> np.ndarray:
    out = np.empty(len(parsed), dtype=np.int64)
    for i, dt in enumerate(parsed):
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz or UTC)
        try:
            # whole microseconds in integers: a float timestamp() rounds the far years' and
            # truncates the pre-1970 fractions the wrong way
            out[i] = (dt - _EPOCH) // _MICROSECOND * 1000
        except (OverflowError, ValueError):  # int64 nanoseconds span the years 1678-2262
            raise InvalidInputError(
                f"{field}[{i}] is out of range (years 1678-2261): {str(values[i])[:40]!r}",
                field=f"{field}[{i}]",
            ) from None
    return out


# the common shape, parsed by numpy at once: date, time to the minute (seconds and up to six
# fraction digits optional), and the one "Z" or "+HH:MM" suffix (or none) of every value
_WALL = "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]{1,6})?)?"
_OFFSET_SUFFIX = re.compile("[+-][0-9]{2}:[0-9]{2}")
_NS_LIMITS_US = (-(2**63) // 1000 + 1, (2**63 - 1) // 1000)


@lru_cache(maxsize=64)
def _uniform(suffix: str) -> re.Pattern[str]:
    """Newline-joined values of the common shape, each ending in ``suffix``."""
    one = _WALL + re.escape(suffix)
    return re.compile(f"{one}(?:\n{one})*")


def _suffix(text: str) -> str:
    if text.endswith("Z"):
        return "Z"
    return text[-6:] if _OFFSET_SUFFIX.fullmatch(text[-6:]) else ""


def _fast(values: list[str]) -> tuple[np.ndarray, timedelta | None] | None:
    """(the wall-clock times as int64 microseconds, the UTC offset they carry or None when
    naive), when every value has the common shape and the same suffix; None otherwise (the
    per-value parser then decides, naming any bad value). Same results as that parser."""
    if not values or not all(type(v) is str for v in values):
        return None
    suffix = _suffix(values[0])
    joined = "\n".join(values)
    if joined.count("\n") != len(values) - 1 or _uniform(suffix).fullmatch(joined) is None:
        return None
    cut = len(suffix) if suffix else 0
    try:
        wall = np.array([v[: len(v) - cut] for v in values] if cut else values, dtype="datetime64[us]")
    except ValueError:  # a day, hour, ... out of range: the per-value parser names it
        return None
    local = wall.astype(np.int64)
    if local.min() < _NS_LIMITS_US[0] or local.max() > _NS_LIMITS_US[1]:
        return None
    if not suffix:
        return local, None
    if suffix == "Z":
        return local, timedelta(0)
    hours, minutes = int(suffix[1:3]), int(suffix[4:6])
    if hours >= 24 or minutes >= 60:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return local, (-offset if suffix[0] == "-" else offset)


def _fast_instants(local_us: np.ndarray, offset: timedelta | None, tz: tzinfo | None) -> np.ndarray | None:
    """UTC epoch ns of :func:`_fast`'s wall-clock times: by their own offset, else in ``tz``
    (None where ``tz`` is an IANA zone, whose offset changes: the per-value path then)."""
    if offset is None:
        if tz is not None and not isinstance(tz, dt_timezone):
            return None
        offset = tz.utcoffset(None) if tz is not None else timedelta(0)
    utc = local_us - offset // _MICROSECOND
    if utc.min() < _NS_LIMITS_US[0] or utc.max() > _NS_LIMITS_US[1]:
        return None
    return utc * 1000


def parse_timestamps(values: list[str], tz_name: str, field: str) -> np.ndarray:
    """ISO 8601 strings -> UTC epoch ns. Naive strings are wall-clock times in ``tz_name``."""
    tz = zone(tz_name)
    fast = _fast(values)
    if fast is not None:
        instants = _fast_instants(*fast, tz)
        if instants is not None:
            return instants
    return _parse_each(values, tz, field)


def _parse_each(values: list[str], tz: tzinfo | None, field: str) -> np.ndarray:
    """:func:`parse_timestamps` one value at a time (any ISO 8601 form, named errors)."""
    return _instants(_parse(values, field), values, tz, field)


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
    fast = _fast(values)
    if fast is not None:
        local, offset = fast
        name = offset_name(offset) if tz_name is None and offset else tz_name
        instants = _fast_instants(local, offset, zone(name or "UTC"))
        if instants is not None:
            return instants, name
    return _series_each(values, tz_name, field)


def _series_each(values: list[str], tz_name: str | None, field: str) -> tuple[np.ndarray, str | None]:
    """:func:`parse_series_timestamps` one value at a time (any ISO 8601 form, named errors)."""
    parsed = _parse(values, field)
    if tz_name is None:
        try:
            offset = shared_offset((dt.utcoffset() for dt in parsed), field)
        except ClientInputError as exc:
            raise InvalidInputError(exc.message, field=exc.field) from None
        if offset:
            tz_name = offset_name(offset)
    return _instants(parsed, values, zone(tz_name or "UTC"), field), tz_name


def format_timestamps(epoch_ns: np.ndarray, tz_name: str) -> list[str]:
    """UTC epoch ns -> ISO 8601 strings in the series' local time (naive when UTC)."""
    tz = zone(tz_name)
    epoch_ns = np.asarray(epoch_ns, dtype=np.int64)
    if (tz is None or isinstance(tz, dt_timezone)) and not (epoch_ns % 1_000_000_000).any():
        # whole seconds at a fixed offset (the common case): numpy formats them at once
        offset = tz.utcoffset(None) if tz is not None else timedelta(0)
        local = (epoch_ns // 1_000_000_000 + offset // timedelta(seconds=1)).astype("datetime64[s]")
        text: list[str] = np.datetime_as_string(local).tolist()
        return text if tz is None else [t + _suffix_of(tz) for t in text]
    return _format_each(epoch_ns, tz)


def _format_each(epoch_ns: np.ndarray, tz: tzinfo | None) -> list[str]:
    out = []
    for value in epoch_ns:
        seconds, rem = divmod(int(value), 1_000_000_000)
        dt = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rem // 1000)
        out.append(dt.replace(tzinfo=None).isoformat() if tz is None else dt.astimezone(tz).isoformat())
    return out


@lru_cache(maxsize=256)
def _suffix_of(tz: tzinfo) -> str:
    """The "+08:00" that isoformat() writes for a fixed offset."""
    return datetime(2000, 1, 1, tzinfo=tz).isoformat()[len("2000-01-01T00:00:00") :]
