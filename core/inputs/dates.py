"""Dates of soil-moisture time series: parsing from file names and band descriptions."""
from __future__ import annotations

import datetime as _dt
import re
from typing import Optional, Sequence

_DATE_RE = re.compile(r"(?<!\d)(\d{4})[-_]?(\d{2})[-_]?(\d{2})(?!\d)")


def parse_date(text: str) -> Optional[_dt.date]:
    """Return the first plausible ``YYYYMMDD`` / ``YYYY-MM-DD`` / ``YYYY_MM_DD`` date in ``text``.

    >>> parse_date("ESA_CCI_SM_v45_Delaware_20180131.tif")
    datetime.date(2018, 1, 31)
    >>> parse_date("no date") is None
    True
    """
    for m in _DATE_RE.finditer(text or ""):
        y, mo, d = (int(g) for g in m.groups())
        if 1900 <= y <= 2200:
            try:
                return _dt.date(y, mo, d)
            except ValueError:
                continue
    return None


def strip_date(text: str) -> str:
    """``text`` without its first date and the separators around it: the name a dated series shares.

    >>> strip_date("S1_VV_20180113"), strip_date("ndvi-2018-01-17-v2")
    ('S1_VV', 'ndvi-v2')
    """
    for m in _DATE_RE.finditer(text or ""):
        if parse_date(m.group(0)) is not None:
            head, tail = text[:m.start()].rstrip("-_ ."), text[m.end():].lstrip("-_ .")
            sep = text[m.start() - 1] if m.start() > 0 and head and tail else ""
            return (head + sep + tail) if head and tail else (head or tail)
    return text


def parse_date_list(text: str) -> list[_dt.date]:
    """Parse a comma/space separated list of dates (``"2018-01-01, 2018-01-02"``).

    Raises ``ValueError`` naming the item that is not a date.
    """
    out = []
    for item in re.split(r"[,;\s]+", (text or "").strip()):
        if not item:
            continue
        d = parse_date(item)
        if d is None:
            raise ValueError(f"'{item}' is not a date: write dates as YYYY-MM-DD, separated by commas")
        out.append(d)
    return out


def as_date(d: object) -> _dt.date:
    """A ``date`` from a date, datetime, ``numpy.datetime64`` or a text holding a date."""
    if isinstance(d, _dt.datetime):
        return d.date()
    if isinstance(d, _dt.date):
        return d
    if type(d).__name__ == "datetime64":
        return _dt.date.fromisoformat(str(d)[:10])
    parsed = parse_date(str(d))
    if parsed is None:
        raise ValueError(f"'{d}' is not a date")
    return parsed


def format_date(d: _dt.date) -> str:
    """ISO form used for band descriptions (``2018-01-31``)."""
    return d.isoformat()


def day_of_year(d: _dt.date) -> int:
    return d.timetuple().tm_yday


def nearest_earlier(target: _dt.date, candidates: Sequence[Optional[_dt.date]], tolerance_days: int) -> Optional[int]:
    """Index of the latest candidate date on or before ``target`` and at most
    ``tolerance_days`` earlier (the 8-day padding of Poehls et al.); ``None`` if none.

    A ``None`` candidate is a static layer and always matches (when nothing dated does).
    """
    best, best_gap, static = None, None, None
    for i, c in enumerate(candidates):
        if c is None:
            static = i if static is None else static
            continue
        gap = (target - c).days
        if 0 <= gap <= tolerance_days and (best_gap is None or gap < best_gap):
            best, best_gap = i, gap
    return best if best is not None else static

