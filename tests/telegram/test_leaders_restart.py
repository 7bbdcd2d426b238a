"""A grid leader's /newcampaign survives a restart of the bot.

End to end (the real bot against the sandbox, its own SQLite store and state file): a leader
answers the first steps, the application stops and starts again on the same store and state
file, the leader's next answer continues the same set-up and confirming creates the campaign; a
set-up idle past the timeout is not resumed; a corrupt state file is reported, set aside, and
the bot starts anyway. Then the parts on their own: the draft's JSON codec and the persistence
(atomic writes, only what is needed, unreadable files and entries).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.nlp.rasa_server import _free_port
from bot.settings import Settings
from bot.store.campaigns import SHANGHAI
from bot.store.db import upgrade
from bot.store.repo import Store
from bot.store.types import utcnow
from bot.telegram.leaders import (
    AUDIENCE,
    CONVERSATION,
    DRAFT_KEY,
    TIMEOUT_MINUTES,
    Draft,
    DraftCodec,
    DraftError,
)
from bot.telegram.persistence import JsonPersistence, bot_persistence, state_path
from tests.bot_under_test import BotUnderTest, running_app
from tests.telegram.test_leaders import SEED, Chat

rasa = pytest.mark.rasa

WU = {"id": 9001, "first_name": "吴网格长"}  # leads 东湖社区H9/3网格
NAME = "重启也不丢H9"


# --------------------------------------------------------------------------- the bot, restarted


@dataclasses.dataclass
class Site:
    settings: Settings
    store: Store
    leader: int
    grid3: int


@pytest.fixture
def site(stack, tmp_path: Path) -> Iterator[Site]:
    """Settings for a bot of this test's own: its store, its state file, its web port."""
    settings = dataclasses.replace(
        stack.settings,
        database_url=f"sqlite:///{tmp_path / 'h9.db'}",
        spool_dir=tmp_path / "spool",
        telegram_bot_token="",
        web_port=_free_port(),
        staff_chat_id="",
    )
    upgrade(settings.database_url)
    store = Store(settings.database_url)
    community = store.add_area("community", "东湖社区H9")
    grid3 = store.add_area("grid", "3网格", community.id)
    store.add_area("grid", "4网格", community.id)
    leader = store.add_user("wu_h9", "grid_leader", "吴网格长", telegram_user_id=WU["id"])
    store.add_leader(grid3.id, leader.id)
    try:
        yield Site(settings, store, leader.id, grid3.id)
    finally:
        store.close()


def _again(settings: Settings) -> Settings:
    """The same store and state file; a fresh port (the old one may linger in TIME_WAIT)."""
    return dataclasses.replace(settings, web_port=_free_port())


def _leader(web: str, settings: Settings) -> Chat:
    bot = BotUnderTest(web, proxy=None, settings=settings)  # type: ignore[arg-type]
    return Chat(bot, {"id": WU["id"], "type": "private"}, WU)


def _first_steps(me: Chat) -> None:
    """/newcampaign, a name, an area pressed, 老年人 ticked: the set-up is at the audience step."""
    [ask_name] = me.say("/newcampaign")
    assert "起个名字" in ask_name["text"]
    [area] = me.say(NAME)
    [audience] = me.press_titled(area, "东湖社区H9/3网格")
    assert "发给哪些人" in audience["text"]
    me.toggle(audience, "lc:aud:elderly", "老年人")


def _saved(settings: Settings) -> dict:
    return json.loads(state_path(settings).read_text(encoding="utf-8"))


