"""EventBridge Scheduler cron expressions: validation and the share of a week an on/off pair keeps a resource on.

Supported: the six fields ``minutes hours day-of-month month day-of-week year`` (with or without
``cron(...)``), each ``*``, ``?`` (day fields), numbers, ranges ``a-b``, lists ``a,b`` and steps
``*/n`` / ``a-b/n``; month names JAN-DEC and day names SUN-SAT (1 = SUN, as EventBridge counts).
``L``, ``W`` and ``#`` are refused: an estimate could not follow them.
"""

from __future__ import annotations

import datetime as dt
import re

_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), 1)}
_FIELDS = (("minutes", 0, 59, {}), ("hours", 0, 23, {}), ("day-of-month", 1, 31, {}), ("month", 1, 12, _MONTHS),
           ("day-of-week", 1, 7, _DAYS), ("year", 1970, 2199, {}))


class CronError(ValueError):
    pass


def _values(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int] | None:
    """The values a field matches (None: any)."""
    if text in ("*", "?"):
        return None
    out: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\*|[A-Z0-9]+(?:-[A-Z0-9]+)?)(?:/(\d+))?", part.upper())
        if not m:
            raise CronError(f"{name} field {text!r}: expected *, a number, a range a-b, a list or a step */n "
                            "(L, W and # are not supported)")

        def number(token: str) -> int:
            value = names.get(token) if token in names else (int(token) if token.isdigit() else None)
            if value is None or not low <= value <= high:
                raise CronError(f"{name} field {text!r}: {token!r} is outside {low}-{high}")
            return value

        span, step = m.group(1), int(m.group(2) or 1)
        if step < 1:
            raise CronError(f"{name} field {text!r}: a step must be at least 1")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            start, end = (number(t) for t in span.split("-"))
            if start > end:
                raise CronError(f"{name} field {text!r}: range {span} runs backwards")
        else:
            start = end = number(span)
            if m.group(2):
                end = high
        out.update(range(start, end + 1, step))
    return out


class Cron:
    """A parsed expression; ``expression`` is what AWS::Scheduler::Schedule takes (``cron(...)``)."""

    def __init__(self, text: str) -> None:
        body = text.strip()
        if body.startswith("cron(") and body.endswith(")"):
            body = body[5:-1]
        fields = body.split()
        if len(fields) != 6:
            raise CronError(f"{text!r}: EventBridge cron has 6 fields (minutes hours day-of-month month day-of-week year), "
                            f"got {len(fields)}")
        if (fields[2] == "?") == (fields[4] == "?"):
            raise CronError(f"{text!r}: exactly one of day-of-month and day-of-week must be '?'")
        self.expression = f"cron({' '.join(fields)})"
        self._sets = [_values(f, name, low, high, names) for f, (name, low, high, names) in zip(fields, _FIELDS)]

    def matches(self, t: dt.datetime) -> bool:
        dow = (t.isoweekday() % 7) + 1  # SUN = 1
        for values, actual in zip(self._sets, (t.minute, t.hour, t.day, t.month, dow, t.year)):
            if values is not None and actual not in values:
                return False
        return True


def on_hours_per_day(start: Cron, stop: Cron, *, weeks: int = 4, first: dt.date = dt.date(2027, 1, 4)) -> float:
    """Average hours a day a resource started by ``start`` and stopped by ``stop`` is on (local time, minute steps).

    The state at the beginning is the state the last event of the simulated period leaves (a
    steady weekly pattern); a minute both start and stop fire in counts as stopped.
    """
    minutes = weeks * 7 * 24 * 60
    base = dt.datetime.combine(first, dt.time())
    events = []
    for i in range(minutes):
        t = base + dt.timedelta(minutes=i)
        if stop.matches(t):
            events.append(False)
        elif start.matches(t):
            events.append(True)
        else:
            events.append(None)
    if not any(e is not None for e in events):
        raise CronError("neither the start nor the stop schedule fires in four weeks")
    state = next(e for e in reversed(events) if e is not None)
    on = 0
    for event in events:
        if event is not None:
            state = event
        on += state
    return on / 60 / (weeks * 7)
