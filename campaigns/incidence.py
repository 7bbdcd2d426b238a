"""When cases happen over the week, and the peak windows the data really supports.

Pure analysis (no database): a case's time, in Asia/Shanghai, falls in one of the 168 hours of
the week (weekday × hour, Monday 0). From those counts this module finds the windows a campaign
should warn just before, and the send times for them (``next_occurrences``).

How peaks are found, and why:

- **The null hypothesis is "no time pattern": every hour of the week equally likely.** The
  campaign question is when cases of a type *happen*, in absolute terms: if every kind of fraud
  peaks in the evening, the evening is exactly when to warn, and a baseline made of the hour
  profile of all cases would hide that shared peak (it answers "when is this type unusual",
  which matters less for timing a warning). That other baseline is available
  (``find_peaks(baseline=...)``: a 7×24 grid of all cases, smoothed, as the expected shape) for
  when the question is the type's own deviation.
- **Windows tried**: every weekday window (start at any of the 168 hours, 1–3 hours long,
  wrapping from Sunday 23h into Monday 0h) and every daily window (start hour, 1–3 hours, the
  same hours on all 7 days): ``N_WINDOWS`` = 504 + 72 = 576 in all.
- **Test**: the count in a window is binomial (n cases, p = the window's expected share) under
  the null; its one-sided p-value, multiplied by 576 (Bonferroni over every window tried, so the
  chance of reporting any peak from patternless data is at most ``alpha``), must be ≤ ``alpha``
  (default 0.01). The windows overlap, so Bonferroni is conservative; that is the side to err on
  (no peak invented from noise). A window also needs ``min_window_cases`` cases (default 8) and
  ``min_ratio`` times its expected count (default 1.5): significant but small excesses in big
  data are not worth a push.
- **Tests use the raw counts**, not the smoothed ones: windows of 1–3 hours already pool
  neighbouring hours, and the binomial test needs counts. Smoothing (a triangular kernel over
  ±2 hours on the week as a ring, weights 1, 2, 3, 2, 1 over 9, so the total is kept) is for
  the heatmap and for a baseline profile.
- **Daily before weekday**: daily windows are found first, each judged on its 5 least busy
  days (the 2 busiest dropped; same test, same correction, the count and expectation of those
  5 days), so that a peak on Wednesdays alone, which also makes "20–22 h every day" stand out,
  is not taken for a daily one, and a daily pattern with an extra weekday on top still is. Its
  reported ``cases``/``expected`` are those of all 7 days. Weekday windows are then tested
  against the expectation with the daily peaks fitted (their hours expected at their own
  average over the week, the other hours scaled to the rest), so a daily pattern does not also
  come out as seven weekday windows, while a weekday's extra on top of it does. Thin data that
  cannot single out a weekday can still show a daily window. A pattern on three or more
  weekdays may come out as daily (plus those weekdays' extras).
- **Merging**: the most significant window opens a peak; an overlapping or adjacent significant
  window is merged into it when the merged span is better supported (a strictly smaller
  p-value, every rule still met), so a 4-hour peak comes out as one window of 4 hours while a
  background hour next to a 2-hour peak is not absorbed; other candidates overlapping a peak
  are explained by it and dropped. Peaks that end up adjacent are merged. A merged peak is at
  most ``MAX_SPAN_HOURS`` long. ``PeakWindow.p_value`` is the Bonferroni-adjusted p-value of
  the final span (for a daily window, that of its 5 least busy days).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAYS = 7
HOURS = 24
WEEK_HOURS = DAYS * HOURS
WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
ALL_AREAS_LABEL = "全部地区"

KERNEL = (1 / 9, 2 / 9, 3 / 9, 2 / 9, 1 / 9)  # triangular, ±2 hours
WINDOW_LENGTHS = (1, 2, 3)
N_WINDOWS = WEEK_HOURS * len(WINDOW_LENGTHS) + HOURS * len(WINDOW_LENGTHS)
MAX_SPAN_HOURS = 6
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_WINDOW_CASES = 8
DEFAULT_MIN_RATIO = 1.5
DROPPED_BUSIEST_DAYS = 2
# Added to every hour of a baseline profile, so an hour without baseline cases is not
# "impossible" (an expected count of 0 would make any case there infinitely surprising).
BASELINE_PSEUDO_COUNT = 0.5

Grid = tuple[tuple[int, ...], ...]
FloatGrid = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class PeakWindow:
    """A window when cases peak: on one weekday, or (``weekday`` None) at the same hours daily.

    ``start_hour`` is the local (Asia/Shanghai) hour it starts; it lasts ``hours`` and may run
    past midnight (a Sunday window past midnight runs into Monday). ``cases`` and ``expected``
    are counted over every day the window covers; ``p_value`` is Bonferroni-adjusted.
    """

    weekday: int | None
    start_hour: int
    hours: int
    cases: int
    expected: float
    ratio: float
    p_value: float

    @property
    def daily(self) -> bool:
        return self.weekday is None

    @property
    def cells(self) -> frozenset[int]:
        """The hours of the week (weekday × 24 + hour) the window covers."""
        days = range(DAYS) if self.weekday is None else (self.weekday,)
        return frozenset(
            (day * HOURS + self.start_hour + k) % WEEK_HOURS
            for day in days
            for k in range(self.hours)
        )

    def covers_hour(self, hour: int) -> bool:
        """Whether the window's hours of the day include ``hour`` (for daily windows)."""
        return (hour - self.start_hour) % HOURS < self.hours

    def label(self) -> str:
        """``周三 20:00–22:00``, ``每天 09:00–10:00``, ``周日 23:00–次日01:00``."""
        day = "每天" if self.weekday is None else WEEKDAY_NAMES[self.weekday]
        end = self.start_hour + self.hours
        until = f"{end:02d}:00" if end <= HOURS else f"次日{end - HOURS:02d}:00"
        return f"{day} {self.start_hour:02d}:00–{until}"


