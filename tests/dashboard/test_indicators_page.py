"""The indicator list, on both databases: search however a phone is typed, masked values only,
staff adding and changing indicators (audited, never with the raw value), leaders read only."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from bot.dashboard.pages.indicators import canonical_value
from bot.store import Store
from tests.dashboard.harness import Site, csrf, make_site, signed_in
from tests.store.helpers import make_report

RAW = "13800138000"
MASKED = "138****8000"


@pytest.fixture
def site(store: Store) -> Site:
    return make_site(store)


def add(client: TestClient, token: str | None = None, **fields: str):  # type: ignore[no-untyped-def]
    token = token if token is not None else csrf(client, "/indicators")
    return client.post("/indicators", data={"csrf_token": token, **fields})


def status_of(store: Store, kind: str, value: str) -> str | None:
    found = store.indicator_statuses([(kind, value)])
    return found[(kind, value)].status if found else None


def test_anonymous_visitors_are_refused(site: Site) -> None:
    anonymous = site.client()
    assert anonymous.get("/indicators?q=138").status_code == 303
    assert anonymous.post("/indicators", data={"kind": "link"}).status_code == 401
    assert anonymous.post("/indicators/1/status", data={"status": "confirmed"}).status_code == 401


def test_leaders_read_but_cannot_change(site: Site) -> None:
    site.store.set_indicator_status("phone_mobile", RAW, "confirmed", "cli")
    leader = signed_in(site, "lead1")
    page = leader.get("/indicators")
    assert page.status_code == 200 and MASKED in page.text
    assert "加入确认名单" not in page.text and "/status" not in page.text
    token = csrf(leader, "/indicators")
    assert add(leader, token, kind="link", value="evil.example.com").status_code == 403
    [item], _total = site.store.search_indicators("")
    answer = leader.post(
        f"/indicators/{item.id}/status", data={"status": "dismissed", "csrf_token": token}
    )
    assert answer.status_code == 403
    assert status_of(site.store, "phone_mobile", RAW) == "confirmed"


def test_posts_without_the_csrf_token_are_refused(site: Site) -> None:
    staff = signed_in(site, "staff")
    answer = staff.post("/indicators", data={"kind": "phone_mobile", "value": RAW})
    assert answer.status_code == 403
    assert add(staff, "forged", kind="phone_mobile", value=RAW).status_code == 403
    assert status_of(site.store, "phone_mobile", RAW) is None
    site.store.set_indicator_status("phone_mobile", RAW, "suspected", "cli")
    [item], _total = site.store.search_indicators("", status=None)
    answer = staff.post(f"/indicators/{item.id}/status", data={"status": "confirmed"})
    assert answer.status_code == 403
    assert status_of(site.store, "phone_mobile", RAW) == "suspected"


def test_staff_add_a_phone_typed_with_spaces_and_find_it_typed_with_dashes(site: Site) -> None:
    staff = signed_in(site, "staff")
    answer = add(staff, kind="phone_mobile", value="+86 138 0013 8000", note="冒充客服")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/indicators?notice=added"
    assert status_of(site.store, "phone_mobile", RAW) == "confirmed"
    page = staff.get("/indicators", params={"q": "138-0013-8000"})
    assert page.status_code == 200
    assert MASKED in page.text and "冒充客服" in page.text and "共 1 条" in page.text
    assert RAW not in page.text
    assert "共 0 条" in staff.get("/indicators", params={"q": "139-0013-8000"}).text
    entries, _total = site.store.audit_entries(action="indicator.status")
    assert entries and entries[0].actor == f"user:{site.users['staff']}"
    assert RAW not in json.dumps(entries[0].details)


def test_status_filter_and_change_by_id(site: Site) -> None:
    site.store.add_report(make_report())  # its phone is on the list as suspected
    staff = signed_in(site, "staff")
    assert "共 0 条" in staff.get("/indicators").text  # confirmed is the default
    suspected = staff.get("/indicators", params={"status": "suspected", "kind": "phone_mobile"})
    assert MASKED in suspected.text and RAW not in suspected.text
    [item], _total = site.store.search_indicators("", status="suspected", kind="phone_mobile")
    token = csrf(staff, "/indicators")
    back = "/indicators?q=&kind=&status=suspected&page=1"
    answer = staff.post(
        f"/indicators/{item.id}/status",
        data={"status": "confirmed", "note": "多人举报", "back": back, "csrf_token": token},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == back + "&notice=status"
    assert status_of(site.store, "phone_mobile", RAW) == "confirmed"
    confirmed = staff.get("/indicators")
    assert MASKED in confirmed.text and "多人举报" in confirmed.text
    assert "线索状态已更新" in staff.get(answer.headers["location"]).text
    elsewhere = staff.post(
        f"/indicators/{item.id}/status",
        data={"status": "dismissed", "back": "https://evil.example/", "csrf_token": token},
    )
    assert elsewhere.headers["location"] == "/indicators?notice=status"


def test_bad_status_changes_are_refused(site: Site) -> None:
    site.store.set_indicator_status("link", "evil.example.com", "confirmed", "cli")
    [item], _total = site.store.search_indicators("")
    staff = signed_in(site, "staff")
    token = csrf(staff, "/indicators")
    wrong = staff.post(
        f"/indicators/{item.id}/status", data={"status": "deleted", "csrf_token": token}
    )
    assert wrong.status_code == 400 and "请选择确认、待核实或排除" in wrong.text
    long_note = staff.post(
        f"/indicators/{item.id}/status",
        data={"status": "dismissed", "note": "长" * 501, "csrf_token": token},
    )
    assert long_note.status_code == 400 and "备注太长了" in long_note.text
    missing = staff.post(
        "/indicators/99999/status", data={"status": "dismissed", "csrf_token": token}
    )
    assert missing.status_code == 404
    assert status_of(site.store, "link", "evil.example.com") == "confirmed"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "", "value": RAW}, "请选择线索类型"),
        ({"kind": "rocket", "value": RAW}, "请选择线索类型"),
        ({"kind": "phone_mobile", "value": "   "}, "请填写号码"),
        ({"kind": "phone_mobile", "value": "12345"}, "认不出这个值"),
        ({"kind": "link", "value": "x" * 301}, "内容太长了"),
        ({"kind": "link", "value": "x" * 100_000}, "内容太长了"),
        ({"kind": "link", "value": "evil.example.com", "note": "长" * 501}, "备注太长了"),
    ],
)
def test_a_bad_indicator_is_refused_with_a_message(
    site: Site, fields: dict[str, str], message: str
) -> None:
    staff = signed_in(site, "staff")
    answer = add(staff, **fields)
    assert answer.status_code == 400
    assert message in answer.text
    assert site.store.search_indicators("", status=None)[1] == 0


def test_bad_filters_are_ignored_with_a_notice(site: Site) -> None:
    site.store.set_indicator_status("link", "evil.example.com", "confirmed", "cli")
    staff = signed_in(site, "staff")
    answer = staff.get("/indicators", params={"kind": "rocket"})
    assert answer.status_code == 200 and "没有这种线索类型" in answer.text
    assert "evil.example.com" in answer.text
    answer = staff.get("/indicators", params={"status": "gone", "page": "x"})
    assert answer.status_code == 200 and "没有这种状态" in answer.text
    assert "evil.example.com" in answer.text


def test_paging(site: Site) -> None:
    for i in range(55):
        site.store.set_indicator_status("link", f"site{i}.example.com", "confirmed", "cli")
    staff = signed_in(site, "staff")
    first = staff.get("/indicators")
    assert "共 55 条" in first.text and "第 1 / 2 页" in first.text
    second = staff.get("/indicators", params={"page": "2"})
    assert second.text.count("example.com</code>") == 5


def test_a_hostile_note_and_link_are_shown_escaped(site: Site) -> None:
    staff = signed_in(site, "staff")
    hostile = "<script>alert(1)</script>"
    assert add(staff, kind="app", value=hostile, note=hostile).status_code == 303
    page = staff.get("/indicators")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert hostile not in page.text


def test_typed_values_are_read_as_the_extractor_reads_messages() -> None:
    assert canonical_value("phone_mobile", "138-0013-8000") == RAW
    assert canonical_value("phone_mobile", "１３８００１３８０００") == RAW  # full-width
    assert canonical_value("link", "HTTP://Evil.Example.com/pay") == "http://evil.example.com/pay"
    assert canonical_value("qq", "12345678") == "12345678"
    assert canonical_value("wechat", "HX8866") == "hx8866"
    assert canonical_value("bank_card", "6222 0212 3456 7890 123") == "6222021234567890123"
    assert canonical_value("money", "5000") == "5000"
    with pytest.raises(ValueError, match="认不出"):
        canonical_value("phone_mobile", "138 0013 8000 和 139 0013 9000")
