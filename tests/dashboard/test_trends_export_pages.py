"""The trends page and the training-data export, on the real routes over both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import yaml

from bot.store import Store
from bot.store.models import Case, CaseImport
from bot.store.models import Report as ReportRow
from bot.store.types import utcnow
from tests.dashboard.harness import make_site, signed_in
from tests.store.helpers import make_report

UTC = timezone.utc
# Wednesday 2031-03-05, 20:30 in Shanghai
WEDNESDAY_EVENING = datetime(2031, 3, 5, 12, 30, tzinfo=UTC)


def _cases(store: Store, rows: list[tuple[datetime, str, int | None]]) -> None:
    def work(session):  # type: ignore[no-untyped-def]
        run = CaseImport(file_name="t.csv", file_sha256="0" * 64, actor="test", rows=len(rows))
        session.add(run)
        session.flush()
        for number, (at, scam_type, area) in enumerate(rows, start=1):
            session.add(
                Case(
                    import_id=run.id,
                    row_number=number,
                    row_key=f"k{number}",
                    happened_at=at,
                    scam_type=scam_type,
                    area_id=area,
                )
            )

    store.run_in(work, write=True)


def _report_at(store: Store, chat: str, text: str, at: datetime) -> int:
    report = store.add_report(
        make_report("r-" + chat, text=text, chat_external_id=chat, channel="telegram")
    )
    store.run_in(
        lambda s: s.execute(
            sa.update(ReportRow).where(ReportRow.id == report.id).values(created_at=at)
        ),
        write=True,
    )
    return report.id


def test_the_heatmap_shows_the_peak_hour_of_the_chosen_type(store: Store) -> None:
    site = make_site(store)
    grid = site.grid
    _cases(
        store,
        [(WEDNESDAY_EVENING, "rebate", grid.grid1)] * 5
        + [(WEDNESDAY_EVENING + timedelta(days=1, hours=-10), "loan", grid.grid2)] * 3,
    )
    c = signed_in(site, "staff")
    page = c.get("/trends?source=cases&type=rebate")
    assert page.status_code == 200
    assert "周三 20:00–21:00（5 起）" in page.text
    assert 'class="heat-8"' in page.text
    everything = c.get("/trends?source=cases")
    assert "共 8 起" in everything.text
    # a bad source or type is ignored, not an error
    assert c.get("/trends?source=<script>&type=nope").status_code == 200


def test_a_leader_sees_only_their_grids_figures(store: Store) -> None:
    site = make_site(store)
    grid = site.grid
    _cases(
        store,
        [(WEDNESDAY_EVENING, "rebate", grid.grid1)] * 2
        + [(WEDNESDAY_EVENING, "rebate", grid.grid2)] * 7,
    )
    now = utcnow()
    _report_at(store, grid.external["elderly1"], "做任务返佣金，先垫付", now)
    _report_at(store, grid.external["elderly2"], "贷款先交保证金", now)
    lead1 = signed_in(site, "lead1").get("/trends?source=cases").text
    assert "共 2 起" in lead1 and "只含您负责的网格" in lead1
    assert "东湖社区/1网格" in lead1 and "东湖社区/2网格" not in lead1
    staff = signed_in(site, "staff").get("/trends?source=cases").text
    assert "共 9 起" in staff and "东湖社区/2网格" in staff


def test_the_trends_page_refuses_anonymous_visitors(store: Store) -> None:
    site = make_site(store)
    answer = site.client().get("/trends")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def _judged(store: Store, text: str, verdict: str, sender: str) -> int:
    report = store.add_report(make_report(sender, text=text, indicators=[]))
    if verdict == "not_scam":
        store.transition(report.id, "dismissed", "cli")
    else:
        store.transition(report.id, "confirmed", "cli", verdict_scam_type=verdict)
    return report.id


def test_staff_download_reviewed_reports_as_training_data(store: Store) -> None:
    site = make_site(store)
    _judged(store, "兼职刷单日结，先垫付三百元马上返佣，名额有限快来", "rebate", "a")
    _judged(store, "明天上午小区停水，请大家提前储水", "not_scam", "b")
    c = signed_in(site, "staff")
    page = c.get("/export")
    assert page.status_code == 200 and "可导出 2 条样本" in page.text
    download = c.get("/export/nlu.yml")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    data = yaml.safe_load(download.text)
    intents = {block["intent"]: block["examples"] for block in data["nlu"]}
    assert "兼职刷单日结" in intents["scam_rebate"]
    assert "停水" in intents["not_scam"]
    [entry], _ = store.audit_entries(action="nlu.export")
    assert entry.details["examples"] == 2


def test_a_bad_export_window_is_explained_not_an_error(store: Store) -> None:
    site = make_site(store)
    c = signed_in(site, "admin")
    page = c.get("/export?since=yesterday&until=2031-13-40")
    assert page.status_code == 200 and "日期格式" in page.text
    reversed_window = c.get("/export?since=2031-03-05&until=2031-03-01")
    assert "开始日期晚于结束日期" in reversed_window.text


def test_grid_leaders_cannot_export(store: Store) -> None:
    site = make_site(store)
    c = signed_in(site, "lead1")
    assert c.get("/export").status_code == 403
    assert c.get("/export/nlu.yml").status_code == 403