@rasa
def test_a_set_up_in_progress_survives_a_restart(site: Site):
    with running_app(site.settings) as web:
        _first_steps(_leader(web, site.settings))
    saved = _saved(site.settings)  # written when the application stopped
    draft = saved["user_data"][str(WU["id"])][DRAFT_KEY]
    assert draft["name"] == NAME and draft["audiences"] == ["elderly"]
    assert draft["step"] == AUDIENCE and draft["area_id"] == site.grid3
    assert saved["conversations"][CONVERSATION] == [[[WU["id"], WU["id"]], AUDIENCE]]

    settings = _again(site.settings)
    with running_app(settings) as web:
        me = _leader(web, settings)  # a new sandbox: none of the earlier messages exist
        [tagged] = me.say("广场舞队")  # the same step, with what was chosen before the restart
        assert "已选：老年人、广场舞队" in tagged["text"]
        [content] = me.press(tagged, "lc:aud:done")
        preview, kind = me.press(content, "lc:tpl:0", answers=2)
        assert preview["text"].startswith("群里会收到这样的消息")
        [when] = me.press(kind, "lc:kind:once")
        assert "哪天几点发" in when["text"]
        tomorrow = utcnow().astimezone(SHANGHAI).date() + timedelta(days=1)
        [quiet] = me.say(f"{tomorrow.month}月{tomorrow.day}日 10:00")
        [budget] = me.press(quiet, "lc:quiet:default")
        [summary] = me.press(budget, "lc:budget:2")
        text = summary["text"]
        assert f"名称：{NAME}" in text and "区域：东湖社区H9/3网格" in text
        assert "人群：老年人、广场舞队" in text and "每群每周最多：2 次" in text
        [created] = me.press(summary, "lc:ok:yes")
        assert "已创建活动 #" in created["text"]

    [campaign] = [c for c in site.store.campaigns_visible_to(site.leader) if c.name == NAME]
    assert f"#{campaign.id}" in created["text"]
    assert campaign.area_id == site.grid3 and campaign.created_by == site.leader
    assert campaign.audience_tags == ("elderly", "广场舞队")
    assert campaign.schedule_kind == "once" and campaign.weekly_budget == 2
    at = datetime.fromisoformat(campaign.schedule["at"]).astimezone(SHANGHAI)
    assert (at.date(), at.hour, at.minute) == (tomorrow, 10, 0)
    saved = _saved(site.settings)  # finished: nothing left to resume
    assert saved["user_data"] == {} and saved["conversations"] == {}


@rasa
def test_a_set_up_idle_past_the_timeout_is_not_resumed(site: Site):
    with running_app(site.settings) as web:
        _first_steps(_leader(web, site.settings))
    path = state_path(site.settings)
    saved = _saved(site.settings)
    idle = utcnow() - timedelta(minutes=TIMEOUT_MINUTES + 1)  # the bot was down that long
    saved["user_data"][str(WU["id"])][DRAFT_KEY]["touched_at"] = idle.isoformat()
    path.write_text(json.dumps(saved), encoding="utf-8")

    settings = _again(site.settings)
    with running_app(settings) as web:
        [answer] = _leader(web, settings).say(SEED)  # not taken as an answer to the set-up
        assert "刷单返利" in answer["text"]
    saved = _saved(site.settings)
    assert saved["user_data"] == {} and saved["conversations"] == {}
    assert not [c for c in site.store.campaigns_visible_to(site.leader) if c.name == NAME]


@rasa
def test_a_corrupt_state_file_is_reported_and_the_bot_still_starts(
    site: Site, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="bot.telegram.persistence")
    path = state_path(site.settings)
    path.write_bytes(b'{"format": "antifraud-telegram-state", "version": 1, "user_da\x00\xff')
    with running_app(site.settings) as web:
        _first_steps(_leader(web, site.settings))  # the bot works, and saves anew
    [report] = [r for r in caplog.records if "saved conversations" in r.getMessage()]
    assert report.levelno == logging.WARNING and str(path) in report.getMessage()
    [aside] = path.parent.glob(path.name + ".corrupt-*")
    assert aside.read_bytes().endswith(b"\x00\xff")  # kept for a person to look at
    assert _saved(site.settings)["user_data"][str(WU["id"])][DRAFT_KEY]["name"] == NAME


# --------------------------------------------------------------------------- the draft as JSON


def _full_draft(touched: datetime) -> Draft:
    """A draft with every field away from its default."""
    return Draft(
        user_id=7,
        reach={3, 5, 11},
        labels={3: "东湖社区/3网格", 11: "东湖社区/3网格/1幢"},
        step=AUDIENCE,
        name="春节前防养老诈骗",
        area_id=3,
        audiences=["elderly", "广场舞队"],
        template_key="fundraising-elderly-health",
        text="自己写的提醒",
        choices=["a", "b"],
        all_templates=True,
        kind="recurring",
        once_at=datetime(2027, 1, 5, 19, 30, tzinfo=SHANGHAI),
        weekdays=[0, 2, 6],
        times=["09:30", "19:00"],
        scam_types=["rebate", "romance"],
        lead=45,
        start=date(2027, 1, 1),
        end=date(2027, 1, 31),
        quiet=("21:30", "07:30"),
        budget=4,
        touched_at=touched,
    )


def test_the_draft_codec_keeps_every_field_through_json():
    now = datetime(2027, 1, 1, 8, 0, tzinfo=timezone.utc)
    codec = DraftCodec(clock=lambda: now)
    draft = _full_draft(now - timedelta(minutes=3))
    encoded = codec.encode(draft)
    assert set(encoded) == {f.name for f in dataclasses.fields(Draft)} | {"format"}
    assert codec.decode(json.loads(json.dumps(encoded))) == draft
    plain = Draft(7, None, {}, touched_at=now)  # an admin's, with the defaults
    assert codec.decode(json.loads(json.dumps(codec.encode(plain)))) == plain


