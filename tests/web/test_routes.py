"""The sandbox page's routes: the page and its assets are served, nothing comes from elsewhere.

The page must work on a laptop with no internet, so every asset is local and no URL in the
HTML, CSS or JavaScript points off the origin. The app is put together as ``run_app`` does it
(bot/telegram/app.py): the page's routes first, then the real sandbox (``bot.sandbox``) mounted at
the root; the page sits next to the sandbox API under ``/sandbox/...`` and must not hide it.
Path traversal is tried over a real socket too, where nothing normalises the path on the way.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Match, Mount
from starlette.testclient import TestClient

from bot.sandbox.server import create_app
from bot.sandbox.state import BOT_FIRST_NAME, BOT_USERNAME, SandboxState
from bot.web.sandbox_page import CONTENT_SECURITY_POLICY, STATIC_DIR, TEMPLATE, render_page, routes
from tests.sandbox.helpers import serve

TOKEN = "7000000001:sandbox-page-routes-token"
# An XML namespace is a name, never fetched; the SVG icon must declare it.
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>)]*|https?://[^\s\"'<>)]+")
HOSTILE_USERNAME = "x\"><script>alert(1)</script><b x='"
HOSTILE_NAME = "<img src=x onerror=alert(2)>&amp;助手'\""


class _Page(HTMLParser):
    """What a page holds: asset URLs, scripts, inline styles and handlers, body data-*."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.script_bodies: list[str] = []
        self.inline: list[str] = []  # style attributes, on* handlers, <style> elements
        self.body: dict[str, str | None] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self.inline += [
            f"{tag} {name}" for name, _ in attrs if name == "style" or name[:2] == "on"
        ]
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self.scripts.append(values)
            self._in_script = True
        if tag == "body":
            self.body = values

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_bodies.append(data)


def _parse(text: str) -> _Page:
    parser = _Page()
    parser.feed(text)
    parser.close()
    return parser


def _app(**names: str) -> Starlette:
    """The page and the real sandbox, in the order ``run_app`` mounts them."""
    return Starlette(routes=[*routes(**names), Mount("/", create_app(SandboxState(TOKEN)))])


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(_app()) as test_client:
        yield test_client


def _policy(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = sources
    return directives


# --- the page ----------------------------------------------------------------------------------


def test_page_is_served_with_a_strict_policy(client: TestClient) -> None:
    response = client.get("/sandbox")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.startswith("<!doctype html>")
    assert '<html lang="zh-CN">' in page
    for text in ("反诈助手", "我是", "发送", "转发", "图片", "清空沙盒", "连不上沙盒服务器"):
        assert text in page
    assert f'data-bot-username="{BOT_USERNAME}"' in page
    assert f'data-bot-name="{BOT_FIRST_NAME}"' in page
    assert "{{" not in page and "}}" not in page
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert client.head("/sandbox").status_code == 200

    policy = _policy(response.headers["content-security-policy"])
    assert policy == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],  # photo previews are blob: URLs
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'self'"],
    }
    sources = {source for listed in policy.values() for source in listed}
    for loose in ("*", "'unsafe-inline'", "'unsafe-eval'", "http:", "https:", "ws:", "wss:"):
        assert loose not in sources, loose


def test_the_page_needs_nothing_the_policy_forbids(client: TestClient) -> None:
    page = _parse(client.get("/sandbox").text)
    assert page.scripts, "the page loads no script"
    for script in page.scripts:  # script-src 'self': external files only, no inline code
        assert script.get("src", "").startswith("/static/sandbox/"), script
    assert "".join(page.script_bodies).strip() == ""
    assert page.inline == []  # style-src 'self' and no 'unsafe-inline': no style=, no on*=
    assert "javascript:" not in client.get("/sandbox").text.lower()
    assert "form" in page.tags  # the composer: submitted by script, never to a URL
    assert 'action="' not in client.get("/sandbox").text