@dataclass(frozen=True)
class Incidence:
    """One slice of the case data (type × audience × area) over the week, and its peaks.

    ``area_id``/``area_label`` name the area actually analysed (None/全部地区: every case);
    ``fell_back`` says it is wider than ``requested_area_id`` because that had too few cases,
    and ``reason`` says why in words. ``counts`` and ``smoothed`` are 7 rows (Monday first) of
    24 hours.
    """

    scam_type: str
    audience: str
    area_id: int | None
    area_label: str
    cases: int
    counts: Grid
    smoothed: FloatGrid
    peaks: tuple[PeakWindow, ...]
    fell_back: bool
    reason: str
    requested_area_id: int | None = None


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (UTC or Asia/Shanghai), not naive")


def hour_of_week(moment: datetime) -> int:
    """The hour of the week, in Asia/Shanghai, of an aware time: Monday 0h is 0, Sunday 23h 167."""
    _aware(moment, "a case time")
    local = moment.astimezone(SHANGHAI)
    return local.weekday() * HOURS + local.hour


def count_hours(indices: Iterable[int]) -> Grid:
    """Counts by weekday × hour from hours of the week (``hour_of_week``)."""
    flat = [0] * WEEK_HOURS
    for index in indices:
        if not 0 <= index < WEEK_HOURS:
            raise ValueError(f"not an hour of the week: {index}")
        flat[index] += 1
    return _grid(flat)


def count_week(times: Iterable[datetime]) -> Grid:
    """Counts by weekday (Monday 0) × hour (Asia/Shanghai) of aware times."""
    return count_hours(hour_of_week(t) for t in times)


def _grid(flat: Sequence[int]) -> Grid:
    return tuple(tuple(flat[d * HOURS : (d + 1) * HOURS]) for d in range(DAYS))


