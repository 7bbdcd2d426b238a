"""The review queue and the report page, on the real routes over both databases.

Reports are filed as the bot files them and placed in the test grid by their resident's area or
by the registered group they were posted in; staff, admins and the two grid leaders sign in
through the login form.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from bot.dashboard.web import SHANGHAI
from bot.store import Store
from bot.store.errors import NotFound
from bot.store.views import ReportView
from tests.dashboard.harness import Site, csrf, make_site, signed_in
from tests.store.helpers import make_report

RAW_PHONE = "13800138000"
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def site(store: Store) -> Site:
    return make_site(store)


def file(site: Site, sender: str, area: str | None = None, **fields: object) -> ReportView:
    """A report by resident ``sender``, living in ``area`` (a key of the grid) if given."""
    report = site.store.add_report(make_report(sender, **fields))
    if area is not None:
        site.store.set_resident_area(sender, getattr(site.grid, area))
    return report


def in_group(site: Site, group: str, sender: str = "tg:g:1", **fields: object) -> ReportView:
    """A report the bot filed from a message in one of the grid's registered groups."""
    values: dict[str, object] = {"channel": "telegram", "source": "group_auto"}
    values.update(fields)
    return site.store.add_report(
        make_report(sender, chat_external_id=site.grid.external[group], **values)
    )


def listed(html: str) -> list[int]:
    """The report ids linked from the queue's table, in their order."""
    return [int(i) for i in re.findall(r'<td><a href="/reports/(\d+)">#', html)]


def post(client: TestClient, path: str, data: dict[str, object] | None = None, page: str = ""):  # type: ignore[no-untyped-def]
    token = csrf(client, page or path.rsplit("/", 1)[0].split("/indicators")[0])
    return client.post(path, data={"csrf_token": token, **(data or {})})


def phone_of(report: ReportView) -> int:
    return next(i.id for i in report.indicators if i.kind == "phone_mobile")


def test_an_anonymous_visitor_is_sent_to_log_in_and_a_post_is_refused(site: Site) -> None:
    report = file(site, "r1", "grid1")
    anonymous = site.client()
    answer = anonymous.get("/reports?status=all")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/reports%3Fstatus%3Dall"
    assert anonymous.get(f"/reports/{report.id}").status_code == 303
    assert anonymous.post(f"/reports/{report.id}/confirm", data={}).status_code == 401
    assert anonymous.post(f"/reports/{report.id}/note", data={"note": "x"}).status_code == 401
    assert site.store.get_report(report.id).status == "new"  # type: ignore[union-attr]


def test_a_leader_sees_only_their_part_of_the_grid(site: Site) -> None:
    grid1 = file(site, "r1", "grid1")
    building = in_group(site, "building1")
    grid2 = file(site, "r2", "grid2")
    group2 = in_group(site, "elderly2", sender="tg:g:2")
    nowhere = file(site, "r3")
    lead1 = signed_in(site, "lead1")
    page = lead1.get("/reports")
    assert page.status_code == 200
    assert sorted(listed(page.text)) == sorted([grid1.id, building.id])
    assert "东湖社区/1网格/5幢" in page.text and "东湖社区/1网格" in page.text
    assert "2网格" not in page.text  # not even in the area menu
    for hidden in (grid2, group2, nowhere):
        answer = lead1.get(f"/reports/{hidden.id}")
        assert answer.status_code == 403
        assert "不在您负责的网格内" in answer.text
    # Asking for a sibling's area is ignored, not obeyed.
    sneaky = lead1.get(f"/reports?area={site.grid.grid2}")
    assert sorted(listed(sneaky.text)) == sorted([grid1.id, building.id])
    assert "已忽略" in sneaky.text
    assert lead1.get(f"/reports/{building.id}").status_code == 200
    staff = signed_in(site, "staff").get("/reports")
    assert sorted(listed(staff.text)) == sorted(
        [grid1.id, building.id, grid2.id, group2.id, nowhere.id]
    )
    lead2 = signed_in(site, "lead2").get("/reports")
    assert sorted(listed(lead2.text)) == sorted([grid2.id, group2.id])