def test_every_asset_of_the_page_loads(client: TestClient) -> None:
    page = _parse(client.get("/sandbox").text)
    assert len(set(page.urls)) >= 3, page.urls  # icon, stylesheet, script
    types = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for url in page.urls:
        assert url.startswith("/static/sandbox/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert types[Path(url).suffix] in response.headers["content-type"], url
        assert response.content == (STATIC_DIR / Path(url).name).read_bytes(), url
        # The assets carry the same policy: an SVG opened on its own cannot run script.
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, url
        assert response.headers["x-content-type-options"] == "nosniff", url
    # Whatever the stylesheet refers to is local and there.
    css = client.get("/static/sandbox/sandbox.css").text
    for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", css):
        assert ref.startswith(("/static/sandbox/", "data:")), ref
        if not ref.startswith("data:"):
            assert client.get(ref).status_code == 200, ref


def test_the_script_only_calls_the_sandbox_it_is_mounted_with() -> None:
    """Every ``/sandbox/...`` path in sandbox.js is a route of the real sandbox app."""
    script = (STATIC_DIR / "sandbox.js").read_text(encoding="utf-8")
    paths = set(re.findall(r"[\"'`](/sandbox/[^\"'`\s]*)", script))
    called = {re.sub(r"\$\{[^}]*\}", "1", path).split("?")[0] for path in paths}
    assert {"/sandbox/send", "/sandbox/chats", "/sandbox/chats/1/messages"} <= called
    sandbox = create_app(SandboxState(TOKEN))
    for path in sorted(called):
        scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
        matches = [route.matches(scope)[0] for route in sandbox.routes]
        assert any(m in (Match.FULL, Match.PARTIAL) for m in matches), f"no route for {path}"


def test_no_external_urls_anywhere(client: TestClient) -> None:
    texts = {"/sandbox": client.get("/sandbox").text, "template": TEMPLATE.read_text("utf-8")}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            url = f"/static/sandbox/{path.relative_to(STATIC_DIR).as_posix()}"
            response = client.get(url)
            assert response.status_code == 200, url
            texts[url] = response.text
    assert len(texts) >= 5
    for name, text in texts.items():
        found = set(URL.findall(text)) - ALLOWED_URLS
        assert not found, f"{name} points off the origin: {sorted(found)}"
        assert "@import" not in text, name
        assert "cdn" not in text.lower(), name


def test_the_url_check_would_see_an_external_url() -> None:
    """The pattern above finds the usual ways of pointing off the origin."""
    for text in (
        '<script src="https://cdn.example.com/x.js">',
        "url(//fonts.gstatic.com/s/a.woff2)",
        'fetch("http://127.0.0.1:5005/webhooks")',
    ):
        assert set(URL.findall(text)) - ALLOWED_URLS, text


def test_script_never_builds_markup_from_strings() -> None:
    script = (STATIC_DIR / "sandbox.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/", "", script, flags=re.S)  # the header comment names them
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in code, sink
    assert "new Function" not in code
    assert "textContent" in code


# --- bot names in the page ---------------------------------------------------------------------


def test_hostile_bot_names_are_escaped_into_the_page() -> None:
    with TestClient(_app(bot_username=HOSTILE_USERNAME, bot_name=HOSTILE_NAME)) as client:
        text = client.get("/sandbox").text
    page = _parse(text)
    # The names come back exactly, as attribute values and text: nothing became markup.
    assert page.body["data-bot-username"] == HOSTILE_USERNAME
    assert page.body["data-bot-name"] == HOSTILE_NAME
    assert f"@{HOSTILE_NAME}" in _text_of(text, "mention")
    assert page.tags == _parse(render_page()).tags  # not one element more than the page's own
    assert page.inline == []
    assert "<script>alert(1)" not in text and "<img src=x" not in text


def test_render_page_escapes_quotes_and_ampersands() -> None:
    page = render_page('x"><script>alert(1)</script>', "<b>助手</b> & 'co'")
    assert "<script>alert(1)" not in page
    assert 'data-bot-username="x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert "&lt;b&gt;助手&lt;/b&gt; &amp; &#x27;co&#x27;" in page


def _text_of(html_text: str, element_id: str) -> str:
    """The text inside the element with ``id``, decoded (it has no child elements)."""

    class Finder(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.inside = False
            self.text = ""

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.inside = dict(attrs).get("id") == element_id

        def handle_endtag(self, tag: str) -> None:
            self.inside = False

        def handle_data(self, data: str) -> None:
            if self.inside:
                self.text += data

    finder = Finder()
    finder.feed(html_text)
    return finder.text


# --- what is not there -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/sandbox/missing.js",
        "/static/sandbox/sub/dir/missing.css",
        "/static/sandbox/",  # no directory listing
        "/static/sandbox",
        "/static/sandbox/index.html",  # the template is served only filled in, at /sandbox
        "/static/sandbox/sandbox.html",
        "/static/sandbox/sandbox_page.py",
        "/static/sandbox/%00.js",  # a NUL byte: a clear 404, not a crash
        "/static/sandbox/" + "a" * 5000 + ".js",  # a name longer than the system allows
        "/static/sandbox/%ff%fe.js",
        "/static/",
        "/static/other/sandbox.js",
        "/sandbox/",
        "/sandbox/index.html",
    ],
)
def test_unknown_assets_are_not_found(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path, response.text[:200])


