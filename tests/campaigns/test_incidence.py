"""The incidence analysis on synthetic data with planted peaks (fixed seeds, no clock)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from campaigns.incidence import (
    N_WINDOWS,
    SHANGHAI,
    PeakWindow,
    analyse,
    count_hours,
    count_week,
    find_peaks,
    heatmap,
    hour_of_week,
    log_binom_sf,
    next_occurrences,
    smooth,
)

UTC = timezone.utc
WED, SAT, SUN = 2, 5, 6


def hour(weekday: int, h: int) -> int:
    return (weekday * 24 + h) % 168


def uniform(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(168) for _ in range(n)]


def planted(rng: random.Random, n: int, weekday: int, start: int, hours: int) -> list[int]:
    return [hour(weekday, start + rng.randrange(hours)) for _ in range(n)]


def planted_daily(rng: random.Random, n: int, start: int, hours: int) -> list[int]:
    return [hour(rng.randrange(7), start + rng.randrange(hours)) for _ in range(n)]


# --- counting and smoothing -------------------------------------------------------------------


def test_hours_of_the_week_are_counted_in_shanghai_time() -> None:
    # 2024-01-01 was a Monday; 16:00 UTC on Monday is 00:00 on Tuesday in Shanghai.
    assert hour_of_week(datetime(2024, 1, 1, 16, 0, tzinfo=UTC)) == 24
    assert hour_of_week(datetime(2024, 1, 1, 15, 59, tzinfo=UTC)) == 23
    assert hour_of_week(datetime(2024, 1, 7, 23, 30, tzinfo=SHANGHAI)) == 167
    counts = count_week(
        [datetime(2024, 1, 3, 12, 5, tzinfo=UTC), datetime(2024, 1, 3, 12, 55, tzinfo=UTC)]
    )
    assert len(counts) == 7 and all(len(row) == 24 for row in counts)
    assert counts[WED][20] == 2 and sum(map(sum, counts)) == 2


def test_naive_times_and_bad_grids_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        hour_of_week(datetime(2024, 1, 1, 12))
    with pytest.raises(ValueError, match="hour of the week"):
        count_hours([168])
    with pytest.raises(ValueError, match="7 rows"):
        find_peaks([[0] * 24] * 6)
    with pytest.raises(ValueError, match="non-negative"):
        find_peaks([[0] * 23 + [-1]] + [[0] * 24] * 6)
    with pytest.raises(ValueError, match="whole numbers"):
        find_peaks([[0.5] * 24] * 7)
    with pytest.raises(ValueError, match="alpha"):
        find_peaks([[0] * 24] * 7, alpha=0)
    with pytest.raises(ValueError, match="7 rows"):
        find_peaks([[1] * 24] * 7, baseline=[[1] * 24])


def test_smoothing_wraps_the_week_and_keeps_the_total() -> None:
    counts = count_hours([hour(SUN, 23)] * 9)
    smoothed = smooth(counts)
    assert math.isclose(sum(map(sum, smoothed)), 9.0)
    assert math.isclose(smoothed[SUN][23], 3.0)
    assert math.isclose(smoothed[0][0], 2.0)  # Monday 0h is next to Sunday 23h
    assert math.isclose(smoothed[0][1], 1.0)
    assert math.isclose(smoothed[SUN][21], 1.0)
    assert smoothed[0][2] == 0.0


def test_the_statistics_match_exact_values() -> None:
    for n, p in ((20, 0.1), (60, 1 / 24), (400, 1 / 168)):
        for x in range(0, min(n, 25) + 1):
            exact = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(x, n + 1))
            if exact > 0:
                assert math.isclose(math.exp(log_binom_sf(x, n, p)), exact, rel_tol=1e-9)
    assert log_binom_sf(5, 4, 0.5) == -math.inf
    assert math.isclose(log_binom_sf(100, 100_000, 1 / 168), 0.0, abs_tol=1e-12)  # below the mean
    assert log_binom_sf(2000, 100_000, 1 / 168) < -300  # far beyond float range, still finite


# --- planted peaks ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_a_wednesday_evening_peak_is_found_and_nothing_else(seed: int) -> None:
    rng = random.Random(seed)
    cases = uniform(rng, 300) + planted(rng, 60, WED, 20, 2)
    peaks = find_peaks(count_hours(cases))
    assert len(peaks) == 1
    (peak,) = peaks
    assert (peak.weekday, peak.start_hour, peak.hours) == (WED, 20, 2)
    assert peak.cells == {hour(WED, 20), hour(WED, 21)}
    assert peak.cases >= 60 and peak.ratio > 10 and peak.p_value < 1e-20
    assert math.isclose(peak.expected, 360 * 2 / 168, rel_tol=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_a_daily_morning_peak_is_one_daily_window(seed: int) -> None:
    rng = random.Random(100 + seed)
    cases = uniform(rng, 300) + planted_daily(rng, 60, 9, 1)
    peaks = find_peaks(count_hours(cases))
    assert [(p.weekday, p.start_hour, p.hours) for p in peaks] == [(None, 9, 1)]
    assert peaks[0].daily and len(peaks[0].cells) == 7


def test_a_thin_daily_pattern_is_still_found_as_daily() -> None:
    rng = random.Random(7)
    cases = uniform(rng, 60) + planted_daily(rng, 30, 21, 1)  # about 4 a weekday at 21h
    assert [(p.weekday, p.start_hour) for p in find_peaks(count_hours(cases))] == [(None, 21)]


def test_a_peak_over_the_week_boundary_is_one_window() -> None:
    rng = random.Random(11)
    cases = uniform(rng, 300) + planted(rng, 50, SUN, 23, 2)  # Sunday 23h and Monday 0h
    (peak,) = find_peaks(count_hours(cases))
    assert (peak.weekday, peak.start_hour, peak.hours) == (SUN, 23, 2)
    assert peak.cells == {hour(SUN, 23), hour(0, 0)}
    assert peak.label() == "周日 23:00–次日01:00"


def test_two_weekdays_are_two_weekday_windows_not_a_daily_one() -> None:
    rng = random.Random(3)
    cases = uniform(rng, 300) + planted(rng, 40, WED, 20, 2) + planted(rng, 40, SAT, 20, 2)
    peaks = find_peaks(count_hours(cases))
    assert [(p.weekday, p.start_hour, p.hours) for p in peaks] == [(WED, 20, 2), (SAT, 20, 2)]


def test_a_daily_peak_and_a_weekday_peak_are_both_found() -> None:
    rng = random.Random(5)
    cases = uniform(rng, 400) + planted_daily(rng, 70, 9, 1) + planted(rng, 40, WED, 20, 2)
    peaks = find_peaks(count_hours(cases))
    assert [(p.weekday, p.start_hour, p.hours) for p in peaks] == [(None, 9, 1), (WED, 20, 2)]


def test_a_weekday_extra_around_a_daily_peak_does_not_widen_it() -> None:
    rng = random.Random(8)
    cases = uniform(rng, 300) + planted_daily(rng, 60, 9, 1) + planted(rng, 60, 0, 8, 3)
    peaks = find_peaks(count_hours(cases))
    assert [(p.weekday, p.start_hour, p.hours) for p in peaks] == [(None, 9, 1), (0, 8, 3)]


def test_overlapping_windows_merge_into_one_longer_peak() -> None:
    rng = random.Random(9)
    cases = uniform(rng, 300) + planted(rng, 80, 3, 18, 4)  # Thursday 18–22h: longer than 3h
    (peak,) = find_peaks(count_hours(cases))
    assert (peak.weekday, peak.start_hour, peak.hours) == (3, 18, 4)


def test_no_peak_is_invented_from_uniform_noise() -> None:
    found = 0
    for seed in range(50):
        if find_peaks(count_hours(uniform(random.Random(10_000 + seed), 400))):
            found += 1
    # These 50 seeds give 2. Over 4,050 data sets of 400 uniform cases, 20 gave a peak (0.5%;
    # alpha is 1%); here Friday 18-21h (21 cases, 7.1 expected) and Sunday 22-24h (18, 4.8).
    assert found <= 2


def test_a_small_planted_peak_is_not_found() -> None:
    found = 0
    for seed in range(20):
        rng = random.Random(20_000 + seed)
        if find_peaks(count_hours(uniform(rng, 300) + planted(rng, 4, WED, 20, 1))):
            found += 1
    assert found <= 1


def test_the_minimum_cases_and_ratio_hold() -> None:
    eight = count_hours([hour(WED, 20)] * 8)
    assert [(p.weekday, p.start_hour, p.cases) for p in find_peaks(eight)] == [(WED, 20, 8)]
    assert find_peaks(count_hours([hour(WED, 20)] * 7)) == ()  # fewer than 8 in the window
    assert find_peaks(eight, min_window_cases=9) == ()
    rng = random.Random(1)
    cases = uniform(rng, 300) + planted(rng, 60, WED, 20, 2)
    assert find_peaks(count_hours(cases), min_ratio=20) == ()


def test_a_shared_evening_peak_is_a_peak_unless_all_cases_are_the_baseline() -> None:
    rng = random.Random(4)
    every_type = uniform(rng, 2000) + planted_daily(rng, 1500, 19, 3)
    this_type = uniform(rng, 150) + planted_daily(rng, 110, 19, 3)
    peaks = find_peaks(count_hours(this_type))
    assert [(p.weekday, p.start_hour, p.hours) for p in peaks] == [(None, 19, 3)]
    assert find_peaks(count_hours(this_type), baseline=count_hours(every_type)) == ()
    # Against that baseline, a type peaking at its own hour still shows.
    own = uniform(rng, 150) + planted(rng, 40, WED, 9, 2)
    with_baseline = find_peaks(count_hours(own), baseline=count_hours(every_type))
    assert [(p.weekday, p.start_hour) for p in with_baseline] == [(WED, 9)]


def test_analyse_skips_the_search_below_the_minimum() -> None:
    counts = count_hours([hour(WED, 20)] * 20)
    found = analyse(counts, scam_type="rebate", audience="all", min_cases=10)
    assert found.cases == 20 and len(found.peaks) == 1
    assert math.isclose(sum(map(sum, found.smoothed)), 20.0)
    skipped = analyse(counts, scam_type="rebate", audience="all", min_cases=30)
    assert skipped.peaks == () and skipped.cases == 20
    assert analyse(count_hours([]), scam_type="rebate", audience="all").peaks == ()


def test_every_window_tried_is_counted_in_the_correction() -> None:
    assert N_WINDOWS == 168 * 3 + 24 * 3


# --- send times -------------------------------------------------------------------------------


def window(weekday: int | None, start: int, hours: int = 2) -> PeakWindow:
    return PeakWindow(weekday, start, hours, cases=40, expected=4.0, ratio=10.0, p_value=1e-9)


def test_send_times_come_lead_before_the_planted_windows() -> None:
    rng = random.Random(2)
    cases = uniform(rng, 300) + planted(rng, 60, WED, 20, 2) + planted(rng, 60, 0, 0, 1)
    peaks = find_peaks(count_hours(cases))
    assert {(p.weekday, p.start_hour) for p in peaks} == {(WED, 20), (0, 0)}
    lead = timedelta(minutes=30)
    after = datetime(2031, 3, 8, 12, 0, tzinfo=SHANGHAI)  # a Saturday
    until = datetime(2031, 3, 20, 0, 0, tzinfo=SHANGHAI)  # Thursday of the week after
    sends = next_occurrences(peaks, lead, after, until)
    assert [s for s, _ in sends] == [
        datetime(2031, 3, 9, 23, 30, tzinfo=SHANGHAI),  # Sunday night, before Monday 0h
        datetime(2031, 3, 12, 19, 30, tzinfo=SHANGHAI),  # Wednesday
        datetime(2031, 3, 16, 23, 30, tzinfo=SHANGHAI),
        datetime(2031, 3, 19, 19, 30, tzinfo=SHANGHAI),
    ]
    for send_at, peak in sends:
        start = send_at + lead
        assert start.weekday() == peak.weekday and start.hour == peak.start_hour
        assert hour_of_week(start) in peak.cells
        assert send_at.utcoffset() == timedelta(hours=8)


def test_daily_windows_recur_every_day_and_cover_weekday_windows_inside_them() -> None:
    daily = window(None, 9, 2)
    inside = window(WED, 10, 1)  # starts within the daily 9–11h: the daily push covers it
    outside = window(WED, 20)
    after = datetime(2031, 3, 3, 0, 0, tzinfo=SHANGHAI)  # Monday
    until = after + timedelta(days=7)
    sends = next_occurrences([outside, inside, daily], timedelta(hours=1), after, until)
    assert [(s.day, s.hour, p.weekday) for s, p in sends] == [
        (3, 8, None),
        (4, 8, None),
        (5, 8, None),
        (5, 19, WED),
        (6, 8, None),
        (7, 8, None),
        (8, 8, None),
        (9, 8, None),
    ]


def test_send_time_intervals_are_half_open_and_checked() -> None:
    peak = window(WED, 20)
    send = datetime(2031, 3, 5, 19, 0, tzinfo=SHANGHAI)
    lead = timedelta(hours=1)
    assert next_occurrences([peak], lead, send, send + timedelta(days=6)) == []
    assert [s for s, _ in next_occurrences([peak], lead, send - timedelta(seconds=1), send)] == [
        send
    ]
    in_utc = next_occurrences([peak], lead, send.astimezone(UTC) - timedelta(1), send)
    assert [s for s, _ in in_utc] == [send]
    assert next_occurrences([], lead, send, send + timedelta(days=30)) == []
    assert next_occurrences([peak], lead, send, send - timedelta(days=1)) == []
    with pytest.raises(ValueError, match="naive"):
        next_occurrences([peak], lead, datetime(2031, 3, 5), send)
    with pytest.raises(ValueError, match="negative"):
        next_occurrences([peak], -lead, send - timedelta(days=1), send)


def test_labels_and_heatmap() -> None:
    assert window(WED, 20).label() == "周三 20:00–22:00"
    assert window(None, 9, 1).label() == "每天 09:00–10:00"
    assert window(0, 22, 2).label() == "周一 22:00–24:00"
    assert window(None, 23, 3).label() == "每天 23:00–次日02:00"
    lines = heatmap(smooth(count_hours([hour(WED, 20)] * 9)))
    assert len(lines) == 8 and lines[1].startswith("周一 |") and lines[3].startswith("周三 |")
    assert lines[3][4 + 2 * 20 : 4 + 2 * 21] == "@@"  # the busiest hour is the darkest
    assert set(lines[1][4:-1]) == {" "}
