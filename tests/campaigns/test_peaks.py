"""Peak windows from cases in the store (SQLite and PostgreSQL), the fallback to wider areas,
and ``antifraud cases peaks`` through ``campaigns.peaks.run_cli``. Synthetic cases, fixed seeds,
a fixed clock."""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from bot.settings import Settings
from bot.store import Store
from bot.store.errors import NotFound
from bot.store.models import Case, CaseImport
from bot.store.types import UTC
from campaigns.incidence import SHANGHAI, Incidence
from campaigns.peaks import add_arguments, peaks_for, run_cli

NOW = datetime(2031, 1, 1, tzinfo=UTC)
FIRST_MONDAY = datetime(2029, 1, 1, tzinfo=SHANGHAI)  # a Monday; cases fall in the 100 weeks after
WED = 2


@dataclass
class Areas:
    community: int
    grid1: int
    grid2: int
    building: int
    other_community: int
    other_grid: int


@pytest.fixture
def areas(store: Store) -> Areas:
    community = store.add_area("community", "东湖社区").id
    grid1 = store.add_area("grid", "1网格", community).id
    grid2 = store.add_area("grid", "2网格", community).id
    building = store.add_area("building", "5幢", grid1).id
    other = store.add_area("community", "西湖社区").id
    other_grid = store.add_area("grid", "1网格", other).id
    return Areas(community, grid1, grid2, building, other, other_grid)


def moment(rng: random.Random, hour_of_week: int) -> datetime:
    week = rng.randrange(100)
    minute = rng.randrange(60)
    local = FIRST_MONDAY + timedelta(weeks=week, hours=hour_of_week, minutes=minute)
    return local.astimezone(UTC)