def _flatten(grid: Sequence[Sequence[float]], what: str) -> list[float]:
    if len(grid) != DAYS or any(len(row) != HOURS for row in grid):
        raise ValueError(f"{what} must be 7 rows (Monday first) of 24 hours")
    flat = [float(v) for row in grid for v in row]
    if any(not math.isfinite(v) or v < 0 for v in flat):
        raise ValueError(f"{what} must hold finite, non-negative numbers")
    return flat


def smooth(counts: Sequence[Sequence[float]], kernel: Sequence[float] = KERNEL) -> FloatGrid:
    """Counts smoothed over the week as a ring (Sunday 23h is next to Monday 0h).

    ``kernel`` has an odd length and is centred on the hour; with weights summing to 1 (as the
    default, triangular over ±2 hours) the total is kept.
    """
    if len(kernel) % 2 != 1:
        raise ValueError("the kernel must have an odd number of weights")
    flat = _flatten(counts, "counts")
    half = len(kernel) // 2
    out = [
        sum(w * flat[(i + k - half) % WEEK_HOURS] for k, w in enumerate(kernel))
        for i in range(WEEK_HOURS)
    ]
    return tuple(tuple(out[d * HOURS : (d + 1) * HOURS]) for d in range(DAYS))


# --- statistics -------------------------------------------------------------------------------