def test_a_stale_draft_is_not_restored():
    now = datetime(2027, 1, 1, 8, 0, tzinfo=timezone.utc)
    codec = DraftCodec(clock=lambda: now)
    stale = codec.encode(_full_draft(now - timedelta(minutes=TIMEOUT_MINUTES)))
    assert codec.decode(stale) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", 99),
        ("step", 99),
        ("step", True),
        ("reach", ["3"]),
        ("labels", {"三": "x"}),
        ("kind", "sometimes"),
        ("weekdays", [7]),
        ("quiet", ["21:30"]),
        ("once_at", "2027-01-05 19:30"),  # no time zone
        ("start", "2027-02-30"),
        ("touched_at", None),
        ("all_templates", 1),
        ("budget", "3"),
    ],
)
def test_an_unreadable_draft_is_refused_with_the_reason(field: str, value: object):
    now = datetime(2027, 1, 1, 8, 0, tzinfo=timezone.utc)
    codec = DraftCodec(clock=lambda: now)
    encoded = codec.encode(_full_draft(now))
    encoded[field] = value
    with pytest.raises(DraftError):
        codec.decode(encoded)


# --------------------------------------------------------------------------- the persistence


def _persistence(path: Path, now: datetime | None = None) -> JsonPersistence:
    clock = (lambda: now) if now is not None else utcnow
    return JsonPersistence(
        path, codecs={DRAFT_KEY: DraftCodec(clock=clock)}, needs={CONVERSATION: DRAFT_KEY}
    )


@pytest.mark.anyio
async def test_conversations_and_drafts_only_are_kept_and_read_back(tmp_path: Path):
    path = tmp_path / "state" / "bot-telegram.json"  # the folder is made when first saved
    first = _persistence(path)
    assert await first.get_user_data() == {} and await first.get_conversations(CONVERSATION) == {}
    assert await first.get_chat_data() == {} and await first.get_bot_data() == {}
    draft = _full_draft(utcnow())
    await first.update_user_data(7, {DRAFT_KEY: draft, "scratch": object()})
    await first.update_user_data(42, {"resident": "nothing to keep"})
    await first.update_conversation(CONVERSATION, (7, 7), AUDIENCE)
    await first.update_conversation(CONVERSATION, (42, 42), 0)  # no draft: not resumed
    await first.update_chat_data(42, {"kept": False})
    await first.update_bot_data({"kept": False})
    await first.flush()
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert set(saved["user_data"]) == {"7"} and set(saved["user_data"]["7"]) == {DRAFT_KEY}
    assert "kept" not in path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left

    second = _persistence(path)
    assert await second.get_user_data() == {7: {DRAFT_KEY: draft}}
    assert await second.get_conversations(CONVERSATION) == {(7, 7): AUDIENCE}
    assert second.problem is None
    await second.update_conversation(CONVERSATION, (7, 7), None)  # ended
    await second.drop_user_data(7)
    await second.flush()
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["user_data"] == {} and saved["conversations"] == {}


@pytest.mark.anyio
async def test_nothing_is_written_when_nothing_kept_changed(tmp_path: Path):
    path = tmp_path / "bot-telegram.json"
    persistence = _persistence(path)
    await persistence.get_user_data()
    await persistence.update_user_data(42, {"resident": 1})
    await persistence.flush()
    assert not path.exists()  # a resident's chat leaves nothing
    draft = _full_draft(utcnow())
    await persistence.update_user_data(7, {DRAFT_KEY: draft})
    written = path.stat().st_ino  # every save renames a new file into place
    await persistence.update_user_data(7, {DRAFT_KEY: dataclasses.replace(draft)})
    assert path.stat().st_ino == written  # an equal draft: not written again
    await persistence.update_conversation(CONVERSATION, (7, 7), AUDIENCE)
    written = path.stat().st_ino
    await persistence.update_conversation(CONVERSATION, (7, 7), AUDIENCE)
    await persistence.flush()
    assert path.stat().st_ino == written
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["conversations"] == {CONVERSATION: [[[7, 7], AUDIENCE]]}