class Cases:
    """Inserts synthetic cases through the ORM, as an import would have written them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.count = 0
        self.times: list[datetime] = []

        def work(session: Session) -> int:
            row = CaseImport(file_name="synthetic.csv", file_sha256="0" * 64, actor="test")
            session.add(row)
            session.flush()
            return row.id

        self.import_id = store.run_in(work, write=True)

    def add(
        self,
        times: list[datetime | None],
        scam_type: str | None,
        area_id: int | None,
        audiences: list[str] | None = None,
    ) -> None:
        rows = []
        self.times.extend(t for t in times if t is not None)
        for at in times:
            self.count += 1
            rows.append(
                Case(
                    import_id=self.import_id,
                    row_number=self.count,
                    row_key=f"case-{self.import_id}-{self.count}",
                    happened_at=at,
                    scam_type=scam_type,
                    area_id=area_id,
                    audiences=list(audiences or []),
                    missing=[],
                )
            )
        self.store.run_in(lambda session: session.add_all(rows), write=True)

    def uniform(
        self, rng: random.Random, n: int, scam_type: str, area_id: int | None, **kw: list[str]
    ) -> None:
        self.add([moment(rng, rng.randrange(168)) for _ in range(n)], scam_type, area_id, **kw)

    def planted(
        self,
        rng: random.Random,
        n: int,
        weekday: int,
        start: int,
        hours: int,
        scam_type: str,
        area_id: int | None,
        **kw: list[str],
    ) -> None:
        times = [moment(rng, weekday * 24 + start + rng.randrange(hours)) for _ in range(n)]
        self.add(times, scam_type, area_id, **kw)


def windows(incidence: Incidence) -> list[tuple[int | None, int, int]]:
    return [(p.weekday, p.start_hour, p.hours) for p in incidence.peaks]


def test_a_planted_peak_in_a_grid_is_found_from_the_store(store: Store, areas: Areas) -> None:
    rng = random.Random(1)
    cases = Cases(store)
    cases.uniform(rng, 150, "rebate", areas.grid1, audiences=["young_workers"])
    cases.uniform(rng, 150, "rebate", areas.building, audiences=["elderly", "women"])
    cases.planted(rng, 60, WED, 20, 2, "rebate", areas.grid1, audiences=["elderly"])
    cases.planted(rng, 80, 4, 9, 1, "investment", areas.grid1)  # another type: not counted
    cases.uniform(rng, 200, "rebate", areas.other_grid)  # another community: not counted
    cases.add([None] * 30, "rebate", areas.grid1)  # no time: ignored
    cases.add([moment(rng, WED * 24 + 3) for _ in range(30)], None, areas.grid1)  # no type
    cases.add([NOW + timedelta(days=3)] * 30, "rebate", areas.grid1)  # in the future: ignored

    found = peaks_for(store, "rebate", "all", areas.grid1, now=NOW)
    assert (found.area_id, found.area_label, found.fell_back) == (
        areas.grid1,
        "东湖社区/1网格",
        False,
    )
    assert found.cases == 360 and found.requested_area_id == areas.grid1
    assert windows(found) == [(WED, 20, 2)]
    assert found.reason == "按东湖社区/1网格的 360 起分析"

    elderly = peaks_for(store, "rebate", "elderly", areas.grid1, now=NOW)
    assert elderly.cases == 210 and windows(elderly) == [(WED, 20, 2)]
    workers = peaks_for(store, "rebate", "young_workers", areas.grid1, now=NOW)
    assert workers.cases == 150 and workers.peaks == ()

    everywhere = peaks_for(store, "rebate", "all", None, now=NOW)
    assert everywhere.cases == 560 and everywhere.area_label == "全部地区"
    assert not everywhere.fell_back
    investment = peaks_for(store, "investment", "all", areas.community, now=NOW)
    assert windows(investment) == [(4, 9, 1)]  # all 80 on Friday 9h, nothing else around


def test_too_few_cases_fall_back_from_grid_to_community_to_all(store: Store, areas: Areas) -> None:
    rng = random.Random(2)
    cases = Cases(store)
    cases.uniform(rng, 5, "loan", areas.building)
    cases.uniform(rng, 15, "loan", areas.grid1)
    cases.uniform(rng, 20, "loan", areas.grid2)
    cases.uniform(rng, 60, "loan", areas.other_grid)

    here = peaks_for(store, "loan", "all", areas.building, min_cases=5, now=NOW)
    assert (here.area_id, here.cases, here.fell_back) == (areas.building, 5, False)

    grid = peaks_for(store, "loan", "all", areas.building, min_cases=20, now=NOW)
    assert (grid.area_id, grid.cases, grid.fell_back) == (areas.grid1, 20, True)
    assert grid.reason == "东湖社区/1网格/5幢只有 5 起（少于 20 起），改用东湖社区/1网格的 20 起"

    community = peaks_for(store, "loan", "all", areas.building, min_cases=30, now=NOW)
    assert (community.area_id, community.area_label) == (areas.community, "东湖社区")
    assert community.cases == 40 and community.fell_back
    assert "东湖社区/1网格只有 20 起" in community.reason

    every = peaks_for(store, "loan", "all", areas.grid1, min_cases=50, now=NOW)
    assert (every.area_id, every.area_label, every.cases) == (None, "全部地区", 100)
    assert every.fell_back and every.reason.endswith("改用全部地区的 100 起")

    thin = peaks_for(store, "loan", "all", areas.grid1, min_cases=500, now=NOW)
    assert thin.area_id is None and thin.cases == 100 and thin.peaks == ()
    assert thin.reason.endswith("全部地区只有 100 起（少于 500 起），数据不足，不找高峰")

    nothing = peaks_for(store, "romance", "elderly", areas.grid1, now=NOW)
    assert nothing.cases == 0 and nothing.peaks == () and nothing.area_id is None


def test_the_fallback_keeps_a_planted_peak_found_in_the_wider_area(
    store: Store, areas: Areas
) -> None:
    rng = random.Random(3)
    cases = Cases(store)
    cases.uniform(rng, 10, "customer_service", areas.grid1)
    cases.uniform(rng, 200, "customer_service", areas.grid2)
    cases.planted(rng, 40, 5, 14, 2, "customer_service", areas.grid2)
    found = peaks_for(store, "customer_service", "all", areas.grid1, now=NOW)
    assert found.area_id == areas.community and found.fell_back
    assert windows(found) == [(5, 14, 2)]


def test_the_time_range_and_the_baseline(store: Store, areas: Areas) -> None:
    rng = random.Random(4)
    cases = Cases(store)
    evening = [moment(rng, rng.randrange(7) * 24 + 19 + rng.randrange(3)) for _ in range(400)]
    cases.uniform(rng, 500, "investment", areas.grid1)
    cases.add(evening, "investment", areas.grid1)  # cases.times[:900] are the investment ones
    cases.uniform(rng, 100, "rebate", areas.grid1)
    cases.add(evening[:80], "rebate", areas.grid1)
    rebate = peaks_for(store, "rebate", "all", areas.grid1, now=NOW)
    assert windows(rebate) == [(None, 19, 3)]  # the evening, every day
    # Against the shape of every type's cases, the rebate cases' evening is nothing special.
    relative = peaks_for(store, "rebate", "all", areas.grid1, now=NOW, baseline="all")
    assert relative.cases == 180 and relative.peaks == ()

    later = NOW - timedelta(weeks=60)
    recent = peaks_for(store, "investment", "all", areas.grid1, since=later, now=NOW)
    investment_times = cases.times[:900]
    assert recent.cases == sum(1 for t in investment_times if t >= later)
    assert 300 < recent.cases < 600
    earlier = peaks_for(store, "investment", "all", areas.grid1, now=later)
    assert earlier.cases == sum(1 for t in investment_times if t <= later)
    assert recent.cases + earlier.cases == 900  # nothing exactly at ``later``


def test_hours_are_counted_in_shanghai_time_by_the_database(store: Store, areas: Areas) -> None:
    cases = Cases(store)
    cases.add([datetime(2024, 1, 1, 16, 0, tzinfo=UTC)] * 3, "loan", areas.grid1)  # Tue 0h
    cases.add([datetime(2024, 1, 7, 15, 59, 59, tzinfo=UTC)] * 2, "loan", areas.grid1)  # Sun 23h
    cases.add([datetime(2031, 1, 1, tzinfo=SHANGHAI)], "loan", areas.grid1)  # Wed 0h, before NOW
    # Summer 1990: Shanghai kept daylight saving (UTC+9): 12:30 UTC was 21:30 on a Wednesday.
    cases.add([datetime(1990, 7, 4, 12, 30, tzinfo=UTC)] * 4, "loan", areas.grid1)
    found = peaks_for(store, "loan", "all", areas.grid1, min_cases=1, now=NOW)
    assert found.cases == 10
    assert found.counts[1][0] == 3 and found.counts[6][23] == 2 and found.counts[WED][0] == 1
    assert found.counts[WED][21] == 4 and found.counts[WED][20] == 0


def test_bad_calls_are_refused(store: Store, areas: Areas) -> None:
    with pytest.raises(NotFound):
        peaks_for(store, "rebate", "all", 99_999, now=NOW)
    with pytest.raises(ValueError, match="aware"):
        peaks_for(store, "rebate", "all", areas.grid1, now=datetime(2031, 1, 1))
    with pytest.raises(ValueError, match="baseline"):
        peaks_for(store, "rebate", "all", areas.grid1, baseline="weekly")
    with pytest.raises(ValueError, match="min_cases"):
        peaks_for(store, "rebate", "all", areas.grid1, min_cases=-1)


# --- the command ------------------------------------------------------------------------------


def cli(db_url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="antifraud cases peaks")
    add_arguments(parser)
    return run_cli(parser.parse_args(list(argv)), Settings(database_url=db_url), now=NOW)


def test_the_command_prints_peaks_per_type_and_audience(
    store: Store, areas: Areas, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(5)
    cases = Cases(store)
    cases.uniform(rng, 300, "rebate", areas.grid1, audiences=["young_workers"])
    cases.planted(rng, 60, WED, 20, 2, "rebate", areas.grid1, audiences=["elderly"])
    cases.uniform(rng, 40, "romance", areas.grid2, audiences=["women"])

    assert cli(db_url) == 0
    out = capsys.readouterr().out
    assert "诈骗高峰时段" in out and "全部地区" in out
    assert "■ 刷单返利（rebate）" in out and "■ 网络婚恋、交友（杀猪盘）（romance）" in out
    lines = out.splitlines()
    everyone = next(
        line for line in lines if line.strip().startswith("全体居民") and "分布" not in line
    )
    assert "周三 20:00–22:00 (" in everyone and "起, 预期 4.3, ×" in everyone
    elderly = next(line for line in lines if line.strip().startswith("老年人"))
    assert "60" in elderly and "周三 20:00–22:00" in elderly
    workers = next(line for line in lines if line.strip().startswith("青年职工"))
    assert "无明显高峰（分布平均）" in workers
    assert "周三 |" in out  # the heatmap
    assert "无明显高峰（分布平均）" in out  # romance: 40 uniform cases

    assert cli(db_url, "--type", "刷单返利", "--audience", "老年人", "--area", "1网格") == 2
    assert "不止一个" in capsys.readouterr().err  # 东湖社区/1网格 and 西湖社区/1网格
    code = cli(
        db_url, "--type", "刷单返利", "--audience", "老年人", "--area", "东湖社区/1网格", "--json"
    )
    assert code == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["scam_type"] == "rebate" and record["scam_type_name"] == "刷单返利"
    assert record["audience"] == "elderly" and record["audience_name"] == "老年人"
    assert record["area_label"] == "东湖社区/1网格" and record["cases"] == 60
    assert record["fell_back"] is False
    assert [(p["weekday"], p["start_hour"], p["hours"]) for p in record["peaks"]] == [(2, 20, 2)]
    assert record["peaks"][0]["label"] == "周三 20:00–22:00"
    assert len(record["counts"]) == 7 and sum(map(sum, record["counts"])) == 60

    assert cli(db_url, "--type", "romance", "--area", str(areas.building)) == 0
    out = capsys.readouterr().out
    assert "地区：东湖社区/1网格/5幢" in out
    assert "↳ 东湖社区/1网格/5幢只有 0 起" in out and "改用东湖社区的 40 起" in out


def test_the_command_refuses_bad_arguments(
    store: Store, areas: Areas, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Cases(store).uniform(random.Random(6), 10, "rebate", areas.grid1)
    assert cli(db_url, "--type", "lottery") == 2
    err = capsys.readouterr().err
    assert "不认识的诈骗类型“lottery”" in err and "rebate（刷单返利）" in err
    assert cli(db_url, "--area", "北湖社区") == 2
    assert "没有叫“北湖社区”的地区" in capsys.readouterr().err
    assert cli(db_url, "--area", "99999") == 2
    assert "没有编号为 99999 的地区" in capsys.readouterr().err
    assert cli(db_url, "--since", "2030-13-01") == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert cli(db_url, "--audience", "") == 2
    assert "标签不能为空" in capsys.readouterr().err
    assert cli(db_url, "--min-cases", "-3") == 2
    capsys.readouterr()
    # Few cases: no peak, and it says the data is thin.
    assert cli(db_url, "--type", "rebate") == 0
    assert "无明显高峰（数据不足）" in capsys.readouterr().out


def test_the_command_says_how_to_import_when_there_are_no_cases(
    store: Store, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Cases(store).add([None] * 3, "rebate", None)  # cases without a time do not count
    assert cli(db_url) == 0
    assert "antifraud cases import" in capsys.readouterr().out
    Cases(store).add([datetime(2030, 5, 1, tzinfo=UTC)] * 3, "rebate", None)
    assert cli(db_url, "--since", "2030-06-01") == 0
    assert "antifraud cases import" in capsys.readouterr().out


def test_the_command_explains_a_database_without_the_cases_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(f"sqlite:///{tmp_path / 'never_migrated.db'}") == 1
    assert "antifraud db upgrade" in capsys.readouterr().err
