"""The dashboard under test: its real routes over a real store, driven by Starlette's client.

``make_site(store)`` builds the grid of ``tests.campaigns.grid`` (a community, grids 1 and 2, a
building in grid 1, leaders ``lead1`` and ``lead2``) and gives every account a password:
``admin`` (admin), ``staff`` (staff), ``lead1`` and ``lead2`` (grid leaders). ``login`` signs a
client in through the login form, CSRF token and all, as a browser would.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.dashboard import passwords
from bot.dashboard.web import Dashboard
from bot.nlp.taxonomy import load_taxonomy
from bot.settings import Settings
from bot.store import Store
from tests.campaigns.grid import Grid, make_grid

PASSWORD = "a long test pass phrase 2031"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@functools.lru_cache(maxsize=1)
def password_hash() -> str:
    """One argon2 hash for every test account: hashing costs ~0.1 s, once is enough."""
    return passwords.hash_password(PASSWORD)


@dataclass
class Site:
    store: Store
    dash: Dashboard
    app: Starlette
    grid: Grid
    users: dict[str, int]  # username -> user id

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://testserver", follow_redirects=False)


def make_site(store: Store, settings: Settings | None = None) -> Site:
    settings = settings or Settings()
    grid = make_grid(store)
    users = {
        "admin": store.add_user("admin", "admin", "系统管理员").id,
        "staff": store.add_user("staff", "staff", "张干事").id,
        "lead1": grid.leader1,
        "lead2": grid.leader2,
    }
    for user_id in users.values():
        store.set_password_hash(user_id, password_hash(), "test")
    taxonomy = load_taxonomy(settings.taxonomy_path)
    dash = Dashboard(store, taxonomy, settings)
    return Site(store, dash, Starlette(routes=dash.routes()), grid, users)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/login")
    assert page.status_code == 200
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 303, answer.text
    return client


def signed_in(site: Site, username: str) -> TestClient:
    return login(site.client(), username)


def csrf(client: TestClient, path: str = "/reports") -> str:
    """The session's CSRF token, read from a page's form as a browser would."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)