def _log_binom_pmf(k: int, n: int, lp: float, lq: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq


def log_binom_sf(x: int, n: int, p: float) -> float:
    """log P(X ≥ x) for X ~ Binomial(n, p), exact to float precision, without underflow."""
    if x <= 0:
        return 0.0
    if x > n or p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    odds = p / (1.0 - p)
    if x > n * p:  # upper tail: the terms fall from x on
        first = _log_binom_pmf(x, n, lp, lq)
        total, term, k = 1.0, 1.0, x
        while k < n:
            term *= (n - k) / (k + 1) * odds
            total += term
            k += 1
            if term < 1e-17 * total:
                break
        return first + math.log(total)
    # x at or below the mean: P(X ≥ x) = 1 - P(X ≤ x - 1), the lower tail falling from x - 1 down
    first = _log_binom_pmf(x - 1, n, lp, lq)
    total, term, k = 1.0, 1.0, x - 1
    while k > 0:
        term *= k / (n - k + 1) / odds
        total += term
        k -= 1
        if term < 1e-17 * total:
            break
    lower = math.exp(first + math.log(total))
    return math.log1p(-min(lower, 1.0)) if lower < 1.0 else -math.inf


# --- windows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """A run of hours on a ring: the 168-hour week (weekday windows) or the 24-hour day."""

    start: int
    length: int
    ring: int

    def positions(self) -> frozenset[int]:
        return frozenset((self.start + k) % self.ring for k in range(self.length))

    def cells(self) -> list[int]:
        """Hours of the week covered: a daily span covers its hours on all 7 days."""
        if self.ring == WEEK_HOURS:
            return [(self.start + k) % WEEK_HOURS for k in range(self.length)]
        return [
            (d * HOURS + self.start + k) % WEEK_HOURS
            for d in range(DAYS)
            for k in range(self.length)
        ]

    def touches(self, other: _Span) -> bool:
        """Overlapping or adjacent."""
        mine = self.positions()
        grown = mine | {(self.start - 1) % self.ring, (self.start + self.length) % self.ring}
        return bool(grown & other.positions())

    def union(self, other: _Span) -> _Span | None:
        """The one run covering both (they must touch), or None if that is not one short run."""
        covered = self.positions() | other.positions()
        if len(covered) >= self.ring:
            return None
        starts = [p for p in covered if (p - 1) % self.ring not in covered]
        if len(starts) != 1:
            return None
        return _Span(starts[0], len(covered), self.ring)


@dataclass(frozen=True)
class _Tested:
    """A window's counts over every day it covers, and the evidence used to decide on it."""

    span: _Span
    cases: int
    expected: float
    log_p: float  # unadjusted; for a daily window, that of its least busy days
    significant: bool

    @property
    def ratio(self) -> float:
        return self.cases / self.expected if self.expected > 0 else math.inf


@dataclass(frozen=True)
class _Rules:
    n: int
    log_alpha: float
    min_cases: int
    min_ratio: float

    def log_p(self, cases: int, exp: float) -> float:
        return log_binom_sf(cases, self.n, min(1.0, exp / self.n)) if self.n else 0.0

    def significant(self, cases: int, exp: float, log_p: float) -> bool:
        return (
            cases >= self.min_cases
            and cases >= self.min_ratio * exp
            and log_p + math.log(N_WINDOWS) <= self.log_alpha
        )


class _Tester:
    """Tests windows of counts against an expectation (168 hours each)."""

    def __init__(self, flat: Sequence[float], expected: Sequence[float], rules: _Rules) -> None:
        self.flat, self.expected, self.rules = flat, expected, rules

    def __call__(self, span: _Span) -> _Tested:
        if span.ring == HOURS:
            return self._daily(span)
        cells = span.cells()
        cases = int(sum(self.flat[c] for c in cells))
        exp = sum(self.expected[c] for c in cells)
        log_p = self.rules.log_p(cases, exp)
        return _Tested(span, cases, exp, log_p, self.rules.significant(cases, exp, log_p))

    def _daily(self, span: _Span) -> _Tested:
        """Judged on its least busy days only, so that one or two weekdays cannot make it."""
        per_day = []
        for day in range(DAYS):
            cells = [(day * HOURS + span.start + k) % WEEK_HOURS for k in range(span.length)]
            per_day.append(
                (sum(self.flat[c] for c in cells), sum(self.expected[c] for c in cells))
            )
        quiet = sorted(per_day, key=lambda oe: oe[0])[: DAYS - DROPPED_BUSIEST_DAYS]
        quiet_cases = int(sum(o for o, _ in quiet))
        quiet_exp = sum(e for _, e in quiet)
        log_p = self.rules.log_p(quiet_cases, quiet_exp)
        return _Tested(
            span,
            int(sum(o for o, _ in per_day)),
            sum(e for _, e in per_day),
            log_p,
            self.rules.significant(quiet_cases, quiet_exp, log_p),
        )


def _select(ring: int, test: _Tester) -> list[_Tested]:
    """Significant windows on a ring, merged into non-overlapping peaks (see module docstring)."""
    candidates = []
    for start in range(ring):
        for length in WINDOW_LENGTHS:
            tested = test(_Span(start, length, ring))
            if tested.significant:
                candidates.append(tested)
    candidates.sort(key=lambda t: (t.log_p, -t.span.length, t.span.start))
    peaks: list[_Tested] = []
    while candidates:
        current = candidates.pop(0)
        grew = True
        while grew:
            grew = False
            for other in candidates:
                if not current.span.touches(other.span):
                    continue
                union = current.span.union(other.span)
                if union is None or union.length > MAX_SPAN_HOURS:
                    continue
                merged = test(union)
                if merged.significant and merged.log_p < current.log_p:
                    current, grew = merged, True
                    break
        peaks.append(current)
        taken = current.span.positions()
        candidates = [c for c in candidates if not (c.span.positions() & taken)]
    # Peaks that ended up side by side are one peak.
    merged_any = True
    while merged_any:
        merged_any = False
        for i, a in enumerate(peaks):
            for b in peaks[i + 1 :]:
                union = a.span.union(b.span) if a.span.touches(b.span) else None
                if union is None or union.length > MAX_SPAN_HOURS:
                    continue
                merged = test(union)
                if merged.significant:
                    peaks = [p for p in peaks if p is not a and p is not b] + [merged]
                    merged_any = True
                    break
            if merged_any:
                break
    return peaks


def _fit_daily(
    flat: Sequence[float], expected: Sequence[float], n: int, daily: Sequence[_Tested]
) -> list[float]:
    """The expectation with the daily peaks' hours at their own level, the rest scaled down."""
    fitted = list(expected)
    in_daily: set[int] = set()
    for peak in daily:
        for k in range(peak.span.length):
            cells = [(d * HOURS + peak.span.start + k) % WEEK_HOURS for d in range(DAYS)]
            observed = sum(flat[c] for c in cells)
            share = sum(expected[c] for c in cells)
            for c in cells:
                fitted[c] = observed * expected[c] / share if share > 0 else observed / DAYS
            in_daily.update(cells)
    rest_expected = sum(expected[c] for c in range(WEEK_HOURS) if c not in in_daily)
    rest_observed = n - sum(flat[c] for c in in_daily)
    if rest_expected > 0:
        scale = rest_observed / rest_expected
        for c in range(WEEK_HOURS):
            if c not in in_daily:
                fitted[c] = expected[c] * scale
    return fitted


def _expected_shape(n: int, baseline: Sequence[Sequence[float]] | None) -> list[float]:
    if baseline is None:
        return [n / WEEK_HOURS] * WEEK_HOURS
    profile = [v + BASELINE_PSEUDO_COUNT for row in smooth(baseline) for v in row]
    total = sum(profile)
    return [n * v / total for v in profile]


def _window(t: _Tested) -> PeakWindow:
    span = t.span
    if span.ring == WEEK_HOURS:
        weekday: int | None = span.start // HOURS
        start_hour = span.start % HOURS
    else:
        weekday, start_hour = None, span.start
    adjusted = min(1.0, math.exp(t.log_p) * N_WINDOWS)
    return PeakWindow(
        weekday=weekday,
        start_hour=start_hour,
        hours=span.length,
        cases=t.cases,
        expected=round(t.expected, 3),
        ratio=round(t.ratio, 3),
        p_value=adjusted,
    )


def find_peaks(
    counts: Sequence[Sequence[int]],
    *,
    baseline: Sequence[Sequence[float]] | None = None,
    alpha: float = DEFAULT_ALPHA,
    min_window_cases: int = DEFAULT_MIN_WINDOW_CASES,
    min_ratio: float = DEFAULT_MIN_RATIO,
) -> tuple[PeakWindow, ...]:
    """The peak windows in 7×24 counts: daily windows first, then weekday windows, by time.

    ``baseline``: None for "no time pattern" (uniform over the week), or a 7×24 grid of counts
    (all cases, say) whose smoothed shape is the expectation. See the module docstring.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be between 0 and 1")
    if min_window_cases < 1:
        raise ValueError("min_window_cases must be at least 1")
    if min_ratio < 1.0:
        raise ValueError("min_ratio must be at least 1")
    flat = _flatten(counts, "counts")
    if any(v != int(v) for v in flat):
        raise ValueError("counts must be whole numbers")
    if baseline is not None:
        _flatten(baseline, "baseline")
    n = int(sum(flat))
    if n == 0:
        return ()
    rules = _Rules(n, math.log(alpha), min_window_cases, min_ratio)
    expected = _expected_shape(n, baseline)
    daily = _select(HOURS, _Tester(flat, expected, rules))
    weekly = _select(WEEK_HOURS, _Tester(flat, _fit_daily(flat, expected, n, daily), rules))
    windows = [_window(p) for p in daily] + [_window(p) for p in weekly]
    return tuple(
        sorted(windows, key=lambda w: (w.weekday is not None, w.weekday or 0, w.start_hour))
    )


def analyse(
    counts: Sequence[Sequence[int]],
    *,
    scam_type: str,
    audience: str,
    area_id: int | None = None,
    area_label: str = ALL_AREAS_LABEL,
    fell_back: bool = False,
    reason: str = "",
    requested_area_id: int | None = None,
    baseline: Sequence[Sequence[float]] | None = None,
    min_cases: int = 0,
    alpha: float = DEFAULT_ALPHA,
    min_window_cases: int = DEFAULT_MIN_WINDOW_CASES,
    min_ratio: float = DEFAULT_MIN_RATIO,
) -> Incidence:
    """An ``Incidence`` from counts; below ``min_cases`` cases no peak is looked for."""
    flat = _flatten(counts, "counts")
    total = int(sum(flat))
    grid = _grid([int(v) for v in flat])
    peaks: tuple[PeakWindow, ...] = ()
    if total >= max(min_cases, 1):
        peaks = find_peaks(
            grid,
            baseline=baseline,
            alpha=alpha,
            min_window_cases=min_window_cases,
            min_ratio=min_ratio,
        )
    return Incidence(
        scam_type=scam_type,
        audience=audience,
        area_id=area_id,
        area_label=area_label,
        cases=total,
        counts=grid,
        smoothed=smooth(grid),
        peaks=peaks,
        fell_back=fell_back,
        reason=reason,
        requested_area_id=requested_area_id,
    )


# --- send times -------------------------------------------------------------------------------


def next_occurrences(
    peaks: Iterable[PeakWindow], lead: timedelta, after: datetime, until: datetime
) -> list[tuple[datetime, PeakWindow]]:
    """Send times ``lead`` before each window start with after < send time ≤ until, sorted.

    Times are aware, in Asia/Shanghai (no daylight saving since 1991, so local and absolute
    arithmetic agree). Daily windows recur every day, weekday windows every week. A weekday
    window starting inside a daily window's hours is skipped: that day's daily push covers it.
    Consecutive calls with (a, b] and (b, c] give every send time once.
    """
    _aware(after, "after")
    _aware(until, "until")
    if lead < timedelta(0):
        raise ValueError("lead must not be negative")
    windows = list(peaks)
    if until <= after or not windows:
        return []
    daily = [w for w in windows if w.daily]
    first: date = (after + lead).astimezone(SHANGHAI).date()
    last: date = (until + lead).astimezone(SHANGHAI).date()
    found: list[tuple[datetime, PeakWindow]] = []
    day = first
    while day <= last:
        for window in windows:
            if window.weekday is not None:
                if day.weekday() != window.weekday:
                    continue
                if any(d.covers_hour(window.start_hour) for d in daily):
                    continue
            start = datetime.combine(day, time(window.start_hour), tzinfo=SHANGHAI)
            send_at = start - lead
            if after < send_at <= until:
                found.append((send_at, window))
        day += timedelta(days=1)
    found.sort(key=lambda item: (item[0], item[1].weekday is not None, item[1].start_hour))
    return found


# --- display ----------------------------------------------------------------------------------

_RAMP = " .:-=+*#%@"


def heatmap(values: Sequence[Sequence[float]]) -> list[str]:
    """A 7×24 grid as text: a header of hours, then one line a weekday, darker = more cases."""
    flat = _flatten(values, "values")
    top = max(flat) if flat else 0.0
    lines = ["      " + "".join(f"{h:<6d}" for h in range(0, HOURS, 3)).rstrip()]
    for day in range(DAYS):
        cells = []
        for v in flat[day * HOURS : (day + 1) * HOURS]:
            level = 0 if top <= 0 or v <= 0 else max(1, round(v / top * (len(_RAMP) - 1)))
            cells.append(_RAMP[level] * 2)
        lines.append(f"{WEEKDAY_NAMES[day]} |" + "".join(cells) + "|")
    return lines


__all__ = [
    "ALL_AREAS_LABEL",
    "N_WINDOWS",
    "SHANGHAI",
    "WEEKDAY_NAMES",
    "Incidence",
    "PeakWindow",
    "analyse",
    "count_hours",
    "count_week",
    "find_peaks",
    "heatmap",
    "hour_of_week",
    "log_binom_sf",
    "next_occurrences",
    "smooth",
]
