"""``make run`` (``antifraud run``) end to end: migrate, serve, restart what dies, replay the
spool, stop everything on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.dashboard import passwords
from bot.nlp.rasa_server import _free_port
from bot.store.repo import NewReport, Store
from bot.store.spool import Spool

pytestmark = pytest.mark.rasa

SEED = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_make_run_serves_restarts_replays_and_stops(tmp_path):
    rasa_port, action_port, web_port = _free_port(), _free_port(), _free_port()
    db = f"sqlite:///{tmp_path / 'run.db'}"
    env = {
        **os.environ,
        "RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}",
        "DATABASE_URL": db,
        "SPOOL_DIR": str(tmp_path / "spool"),
        "WEB_PORT": str(web_port),
        "TELEGRAM_BOT_TOKEN": "",
    }
    log = (tmp_path / "run.log").open("w+")
    run = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait(lambda: "Ready." in Path(log.name).read_text(), 300, "Ready")
        reply = httpx.post(
            f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
            json={"sender": "run-1", "message": SEED},
            timeout=30,
        ).json()
        assert "刷单返利" in reply[0]["text"]
        store = Store(db)
        assert store.reports_of("run-1")[0].scam_type == "rebate"
        log_text = Path(log.name).read_text()
        assert f"sandbox: http://127.0.0.1:{web_port}/sandbox" in log_text
        # A first dashboard account, its password printed where the person running it looks.
        found = re.search(r"Dashboard account made for this sandbox: admin / (\S+) ", log_text)
        assert found, log_text
        record = store.login_record("admin")
        assert record is not None and passwords.verify(record.password_hash, found.group(1))

        # No token: the sandbox. The seed message posted in a grid group is answered by a reply
        # to it, and the automatic report is listed.
        web = f"http://127.0.0.1:{web_port}"
        group = {"id": -100777, "type": "supergroup", "title": "幸福村3组网格群"}
        posted = httpx.post(
            f"{web}/sandbox/send",
            json={"chat": group, "from": {"id": 77, "first_name": "王阿姨"}, "text": SEED},
            timeout=10,
        ).json()
        sent_at = time.monotonic()
        bot_said: list[dict] = []

        def bot_replied() -> bool:
            got = httpx.get(f"{web}/sandbox/chats/{group['id']}/messages", timeout=10).json()
            bot_said[:] = [m for m in got["messages"] if m.get("from_bot")]
            return bool(bot_said)

        _wait(bot_replied, 10, "the bot's reply in the group")
        print(f"group reply after {time.monotonic() - sent_at:.2f} s")
        assert bot_said[0]["reply_to_message_id"] == posted["message"]["message_id"]
        assert "刷单返利" in bot_said[0]["text"]
        assert any(r.source == "group_auto" for r in store.list_reports(limit=10))

        # A spooled report (written by an action while the database was down) is replayed.
        report = NewReport(
            sender_id="spooled",
            channel="rest",
            text="spooled text",
            text_masked="spooled text",
            normalized="spooled text",
            source="check",
            scam_type="rebate",
            confidence=0.9,
            risk="high",
        )
        Spool(tmp_path / "spool").put("report", report.to_dict())
        _wait(lambda: bool(store.reports_of("spooled")), 20, "the spool replayed")

        # The action server dies: it is reported and started again on its port.
        [action_pid] = [p for p in _children(run.pid) if "rasa_sdk" in _cmdline(p)]
        os.kill(action_pid, signal.SIGKILL)
        _wait(lambda: "action server exited" in Path(log.name).read_text(), 30, "the report")
        health = f"http://127.0.0.1:{action_port}/health"
        _wait(lambda: _answers(health), 90, "the action server back")
        children = _children(run.pid)
        assert action_pid not in children and len(children) == 3

        # So does the bot with its web server.
        [app_pid] = [p for p in children if "bot.cli app" in _cmdline(p)]
        os.kill(app_pid, signal.SIGKILL)
        _wait(lambda: "bot and web server exited" in Path(log.name).read_text(), 30, "the report")
        _wait(lambda: _answers(f"{web}/health"), 90, "the web server back")
        children = _children(run.pid)
        assert app_pid not in children and len(children) == 3

        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in _cmdline(pid)
        assert not _answers(health)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        log.close()
