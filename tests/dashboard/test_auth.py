"""Logging in and out, sessions, roles and CSRF, on the real routes over both databases.

The app here is the login routes and the administrators' audit page only, so these tests say
nothing about the other pages beyond what every page shares through ``Dashboard.page``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.dashboard import auth, passwords
from bot.dashboard.pages import audit
from bot.dashboard.web import SESSION_COOKIE, Dashboard
from bot.nlp.taxonomy import load_taxonomy
from bot.settings import Settings
from bot.store import Store
from bot.store.accounts import IDLE_TIMEOUT, MAX_FAILED_LOGINS
from bot.store.models import WebSession
from bot.store.types import utcnow
from tests.dashboard.harness import PASSWORD, csrf, csrf_of, login, password_hash


@pytest.fixture
def site(store: Store) -> tuple[Store, Starlette]:
    settings = Settings()
    for name, role in (("admin", "admin"), ("staff", "staff"), ("lead", "grid_leader")):
        user = store.add_user(name, role)
        store.set_password_hash(user.id, password_hash(), "test")
    dash = Dashboard(store, load_taxonomy(settings.taxonomy_path), settings)
    return store, Starlette(routes=[*auth.routes(dash), *audit.routes(dash)])


def client(app: Starlette) -> TestClient:
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def post_login(c: TestClient, username: str, password: str, **extra: str):  # type: ignore[no-untyped-def]
    token = csrf_of(c.get("/login").text)
    return c.post(
        "/login", data={"username": username, "password": password, "csrf_token": token, **extra}
    )


def test_an_anonymous_visitor_is_sent_to_the_login_page(site) -> None:  # type: ignore[no-untyped-def]
    _store, app = site
    c = client(app)
    answer = c.get("/audit?action=login")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/audit%3Faction%3Dlogin"
    assert client(app).post("/logout").status_code == 401


def test_a_login_lands_on_the_page_asked_for_with_a_safe_cookie(site) -> None:  # type: ignore[no-untyped-def]
    store, app = site
    c = client(app)
    answer = post_login(c, "admin", PASSWORD, next="/audit")
    assert answer.status_code == 303 and answer.headers["location"] == "/audit"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    page = c.get("/audit")
    assert page.status_code == 200 and "审计日志" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    entries, _ = store.audit_entries(action="login")
    assert [e.actor_name for e in entries] == ["admin"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_after_login_the_browser_never_leaves_the_site(site, target: str) -> None:  # type: ignore[no-untyped-def]
    _store, app = site
    answer = post_login(client(app), "admin", PASSWORD, next=target)
    assert answer.headers["location"] == "/"


def test_the_store_keeps_only_a_hash_of_the_session_token(site) -> None:  # type: ignore[no-untyped-def]
    store, app = site
    c = login(client(app), "admin")
    token = c.cookies[SESSION_COOKIE]
    with store.engine.connect() as connection:
        stored = connection.execute(sa.select(WebSession.token_hash)).scalars().all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(site) -> None:  # type: ignore[no-untyped-def]
    _store, app = site
    wrong = post_login(client(app), "admin", "not the password at all")
    nobody = post_login(client(app), "nobody", "not the password at all")
    assert wrong.status_code == nobody.status_code == 401
    assert auth.FAILED in wrong.text and auth.FAILED in nobody.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


def test_failures_in_a_row_lock_the_account_even_for_the_right_password(site) -> None:  # type: ignore[no-untyped-def]
    store, app = site
    c = client(app)
    for _ in range(MAX_FAILED_LOGINS - 1):
        assert post_login(c, "staff", "wrong password here").status_code == 401
    locked = post_login(c, "staff", "wrong password here")
    assert locked.status_code == 429 and auth.LOCKED in locked.text
    right = post_login(c, "staff", PASSWORD)
    assert right.status_code == 429 and auth.LOCKED in right.text
    actions = [e.action for e in store.audit_entries(action="login.")[0]]
    assert actions.count("login.failed") == MAX_FAILED_LOGINS - 1
    assert actions.count("login.locked") == 1
    # once the lock has passed, the right password works and the count starts again
    user = store.user_by_name("staff")
    assert user is not None
    with store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE users SET locked_until = :t WHERE id = :i"),
            {"t": utcnow() - timedelta(seconds=1), "i": user.id},
        )
    assert post_login(c, "staff", PASSWORD).status_code == 303


def test_a_login_form_without_its_token_is_refused(site) -> None:  # type: ignore[no-untyped-def]
    _store, app = site
    c = client(app)
    c.get("/login")
    answer = c.post("/login", data={"username": "admin", "password": PASSWORD})
    assert answer.status_code == 403
    forged = client(app).post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "made-up"}
    )
    assert forged.status_code == 403


def test_roles_are_checked_on_every_page(site) -> None:  # type: ignore[no-untyped-def]
    _store, app = site
    for name in ("staff", "lead"):
        answer = login(client(app), name).get("/audit")
        assert answer.status_code == 403 and "没有权限" in answer.text


def test_logout_needs_the_token_and_ends_the_session_on_the_server(site) -> None:  # type: ignore[no-untyped-def]
    _store, app = site
    c = login(client(app), "admin")
    stolen = c.cookies[SESSION_COOKIE]
    assert c.post("/logout").status_code == 403  # no CSRF token
    assert c.post("/logout", data={"csrf_token": "guess"}).status_code == 403
    token = csrf(c, "/audit")
    assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = client(app)
    replay.cookies.set(SESSION_COOKIE, stolen)
    assert replay.get("/audit").status_code == 303  # the old cookie opens nothing


def test_a_post_from_another_origin_is_refused_even_with_the_token(site) -> None:  # type: ignore[no-untyped-def]
    _store, app = site
    c = login(client(app), "admin")
    token = csrf(c, "/audit")
    answer = c.post(
        "/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert c.get("/audit").status_code == 200


def test_disabling_an_account_or_a_new_password_ends_its_sessions(site) -> None:  # type: ignore[no-untyped-def]
    store, app = site
    staff = store.user_by_name("admin")
    assert staff is not None
    c = login(client(app), "admin")
    store.set_password_hash(staff.id, passwords.hash_password("another long pass 77"), "cli")
    assert c.get("/audit").status_code == 303
    c = login(client(app), "admin", "another long pass 77")
    store.set_user_active(staff.id, False, "cli")
    assert c.get("/audit").status_code == 303
    assert post_login(client(app), "admin", "another long pass 77").status_code == 401


def test_a_session_ends_when_idle_or_expired(site) -> None:  # type: ignore[no-untyped-def]
    store, _app = site
    user = store.user_by_name("staff")
    assert user is not None
    now = utcnow()
    store.start_session(user.id, "tok-idle", "csrf", timedelta(hours=12), now=now)
    assert store.signed_in("tok-idle", now + IDLE_TIMEOUT - timedelta(minutes=1)) is not None
    assert store.signed_in("tok-idle", now + IDLE_TIMEOUT * 2) is None
    store.start_session(user.id, "tok-short", "csrf", timedelta(minutes=30), now=now)
    assert store.signed_in("tok-short", now + timedelta(minutes=31)) is None
    assert store.signed_in("never issued") is None


def test_a_grid_leader_session_knows_the_leaders_areas(store: Store) -> None:
    community = store.add_area("community", "东湖社区").id
    grid = store.add_area("grid", "1网格", community).id
    building = store.add_area("building", "5幢", grid).id
    store.add_area("grid", "2网格", community)
    leader = store.add_user("lead", "grid_leader")
    store.add_leader(grid, leader.id)
    staff = store.add_user("staff", "staff")
    store.start_session(leader.id, "tok-lead", "c", timedelta(hours=1))
    store.start_session(staff.id, "tok-staff", "c", timedelta(hours=1))
    lead_session = store.signed_in("tok-lead")
    staff_session = store.signed_in("tok-staff")
    assert lead_session is not None and lead_session.area_ids == frozenset({grid, building})
    assert staff_session is not None and staff_session.area_ids is None


def test_the_throttle_limits_one_address_in_a_window() -> None:
    throttle = auth.Throttle(limit=3, window=10.0)
    assert all(throttle.allow("10.0.0.1", now=t) for t in (0.0, 1.0, 2.0))
    assert not throttle.allow("10.0.0.1", now=3.0)
    assert throttle.allow("10.0.0.2", now=3.0)
    assert throttle.allow("10.0.0.1", now=10.5)


def test_the_sandbox_makes_one_admin_and_only_once(store: Store) -> None:
    password = auth.sandbox_admin(store)
    assert password is not None
    record = store.login_record("admin")
    assert record is not None and record.user.role == "admin"
    assert passwords.verify(record.password_hash, password)
    assert auth.sandbox_admin(store) is None


def test_the_password_policy_says_why_in_chinese() -> None:
    for weak, why in (("short", "至少"), ("aaaaaaaaaaaa", "简单"), ("admin-admin-123", "用户名")):
        with pytest.raises(passwords.WeakPassword, match=why):
            passwords.hash_password(weak, "admin")
    assert not passwords.verify(None, "anything")
    assert not passwords.verify("not a hash", "anything")
    assert not passwords.verify(password_hash(), "x" * 10_000)
