"""Trading-session calendar: when a product trades, and which trading day a moment belongs to.

Market rules need it twice: a rule can be restricted to named sessions ("night", "day",
"pre_open", "open", "close"), and a contract is only stale when it should be trading. The
calendar is built from the contract table (each product's sessions, night first) and a
user-supplied list of exchange holidays (weekends are never trading days).

Chinese futures conventions, all in Beijing time (UTC+8):

- Night trading belongs to the next trading day: the 21:00 session of Friday is Monday's.
- A night session runs on the evening of trading day D only when the next trading day is the
  next weekday, i.e. no holiday follows D: there is no night session before a holiday (and so
  none on the first evening after a long holiday either).
- A night session may end after midnight (01:00, 02:30); that part is still the same night.

Pure: stdlib and numpy only. Times are epoch seconds; `date`s are Beijing calendar days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np

from rules.contracts import ContractTable

BEIJING = timezone(timedelta(hours=8))
EDGE_S = 300  # "pre_open" / "open" / "close" cover five minutes around a part's edges
NIGHT_FROM_S = 18 * 3600  # local times from 18:00 (and before 06:00) are night trading
NIGHT_UNTIL_S = 6 * 3600
LABELS: tuple[str, ...] = ("night", "day", "pre_open", "open", "close")
LABEL_BITS: dict[str, int] = {name: 1 << i for i, name in enumerate(LABELS)}


def label_mask(labels: Iterable[str]) -> int:
    """Bitmask of session labels; raises ValueError naming an unknown label."""
    mask = 0
    for name in labels:
        if name not in LABEL_BITS:
            raise ValueError(f"unknown session {name!r}; one of {', '.join(LABELS)}")
        mask |= LABEL_BITS[name]
    return mask


@dataclass(frozen=True, slots=True)
class Section:
    """One continuous trading section, e.g. 10:30–11:30 of a trading day."""

    start: float
    end: float
    label: str  # "night" or "day"
    trading_day: date


@dataclass(frozen=True, slots=True)
class SessionState:
    trading_day: date
    section: Section | None  # the section the moment is in; None outside sessions
    previous_start: float  # start of the section before the current one (nan outside)
    labels: frozenset[str]

    @property
    def in_session(self) -> bool:
        return self.section is not None


def _hhmm(text: str) -> int:
    hh, mm = text.split(":")
    return int(hh) * 3600 + int(mm) * 60


def _at(day: date, seconds: int) -> float:
    midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp()
    return midnight + seconds


def local(ts: float) -> tuple[date, float]:
    """(Beijing calendar day, seconds since its midnight) of an epoch time."""
    shifted = ts + 8 * 3600
    days = int(shifted // 86400)
    return date(1970, 1, 1) + timedelta(days=days), shifted - days * 86400


class SessionCalendar:
    """Sessions per product plus holidays. Products sharing a schedule share a template, so a
    caller with many contracts computes each schedule once (see `template_states`)."""

    def __init__(
        self,
        sessions_by_product: Mapping[str, Sequence[Sequence[str]]],
        holidays: Iterable[date] = (),
    ) -> None:
        self.holidays = frozenset(holidays)
        self.templates: list[tuple[tuple[str, str], ...]] = []
        self._template_of: dict[str, int] = {}
        for product, sessions in sessions_by_product.items():
            key = tuple((str(a), str(b)) for a, b in sessions)
            if key not in self.templates:
                self.templates.append(key)
            self._template_of[product] = self.templates.index(key)
        self._cache_key: int | None = None
        self._sections_cache: dict[tuple[tuple[tuple[str, str], ...], date], list[Section]] = {}
        self._cache: tuple[np.ndarray, ...] = ()

    @classmethod
    def from_table(cls, table: ContractTable, holidays: Iterable[date] = ()) -> SessionCalendar:
        return cls({spec.product: spec.sessions for spec in table}, holidays)

    # -- days --------------------------------------------------------------------------------
    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        for _ in range(60):
            day += timedelta(days=1)
            if self.is_trading_day(day):
                return day
        raise ValueError(f"no trading day within 60 days after {day}: check the holiday list")

    def previous_trading_day(self, day: date) -> date:
        for _ in range(60):
            day -= timedelta(days=1)
            if self.is_trading_day(day):
                return day
        raise ValueError(f"no trading day within 60 days before {day}: check the holiday list")

    def has_night(self, trading_day: date) -> bool:
        """Whether the night before `trading_day` trades: only when no holiday lies between."""
        before = self.previous_trading_day(trading_day)
        next_weekday = before + timedelta(days=3 if before.weekday() == 4 else 1)
        return next_weekday == trading_day

    def trading_day(self, ts: float) -> date:
        """The trading day a moment belongs to: evening and after-midnight hours belong to the
        next trading day, daytime on a non-trading day to the next trading day."""
        day, secs = local(ts)
        if secs >= NIGHT_FROM_S:
            return self.next_trading_day(day)
        if secs < NIGHT_UNTIL_S:
            return self.next_trading_day(day - timedelta(days=1))
        return day if self.is_trading_day(day) else self.next_trading_day(day)

    # -- sections ----------------------------------------------------------------------------
    def template(self, product: str) -> int:
        try:
            return self._template_of[product]
        except KeyError:
            raise KeyError(f"product {product!r} has no sessions in the calendar") from None

    def sections(self, product: str, trading_day: date) -> list[Section]:
        return self._sections(self.templates[self.template(product)], trading_day)

    def _sections(self, sessions: tuple[tuple[str, str], ...], day: date) -> list[Section]:
        key = (sessions, day)
        found = self._sections_cache.get(key)
        if found is None:
            if len(self._sections_cache) > 4096:
                self._sections_cache.clear()
            found = self._sections_cache[key] = self._build_sections(sessions, day)
        return found

    def _build_sections(self, sessions: tuple[tuple[str, str], ...], day: date) -> list[Section]:
        if not self.is_trading_day(day):
            return []
        out: list[Section] = []
        rest = sessions
        if sessions and _hhmm(sessions[0][0]) >= NIGHT_FROM_S:
            rest = sessions[1:]
            if self.has_night(day):
                evening = self.previous_trading_day(day)
                start, end = _hhmm(sessions[0][0]), _hhmm(sessions[0][1])
                end_day = evening if end > start else evening + timedelta(days=1)
                out.append(Section(_at(evening, start), _at(end_day, end), "night", day))
        for a, b in rest:
            out.append(Section(_at(day, _hhmm(a)), _at(day, _hhmm(b)), "day", day))
        return out

    def state(self, product: str, ts: float) -> SessionState:
        return self._state(self.templates[self.template(product)], ts)

    def _state(self, sessions: tuple[tuple[str, str], ...], ts: float) -> SessionState:
        day = self.trading_day(ts)
        today = self._sections(sessions, day)
        labels: set[str] = set()
        for part in ("night", "day"):
            secs = [s for s in today if s.label == part]
            if not secs:
                continue
            first, last = secs[0].start, secs[-1].end
            if first - EDGE_S <= ts < first:
                labels.add("pre_open")
            if first <= ts < first + EDGE_S:
                labels.add("open")
            if last - EDGE_S <= ts < last:
                labels.add("close")
        for i, sec in enumerate(today):
            if sec.start <= ts < sec.end:
                labels.add(sec.label)
                if i > 0:
                    previous = today[i - 1].start
                else:
                    before = self._sections(sessions, self.previous_trading_day(day))
                    previous = before[-1].start if before else float("nan")
                return SessionState(day, sec, previous, frozenset(labels))
        return SessionState(day, None, float("nan"), frozenset(labels))

    def template_states(self, ts: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per template at `ts`: (in_session, section_start, previous_start, label bits).

        Index the arrays with each contract's template to get per-contract values in one take;
        the result is cached for the second, so callers may ask on every check.
        """
        key = int(ts)
        if key != self._cache_key:
            n = len(self.templates)
            inside = np.zeros(n, dtype=bool)
            start = np.full(n, np.nan)
            previous = np.full(n, np.nan)
            bits = np.zeros(n, dtype=np.int64)
            for i, sessions in enumerate(self.templates):
                st = self._state(sessions, float(key))
                inside[i] = st.in_session
                if st.section is not None:
                    start[i] = st.section.start
                previous[i] = st.previous_start
                bits[i] = label_mask(st.labels)
            self._cache_key, self._cache = key, (inside, start, previous, bits)
        return self._cache  # type: ignore[return-value]


def parse_day(text: str) -> date:
    """ "20251001" or "2025-10-01" -> date; ValueError saying what was expected."""
    cleaned = str(text).strip().replace("-", "")
    try:
        if len(cleaned) != 8:
            raise ValueError
        return datetime.strptime(cleaned, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date (expected YYYYMMDD or YYYY-MM-DD)") from None