def test_a_leader_may_add_a_note_but_not_give_a_verdict(site: Site) -> None:
    report = file(site, "r1", "grid1")
    lead1 = signed_in(site, "lead1")
    page = lead1.get(f"/reports/{report.id}")
    assert f'action="/reports/{report.id}/confirm"' not in page.text
    assert f'action="/reports/{report.id}/note"' in page.text
    path = f"/reports/{report.id}"
    for verdict in ("confirm", "dismiss", "review", "assign"):
        answer = post(lead1, f"{path}/{verdict}", {"scam_type": "rebate"}, page=path)
        assert answer.status_code == 403
    assert site.store.get_report(report.id).status == "new"  # type: ignore[union-attr]
    answer = post(lead1, f"{path}/note", {"note": "  已电话联系居民，对方说没转账  "})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{path}?done=note"
    again = lead1.get(answer.headers["location"])
    assert "已电话联系居民，对方说没转账" in again.text and "备注已添加" in again.text
    notes = site.store.report_notes(report.id)
    assert [n.text for n in notes] == ["已电话联系居民，对方说没转账"]
    # A leader's note on a report outside their grid is refused too.
    other = file(site, "r2", "grid2")
    refused = post(lead1, f"/reports/{other.id}/note", {"note": "看看"}, page=path)
    assert refused.status_code == 403
    assert site.store.report_notes(other.id) == []


