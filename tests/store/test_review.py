"""The review queue's store queries: filters, sorts, paging, scope, similar reports, notes,
revealing and judging indicators, and searching them (both databases)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.store import NotFound, Store
from bot.store.models import AuditLog, User
from bot.store.models import Report as ReportRow
from bot.store.review import QueueFilter, overdue_level
from bot.store.similarity import NEAR_THRESHOLD, similarity
from bot.store.types import UTC, utcnow

from .helpers import SCAM_TEXT, make_report

NOW = datetime(2031, 3, 5, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
PHONE = ("phone_mobile", "13800138000", "138****8000")
LONG_TEXT = "冒充客服说快递丢了要理赔，" * 20


@dataclass
class World:
    community: int
    grid1: int
    grid2: int
    building: int
    staff: int
    reports: dict[str, int]


def _at(store: Store, report_id: int, at: datetime) -> None:
    def work(session):  # type: ignore[no-untyped-def]
        session.execute(
            sa.update(ReportRow).where(ReportRow.id == report_id).values(created_at=at)
        )

    store.run_in(work, write=True)


def _audit_rows(store: Store, action: str) -> list[AuditLog]:
    def work(session):  # type: ignore[no-untyped-def]
        rows = list(
            session.execute(
                sa.select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
            ).scalars()
        )
        session.expunge_all()  # plain objects, readable after the session is gone
        return rows

    return store.run_in(work, write=False)


def _place(store: Store) -> tuple[int, int, int, int]:
    community = store.add_area("community", "东湖社区").id
    grid1 = store.add_area("grid", "1网格", community).id
    grid2 = store.add_area("grid", "2网格", community).id
    building = store.add_area("building", "5幢", grid1).id
    store.upsert_chat("rest", "-100", "group", "1网格群")
    store.set_chat_area("rest", "-100", grid1)
    store.upsert_chat("rest", "-200", "group", "2网格群")
    store.set_chat_area("rest", "-200", grid2)
    store.set_resident_area("in_building", building)
    store.set_resident_area("in_grid2", grid2)
    return community, grid1, grid2, building


@pytest.fixture
def world(store: Store) -> World:
    """Six reports; by risk order they are d, a, e, b, f, c (see each line)."""
    community, grid1, grid2, building = _place(store)
    staff = store.add_user("zhang", "staff", "张警官").id
    specs = {
        # key: (sender, chat, risk, source, type, created_at)
        "a": ("r_a", "-100", "high", "check", "rebate", NOW - timedelta(hours=2)),
        "b": ("in_building", None, "medium", "report_form", "romance", NOW - timedelta(hours=30)),
        "c": ("r_c", "-200", "low", "urgent", "loan", NOW - timedelta(hours=10)),
        "d": ("nowhere", None, "high", "group_auto", "rebate", NOW - timedelta(hours=5)),
        # in grid2 but posting in grid1's group: the chat's area wins
        "e": ("in_grid2", "-100", "medium", "check", "rebate", NOW - timedelta(hours=50)),
        # 00:30 on 5 March in Shanghai, still 4 March in UTC
        "f": (
            "in_building",
            None,
            "low",
            "check",
            "rebate",
            datetime(2031, 3, 4, 16, 30, tzinfo=UTC),
        ),
    }
    reports = {}
    for key, (sender, chat, risk, source, scam_type, at) in specs.items():
        report = store.add_report(
            make_report(
                sender,
                LONG_TEXT if key == "a" else f"{SCAM_TEXT}{key}",
                indicators=[] if key == "b" else None,
                chat_external_id=chat,
                risk=risk,
                source=source,
                scam_type=scam_type,
            )
        )
        _at(store, report.id, at)
        reports[key] = report.id
    store.transition(reports["c"], "confirmed", "cli", verdict_scam_type="investment")
    store.transition(reports["e"], "assigned", "cli", assigned_to=staff)
    return World(community, grid1, grid2, building, staff, reports)


def _keys(
    world: World, store: Store, scope: frozenset[int] | None = None, **kw: object
) -> list[str]:
    names = {v: k for k, v in world.reports.items()}
    page = store.review_queue(QueueFilter(**kw), scope, now=NOW)  # type: ignore[arg-type]
    assert page.total == len(page.items) or "limit" in kw or "offset" in kw
    return [names[item.id] for item in page.items]


# Overdue levels


@pytest.mark.parametrize(
    ("risk", "age", "level"),
    [
        ("high", timedelta(0), "green"),
        ("high", timedelta(hours=1), "green"),
        ("high", timedelta(hours=1, seconds=1), "yellow"),
        ("high", timedelta(hours=4), "yellow"),
        ("high", timedelta(hours=4, seconds=1), "red"),
        ("medium", timedelta(hours=8), "green"),
        ("medium", timedelta(hours=8, seconds=1), "yellow"),
        ("medium", timedelta(hours=24, seconds=1), "red"),
        ("low", timedelta(hours=24), "green"),
        ("low", timedelta(hours=72), "yellow"),
        ("low", timedelta(hours=72, seconds=1), "red"),
    ],
)
def test_overdue_thresholds(risk: str, age: timedelta, level: str) -> None:
    for status in ("new", "assigned", "in_review"):
        assert overdue_level(status, risk, NOW - age, NOW) == level


def test_reviewed_reports_are_never_overdue_and_bad_input_is_refused() -> None:
    old = NOW - timedelta(days=30)
    for status in ("confirmed", "dismissed", "answered"):
        assert overdue_level(status, "high", old, NOW) is None
    with pytest.raises(ValueError, match="risk"):
        overdue_level("new", "urgent", old, NOW)
    with pytest.raises(ValueError, match="status"):
        overdue_level("open", "high", old, NOW)
    with pytest.raises(ValueError, match="aware"):
        overdue_level("new", "high", datetime(2031, 3, 5), NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {"statuses": ("new", "open")},
        {"statuses": "new"},
        {"scam_type": "Rebate!"},
        {"area_id": "3"},
        {"source": "email"},
        {"date_from": date(2031, 3, 5), "date_to": date(2031, 3, 4)},
        {"date_from": NOW},
        {"sort": "random"},
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
    ],
)
def test_queue_filter_refuses_bad_values(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QueueFilter(**fields)  # type: ignore[arg-type]


# The queue


def test_sorts(store: Store, world: World) -> None:
    assert _keys(world, store) == ["d", "a", "e", "b", "f", "c"]
    assert _keys(world, store, sort="oldest") == ["e", "b", "f", "c", "d", "a"]
    assert _keys(world, store, sort="newest") == ["a", "d", "c", "f", "b", "e"]


def test_each_filter_alone(store: Store, world: World) -> None:
    assert _keys(world, store, statuses=("new",)) == ["d", "a", "b", "f"]
    assert _keys(world, store, statuses=("assigned", "confirmed")) == ["e", "c"]
    # staff's verdict replaces the model's type once given
    assert _keys(world, store, scam_type="rebate") == ["d", "a", "e", "f"]
    assert _keys(world, store, scam_type="investment") == ["c"]
    assert _keys(world, store, scam_type="loan") == []
    assert _keys(world, store, area_id=world.grid1) == ["a", "e", "b", "f"]
    assert _keys(world, store, area_id=world.building) == ["b", "f"]
    assert _keys(world, store, area_id=world.grid2) == ["c"]
    assert _keys(world, store, area_id=world.community) == ["a", "e", "b", "f", "c"]
    assert _keys(world, store, area_id=9999) == []
    assert _keys(world, store, source="check") == ["a", "e", "f"]
    # Shanghai calendar days: f came in at 00:30 on 5 March there
    day = date(2031, 3, 5)
    assert _keys(world, store, date_from=day, date_to=day) == ["d", "a", "f", "c"]
    assert _keys(world, store, date_to=date(2031, 3, 4)) == ["e", "b"]
    assert _keys(world, store, date_from=date(2031, 3, 6)) == []


def test_filters_combined(store: Store, world: World) -> None:
    both = {"area_id": world.grid1, "source": "check"}
    assert _keys(world, store, **both) == ["a", "e", "f"]
    assert _keys(world, store, **both, statuses=("new",)) == ["a", "f"]
    assert _keys(world, store, **both, statuses=("new",), date_to=date(2031, 3, 4)) == []
    assert _keys(world, store, **both, scam_type="rebate", sort="newest") == ["a", "f", "e"]


def test_paging_and_total(store: Store, world: World) -> None:
    pages = [
        store.review_queue(QueueFilter(limit=2, offset=offset), None, now=NOW)
        for offset in (0, 2, 4, 6)
    ]
    assert [p.total for p in pages] == [6, 6, 6, 6]
    ids = [item.id for page in pages for item in page.items]
    order = ["d", "a", "e", "b", "f", "c"]
    assert ids == [world.reports[k] for k in order]
    assert pages[-1].items == ()
    narrow = store.review_queue(QueueFilter(statuses=("new",), limit=1), None, now=NOW)
    assert narrow.total == 4 and len(narrow.items) == 1


def test_scope_shows_a_leaders_subtree_only(store: Store, world: World) -> None:
    grid1 = frozenset(store.area_subtree(world.grid1))
    assert _keys(world, store, grid1) == ["a", "e", "b", "f"]  # not c (grid2), not d (nowhere)
    # e came from a grid-1 group, but its resident lives in grid 2: grid 2's leader gets its
    # urgent alert, so may open it too
    assert _keys(world, store, frozenset({world.grid2})) == ["e", "c"]
    assert store.report_visible(world.reports["e"], frozenset({world.grid2}))
    assert not store.report_visible(world.reports["d"], frozenset({world.grid2}))
    assert _keys(world, store, grid1, area_id=world.grid2) == []
    empty = store.review_queue(QueueFilter(), frozenset(), now=NOW)
    assert empty.items == () and empty.total == 0
    with pytest.raises(ValueError, match="scope"):
        store.review_queue(QueueFilter(), frozenset({"1"}), now=NOW)  # type: ignore[arg-type]


def test_queue_items_carry_what_the_page_shows(store: Store, world: World) -> None:
    page = store.review_queue(QueueFilter(), None, now=NOW)
    items = {item.id: item for item in page.items}
    a, b, c, d, e, f = (items[world.reports[k]] for k in "abcdef")
    assert a.area_id == world.grid1 and a.area_label == "东湖社区/1网格"
    assert b.area_id == world.building and b.area_label == "东湖社区/1网格/5幢"
    assert d.area_id is None and d.area_label is None
    assert e.area_label == "东湖社区/1网格"  # the chat's area, not the resident's
    assert a.text_masked == LONG_TEXT[:120] and len(LONG_TEXT) > 120
    assert f.text_masked == f"{SCAM_TEXT}f".replace("13800138000", "138****8000")
    assert (a.risk, a.source, a.scam_type, a.confidence) == ("high", "check", "rebate", 0.93)
    assert a.created_at == NOW - timedelta(hours=2)
    assert (e.status, e.assigned_to, e.assigned_name) == ("assigned", world.staff, "张警官")
    assert a.assigned_to is None and a.assigned_name is None
    assert (c.status, c.scam_type, c.verdict_scam_type) == ("confirmed", "loan", "investment")
    assert (a.indicator_count, b.indicator_count) == (2, 0)
    overdue = {k: items[world.reports[k]].overdue for k in "abcdef"}
    assert overdue == {"a": "yellow", "b": "red", "c": None, "d": "red", "e": "red", "f": "green"}


def test_the_queue_is_two_queries_however_long(store: Store, world: World) -> None:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        page = store.review_queue(QueueFilter(area_id=world.community), None, now=NOW)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert len(page.items) == 5
    assert len(statements) == 2


def test_report_area_and_visibility(store: Store, world: World) -> None:
    r = world.reports
    assert store.report_area_id(r["e"]) == world.grid1
    assert store.report_area_id(r["b"]) == world.building
    assert store.report_area_id(r["d"]) is None
    with pytest.raises(NotFound):
        store.report_area_id(9999)
    grid1 = frozenset(store.area_subtree(world.grid1))
    assert store.report_visible(r["b"], grid1)
    assert not store.report_visible(r["c"], grid1)
    assert not store.report_visible(r["d"], grid1)
    assert store.report_visible(r["d"], None)
    assert not store.report_visible(9999, None)


# Similar reports


def test_similar_reports_exact_then_near_within_scope(store: Store) -> None:
    _community, grid1, grid2, _building = _place(store)
    near_text = SCAM_TEXT.replace("13800138000", "13800138001")
    score = similarity(SCAM_TEXT, near_text)
    assert NEAR_THRESHOLD <= score < 1.0
    original = store.add_report(make_report("r1", chat_external_id="-100")).id
    exact = store.add_report(make_report("r2", chat_external_id="-100")).id
    exact_unplaced = store.add_report(make_report("nowhere")).id
    near = store.add_report(make_report("r3", near_text, chat_external_id="-200")).id
    store.add_report(
        make_report("r4", "冒充公检法说你涉嫌洗钱，要求把钱转到安全账户", chat_external_id="-100")
    )
    _at(store, exact_unplaced, utcnow() - timedelta(days=1))

    everything = store.similar_reports(original, None)
    assert [s.id for s in everything] == [exact, exact_unplaced, near]  # newest exact first
    first, _unplaced, last = everything
    assert (first.exact, first.similarity) == (True, 1.0)
    assert last.exact is False and last.similarity == pytest.approx(score)
    assert first.text_masked == SCAM_TEXT.replace("13800138000", "138****8000")
    assert (first.status, first.scam_type, first.verdict_scam_type) == ("new", "rebate", None)

    assert [s.id for s in store.similar_reports(original, frozenset({grid1}))] == [exact]
    assert [s.id for s in store.similar_reports(original, frozenset({grid2}))] == [near]
    assert [s.id for s in store.similar_reports(original, None, limit=1)] == [exact]
    with pytest.raises(NotFound):
        store.similar_reports(9999, None)
    with pytest.raises(ValueError, match="limit"):
        store.similar_reports(original, None, limit=0)


# Notes


def test_notes_are_kept_in_order_and_audited_by_length(store: Store) -> None:
    report = store.add_report(make_report()).id
    staff = store.add_user("zhang", "staff", "张警官").id
    first = store.add_note(report, staff, "  已电话联系报案人  ")
    second = store.add_note(report, staff, "对方号码已停机")
    assert (first.text, first.author_id, first.author_name) == (
        "已电话联系报案人",
        staff,
        "张警官",
    )
    assert [n.id for n in store.report_notes(report)] == [first.id, second.id]
    audits = _audit_rows(store, "report.note")
    assert [(a.actor, a.target_type, a.target_id) for a in audits] == [
        (f"user:{staff}", "report", report)
    ] * 2
    assert audits[0].details == {"length": len("已电话联系报案人")}


@pytest.mark.parametrize("text", ["", "   \n ", "字" * 2001])
def test_empty_or_long_notes_are_refused(store: Store, text: str) -> None:
    report = store.add_report(make_report()).id
    staff = store.add_user("zhang", "staff").id
    with pytest.raises(ValueError, match="note"):
        store.add_note(report, staff, text)
    assert store.report_notes(report) == []
    assert _audit_rows(store, "report.note") == []


def test_notes_need_a_report_and_an_author(store: Store) -> None:
    report = store.add_report(make_report()).id
    staff = store.add_user("zhang", "staff").id
    with pytest.raises(NotFound):
        store.add_note(9999, staff, "备注")
    with pytest.raises(NotFound):
        store.add_note(report, 9999, "备注")
    with pytest.raises(NotFound):
        store.report_notes(9999)
    assert store.add_note(report, staff, "字" * 2000).author_name == "zhang"


# Indicators


def test_reveal_is_audited_without_the_value(store: Store) -> None:
    report = store.add_report(make_report(indicators=[PHONE]))
    other = store.add_report(
        make_report("r2", "陌生人让我转账到银行卡", indicators=[("qq", "123456789", "12*****89")])
    )
    phone_id = report.indicators[0].id
    assert store.reveal_indicator(report.id, phone_id, "user:1") == "13800138000"
    (audit,) = _audit_rows(store, "indicator.reveal")
    assert (audit.actor, audit.target_type, audit.target_id) == ("user:1", "indicator", phone_id)
    assert audit.details == {
        "kind": "phone_mobile",
        "masked": "138****8000",
        "report_id": report.id,
    }
    assert "13800138000" not in json.dumps(audit.details)
    with pytest.raises(NotFound):
        store.reveal_indicator(report.id, other.indicators[0].id, "user:1")
    with pytest.raises(NotFound):
        store.reveal_indicator(other.id, phone_id, "user:1")
    with pytest.raises(NotFound):
        store.reveal_indicator(9999, phone_id, "user:1")
    with pytest.raises(ValueError, match="actor"):
        store.reveal_indicator(report.id, phone_id, "")
    assert len(_audit_rows(store, "indicator.reveal")) == 1


def test_set_indicator_status_by_id(store: Store) -> None:
    staff = store.add_user("zhang", "staff").id
    phone = store.add_report(make_report(indicators=[PHONE])).indicators[0]
    confirmed = store.set_indicator_status_by_id(
        phone.id, "confirmed", f"user:{staff}", "诈骗号码"
    )
    assert (confirmed.id, confirmed.status, confirmed.note) == (phone.id, "confirmed", "诈骗号码")
    assert confirmed.confirmed_by == staff and confirmed.confirmed_at is not None
    dismissed = store.set_indicator_status_by_id(phone.id, "dismissed", "cli")
    assert dismissed.confirmed_at is None and dismissed.note == "诈骗号码"
    audits = _audit_rows(store, "indicator.status")
    assert [(a.details["from"], a.details["to"]) for a in audits] == [
        ("suspected", "confirmed"),
        ("confirmed", "dismissed"),
    ]
    assert all("13800138000" not in json.dumps(a.details) for a in audits)
    with pytest.raises(NotFound):
        store.set_indicator_status_by_id(9999, "confirmed", "cli")
    with pytest.raises(ValueError, match="status"):
        store.set_indicator_status_by_id(phone.id, "bogus", "cli")


def _search(store: Store, query: str = "", **kw: object) -> tuple[list[str], int]:
    found, total = store.search_indicators(query, **kw)  # type: ignore[arg-type]
    return [i.value for i in found], total


def test_search_indicators(store: Store) -> None:
    store.add_report(make_report())  # phone 13800138000 and money 500, both suspected
    store.set_indicator_status(*PHONE[:2], "confirmed", "cli", note="冒充客服")
    store.set_indicator_status("qq", "123456789", "confirmed", "cli")
    store.set_indicator_status("bank_card", "6222021234567890123", "confirmed", "cli")

    # typed as people type phones: only the value hash can match these
    for typed in ("138 0013 8000", "+86 138-0013-8000", "8613800138000", " 138-0013-8000 "):
        assert _search(store, typed) == (["13800138000"], 1), typed
    assert _search(store, "138****") == (["13800138000"], 1)  # the masked form
    assert _search(store, "客服") == (["13800138000"], 1)  # the note
    # a piece of the raw value finds nothing: on a masked page it would unmask it digit by digit
    assert _search(store, "0212345") == ([], 0)
    assert _search(store, "500") == ([], 0)  # suspected ones are not listed by default
    assert _search(store, "500", status=None) == (["500"], 1)
    assert _search(store, "500", status="suspected", kind="money") == (["500"], 1)
    assert _search(store, kind="qq") == (["123456789"], 1)
    assert _search(store, "%") == ([], 0)  # no wildcards
    newest_first = ["6222021234567890123", "123456789", "13800138000"]
    assert _search(store) == (newest_first, 3)
    assert _search(store, limit=1, offset=1) == (["123456789"], 3)
    assert _search(store, offset=3) == ([], 3)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "bogus"},
        {"kind": "email"},
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"query": "1" * 201},
    ],
)
def test_search_refuses_bad_input(store: Store, fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        store.search_indicators(**fields)  # type: ignore[arg-type]


def test_staff_users_are_active_admins_and_staff(store: Store) -> None:
    admin = store.add_user("root", "admin").id
    staff = store.add_user("zhang", "staff", "张警官").id
    gone = store.add_user("li", "staff").id
    store.add_user("lead", "grid_leader")

    def disable(session):  # type: ignore[no-untyped-def]
        session.execute(sa.update(User).where(User.id == gone).values(active=False))

    store.run_in(disable, write=True)
    assert [u.id for u in store.staff_users()] == [admin, staff]