def test_assets_are_read_only(client: TestClient) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = client.request(method, "/static/sandbox/sandbox.js")
        assert response.status_code == 405, method
    # The page is GET only; a POST falls through to the sandbox, which has no such route.
    posted = client.post("/sandbox")
    assert posted.status_code in (404, 405) and "<!doctype html>" not in posted.text


# Each one names a file that exists outside the static directory (checked below), so a server
# that followed it would answer 200 with that file.
TRAVERSALS = [
    "/static/sandbox/../../sandbox_page.py",
    "/static/sandbox/../../../settings.py",
    "/static/sandbox/%2e%2e/%2e%2e/sandbox_page.py",
    "/static/sandbox/..%2f..%2fsandbox_page.py",
    "/static/sandbox/%2e%2e%2f%2e%2e%2f%2e%2e%2fsettings.py",
    "/static/sandbox/..%5c..%5csandbox_page.py",
    "/static/sandbox/....//....//sandbox_page.py",
    "/static/sandbox/../../templates/sandbox.html",
    "/static/sandbox//etc/passwd",
    "/static/sandbox/%2fetc%2fpasswd",
    "/static/sandbox/./../../sandbox_page.py",
]


def test_the_traversal_targets_exist() -> None:
    web = STATIC_DIR.parent.parent
    assert (web / "sandbox_page.py").is_file()
    assert (web.parent / "settings.py").is_file()
    assert (web / "templates" / "sandbox.html").is_file()
    assert Path("/etc/passwd").is_file()


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with serve(_app()) as running:
        yield f"127.0.0.1:{running.port}"


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused_over_a_real_socket(served: str, path: str) -> None:
    # http.client sends the path exactly as given: no client-side normalisation of "..".
    connection = http.client.HTTPConnection(served, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status in (400, 404), (path, response.status)
    for secret in (b"def routes", b"class Settings", b"root:", b"{{bot_username}}"):
        assert secret not in body, (path, secret)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused_in_process(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert "def routes" not in response.text and "root:" not in response.text


def test_the_socket_test_would_see_a_served_file(served: str) -> None:
    """The same request machinery does fetch a real asset (so a 404 above means refused)."""
    connection = http.client.HTTPConnection(served, timeout=5)
    try:
        connection.request("GET", "/static/sandbox/./sandbox.js")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert body == (STATIC_DIR / "sandbox.js").read_bytes()


# --- the page next to the real sandbox API -----------------------------------------------------


def test_page_and_api_paths_do_not_clash(client: TestClient) -> None:
    assert client.get("/sandbox").text.startswith("<!doctype html>")
    chat = {"id": -1001001, "type": "supergroup", "title": "幸福村3组网格群"}
    sent = client.post(
        "/sandbox/send",
        json={"chat": chat, "from": {"id": 1001, "first_name": "王阿姨"}, "text": "你好"},
    )
    assert sent.status_code == 200, sent.text
    message = sent.json()["message"]
    assert message["text"] == "你好" and message["chat"]["id"] == chat["id"]
    chats = client.get("/sandbox/chats").json()["chats"]
    assert [c["id"] for c in chats] == [chat["id"]]
    listed = client.get(f"/sandbox/chats/{chat['id']}/messages").json()
    assert [m["text"] for m in listed["messages"]] == ["你好"]
    me = client.post(f"/sandbox/bot{TOKEN}/getMe").json()
    assert me["ok"] is True and me["result"]["username"] == BOT_USERNAME
    assert client.get("/sandbox/bot").json()["bot"]["username"] == BOT_USERNAME
    assert client.post("/sandbox/reset").json() == {"ok": True}


def test_bad_input_from_the_page_gets_a_clear_answer(client: TestClient) -> None:
    """What the page shows after "发送失败：" is the sandbox's description, never a crash."""
    cases = [
        client.post(
            "/sandbox/send", content=b"{not json", headers={"content-type": "application/json"}
        ),
        client.post("/sandbox/send", json={"chat": {"id": "x"}, "text": "hi"}),
        client.get("/sandbox/chats/not-a-number/messages"),
        client.get("/sandbox/chats/-1001001/messages?wait=soon"),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        data = response.json()
        assert data["ok"] is False and data["description"], data
    missing = client.get("/sandbox/chats/424242/messages")
    assert missing.status_code == 404 and missing.json()["ok"] is False