def test_a_verdict_without_the_sessions_csrf_token_is_refused(site: Site) -> None:
    report = file(site, "r1", "grid1")
    staff = signed_in(site, "staff")
    path = f"/reports/{report.id}/confirm"
    assert staff.post(path, data={"scam_type": "rebate"}).status_code == 403
    wrong = staff.post(path, data={"scam_type": "rebate", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    # Another user's token is no good either.
    other = csrf(signed_in(site, "admin"), f"/reports/{report.id}")
    assert staff.post(path, data={"scam_type": "rebate", "csrf_token": other}).status_code == 403
    after = site.store.get_report(report.id)
    assert after is not None and after.status == "new" and after.verdict_scam_type is None


def test_a_scammers_markup_is_shown_escaped_everywhere(site: Site) -> None:
    report = file(site, "r1", "grid1", text=XSS, red_flags=[{"code": "rebate", "phrase": "alert"}])
    staff = signed_in(site, "staff")
    for path in ("/reports", f"/reports/{report.id}"):
        html = staff.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
    page = staff.get(f"/reports/{report.id}").text
    assert '<mark class="flag">alert</mark>(1)&lt;/script&gt;' in page


def test_the_queue_filters_and_sorts_from_the_query_string(site: Site) -> None:
    store = site.store
    high = file(site, "r1", "grid1")
    low = file(site, "r2", "grid2", risk="low", scam_type="loan", source="report_form")
    medium = in_group(site, "building1", risk="medium")
    done = file(site, "r3", "grid1")
    store.transition(done.id, "dismissed", "cli")
    staff = signed_in(site, "staff")

    def ids(query: str) -> list[int]:
        answer = staff.get(f"/reports?{query}")
        assert answer.status_code == 200, answer.text
        return listed(answer.text)

    assert ids("") == [high.id, medium.id, low.id]  # open ones, riskiest first
    assert ids("sort=newest") == [medium.id, low.id, high.id]
    assert ids("sort=oldest") == [high.id, low.id, medium.id]
    assert ids("status=dismissed") == [done.id]
    assert sorted(ids("status=all")) == sorted([high.id, low.id, medium.id, done.id])
    assert ids("type=loan") == [low.id]
    assert ids("status=all&type=not_scam") == [done.id]  # a reviewed report by its verdict
    assert ids("source=group_auto") == [medium.id]
    assert ids(f"area={site.grid.grid1}") == [high.id, medium.id]  # the building is in grid 1
    assert ids(f"area={site.grid.grid1}&source=check&status=all") == [high.id, done.id]
    today = datetime.now(SHANGHAI).date()
    assert len(ids(f"from={today}&to={today}")) == 3
    assert ids(f"from={today + timedelta(days=1)}") == []
    assert ids(f"to={today - timedelta(days=1)}") == []
    # Bad values are ignored with a notice, never an error.
    bad = staff.get("/reports?status=zzz&type=nope&area=abc&source=x&from=2026-13-01&sort=up")
    assert bad.status_code == 200
    assert listed(bad.text) == [high.id, medium.id, low.id]
    notice = re.search(r"已忽略：([^<]*)", bad.text)
    assert notice and notice.group(1) == "状态、类型、网格、来源、开始日期、排序。"
    backwards = staff.get(f"/reports?from={today}&to={today - timedelta(days=3)}")
    assert backwards.status_code == 200 and len(listed(backwards.text)) == 3
    assert "开始晚于结束" in backwards.text


def test_the_queue_pages_and_keeps_its_filters(site: Site) -> None:
    for i in range(52):
        site.store.add_report(make_report(f"p{i}", f"第{i}条：下载APP做任务返佣金"))
    staff = signed_in(site, "staff")
    first = staff.get("/reports?source=check&sort=newest")
    assert "共 52 条" in first.text and len(listed(first.text)) == 50
    assert "第 1 / 2 页" in first.text
    assert 'href="/reports?status=open&amp;source=check&amp;sort=newest&amp;page=2"' in first.text
    second = staff.get("/reports?source=check&sort=newest&page=2")
    assert len(listed(second.text)) == 2
    huge = staff.get("/reports?page=99999999")
    assert huge.status_code == 200 and listed(huge.text) == []
    assert "没有符合条件的报告" in huge.text
    nonsense = staff.get("/reports?page=-3")
    assert nonsense.status_code == 200 and len(listed(nonsense.text)) == 50


def test_the_report_page_shows_the_message_facts_and_judgement(site: Site) -> None:
    report = file(site, "r1", "grid1", red_flags=[{"code": "rebate", "phrase": "做任务"}])
    twin = file(site, "r2", "grid1")
    page = signed_in(site, "staff").get(f"/reports/{report.id}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert '下载APP<mark class="flag">做任务</mark>返佣金' in text
    assert "刷单返利" in text and "93%" in text and "scam_rebate" in text
    assert "东湖社区/1网格" in text and "居民询问" in text and "500.00 元" in text
    assert "138****8000" in text and RAW_PHONE not in text
    assert f'href="/reports/{twin.id}"' in text and "内容相同" in text
    assert "机器人" in text  # the first event's actor
    assert f'action="/reports/{report.id}/confirm"' in text
    assert f'action="/reports/{report.id}/assign"' in text
    # Not found, not a number: a 404 page.
    staff = signed_in(site, "staff")
    assert staff.get("/reports/99999").status_code == 404
    assert staff.get("/reports/99999999999999999999").status_code == 404  # past any integer
    missing = staff.get("/reports/abc")
    assert missing.status_code == 404 and "没有这条报告" in missing.text


def test_confirming_lists_the_checked_indicators_and_queues_the_answer(site: Site) -> None:
    store = site.store
    report = file(
        site,
        "tg:5:5",
        "grid1",
        channel="telegram",
        indicators=[
            ("phone_mobile", RAW_PHONE, "138****8000"),
            ("wechat", "hx8866", "h****6"),
            ("money", "500", "500"),
        ],
    )
    wechat = next(i.id for i in report.indicators if i.kind == "wechat")
    staff = signed_in(site, "staff")
    path = f"/reports/{report.id}"
    page = staff.get(path).text
    assert page.count('name="indicators"') == 2  # not the amount
    answer = post(
        staff,
        f"{path}/confirm",
        {
            "scam_type": "impersonate_authority",
            "note": "典型冒充",
            "indicators": [str(phone_of(report))],
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{path}?done=confirmed"
    after = store.get_report(report.id)
    assert after is not None
    assert (after.status, after.verdict_scam_type, after.verdict_note) == (
        "confirmed",
        "impersonate_authority",
        "典型冒充",
    )
    assert after.reviewed_by == site.users["staff"]
    statuses = {i.kind: i.status for i in after.indicators}
    assert statuses == {"phone_mobile": "confirmed", "wechat": "suspected", "money": "suspected"}
    assert report.id in [r.id for r in store.reports_to_answer("telegram")]
    shown = staff.get(answer.headers["location"]).text
    assert "已确认为诈骗" in shown and "机器人会把结论答复举报的居民" in shown
    assert f'action="/reports/{report.id}/confirm"' not in shown
    assert "退回重审" in shown
    # Put the WeChat id on the list afterwards, and take the phone off it.
    assert (
        post(
            staff, f"{path}/indicators/{wechat}/status", {"status": "confirmed"}, path
        ).status_code
        == 303
    )
    phone = phone_of(report)
    assert (
        post(staff, f"{path}/indicators/{phone}/status", {"status": "suspected"}, path).status_code
        == 303
    )
    statuses = {i.kind: i.status for i in store.get_report(report.id).indicators}  # type: ignore[union-attr]
    assert statuses["wechat"] == "confirmed" and statuses["phone_mobile"] == "suspected"
    bad = post(staff, f"{path}/indicators/{phone}/status", {"status": "dismissed"}, path)
    assert bad.status_code == 400
    # Send it back to review.
    back = post(staff, f"{path}/review", {"note": "居民补充了材料"})
    assert back.status_code == 303
    assert store.get_report(report.id).status == "in_review"  # type: ignore[union-attr]


def test_dismissing_and_a_group_report_with_nobody_waiting(site: Site) -> None:
    report = in_group(site, "elderly1")
    staff = signed_in(site, "staff")
    path = f"/reports/{report.id}"
    answer = post(staff, f"{path}/dismiss", {"note": "是社区通知"})
    assert answer.status_code == 303
    after = site.store.get_report(report.id)
    assert after is not None
    assert (after.status, after.verdict_scam_type, after.verdict_note) == (
        "dismissed",
        "not_scam",
        "是社区通知",
    )
    page = staff.get(path).text
    assert "没有居民在等答复" in page and "群聊" in page
    assert report.id not in [r.id for r in site.store.reports_to_answer("telegram")]
    site.store.transition(report.id, "answered", "bot")
    assert "已于" in staff.get(path).text


def test_assigning_to_a_staff_member(site: Site) -> None:
    report = file(site, "r1", "grid1")
    staff = signed_in(site, "staff")
    path = f"/reports/{report.id}"
    answer = post(staff, f"{path}/assign", {"user_id": str(site.users["admin"])})
    assert answer.status_code == 303
    after = site.store.get_report(report.id)
    assert after is not None and after.status == "assigned"
    assert after.assigned_to == site.users["admin"]
    assert "系统管理员" in staff.get(path).text
    for bad in (str(site.users["lead1"]), "abc", "999999"):
        refused = post(staff, f"{path}/assign", {"user_id": bad})
        assert refused.status_code == 400 and "请从列表里选择" in refused.text
    assert site.store.get_report(report.id).assigned_to == site.users["admin"]  # type: ignore[union-attr]


def test_revealing_an_indicator_is_audited_and_shown_once(site: Site) -> None:
    store = site.store
    report = file(site, "r1", "grid1")
    phone = phone_of(report)
    staff = signed_in(site, "staff")
    path = f"/reports/{report.id}"
    answer = post(staff, f"{path}/indicators/{phone}/reveal", page=path)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert RAW_PHONE in answer.text
    entries, total = store.audit_entries(action="indicator.reveal")
    assert total == 1 and entries[0].actor == f"user:{site.users['staff']}"
    assert RAW_PHONE not in repr(entries[0].details)
    assert RAW_PHONE not in staff.get(path).text
    assert RAW_PHONE not in staff.get("/reports").text
    # An indicator of another report, through this report's address: not found.
    other = file(site, "r2", "grid1", indicators=[("qq", "123456789", "12*****89")])
    qq = other.indicators[0].id
    assert post(staff, f"{path}/indicators/{qq}/reveal", page=path).status_code == 404
    # A leader may not reveal, even in their own grid.
    lead1 = signed_in(site, "lead1")
    refused = post(lead1, f"{path}/indicators/{phone}/reveal", page=path)
    assert refused.status_code == 403 and RAW_PHONE not in refused.text
    assert store.audit_entries(action="indicator.reveal")[1] == 1


def test_bad_verdict_forms_are_sent_back_with_what_to_fix(site: Site) -> None:
    report = file(site, "r1", "grid1")
    staff = signed_in(site, "staff")
    path = f"/reports/{report.id}"
    unknown = post(staff, f"{path}/confirm", {"scam_type": "martian", "note": "x"})
    assert unknown.status_code == 400 and "请选择诈骗类型" in unknown.text
    not_scam = post(staff, f"{path}/confirm", {"scam_type": "not_scam"})
    assert not_scam.status_code == 400
    foreign = post(staff, f"{path}/confirm", {"scam_type": "rebate", "indicators": "999999"})
    assert foreign.status_code == 400 and "不属于这条报告" in foreign.text
    long_note = "长" * 2001
    too_long = post(staff, f"{path}/dismiss", {"note": long_note})
    assert too_long.status_code == 400 and "最多 2000 个字" in too_long.text
    assert long_note in too_long.text  # kept in the form, to shorten rather than retype
    assert post(staff, f"{path}/note", {"note": "   "}).status_code == 400
    assert post(staff, f"{path}/note", {"note": long_note}).status_code == 400
    after = site.store.get_report(report.id)
    assert after is not None and after.status == "new" and site.store.report_notes(report.id) == []
    assert post(staff, f"{path}/note", {"note": "长" * 2000}).status_code == 303


def test_a_report_moved_by_someone_else_meanwhile_gives_a_conflict_page(site: Site) -> None:
    report = file(site, "r1", "grid1")
    path = f"/reports/{report.id}"
    first, second = signed_in(site, "staff"), signed_in(site, "admin")
    token = csrf(second, path)  # the admin has the page open...
    assert post(first, f"{path}/confirm", {"scam_type": "rebate"}).status_code == 303
    late = second.post(f"{path}/dismiss", data={"csrf_token": token})  # ...and dismisses it
    assert late.status_code == 409
    assert "刚刚被别人处理过" in late.text and f'href="{path}"' in late.text
    after = site.store.get_report(report.id)
    assert (
        after is not None and after.status == "confirmed" and after.verdict_scam_type == "rebate"
    )


def test_the_report_page_names_the_group_it_came_from_escaped(site: Site) -> None:
    grid = site.grid
    site.store.register_group("telegram", "-1009001", grid.grid1, [], grid.leader1, XSS)
    hostile = site.store.add_report(
        make_report("tg:g:9", chat_external_id="-1009001", channel="telegram", source="group_auto")
    )
    plain = in_group(site, "building1")
    private = file(site, "r1", "grid1")
    chat = site.store.report_chat(hostile.id)
    assert chat is not None and (chat.kind, chat.title) == ("group", XSS)
    assert site.store.report_chat(private.id) is None
    with pytest.raises(NotFound):
        site.store.report_chat(99999)
    staff = signed_in(site, "staff")
    page = staff.get(f"/reports/{hostile.id}").text
    assert "<dt>渠道</dt><dd>群聊</dd>" in page
    assert "<dt>群</dt><dd>&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x" in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "<dt>群</dt><dd>building1</dd>" in staff.get(f"/reports/{plain.id}").text
    alone = staff.get(f"/reports/{private.id}").text
    assert "<dt>渠道</dt><dd>私聊</dd>" in alone and "<dt>群</dt>" not in alone
