"""The campaign pages, on both databases: who sees and changes which campaign, the form's
checks (the Telegram set-up's), what a created campaign holds, and hostile text escaped."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from bot.store import Store
from bot.store.campaigns import SHANGHAI
from bot.store.types import utcnow
from campaigns.templates import load_templates
from tests.campaigns.grid import MONDAY, campaign
from tests.dashboard.harness import Site, csrf, make_site, signed_in


@pytest.fixture
def site(store: Store) -> Site:
    return make_site(store)


def tomorrow() -> str:
    return (datetime.now(SHANGHAI) + timedelta(days=1)).date().isoformat()


def good_form(site: Site, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "name": "春节前防养老诈骗",
        "area_id": str(site.grid.grid1),
        "audience": ["elderly"],
        "custom_tags": "",
        "content": "own",
        "template_key": "",
        "text": "最近有人冒充医保局打电话，千万不要转账。",
        "kind": "once",
        "once_date": tomorrow(),
        "once_time": "10:00",
        "times": "",
        "lead": "30",
        "start_date": "",
        "end_date": "",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "budget": "3",
    }
    form.update(changes)
    return form


def post_form(client: TestClient, form: dict[str, object], token: str | None = None):  # type: ignore[no-untyped-def]
    token = token if token is not None else csrf(client, "/campaigns/new")
    return client.post("/campaigns", data={**form, "csrf_token": token})


def created_id(answer) -> int:  # type: ignore[no-untyped-def]
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.endswith("?notice=created")
    return int(location.split("/")[2].split("?")[0])


def test_anonymous_visitors_are_sent_to_log_in(site: Site) -> None:
    anonymous = site.client()
    assert anonymous.get("/campaigns").status_code == 303
    assert anonymous.get("/campaigns/new").status_code == 303
    assert anonymous.post("/campaigns").status_code == 401


def test_a_leader_sees_only_the_campaigns_of_their_grid(site: Site) -> None:
    store, grid = site.store, site.grid
    mine = store.add_campaign(campaign(name="一网格的活动", area_id=grid.grid1), grid.leader1)
    theirs = store.add_campaign(campaign(name="二网格的活动", area_id=grid.grid2), grid.leader2)
    lead1 = signed_in(site, "lead1")
    page = lead1.get("/campaigns")
    assert page.status_code == 200
    assert "一网格的活动" in page.text and "二网格的活动" not in page.text
    assert lead1.get(f"/campaigns/{mine.id}").status_code == 200
    assert lead1.get(f"/campaigns/{theirs.id}").status_code == 403
    token = csrf(lead1, "/campaigns")
    answer = lead1.post(
        f"/campaigns/{theirs.id}/status", data={"action": "pause", "csrf_token": token}
    )
    assert answer.status_code == 403
    assert store.get_campaign(theirs.id).status == "active"  # type: ignore[union-attr]
    admin = signed_in(site, "admin").get("/campaigns")
    assert "一网格的活动" in admin.text and "二网格的活动" in admin.text
    assert signed_in(site, "lead1").get("/campaigns/99999").status_code == 404


def test_staff_may_look_but_not_create(site: Site) -> None:
    staff = signed_in(site, "staff")
    assert staff.get("/campaigns").status_code == 200
    assert staff.get("/campaigns/new").status_code == 403
    token = csrf(staff, "/campaigns")
    assert post_form(staff, good_form(site), token).status_code == 403
    assert site.store.campaigns_visible_to(site.users["admin"]) == []


def test_posts_without_the_csrf_token_are_refused(site: Site) -> None:
    lead1 = signed_in(site, "lead1")
    assert lead1.post("/campaigns", data=good_form(site)).status_code == 403
    assert post_form(lead1, good_form(site), token="forged").status_code == 403
    made = site.store.add_campaign(campaign(area_id=site.grid.grid1), site.grid.leader1)
    answer = lead1.post(f"/campaigns/{made.id}/status", data={"action": "pause"})
    assert answer.status_code == 403
    assert site.store.get_campaign(made.id).status == "active"  # type: ignore[union-attr]
    assert len(site.store.campaigns_visible_to(site.users["admin"])) == 1


def test_a_one_off_campaign_is_created_as_asked(site: Site) -> None:
    lead1 = signed_in(site, "lead1")
    campaign_id = created_id(post_form(lead1, good_form(site, audience=["elderly", "students"])))
    made = site.store.get_campaign(campaign_id)
    assert made is not None
    at = datetime.fromisoformat(made.schedule["at"]).astimezone(SHANGHAI)
    assert (at.date().isoformat(), at.strftime("%H:%M")) == (tomorrow(), "10:00")
    assert made.schedule_kind == "once" and made.area_id == site.grid.grid1
    assert made.audience_tags == ("elderly", "students")
    assert made.text == "最近有人冒充医保局打电话，千万不要转账。"
    assert (made.quiet_start, made.quiet_end, made.weekly_budget) == ("22:00", "07:00", 3)
    assert made.created_by == site.users["lead1"]
    page = lead1.get(f"/campaigns/{campaign_id}?notice=created")
    assert page.status_code == 200 and "活动已创建" in page.text
    assert "老年人、学生" in page.text


def test_a_recurring_campaign_keeps_its_days_times_and_dates(site: Site) -> None:
    lead1 = signed_in(site, "lead1")
    start = (datetime.now(SHANGHAI) + timedelta(days=2)).date()
    end = start + timedelta(days=14)
    form = good_form(
        site,
        kind="recurring",
        weekday=["0", "2"],
        times="19:00, 09:30",
        start_date=start.isoformat(),
        end_date=end.isoformat(),
        no_quiet="1",
        budget="5",
        area_id=str(site.grid.building),
    )
    made = site.store.get_campaign(created_id(post_form(lead1, form)))
    assert made is not None
    assert made.schedule == {"weekdays": [0, 2], "times": ["09:30", "19:00"]}
    assert made.starts_at.astimezone(SHANGHAI).date() == start
    assert made.ends_at is not None
    assert made.ends_at.astimezone(SHANGHAI).date() == end + timedelta(days=1)
    assert (made.quiet_start, made.quiet_end, made.weekly_budget) == (None, None, 5)
    assert made.area_id == site.grid.building


def test_a_peak_campaign_from_a_template_follows_the_chosen_scam_types(site: Site) -> None:
    key = sorted(load_templates())[0]
    admin = signed_in(site, "admin")  # an admin may target any area
    form = good_form(
        site,
        kind="peak",
        content="template",
        template_key=key,
        text="",
        scam_type=["rebate", "romance"],
        lead="45",
        area_id=str(site.grid.grid2),
    )
    made = site.store.get_campaign(created_id(post_form(admin, form)))
    assert made is not None
    assert made.schedule == {"lead_minutes": 45}
    assert made.scam_types == ("rebate", "romance")
    assert made.template_key == key and made.text is None


def test_a_bad_form_is_shown_again_with_every_problem_and_what_was_typed(site: Site) -> None:
    lead1 = signed_in(site, "lead1")
    yesterday = (datetime.now(SHANGHAI) - timedelta(days=1)).date().isoformat()
    form = good_form(site, name="  ", audience=[], once_date=yesterday, text="长" * 1501)
    answer = post_form(lead1, form)
    assert answer.status_code == 400
    text = answer.text
    assert "名字不能是空的" in text
    assert "请至少选一项" in text
    assert "已经过去了" in text
    assert "消息太长了" in text
    assert "长" * 1501 in text  # the text is kept to be shortened, not retyped
    assert f'value="{yesterday}"' in text
    assert f'<option value="{site.grid.grid1}" selected>' in text
    assert site.store.campaigns_visible_to(site.users["admin"]) == []


def test_more_form_mistakes_each_get_their_message(site: Site) -> None:
    lead1 = signed_in(site, "lead1")
    cases = [
        ({"area_id": ""}, "请选择发给哪个区域的群"),
        ({"area_id": str(site.grid.grid2)}, "您不是这个区域的网格长"),
        ({"area_id": "abc"}, "请选择发给哪个区域的群"),
        ({"kind": ""}, "请选择发送方式"),
        ({"kind": "recurring", "times": "25:00"}, "请至少选一天"),
        ({"kind": "recurring", "weekday": ["1"], "times": "25点"}, "不是一天里的时间"),
        ({"kind": "peak", "lead": "45"}, "请至少选一种诈骗"),
        ({"once_time": "23:00"}, "免打扰时段里"),
        ({"budget": "99"}, "1 到 50"),
        ({"content": "template", "template_key": "no-such-template"}, "这个模板找不到了"),
        ({"custom_tags": "x" * 40}, "标签"),
        ({"scam_type": ["<b>bogus</b>"]}, "有不认识的诈骗类型"),
    ]
    for changes, message in cases:
        answer = post_form(lead1, good_form(site, **changes))
        assert answer.status_code == 400, changes
        assert message in answer.text, (changes, message)
    assert site.store.campaigns_visible_to(site.users["admin"]) == []


def test_pause_resume_and_stop(site: Site) -> None:
    made = site.store.add_campaign(campaign(area_id=site.grid.grid1), site.grid.leader1)
    lead1 = signed_in(site, "lead1")
    token = csrf(lead1, f"/campaigns/{made.id}")

    def move(action: str):  # type: ignore[no-untyped-def]
        return lead1.post(
            f"/campaigns/{made.id}/status", data={"action": action, "csrf_token": token}
        )

    for action, status in (("pause", "paused"), ("resume", "active"), ("stop", "cancelled")):
        answer = move(action)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/campaigns/{made.id}?notice={action}"
        assert site.store.get_campaign(made.id).status == status  # type: ignore[union-attr]
    refused = move("resume")
    assert refused.status_code == 409 and "现在已停止，不能恢复" in refused.text
    assert move("explode").status_code == 400
    page = lead1.get(f"/campaigns/{made.id}?notice=stop")
    assert "活动已停止" in page.text and "恢复活动" not in page.text
    audit = [e.action for e in site.store.audit_entries(limit=50)[0]]
    assert audit.count("campaign.status") == 3


def test_the_report_shows_deliveries_and_reasons_in_chinese(site: Site) -> None:
    made = site.store.add_campaign(
        campaign(area_id=site.grid.grid1, audience_tags=("elderly",)), site.grid.leader1
    )
    quiet_time = MONDAY + timedelta(hours=23)  # in the 22:00-07:00 quiet hours
    site.store.plan_occurrence(made.id, quiet_time, "提醒", now=quiet_time)
    page = signed_in(site, "lead1").get(f"/campaigns/{made.id}")
    assert page.status_code == 200
    assert "免打扰时段：2" in page.text  # elderly1 and building1 are in grid 1
    assert "2031-03-03 23:00" in page.text
    listing = signed_in(site, "lead1").get("/campaigns")
    assert "东湖社区/1网格" in listing.text


def test_hostile_names_and_text_are_shown_escaped(site: Site) -> None:
    hostile = '<script>alert("x")</script>'
    made = site.store.add_campaign(
        campaign(
            name=hostile, text=f"{hostile}<img src=x onerror=alert(1)>", area_id=site.grid.grid1
        ),
        site.grid.leader1,
    )
    lead1 = signed_in(site, "lead1")
    for path in ("/campaigns", f"/campaigns/{made.id}"):
        text = lead1.get(path).text
        assert "&lt;script&gt;" in text, path
        assert "<script>alert" not in text and "<img src=x" not in text, path
    answer = post_form(lead1, good_form(site, name=hostile, budget="0"))
    assert answer.status_code == 400
    assert "<script>alert" not in answer.text and "&lt;script&gt;" in answer.text


def test_a_campaign_past_its_end_cannot_be_resumed(site: Site) -> None:
    now = utcnow()
    new = campaign(
        area_id=site.grid.grid1,
        schedule_kind="recurring",
        schedule={"weekdays": [0], "times": ["10:00"]},
        starts_at=now - timedelta(days=10),
        ends_at=now - timedelta(days=1),
    )
    made = site.store.add_campaign(new, site.grid.leader1)
    site.store.set_campaign_status(made.id, "paused", "test")
    lead1 = signed_in(site, "lead1")
    token = csrf(lead1, "/campaigns")
    answer = lead1.post(
        f"/campaigns/{made.id}/status", data={"action": "resume", "csrf_token": token}
    )
    assert answer.status_code == 409 and "不能再恢复" in answer.text


# The table of every group's pushes under the summary.

KICKED = "Forbidden: bot was kicked from the group chat"
_TAG = re.compile(r"<[^>]+>")


def delivery_rows(html: str) -> list[list[str]]:
    """The cells of the delivery table's rows, as text (tags dropped, HTML entities kept)."""
    section = html.split('id="deliveries"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        rows.append([" ".join(_TAG.sub(" ", c).split()) for c in cells])
    return rows


def pushed_campaign(site: Site, days: int = 1) -> int:
    """Grid 1's campaign at 10:00 on ``days`` days: students1 opted out, and on the first day
    elderly1's push sent and building1's refused by Telegram."""
    store, grid = site.store, site.grid
    store.set_campaigns_opt_out("telegram", grid.external["students1"], True, "test")
    made = store.add_campaign(campaign(area_id=grid.grid1), grid.leader1)
    first = MONDAY + timedelta(hours=10)
    store.plan_occurrence(made.id, first, "提醒", now=first)
    claimed = {d.chat_id: d.id for d in store.deliveries_claim(10, now=first)}
    store.delivery_sent(claimed[grid.chats["elderly1"]], 77)
    store.delivery_fail(claimed[grid.chats["building1"]], KICKED)
    for day in range(1, days):
        due = first + timedelta(days=day)
        store.plan_occurrence(made.id, due, "提醒", now=due)
    return made.id


def test_the_campaign_page_lists_each_groups_push_with_its_reason_in_chinese(site: Site) -> None:
    campaign_id = pushed_campaign(site)
    page = signed_in(site, "lead1").get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200
    rows = delivery_rows(page.text)
    assert [r[1:5] for r in rows] == [
        ["elderly1", "东湖社区/1网格", "已发送", "—"],
        ["students1", "东湖社区/1网格", "跳过", "群已退订"],
        ["building1", "东湖社区/1网格/5幢", "失败", "机器人被移出群或不能发言"],
    ]
    assert all(r[0] == "2031-03-03 10:00" for r in rows)
    assert [r[5] for r in rows] == ["1", "0", "1"]
    assert rows[0][6] != "—" and rows[2][6] == "—"  # only the sent push has a time sent
    assert f'title="{KICKED}"' in page.text  # Telegram's own words, for whoever looks closer
    assert "共 3 条" in page.text and "上一页" not in page.text and "下一页" not in page.text
    assert signed_in(site, "lead2").get(f"/campaigns/{campaign_id}").status_code == 403


def test_the_delivery_table_filters_by_status_and_ignores_a_bad_filter(site: Site) -> None:
    campaign_id = pushed_campaign(site)
    staff = signed_in(site, "staff")
    failed = staff.get(f"/campaigns/{campaign_id}?status=failed")
    assert [r[1] for r in delivery_rows(failed.text)] == ["building1"]
    assert '<option value="failed" selected>' in failed.text
    assert "共 1 条（失败）" in failed.text
    none = staff.get(f"/campaigns/{campaign_id}?status=sending")
    assert delivery_rows(none.text) == [["没有符合条件的发送记录。"]]
    for bad in ("lost", "<b>x</b>", "sent%27--"):
        answer = staff.get(f"/campaigns/{campaign_id}?status={bad}")
        assert answer.status_code == 200, bad
        assert "以下筛选条件无效，已忽略：发送状态。" in answer.text
        assert len(delivery_rows(answer.text)) == 3
        assert "<b>x</b>" not in answer.text
    both = staff.get(f"/campaigns/{campaign_id}?status=lost&page=0&notice=pause")
    assert "活动已暂停。 以下筛选条件无效，已忽略：发送状态、页码。" in both.text


def test_the_delivery_table_pages_and_keeps_its_filter(site: Site) -> None:
    campaign_id = pushed_campaign(site, days=30)  # 3 groups x 30 days = 90 pushes
    lead1 = signed_in(site, "lead1")
    first = lead1.get(f"/campaigns/{campaign_id}")
    rows = delivery_rows(first.text)
    assert len(rows) == 50 and "第 1 / 2 页" in first.text
    assert rows[0][0] == "2031-04-01 10:00"  # the newest due time first
    assert f'href="/campaigns/{campaign_id}?page=2"' in first.text
    second = lead1.get(f"/campaigns/{campaign_id}?page=2")
    rest = delivery_rows(second.text)
    assert (
        len(rest) == 40
        and [r[0] for r in rest[-4:]] == ["2031-03-04 10:00"] + ["2031-03-03 10:00"] * 3
    )
    assert "第 2 / 2 页" in second.text and "下一页" not in second.text
    assert f'href="/campaigns/{campaign_id}?page=1"' in second.text
    skipped = lead1.get(f"/campaigns/{campaign_id}?status=skipped")
    total = site.store.campaign_deliveries(campaign_id, status="skipped")[1]
    assert total > 50 and f"共 {total} 条（跳过）" in skipped.text
    assert f'href="/campaigns/{campaign_id}?status=skipped&amp;page=2"' in skipped.text
    beyond = lead1.get(f"/campaigns/{campaign_id}?page=9")
    assert delivery_rows(beyond.text) == [["这一页没有记录。"]]
    assert f'href="/campaigns/{campaign_id}?page=2"' in beyond.text  # back to the last page
    junk = lead1.get(f"/campaigns/{campaign_id}?page=abc")
    assert "已忽略：页码" in junk.text and len(delivery_rows(junk.text)) == 50


def test_a_hostile_group_title_is_shown_escaped_in_the_delivery_table(site: Site) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    store, grid = site.store, site.grid
    store.register_group("telegram", "-1009999", grid.grid1, ["elderly"], grid.leader1, hostile)
    made = store.add_campaign(campaign(area_id=grid.grid1), grid.leader1)
    due = MONDAY + timedelta(hours=10)
    store.plan_occurrence(made.id, due, "提醒", now=due)
    page = signed_in(site, "lead1").get(f"/campaigns/{made.id}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    titles = [r[1] for r in delivery_rows(page.text)]
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        in titles
    )
