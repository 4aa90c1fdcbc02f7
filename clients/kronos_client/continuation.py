"""Future timestamps for a forecast: continue a history by a frequency or an exchange's sessions.

Pure standard library, except the trading-session mode, which needs the optional
``exchange_calendars`` package (the ``calendars`` extra). Both CLIs
(``kronos-client predict`` and ``kronos-serve forecast``) call :func:`continue_history`.
"""

from __future__ import annotations

import importlib
import itertools
import re
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

FREQ_HELP = "Ns, Nmin, Nh, ND, NW, or NB (business days, skipping Saturdays and Sundays); N defaults to 1"
_FREQ = re.compile(r"^(\d*)(s|min|h|d|w|b)$", re.IGNORECASE)
_UNITS = {
    "s": timedelta(seconds=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "b": timedelta(days=1),
}
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


class ContinuationError(ValueError):
    """A bad frequency, calendar or history for continuation; ``field`` names the flag."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = f"{field}: {message}"


@dataclass(frozen=True)
class Freq:
    count: int
    step: timedelta  # count units
    business: bool  # count business days (Monday-Friday)


def parse_freq(text: str) -> Freq:
    """'5min' -> 5 minutes, '1h', '1D', 'B' (one business day)..."""
    match = _FREQ.match(text.strip())
    count = int(match.group(1) or 1) if match else 0
    if not match or count < 1:
        raise ContinuationError("--freq", f"{text!r} is not a frequency; use {FREQ_HELP}")
    unit = match.group(2).lower()
    return Freq(count, count * _UNITS[unit], unit == "b")


def history_step(history: Sequence[datetime]) -> timedelta:
    """The history's own interval: the median spacing of its timestamps."""
    if len(history) < 2:
        raise ContinuationError("timestamps", "continuing the history needs at least 2 rows")
    return statistics.median_low([b - a for a, b in itertools.pairwise(history)])


def _by_freq(last: datetime, n: int, freq: Freq) -> list[datetime]:
    out: list[datetime] = []
    if freq.step < DAY:
        # sub-day steps count elapsed time (a DST change must not repeat or skip a bar)
        return [last + freq.step * i for i in range(1, n + 1)]
    # day steps keep the wall-clock time of day ("00:00", "15:00") across DST changes
    wall, tz = last.replace(tzinfo=None), last.tzinfo
    while len(out) < n:
        if freq.business:
            for _ in range(freq.count):
                wall += DAY
                while wall.weekday() >= 5:
                    wall += DAY
        else:
            wall += freq.step
        out.append(wall.replace(tzinfo=tz))
    return out


def _exchange(code: str, first: datetime, span: timedelta) -> Any:
    try:
        import exchange_calendars as xcals  # type: ignore[import-untyped]
    except ImportError:
        raise ContinuationError(
            "--calendar",
            "needs the optional exchange_calendars package: pip install exchange_calendars"
            " (the 'calendars' extra of kronos-client and of kronos-serve)",
        ) from None
    start = (first - timedelta(days=7)).date().isoformat()
    end = (first + span + timedelta(days=30)).date().isoformat()
    try:
        return xcals.get_calendar(code, start=start, end=end)
    except xcals.errors.InvalidCalendarName:
        raise ContinuationError(
            "--calendar", f"unknown exchange code {code!r} (ISO 10383 MIC, e.g. XSHG, XNYS, XLON)"
        ) from None
    except (ValueError, xcals.errors.CalendarError) as exc:
        raise ContinuationError("--calendar", f"{code}: {exc}") from None


def _by_sessions(last: datetime, n: int, step: timedelta, code: str) -> list[datetime]:
    # exchange_calendars' own use of pandas raises deprecation warnings on a CLI user's stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return _sessions(last, n, step, code)


def _sessions(last: datetime, n: int, step: timedelta, code: str) -> list[datetime]:
    pd: Any = importlib.import_module("pandas")  # installed with exchange_calendars

    tz = last.tzinfo
    if step >= DAY:  # daily (or coarser) bars: the next sessions, at the last bar's time of day
        cal = _exchange(code, last, n * 2 * DAY)
        local = pd.Timestamp(last).tz_convert(cal.tz)
        sessions = cal.sessions[cal.sessions > pd.Timestamp(local.date())][:n]
        if len(sessions) < n:
            raise ContinuationError("--calendar", f"{code} has fewer than {n} sessions after {local.date()}")
        wall = local.tz_localize(None).time()
        return [
            pd.Timestamp(datetime.combine(s.date(), wall)).tz_localize(cal.tz).to_pydatetime().astimezone(tz)
            for s in sessions
        ]
    if step < MINUTE or step % MINUTE:
        raise ContinuationError("--calendar", f"needs an interval of whole minutes, got {step}")
    # a trading day is at least a few hours: 8x the bare span leaves room for nights and holidays
    cal = _exchange(code, last, 8 * n * step)
    t = pd.Timestamp(last).tz_convert("UTC").floor("min")
    # bars labelled by their start (09:30 ... 11:25) or by their end (09:35 ... 11:30, 15:00)
    by_end = not cal.is_trading_minute(t)
    lag = MINUTE if by_end else timedelta(0)
    out = []
    try:
        for _ in range(n):
            t = t + step
            if not cal.is_trading_minute(t - lag):
                t = cal.minute_to_trading_minute(t - lag, "next") + (step if by_end else timedelta(0))
            out.append(t.to_pydatetime().astimezone(tz))
    except (ValueError, IndexError, KeyError) as exc:  # past the calendar's bounds
        raise ContinuationError("--calendar", f"{code}: {exc}") from None
    return out


def continue_history(
    history: Sequence[datetime], n: int, *, freq: str | None = None, calendar: str | None = None
) -> list[datetime]:
    """``n`` aware datetimes after ``history`` (aware, in the series' zone), in that zone.

    ``freq`` steps by a fixed frequency (``B`` skips weekends); ``calendar`` (an exchange
    code such as XSHG) steps through that exchange's trading sessions, skipping breaks,
    nights and holidays, at ``freq`` or else the history's own interval.
    """
    if not history:
        raise ContinuationError("timestamps", "the history is empty")
    if n < 1:
        raise ContinuationError("--pred-len", f"must be >= 1, got {n}")
    parsed = parse_freq(freq) if freq is not None else None
    if calendar is not None:
        step = parsed.step if parsed is not None and not parsed.business else history_step(history)
        if parsed is not None and parsed.business:
            step = DAY
        return _by_sessions(history[-1], n, step, calendar)
    if parsed is None:
        parsed = Freq(1, history_step(history), False)
    return _by_freq(history[-1], n, parsed)