@pytest.mark.anyio
async def test_a_stale_draft_and_its_conversation_are_dropped_when_read(tmp_path: Path):
    path = tmp_path / "bot-telegram.json"
    then = datetime(2027, 1, 1, 8, 0, tzinfo=timezone.utc)
    writer = _persistence(path, then)
    await writer.get_user_data()
    await writer.update_user_data(7, {DRAFT_KEY: _full_draft(then)})
    await writer.update_user_data(8, {DRAFT_KEY: _full_draft(then + timedelta(minutes=10))})
    await writer.update_conversation(CONVERSATION, (7, 7), AUDIENCE)
    await writer.update_conversation(CONVERSATION, (8, 8), AUDIENCE)

    later = then + timedelta(minutes=TIMEOUT_MINUTES + 1)
    reader = _persistence(path, later)
    assert set(await reader.get_user_data()) == {8}
    assert await reader.get_conversations(CONVERSATION) == {(8, 8): AUDIENCE}
    await reader.flush()  # and the file forgets them
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert set(saved["user_data"]) == {"8"}
    assert saved["conversations"] == {CONVERSATION: [[[8, 8], AUDIENCE]]}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b"\x80\x81 not utf-8",
        b"{ half a file",
        b"[]",
        json.dumps({"format": "antifraud-telegram-state", "version": 2}).encode(),
        json.dumps(
            {
                "format": "antifraud-telegram-state",
                "version": 1,
                "user_data": {},
                "conversations": {CONVERSATION: [[[7, 7.5], 2]]},
            }
        ).encode(),
    ],
)
async def test_a_corrupt_file_is_reported_set_aside_and_read_as_empty(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="bot.telegram.persistence")
    path = tmp_path / "bot-telegram.json"
    path.write_bytes(content)
    persistence = _persistence(path)
    assert await persistence.get_user_data() == {}
    assert await persistence.get_conversations(CONVERSATION) == {}
    assert persistence.problem is not None and str(path) in persistence.problem
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    [aside] = tmp_path.glob("bot-telegram.json.corrupt-*")
    assert aside.read_bytes() == content
    await persistence.update_user_data(7, {DRAFT_KEY: _full_draft(utcnow())})
    assert set(json.loads(path.read_text(encoding="utf-8"))["user_data"]) == {"7"}


@pytest.mark.anyio
async def test_an_unreadable_path_and_a_bad_entry(tmp_path: Path):
    directory = tmp_path / "bot-telegram.json"
    directory.mkdir()  # where the file should be: cannot be read
    persistence = _persistence(directory)
    assert await persistence.get_user_data() == {}
    assert "cannot be read" in (persistence.problem or "")
    assert list(tmp_path.glob("bot-telegram.json.corrupt-*"))

    path = tmp_path / "other-telegram.json"
    good = DraftCodec().encode(_full_draft(utcnow()))
    path.write_text(
        json.dumps(
            {
                "format": "antifraud-telegram-state",
                "version": 1,
                "user_data": {"7": {DRAFT_KEY: good}, "8": {DRAFT_KEY: {"format": 1}}},
                "conversations": {CONVERSATION: [[[7, 7], 2], [[8, 8], 2]]},
            }
        ),
        encoding="utf-8",
    )
    persistence = _persistence(path)
    assert set(await persistence.get_user_data()) == {7}  # 8's draft is dropped, 7's kept
    assert await persistence.get_conversations(CONVERSATION) == {(7, 7): 2}
    assert "user 8" in (persistence.problem or "")


@pytest.mark.anyio
async def test_a_failed_save_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    persistence = _persistence(blocker / "bot-telegram.json")
    await persistence.get_user_data()
    await persistence.update_conversation(CONVERSATION, (7, 7), AUDIENCE)  # does not raise
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    blocker.unlink()
    await persistence.flush()  # the next round writes what is still waiting
    saved = json.loads((blocker / "bot-telegram.json").read_text(encoding="utf-8"))
    assert saved["conversations"] == {CONVERSATION: [[[7, 7], AUDIENCE]]}


def test_the_state_file_lives_beside_the_store():
    sqlite = Settings(database_url="sqlite:////srv/antifraud/db/main.db")
    assert state_path(sqlite) == Path("/srv/antifraud/db/main-telegram.json")
    postgres = Settings(
        database_url="postgresql://bot@db.example/antifraud", spool_dir=Path("/srv/data/spool")
    )
    assert state_path(postgres) == Path("/srv/data/antifraud-telegram.json")
    persistence = bot_persistence(sqlite)
    assert persistence.path == state_path(sqlite)
    assert not persistence.store_data.bot_data and not persistence.store_data.chat_data
    assert not persistence.store_data.callback_data and persistence.store_data.user_data
