"""Areas, staff, chats, alerts, indicator decisions and the audit log."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bot.store import NotFound, Store
from bot.store.models import AuditLog

from .helpers import make_report


def _audit(store: Store) -> list[tuple[str, str, str, int | None, dict]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                AuditLog.actor,
                AuditLog.action,
                AuditLog.target_type,
                AuditLog.target_id,
                AuditLog.details,
            ).order_by(AuditLog.id)
        )
        return [tuple(r) for r in rows]


def test_the_area_tree_is_enforced(store: Store) -> None:
    community = store.add_area("community", "幸福社区")
    grid = store.add_area("grid", "第三网格", community.id)
    building = store.add_area("building", "5幢", grid.id)
    assert (building.parent_id, building.level) == (grid.id, "building")
    with pytest.raises(ValueError, match="parent"):
        store.add_area("grid", "无主网格")
    with pytest.raises(ValueError, match="must be a community"):
        store.add_area("grid", "第四网格", grid.id)
    with pytest.raises(ValueError, match="must be no parent"):
        store.add_area("community", "子社区", community.id)
    with pytest.raises(ValueError, match="already exists"):
        store.add_area("grid", "第三网格", community.id)
    with pytest.raises(ValueError, match="already exists"):
        store.add_area("community", "幸福社区")
    with pytest.raises(NotFound):
        store.add_area("building", "6幢", 999)
    with pytest.raises(ValueError, match="level"):
        store.add_area("street", "解放路")
    assert store.add_area("grid", "第三网格", store.add_area("community", "和平社区").id)


def test_leaders_of_an_area_and_of_the_areas_above(store: Store) -> None:
    community = store.add_area("community", "幸福社区")
    grid = store.add_area("grid", "第三网格", community.id)
    building = store.add_area("building", "5幢", grid.id)
    chief = store.add_user("chief", "staff", "社区书记")
    leader = store.add_user("wang", "grid_leader", "王网格员", telegram_user_id=5_000_000_001)
    store.add_leader(community.id, chief.id)
    store.add_leader(grid.id, leader.id)
    store.add_leader(grid.id, leader.id)  # again: no change
    assert [u.username for u in store.leaders_for_area(building.id)] == ["wang", "chief"]
    assert [u.username for u in store.leaders_for_area(community.id)] == ["chief"]
    assert leader.telegram_user_id == 5_000_000_001
    assert not leader.has_password
    with pytest.raises(ValueError, match="exists"):
        store.add_user("wang", "staff")
    with pytest.raises(ValueError, match="role"):
        store.add_user("li", "boss")
    with pytest.raises(NotFound):
        store.add_leader(grid.id, 999)


def test_chats(store: Store) -> None:
    chat = store.upsert_chat("telegram", "-100123", "group", "幸福社区第三网格群")
    again = store.upsert_chat("telegram", "-100123", "group")
    assert (again.id, again.title, again.tags) == (chat.id, "幸福社区第三网格群", ())
    renamed = store.upsert_chat("telegram", "-100123", "group", "第三网格反诈群")
    assert renamed.title == "第三网格反诈群"
    grid = store.add_area("grid", "第三网格", store.add_area("community", "幸福社区").id)
    assert store.set_chat_area("telegram", "-100123", grid.id).area_id == grid.id
    with pytest.raises(NotFound):
        store.set_chat_area("telegram", "nope", grid.id)
    with pytest.raises(ValueError, match="kind"):
        store.upsert_chat("telegram", "1", "channel")


def test_alerts_go_to_the_residents_area_else_the_chats(store: Store) -> None:
    community = store.add_area("community", "幸福社区")
    grid = store.add_area("grid", "第三网格", community.id)
    building = store.add_area("building", "5幢", grid.id)
    store.upsert_chat("telegram", "-100123", "group")
    store.set_chat_area("telegram", "-100123", grid.id)
    in_group = store.add_report(
        make_report("tg:-100123:7", channel="telegram", chat_external_id="-100123")
    )
    alert = store.add_alert(in_group.id, "居民称已转账，请尽快联系")
    assert (alert.area_id, alert.status, alert.kind) == (grid.id, "pending", "urgent")
    assert alert.resident_id == in_group.resident_id
    store.set_resident_area("tg:-100123:7", building.id)
    assert store.add_alert(in_group.id, "again").area_id == building.id
    private = store.add_report(make_report("r1"))
    assert store.add_alert(private.id, "无区域").area_id is None
    with pytest.raises(NotFound):
        store.add_alert(9999, "x")
    assert len(store.pending_alerts()) == 3
    delivered = store.mark_alert(alert.id, True)
    assert (delivered.status, delivered.attempts) == ("delivered", 1)
    assert delivered.delivered_at is not None
    flaky = store.pending_alerts()[0]
    for attempt in range(1, 6):
        marked = store.mark_alert(flaky.id, False, "Telegram said 429")
        assert marked.attempts == attempt
    assert (marked.status, marked.last_error) == ("failed", "Telegram said 429")
    assert flaky.id not in [a.id for a in store.pending_alerts()]
    assert len(store.pending_alerts(limit=10)) == 1


def test_indicator_decisions_are_audited_without_raw_values(store: Store) -> None:
    admin = store.add_user("admin", "admin")
    store.add_report(make_report())
    confirmed = store.set_indicator_status(
        "phone_mobile", "13800138000", "confirmed", f"user:{admin.id}", note="多人举报"
    )
    assert (confirmed.status, confirmed.confirmed_by, confirmed.seen_count) == (
        "confirmed",
        admin.id,
        1,
    )
    assert confirmed.confirmed_at is not None and confirmed.note == "多人举报"
    fresh = store.set_indicator_status("link", "jd-jr.vip", "confirmed", "cli")
    assert (fresh.seen_count, fresh.masked, fresh.confirmed_by) == (0, "jd-jr.vip", None)
    card = store.set_indicator_status("bank_card", "6222020200112233445", "dismissed", "cli")
    assert card.masked == "6222***********3445"
    back = store.set_indicator_status("phone_mobile", "13800138000", "suspected", "cli")
    assert back.confirmed_at is None and back.note == "多人举报"
    found = store.indicator_statuses([("phone_mobile", "13800138000"), ("link", "jd-jr.vip")])
    assert {k: v.status for k, v in found.items()} == {
        ("phone_mobile", "13800138000"): "suspected",
        ("link", "jd-jr.vip"): "confirmed",
    }
    audit = _audit(store)
    assert [(a[0], a[1], a[2]) for a in audit] == [
        (f"user:{admin.id}", "indicator.status", "indicator"),
        ("cli", "indicator.status", "indicator"),
        ("cli", "indicator.status", "indicator"),
        ("cli", "indicator.status", "indicator"),
    ]
    assert audit[0][4] == {
        "kind": "phone_mobile",
        "masked": "138****8000",
        "from": "suspected",
        "to": "confirmed",
    }
    assert "13800138000" not in repr(audit) and "6222020200112233445" not in repr(audit)
    with pytest.raises(ValueError, match="status"):
        store.set_indicator_status("qq", "12345", "banned", "cli")


def test_audit_and_consent_lines(store: Store) -> None:
    line = store.audit("cli", "export", "reports", None, {"rows": 3})
    store.set_profile("r1", "40-59")
    store.set_profile("r1", None)
    audit = _audit(store)
    assert audit[0] == ("cli", "export", "reports", None, {"rows": 3})
    assert [a[1] for a in audit[1:]] == ["profile.consent", "profile.withdraw"]
    assert isinstance(line, int)
