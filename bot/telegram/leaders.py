"""Grid leaders in Telegram: groups registered to the grid, opt-outs, and campaigns.

In a group, ``/grid 东湖社区/3网格 老年人 新居民`` registers it to a place in the grid tree with
the audiences it reaches (only a leader of that place may), and ``/grid`` alone shows what it
is registered as; ``/campaigns_off`` and ``/campaigns_on`` stop and resume campaign pushes (the
group's Telegram admins or a leader of its area). In a private chat a leader sets up a campaign
step by step (``/newcampaign``: buttons where the choice is finite, text where it is not,
``/cancel`` at any step, given up after 15 minutes of silence), lists their campaigns
(``/campaigns``) and reads one's delivery report (``/campaign N``), with buttons to pause,
resume or stop it. A resident who tries a leader's command gets a short refusal and their
conversation with the bot (Rasa) goes on as before.

Every message goes out through the outbox (``Courier``). Only the keyboard of a multiple-choice
step is edited in place when a choice is toggled, so that picking three audiences does not post
three messages. A campaign in the making lives in the leader's ``user_data`` and the
conversation is persistent: ``DraftCodec`` turns the draft into JSON for the bot's persistence
(``bot/telegram/persistence.py``), so a restart of the bot resumes the set-up at the step it was
at. The 15 minutes of silence count across a restart too: a draft idle longer is not restored,
and one found stale when the leader answers is ended as timed out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.nlp.taxonomy import Taxonomy
from bot.store.campaigns import SHANGHAI, CampaignReport, CampaignView, NewCampaign
from bot.store.errors import NotFound, StoreUnavailable
from bot.store.repo import Store
from bot.store.types import utcnow
from bot.store.views import AreaView, ChatView, UserView
from bot.telegram.outbox import Courier
from bot.telegram.render import MAX_CALLBACK_BYTES, Outgoing, split_text
from campaigns.audience import ALL, AUDIENCES, TagError, name_of, parse_tag
from campaigns.names import (
    DELIVERY_NAMES,
    FAIL_NAMES,
    KIND_NAMES,
    SKIP_NAMES,
    STATUS_NAMES,
    WEEKDAYS,
)
from campaigns.templates import (
    CustomTextError,
    Template,
    TemplateError,
    load_templates,
    render_custom,
)

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
LEADER_ROLES = ("grid_leader", "admin")
TIMEOUT_MINUTES = 15
NAME_MAX_CHARS = 40
MAX_AREA_BUTTONS = 24
MAX_TEMPLATE_BUTTONS = 8
MAX_TIMES_A_DAY = 6
MAX_LIST = 30
DEFAULT_DAYS = 30
DEFAULT_QUIET = ("22:00", "07:00")
DEFAULT_BUDGET = 3
BUDGET_RANGE = (1, 50)
DEFAULT_LEAD = 30
LEAD_MAX_MINUTES = 720
FURTHEST_AHEAD = timedelta(days=366)
NEXT_SHOWN = 3
DRAFT_KEY = "leader_campaign_draft"
CONVERSATION = "newcampaign"  # the persistent ConversationHandler's name
DRAFT_FORMAT = 1  # of DraftCodec's JSON; a draft in another format is not restored
# Callback data: "lc:<step>:<value>" in the guided conversation, "lr:<action>:<id>" on reports.
STEP_PREFIX = "lc"
REPORT_PREFIX = "lr"

# Which report button moves a campaign from which statuses to which.
ACTIONS = {
    "pause": ("暂停", ("active",), "paused"),
    "resume": ("恢复", ("paused",), "active"),
    "stop": ("停止", ("active", "paused"), "cancelled"),
}

NOT_A_LEADER = (
    "这个命令是给网格长用的。如果您是网格长，请联系管理员把您的 Telegram 账号登记上。"
    "有拿不准的消息，直接发给我就行。"
)
NO_AREAS = "您的账号还没有负责的网格，请联系管理员。"
STORE_DOWN = "系统暂时连不上数据库，请过一会儿再试一次。"
PRIVATE_ONLY = "这个命令请私聊我使用。"
GROUP_ONLY = "这个命令请在要设置的群里发。"
STALE = "这一步已经过去了，请点最新消息里的按钮。"
ENDED = "这次设置已经结束了。要新建活动，请发 /newcampaign。"
CANCELLED = "已取消，什么都没有保存。要重新开始，请发 /newcampaign。"
TIMED_OUT = (
    f"超过{TIMEOUT_MINUTES}分钟没有回复，这次新建活动已取消，什么都没有保存。"
    "要重新开始，请发 /newcampaign。"
)
NOTHING_TO_CANCEL = "现在没有进行中的设置，不用取消。"
SOMETHING_WRONG = "出了点问题，这一步没有办好。请再试一次，或者发 /cancel 取消。"

T = TypeVar("T")


class InputError(ValueError):
    """An answer that cannot be used; the message (Chinese) says why and what to type."""


# --------------------------------------------------------------------------- reading answers


def _normal(text: str) -> str:
    """Full-width digits and colons as ASCII, surrounding space gone."""
    return unicodedata.normalize("NFKC", text).strip()


_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_PERIOD = r"(?P<period>凌晨|早上|早晨|上午|中午|下午|傍晚|晚上)?"
_TIME = re.compile(
    rf"^{_PERIOD}\s*(?P<h>\d{{1,2}})\s*"
    r"(?:[:]\s*(?P<m>\d{1,2})|点\s*(?:(?P<half>半)|(?P<m2>\d{1,2})\s*分?)?|时\s*(?:(?P<m3>\d{1,2})\s*分?)?)?$"
)
_DATE = re.compile(
    r"(?P<rel>今天|今日|明天|明日|后天)"
    r"|(?:(?P<y>\d{4})\s*[-/.年]\s*)?(?P<mo>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
)
_DATES_FILLER = re.compile(r"^[\s到至~～—–\-,，、从起开始结束为止]*$")
_NONE = {"不设", "不要", "无", "没有", "不用", "不设置", "none", "no"}


def parse_time_of_day(text: str) -> str:
    """ "19:30", "7点半", "晚上7点", "19点05分" → "HH:MM"."""
    match = _TIME.match(_normal(text))
    if match is None:
        raise InputError(f"“{text.strip()[:20]}”不是时间，请写成 19:30 这样。")
    hour = int(match["h"])
    minute = 30 if match["half"] else int(match["m"] or match["m2"] or match["m3"] or 0)
    period = match["period"]
    afternoon = period in ("下午", "傍晚", "晚上") and 1 <= hour < 12
    if afternoon or (period == "中午" and 1 <= hour <= 2):
        hour += 12
    if hour > 23 or minute > 59:
        raise InputError(f"“{text.strip()[:20]}”不是一天里的时间（00:00 到 23:59）。")
    return f"{hour:02d}:{minute:02d}"


def parse_times(text: str) -> list[str]:
    """Times of day separated by commas or spaces ("09:30,19:00"), sorted, without repeats."""
    pieces = [p for p in re.split(r"[,，、;；\s]+", _normal(text)) if p]
    if not pieces:
        raise InputError("请写上时间，如 09:30,19:00。")
    times = sorted({parse_time_of_day(piece) for piece in pieces})
    if len(times) > MAX_TIMES_A_DAY:
        raise InputError(f"一天最多 {MAX_TIMES_A_DAY} 个时间，太多会打扰大家。")
    return times


def _date_of(match: re.Match[str], today: date, after: date | None = None) -> date:
    """One date written as 今天/明天, 12月20日, 12-20 or 2026-12-20.

    Without a year: this year, or the next one when the month has already gone by (January
    written in December), or comes before the month of ``after`` (the end of 12月20日-1月20日).
    """
    rel = match["rel"]
    if rel:
        return today + timedelta(days={"今天": 0, "今日": 0, "明天": 1, "明日": 1}.get(rel, 2))
    month, day = int(match["mo"]), int(match["d"])
    year = int(match["y"]) if match["y"] else today.year
    try:
        found = date(year, month, day)
    except ValueError:
        raise InputError(f"没有{month}月{day}日这一天，请再看看日期。") from None
    if not match["y"] and (month < today.month or (after is not None and month < after.month)):
        try:
            found = date(year + 1, month, day)
        except ValueError:
            raise InputError(f"没有{month}月{day}日这一天，请再看看日期。") from None
    return found


def parse_when(text: str, now: datetime) -> datetime:
    """A date and time ("12月20日 19:30", "2026-12-20 19:30", "明天 8点"), Asia/Shanghai,
    after ``now`` and within a year of it."""
    clean = _normal(text)
    local_now = now.astimezone(SHANGHAI)
    match = _DATE.match(clean)
    if match is None:  # a time alone: today
        day, rest = local_now.date(), clean
    else:
        day, rest = _date_of(match, local_now.date()), clean[match.end() :].strip()
    if not rest:
        raise InputError("请写上几点发，如 12月20日 19:30。")
    try:
        hhmm = parse_time_of_day(rest)
    except InputError:
        raise InputError(
            f"“{text.strip()[:30]}”看不懂。请写日期和时间，如 12月20日 19:30 或 2026-12-20 19:30。"
        ) from None
    hour, minute = (int(part) for part in hhmm.split(":"))
    when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)
    if when <= now:
        raise InputError(f"{_when(when)} 已经过去了，请写一个以后的时间。")
    if when - now > FURTHEST_AHEAD:
        raise InputError("最多只能定一年以内的时间。")
    return when


def parse_dates(text: str, today: date) -> tuple[date, date]:
    """ "12月20日-1月20日", "2026-12-20 到 2027-01-20", or one start date (ends 30 days on)."""
    clean = _normal(text)
    matches = list(_DATE.finditer(clean))
    leftover = _DATE.sub(" ", clean)
    if not matches or len(matches) > 2 or not _DATES_FILLER.match(leftover):
        raise InputError("请写成 12月20日-1月20日 这样，或者只写开始日期，如 12月20日。")
    start = _date_of(matches[0], today)
    if start < today:
        raise InputError(f"开始日期 {start.month}月{start.day}日 已经过去了。")
    if len(matches) == 1:
        end = start + timedelta(days=DEFAULT_DAYS)
    else:
        end = _date_of(matches[1], today, after=start)
        if end <= start:
            raise InputError("结束日期要在开始日期之后。")
    if end - start > FURTHEST_AHEAD:
        raise InputError("一个活动最长一年。")
    return start, end


def parse_quiet(text: str) -> tuple[str, str] | None:
    """ "21:30-07:00" → ("21:30", "07:00"); "不设" → None."""
    clean = _normal(text)
    if clean.lower() in _NONE:
        return None
    parts = [p for p in re.split(r"\s*(?:-|~|～|—|–|到|至)\s*", clean) if p]
    if len(parts) != 2:
        raise InputError("请写成 22:00-07:00 这样的时段，或者回复“不设”。")
    start, end = parse_time_of_day(parts[0]), parse_time_of_day(parts[1])
    if start == end:
        raise InputError("免打扰的开始和结束不能是同一个时间。")
    return start, end


_NUMBER_WORDS = re.compile(r"每周|每星期|一周|次|分钟|分|小时|个|钟头|\s")


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²", which ``int`` refuses."""
    return bool(re.fullmatch(r"[0-9]{1,9}", text))


def _number(text: str) -> int | None:
    """The one number in an answer like "3", "3次", "每周五次", "45分钟"; None otherwise."""
    bare = _NUMBER_WORDS.sub("", _normal(text))
    if _digits(bare):
        return int(bare)
    return _CN_DIGITS.get(bare) if len(bare) == 1 else None


def parse_budget(text: str) -> int:
    """Pushes per group per week: "3", "3次", "每周五次"."""
    value = _number(text)
    low, high = BUDGET_RANGE
    if value is None or not low <= value <= high:
        raise InputError(f"请写一个 {low} 到 {high} 之间的次数，如 3。")
    return value


def parse_lead(text: str) -> int:
    """Minutes before a peak: "30", "45分钟", "1小时", "半小时"."""
    clean = _normal(text)
    if clean in ("半小时", "半个小时"):
        return 30
    value = _number(clean)
    if value is not None and ("小时" in clean or "钟头" in clean):
        value *= 60
    if value is None or not 0 <= value <= LEAD_MAX_MINUTES:
        raise InputError(f"请写提前多少分钟，0 到 {LEAD_MAX_MINUTES}，如 30。")
    return value


def _when(moment: datetime, now: datetime | None = None) -> str:
    """12月20日 周日 19:30 (with the year when it is not this year), Asia/Shanghai."""
    local = moment.astimezone(SHANGHAI)
    this_year = (now or utcnow()).astimezone(SHANGHAI).year
    year = "" if local.year == this_year else f"{local.year}年"
    return f"{year}{local.month}月{local.day}日 {WEEKDAYS[local.weekday()]} {local:%H:%M}"


def _day(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


# --------------------------------------------------------------------------- the draft


# Steps of the guided conversation (the ConversationHandler's states) and their callback names.
(
    NAME,
    AREA,
    AUDIENCE,
    CONTENT,
    OWN_TEXT,
    KIND,
    ONCE_AT,
    WEEKDAYS_STEP,
    TIMES,
    PEAK_TYPES,
    LEAD,
    DATES,
    QUIET,
    BUDGET,
    CONFIRM,
) = range(15)
STEP_NAMES = {
    NAME: "name",
    AREA: "area",
    AUDIENCE: "aud",
    CONTENT: "tpl",
    OWN_TEXT: "own",
    KIND: "kind",
    ONCE_AT: "at",
    WEEKDAYS_STEP: "day",
    TIMES: "times",
    PEAK_TYPES: "type",
    LEAD: "lead",
    DATES: "date",
    QUIET: "quiet",
    BUDGET: "budget",
    CONFIRM: "ok",
}


@dataclass
class Draft:
    """A campaign being set up, with what the leader may choose from."""

    user_id: int
    reach: set[int] | None  # areas the leader may target; None: an admin, every area
    labels: dict[int, str]  # area id -> 社区/网格/楼栋 (of the areas offered)
    step: int = NAME
    name: str = ""
    area_id: int | None = None
    audiences: list[str] = field(default_factory=list)
    template_key: str | None = None
    text: str | None = None
    choices: list[str] = field(default_factory=list)  # template keys, in the order offered
    all_templates: bool = False
    kind: str | None = None
    once_at: datetime | None = None
    weekdays: list[int] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    scam_types: list[str] = field(default_factory=list)
    lead: int = DEFAULT_LEAD
    start: date | None = None
    end: date | None = None
    quiet: tuple[str, str] | None = DEFAULT_QUIET
    budget: int = DEFAULT_BUDGET
    touched_at: datetime = field(default_factory=utcnow)  # the leader's last answer (UTC)


class DraftError(ValueError):
    """A saved draft that cannot be read back (another format, a value of the wrong kind)."""


def _get(data: dict[str, Any], key: str, kind: type, none: bool = False) -> Any:
    value = data.get(key)
    if value is None and none:
        return None
    # bool is an int: a flag saved where a number belongs (or the reverse) is refused
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise DraftError(f"{key}: {value!r} is not {kind.__name__}")
    return value


def _ints(data: dict[str, Any], key: str) -> list[int]:
    values = _get(data, key, list)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise DraftError(f"{key}: not a list of numbers")
    return values


def _strs(data: dict[str, Any], key: str) -> list[str]:
    values = _get(data, key, list)
    if not all(isinstance(v, str) for v in values):
        raise DraftError(f"{key}: not a list of strings")
    return values


def _moment(data: dict[str, Any], key: str) -> datetime | None:
    text = _get(data, key, str, none=True)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise DraftError(f"{key}: {text!r} is not a time") from None
    if value.tzinfo is None:
        raise DraftError(f"{key}: {text!r} has no time zone")
    return value


def _date(data: dict[str, Any], key: str) -> date | None:
    text = _get(data, key, str, none=True)
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        raise DraftError(f"{key}: {text!r} is not a date") from None


@dataclass(frozen=True)
class DraftCodec:
    """A draft as JSON for the bot's persistence, and back (a dataclass with sets, int-keyed
    dicts, dates and times: JSON keeps none of them as they are). A draft idle for the timeout
    or longer decodes to None: the set-up is not resumed."""

    clock: Callable[[], datetime] = utcnow

    def encode(self, draft: Draft) -> dict[str, Any]:
        return {
            "format": DRAFT_FORMAT,
            "user_id": draft.user_id,
            "reach": None if draft.reach is None else sorted(draft.reach),
            "labels": {str(area_id): label for area_id, label in draft.labels.items()},
            "step": draft.step,
            "name": draft.name,
            "area_id": draft.area_id,
            "audiences": list(draft.audiences),
            "template_key": draft.template_key,
            "text": draft.text,
            "choices": list(draft.choices),
            "all_templates": draft.all_templates,
            "kind": draft.kind,
            "once_at": draft.once_at.isoformat() if draft.once_at else None,
            "weekdays": list(draft.weekdays),
            "times": list(draft.times),
            "scam_types": list(draft.scam_types),
            "lead": draft.lead,
            "start": draft.start.isoformat() if draft.start else None,
            "end": draft.end.isoformat() if draft.end else None,
            "quiet": list(draft.quiet) if draft.quiet else None,
            "budget": draft.budget,
            "touched_at": draft.touched_at.isoformat(),
        }

    def decode(self, data: Any) -> Draft | None:
        """The draft saved by ``encode``; None when stale; DraftError when unreadable."""
        if not isinstance(data, dict) or data.get("format") != DRAFT_FORMAT:
            raise DraftError("not a draft in this format")
        labels = _get(data, "labels", dict)
        if not all(_digits(k) and isinstance(v, str) for k, v in labels.items()):
            raise DraftError("labels: not area ids with their names")
        reach = None if data.get("reach") is None else set(_ints(data, "reach"))
        step = _get(data, "step", int)
        if step not in STEP_NAMES:
            raise DraftError(f"step: {step!r} is not a step")
        kind = _get(data, "kind", str, none=True)
        if kind is not None and kind not in KIND_NAMES:
            raise DraftError(f"kind: {kind!r} is not a kind of schedule")
        weekdays = _ints(data, "weekdays")
        if not all(0 <= d <= 6 for d in weekdays):
            raise DraftError("weekdays: not days of the week")
        quiet = _strs(data, "quiet") if data.get("quiet") is not None else None
        if quiet is not None and len(quiet) != 2:
            raise DraftError("quiet: not a start and an end")
        touched_at = _moment(data, "touched_at")
        if touched_at is None:
            raise DraftError("touched_at: missing")
        draft = Draft(
            user_id=_get(data, "user_id", int),
            reach=reach,
            labels={int(k): v for k, v in labels.items()},
            step=step,
            name=_get(data, "name", str),
            area_id=_get(data, "area_id", int, none=True),
            audiences=_strs(data, "audiences"),
            template_key=_get(data, "template_key", str, none=True),
            text=_get(data, "text", str, none=True),
            choices=_strs(data, "choices"),
            all_templates=_get(data, "all_templates", bool),
            kind=kind,
            once_at=_moment(data, "once_at"),
            weekdays=weekdays,
            times=_strs(data, "times"),
            scam_types=_strs(data, "scam_types"),
            lead=_get(data, "lead", int),
            start=_date(data, "start"),
            end=_date(data, "end"),
            quiet=(quiet[0], quiet[1]) if quiet else None,
            budget=_get(data, "budget", int),
            touched_at=touched_at,
        )
        if self.clock() - draft.touched_at >= timedelta(minutes=TIMEOUT_MINUTES):
            return None
        return draft


@dataclass(frozen=True)
class Press:
    value: str


@dataclass(frozen=True)
class Typed:
    text: str


Answer = Press | Typed | None  # None: something that is neither (a photo, a sticker)


def _data(step: int, value: str | int) -> str:
    data = f"{STEP_PREFIX}:{STEP_NAMES[step]}:{value}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data too long: {data!r}")
    return data


def _button(title: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(title[:64], callback_data=data)


def _rows(buttons: list[InlineKeyboardButton], per_row: int) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


def _checked(title: str, on: bool) -> str:
    return f"✅ {title}" if on else title


def _tag_list(tags: list[str] | tuple[str, ...]) -> str:
    return "、".join(name_of(t) for t in tags) if tags else "（无）"


def labels_of(areas: list[AreaView], every: list[AreaView]) -> dict[int, str]:
    """社区/网格/楼栋 of each of ``areas``, their parents looked up in ``every``; in order."""
    by_id = {a.id: a for a in every}
    labels: dict[int, str] = {}
    for area in areas:
        names: list[str] = []
        current: AreaView | None = area
        seen: set[int] = set()
        while current is not None and current.id not in seen:
            seen.add(current.id)
            names.append(current.name)
            current = by_id.get(current.parent_id) if current.parent_id is not None else None
        labels[area.id] = "/".join(reversed(names))
    return labels


def _some(labels: dict[int, str], most: int = 8) -> str:
    if not labels:
        return "（无）"
    shown = list(labels.values())
    more = f" 等 {len(shown)} 处" if len(shown) > most else ""
    return "、".join(shown[:most]) + more


@dataclass
class Turn:
    """What the bot answers to one update of the guided conversation, sent after the handler
    has returned: the ConversationHandler records the next step only then, and a leader quick
    enough to answer a message sent earlier would find the step not yet recorded."""

    chat_id: int
    messages: list[Outgoing] = field(default_factory=list)

    def say(self, text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
        parts = split_text(text)
        self.messages += [Outgoing(p) for p in parts[:-1]] + [Outgoing(parts[-1], keyboard)]


# --------------------------------------------------------------------------- the desk


@dataclass
class Leaders:
    """The handlers for grid leaders, with what they need; ``handlers()`` for the Application."""

    store: Store
    courier: Courier
    taxonomy: Taxonomy
    clock: Callable[[], datetime] = utcnow
    _templates: dict[str, Template] | None = None
    _planner: Any = None
    _sending: set[asyncio.Task[Any]] = field(default_factory=set)

    def handlers(self) -> list[BaseHandler[Update, Any, Any]]:
        """In the order to add them, before the front end's own handlers."""
        private = filters.ChatType.PRIVATE
        steps: list[BaseHandler[Update, Any, Any]] = [
            CallbackQueryHandler(self.on_step, pattern=f"^{STEP_PREFIX}:"),
            MessageHandler(
                filters.ALL & ~filters.COMMAND & ~filters.StatusUpdate.ALL, self.on_step
            ),
        ]
        with warnings.catch_warnings():
            # per_message=False is meant: one conversation per leader, whichever message the
            # button is on; a press on an older step's message is told it is stale.
            warnings.filterwarnings("ignore", "If 'per_message=False'", PTBUserWarning)
            conversation = ConversationHandler(
                entry_points=[CommandHandler("newcampaign", self.on_new, filters=private)],
                states={
                    **{step: steps for step in STEP_NAMES},
                    ConversationHandler.TIMEOUT: [TypeHandler(Update, self.on_timeout)],
                },
                fallbacks=[
                    CommandHandler("cancel", self.on_cancel),
                    MessageHandler(filters.COMMAND, self.on_other_command),
                ],
                allow_reentry=True,
                conversation_timeout=TIMEOUT_MINUTES * 60,
                name=CONVERSATION,
                persistent=True,
            )
        return [
            conversation,
            CommandHandler("newcampaign", self.on_new_in_group),
            CommandHandler("grid", self.on_grid),
            CommandHandler(["campaigns_off", "campaigns_on"], self.on_opt),
            CommandHandler("campaigns", self.on_list),
            CommandHandler("campaign", self.on_report),
            CommandHandler("cancel", self.on_cancel_idle, filters=private),
            CallbackQueryHandler(self.on_report_button, pattern=f"^{REPORT_PREFIX}:"),
            CallbackQueryHandler(self.on_stale, pattern=f"^{STEP_PREFIX}:"),
        ]

    # Helpers

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def say(
        self,
        chat_id: int,
        text: str,
        keyboard: InlineKeyboardMarkup | None = None,
        reply_to: int | None = None,
    ) -> None:
        parts = split_text(text)
        outgoing = [Outgoing(p) for p in parts[:-1]] + [Outgoing(parts[-1], keyboard)]
        await self.courier.post(chat_id, outgoing, reply_to=reply_to, purpose="reply")

    def _after(self, turn: Turn) -> None:
        """Send a turn's messages as soon as the handler has returned (it must not await
        anything after this): one outbox write, so they keep their order."""
        if not turn.messages:
            return
        task = asyncio.get_running_loop().create_task(
            self.courier.post(turn.chat_id, list(turn.messages), purpose="reply")
        )
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[Any]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a leader's answer was not sent: %r", task.exception())

    async def _answer(self, query: CallbackQuery, text: str | None = None) -> None:
        try:
            await query.answer(text)
        except TelegramError as exc:  # too old to answer: the press still counts
            logger.info("callback answer failed: %s", exc)

    async def leader(self, telegram_user_id: int) -> UserView | None:
        user = await self._db(self.store.user_by_telegram, telegram_user_id)
        return user if user is not None and user.role in LEADER_ROLES else None

    def templates(self) -> dict[str, Template]:
        """Loaded once; when they cannot be loaded a leader can still write their own text."""
        if self._templates is None:
            try:
                self._templates = load_templates(taxonomy=self.taxonomy)
            except TemplateError as exc:
                logger.error("campaign templates cannot be offered: %s", exc)
                self._templates = {}
        return self._templates

    def planner(self) -> Any:
        if self._planner is None:
            from campaigns.planner import Planner

            self._planner = Planner(self.store, templates=self.templates())
        return self._planner

    def next_times(self, campaign: CampaignView, count: int) -> list[datetime] | None:
        """The campaign's next due times; None when they cannot be worked out now."""
        now = self.clock()
        after = max(now, campaign.last_due_at) if campaign.last_due_at else now
        try:
            due = self.planner().due_times(campaign, after, now + FURTHEST_AHEAD, limit=count)
        except Exception:  # a preview: the peak analysis may lack data or fail
            logger.exception("due times of campaign %s could not be worked out", campaign.id)
            return None
        return [when for when, _details in due[:count]]

    async def reach_of(self, user: UserView) -> tuple[set[int] | None, dict[int, str]]:
        """The areas a leader may target (None: all, an admin) and their labels, in tree order
        (parents before children)."""
        every = await self._db(self.store.areas)
        if user.role == "admin":
            return None, labels_of(every, every)
        reach: set[int] = set()
        for area in await self._db(self.store.areas_led_by, user.id):
            reach.update(await self._db(self.store.area_subtree, area.id))
        return reach, labels_of([a for a in every if a.id in reach], every)

    # ------------------------------------------------------------------ in groups

    async def on_grid(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        if message.chat.type == ChatType.PRIVATE:
            await self.say(
                message.chat.id, GROUP_ONLY + "例如在群里发：/grid 东湖社区/3网格 老年人"
            )
            return
        try:
            text = await self._grid(message, list(context.args or []))
        except StoreUnavailable:
            text = STORE_DOWN
        await self.say(message.chat.id, text, reply_to=message.message_id)

    async def _grid(self, message: Message, args: list[str]) -> str:
        assert message.from_user is not None
        user = await self.leader(message.from_user.id)
        if not args:
            return await self._grid_status(message, user)
        if user is None:
            return "只有本网格的网格长才能登记这个群，什么都没有改。"
        reach, mine = await self.reach_of(user)
        if reach is not None and not reach:
            return NO_AREAS
        name, tag_words = args[0], [w for a in args[1:] for w in re.split(r"[,，、]+", a) if w]
        found = await self._db(self.store.find_area, name, reach)
        if not found:
            anywhere = await self._db(self.store.find_area, name)
            if anywhere:
                labels = [await self._db(self.store.area_label, a.id) for a in anywhere]
                return (
                    f"您不是“{'、'.join(labels)}”的网格长，不能把群登记到那里，什么都没有改。"
                    f"您负责的区域：{_some(mine)}。"
                )
            return f"没有找到“{name}”，什么都没有改。您负责的区域有：{_some(mine)}。"
        if len(found) > 1:
            labels = [await self._db(self.store.area_label, a.id) for a in found]
            return (
                f"有 {len(found)} 个地方叫“{name}”：{'、'.join(labels)}。"
                f"请写完整的路径，如 /grid {labels[0]} 老年人"
            )
        area = found[0]
        current = await self._db(self.store.get_chat, CHANNEL, str(message.chat.id))
        elsewhere = current.area_id if current is not None else None
        if elsewhere not in (None, area.id) and not await self._db(
            self.store.leads, user.id, elsewhere
        ):
            label = await self._db(self.store.area_label, elsewhere)
            return f"本群已登记在“{label}”，只有那里的网格长可以改，什么都没有改。"
        tags: list[str] = []
        notes: list[str] = []
        for word in tag_words:
            try:
                tag = parse_tag(word)
            except TagError as exc:
                return f"{exc}。什么都没有改。"
            if tag == ALL:
                notes.append("“全部”不用登记：发给全体的活动会发到区域里的每个群。")
            elif tag not in tags:
                tags.append(tag)
        try:
            chat = await self._db(
                self.store.register_group,
                CHANNEL,
                str(message.chat.id),
                area.id,
                tags,
                user.id,
                message.chat.title,
            )
        except PermissionError:
            return "您不是这个区域的网格长，不能把群登记到那里，什么都没有改。"
        except ValueError:  # the chat is known as a private one
            return "只有群才能登记到网格，什么都没有改。"
        label = await self._db(self.store.area_label, area.id)
        lines = [f"✅ 本群已登记到：{label}", f"人群标签：{_tag_list(chat.tags)}", *notes]
        if chat.campaigns_opt_out:
            lines.append("本群已退订活动推送；群管理员可发 /campaigns_on 恢复。")
        return "\n".join(lines)

    async def _grid_status(self, message: Message, user: UserView | None) -> str:
        chat = await self._db(self.store.get_chat, CHANNEL, str(message.chat.id))
        lines: list[str] = []
        if chat is None or chat.area_id is None:
            lines.append("本群还没有登记到网格。")
        else:
            label = await self._db(self.store.area_label, chat.area_id)
            lines += [f"本群登记在：{label}", f"人群标签：{_tag_list(chat.tags)}"]
        opted_out = chat is not None and chat.campaigns_opt_out
        lines.append(
            "活动推送：已退订（群管理员可发 /campaigns_on 恢复）"
            if opted_out
            else "活动推送：接收中（群管理员可发 /campaigns_off 退订）"
        )
        audiences = "、".join(AUDIENCES.values())
        if user is None:
            lines.append("只有本网格的网格长可以登记本群：/grid 区域 人群标签")
            return "\n".join(lines)
        reach, mine = await self.reach_of(user)
        example = next(iter(mine.values()), "东湖社区/3网格")
        lines += [
            "",
            f"登记方法：/grid 区域 人群标签，例如：/grid {example} 老年人 新居民",
            f"您负责的区域：{_some(mine) if reach is not None else '全部（管理员）'}",
            f"人群标签可选：{audiences}，也可以自己起名（如 广场舞队）。",
        ]
        return "\n".join(lines)

    async def on_opt(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None or not message.text:
            return
        off = message.text.split()[0].lstrip("/").split("@")[0].lower() == "campaigns_off"
        if message.chat.type == ChatType.PRIVATE:
            await self.say(message.chat.id, GROUP_ONLY)
            return
        try:
            text = await self._opt(context, message, off)
        except StoreUnavailable:
            text = STORE_DOWN
        await self.say(message.chat.id, text, reply_to=message.message_id)

    async def _opt(self, context: ContextTypes.DEFAULT_TYPE, message: Message, off: bool) -> str:
        assert message.from_user is not None
        chat_id = str(message.chat.id)
        await self._db(self.store.upsert_chat, CHANNEL, chat_id, "group", message.chat.title)
        actor = await self._opt_actor(context, message)
        if actor is None:
            return "只有群主、群管理员或本网格的网格长可以设置活动推送。"
        await self._db(self.store.set_campaigns_opt_out, CHANNEL, chat_id, off, actor)
        if off:
            return (
                "好的，本群不再接收反诈活动推送。群里有人发诈骗信息，我仍会提醒大家。"
                "要恢复请发 /campaigns_on。"
            )
        return "好的，本群恢复接收反诈活动推送。要退订请发 /campaigns_off。"

    async def _opt_actor(self, context: ContextTypes.DEFAULT_TYPE, message: Message) -> str | None:
        """Who may change the group's opt-out: its Telegram admins, or a leader of its area."""
        user = message.from_user
        assert user is not None
        if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
            return f"tg-admin:{message.chat.id}:anonymous"  # an admin posting as the group
        try:
            member = await context.bot.get_chat_member(message.chat.id, user.id)
            if member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR):
                return f"tg-admin:{message.chat.id}:{user.id}"
        except TelegramError as exc:
            logger.info("chat member %s of %s not known: %s", user.id, message.chat.id, exc)
        leader = await self.leader(user.id)
        chat = await self._db(self.store.get_chat, CHANNEL, str(message.chat.id))
        if leader is None or chat is None or chat.area_id is None:
            return None
        led = await self._db(self.store.leads, leader.id, chat.area_id)
        return f"user:{leader.id}" if led else None

    async def on_new_in_group(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/newcampaign anywhere but a private chat."""
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        try:
            leader = await self.leader(message.from_user.id)
        except StoreUnavailable:
            leader = None
        text = PRIVATE_ONLY if leader is not None else NOT_A_LEADER
        await self.say(message.chat.id, text, reply_to=message.message_id)

    # ------------------------------------------------------------------ the guided conversation

    def _draft(self, context: ContextTypes.DEFAULT_TYPE) -> Draft | None:
        data = context.user_data
        draft = data.get(DRAFT_KEY) if data is not None else None
        return draft if isinstance(draft, Draft) else None

    def _forget(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.user_data is not None:
            context.user_data.pop(DRAFT_KEY, None)

    def _expired(self, draft: Draft) -> bool:
        """Idle past the timeout: the conversation's own timeout does not outlive a restart."""
        return self.clock() - draft.touched_at >= timedelta(minutes=TIMEOUT_MINUTES)

    async def on_new(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        message = update.effective_message
        if message is None or message.from_user is None:
            return ConversationHandler.END
        turn = Turn(message.chat.id)
        try:
            return await self._start(turn, message.from_user.id, context)
        finally:
            self._after(turn)

    async def _start(
        self, turn: Turn, telegram_user_id: int, context: ContextTypes.DEFAULT_TYPE
    ) -> object:
        try:
            user = await self.leader(telegram_user_id)
            if user is None:
                turn.say(NOT_A_LEADER)
                return ConversationHandler.END
            reach, labels = await self.reach_of(user)
        except StoreUnavailable:
            turn.say(STORE_DOWN)
            return ConversationHandler.END
        if reach is not None and not reach:
            turn.say(NO_AREAS)
            return ConversationHandler.END
        draft = Draft(user.id, reach, labels, touched_at=self.clock())
        assert context.user_data is not None
        context.user_data[DRAFT_KEY] = draft
        await self.ask(
            turn, draft, hint="好的，我们一步一步建一个反诈宣传活动，随时可以发 /cancel 取消。"
        )
        return NAME

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        self._forget(context)
        chat = update.effective_chat
        if chat is not None:
            turn = Turn(chat.id)
            turn.say(CANCELLED)
            self._after(turn)
        return ConversationHandler.END

    async def on_cancel_idle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is not None:
            await self.say(chat.id, NOTHING_TO_CANCEL)

    async def on_timeout(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._forget(context)
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is not None:
            await self.say(chat.id, TIMED_OUT)

    async def on_other_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        draft = self._draft(context)
        chat = update.effective_chat
        if draft is None or chat is None:
            return ConversationHandler.END
        turn = Turn(chat.id)
        if self._expired(draft):
            self._forget(context)
            turn.say(TIMED_OUT)
            self._after(turn)
            return ConversationHandler.END
        draft.touched_at = self.clock()
        await self.ask(turn, draft, hint="正在新建活动：请先回答下面的问题，或者发 /cancel 取消。")
        self._after(turn)
        return draft.step

    async def on_stale(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button of a conversation that has ended (finished, cancelled, timed out)."""
        query = update.callback_query
        if query is None:
            return
        await self._answer(query, ENDED)
        if isinstance(query.message, Message):
            await self.say(query.message.chat.id, ENDED)

    async def on_step(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        chat = update.effective_chat
        if chat is None:
            return ConversationHandler.END
        turn = Turn(chat.id)
        try:
            outcome = await self._on_step(turn, update, context)
        finally:
            self._after(turn)
        if outcome == ConversationHandler.END:
            self._forget(context)
        return outcome

    async def _on_step(
        self, turn: Turn, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> object:
        draft = self._draft(context)
        if draft is None:  # its saved draft could not be restored after a restart, say
            turn.say(ENDED)
            return ConversationHandler.END
        if self._expired(draft):  # resumed after a restart, then left unanswered
            if update.callback_query is not None:
                await self._answer(update.callback_query)
            turn.say(TIMED_OUT)
            return ConversationHandler.END
        draft.touched_at = self.clock()
        query = update.callback_query
        answer: Answer
        if query is not None:
            parts = (query.data or "").split(":", 2)
            if len(parts) != 3 or parts[1] != STEP_NAMES[draft.step]:
                await self._answer(query, STALE)
                await self.ask(turn, draft, hint=STALE)
                return draft.step
            await self._answer(query)
            answer = Press(parts[2])
        else:
            message = update.effective_message
            text = message.text if message is not None else None
            answer = Typed(text) if text and text.strip() else None
        try:
            return await self.step(turn, draft, answer, query)
        except StoreUnavailable:
            turn.messages.clear()
            turn.say(STORE_DOWN)
            return draft.step
        except Exception:  # a leader mid-conversation never meets silence
            logger.exception("campaign step %s failed", STEP_NAMES[draft.step])
            turn.messages.clear()
            turn.say(SOMETHING_WRONG)
            return draft.step

    async def step(
        self, turn: Turn, draft: Draft, answer: Answer, query: CallbackQuery | None
    ) -> object:
        """Take one answer to the current step; ask the next step (or this one again)."""
        handler = {
            NAME: self._on_name,
            AREA: self._on_area,
            AUDIENCE: self._on_audience,
            CONTENT: self._on_content,
            OWN_TEXT: self._on_own_text,
            KIND: self._on_kind,
            ONCE_AT: self._on_once_at,
            WEEKDAYS_STEP: self._on_weekdays,
            TIMES: self._on_times,
            PEAK_TYPES: self._on_peak_types,
            LEAD: self._on_lead,
            DATES: self._on_dates,
            QUIET: self._on_quiet,
            BUDGET: self._on_budget,
            CONFIRM: self._on_confirm,
        }[draft.step]
        try:
            outcome = await handler(turn, draft, answer, query)
        except InputError as exc:
            await self.ask(turn, draft, hint=str(exc))
            return draft.step
        if outcome == ConversationHandler.END:
            return ConversationHandler.END
        # On the same step the handler has answered already (a hint, a toggled keyboard).
        if isinstance(outcome, int) and outcome != draft.step:
            draft.step = outcome
            await self.ask(turn, draft)
        return draft.step

    async def ask(self, turn: Turn, draft: Draft, hint: str | None = None) -> None:
        # In a thread: the summary counts groups and works out due times in the store.
        text, keyboard = await asyncio.to_thread(self.question, draft)
        turn.say(f"{hint}\n\n{text}" if hint else text, keyboard)

    async def _toggled(self, turn: Turn, draft: Draft, query: CallbackQuery | None) -> None:
        """A choice was toggled: show it on the same message's keyboard."""
        _text, keyboard = await asyncio.to_thread(self.question, draft)
        if query is not None and isinstance(query.message, Message):
            try:
                await query.edit_message_reply_markup(keyboard)
                return
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    return
                logger.info("keyboard not edited (%s); asking again", exc)
            except TelegramError as exc:
                logger.info("keyboard not edited (%s); asking again", exc)
        await self.ask(turn, draft)

    # Questions

    def question(self, draft: Draft) -> tuple[str, InlineKeyboardMarkup | None]:
        step = draft.step
        buttons: list[list[InlineKeyboardButton]] = []
        if step == NAME:
            return (
                f"第1步：给活动起个名字（{NAME_MAX_CHARS}个字以内），如“春节前防养老诈骗”。",
                None,
            )
        if step == AREA:
            offered = list(draft.labels.items())
            if len(offered) > MAX_AREA_BUTTONS:  # buildings by name only
                offered = [(i, label) for i, label in offered if label.count("/") < 2]
            for area_id, label in offered[:MAX_AREA_BUTTONS]:
                buttons.append([_button(label, _data(AREA, area_id))])
            return (
                "第2步：发给哪里的群？点一个区域（包括它下面的网格和楼栋），"
                "或者输入名称，如 东湖社区/3网格/5幢。",
                InlineKeyboardMarkup(buttons) if buttons else None,
            )
        if step == AUDIENCE:
            chosen = set(draft.audiences)
            codes = [*AUDIENCES, *[t for t in draft.audiences if t not in AUDIENCES and t != ALL]]
            toggles = [
                _button(_checked(name_of(c), c in chosen), _data(AUDIENCE, c)) for c in codes
            ]
            buttons = _rows(toggles, 2)
            buttons.append([_button(_checked("全部", ALL in chosen), _data(AUDIENCE, ALL))])
            buttons.append([_button("完成 ➡️", _data(AUDIENCE, "done"))])
            return (
                "第3步：发给哪些人？可以多选，选好后点“完成”。"
                "也可以直接输入群的自定义标签，如 广场舞队。",
                InlineKeyboardMarkup(buttons),
            )
        if step == CONTENT:
            templates = self.templates()
            draft.choices = self._ranked(
                templates, draft.audiences, everything=draft.all_templates
            )
            for i, key in enumerate(draft.choices):
                buttons.append([_button(templates[key].title, _data(CONTENT, i))])
            if not draft.all_templates and len(draft.choices) < len(templates):
                buttons.append([_button("看其他模板", _data(CONTENT, "more"))])
            buttons.append([_button("✍️ 自己写", _data(CONTENT, "own"))])
            lead = (
                "第4步：发什么内容？点一个模板（写给这些人看的排在前面），或者自己写。"
                if templates
                else "第4步：现在没有可用的模板，请点“自己写”。"
            )
            return lead, InlineKeyboardMarkup(buttons)
        if step == OWN_TEXT:
            return (
                "请把要发到群里的话写好发给我（1500字以内）。我会在前面注明是网格长的提醒。",
                None,
            )
        if step == KIND:
            kinds = [
                ("📅 定一个时间，发一次", "once"),
                ("🔁 每周固定时间发", "recurring"),
                ("⏰ 在诈骗高发时段之前发", "peak"),
            ]
            buttons = [[_button(title, _data(KIND, value))] for title, value in kinds]
            return "第5步：什么时候发？", InlineKeyboardMarkup(buttons)
        if step == ONCE_AT:
            return (
                "哪天几点发？输入日期和时间（北京时间），如 12月20日 19:30 或 2026-12-20 19:30。",
                None,
            )
        if step == WEEKDAYS_STEP:
            chosen_days = set(draft.weekdays)
            days = [
                _button(_checked(name, i in chosen_days), _data(WEEKDAYS_STEP, i))
                for i, name in enumerate(WEEKDAYS)
            ]
            buttons = _rows(days, 4)
            buttons.append(
                [
                    _button("每天", _data(WEEKDAYS_STEP, "all")),
                    _button("完成 ➡️", _data(WEEKDAYS_STEP, "done")),
                ]
            )
            return "每周哪几天发？可以多选，选好后点“完成”。", InlineKeyboardMarkup(buttons)
        if step == TIMES:
            return "这几天里几点发？输入一个或几个时间，用逗号隔开，如 09:30,19:00。", None
        if step == PEAK_TYPES:
            chosen_types = set(draft.scam_types)
            types = [
                _button(_checked(t.name, t.code in chosen_types), _data(PEAK_TYPES, t.code))
                for t in self.taxonomy.scam_types
            ]
            buttons = _rows(types, 2)
            buttons.append([_button("完成 ➡️", _data(PEAK_TYPES, "done"))])
            return (
                "跟着哪些诈骗的高发时段发？我会按案件数据算出这些诈骗对所选人群的高发时段，"
                "在每次高发之前推送。可以多选，选好后点“完成”。",
                InlineKeyboardMarkup(buttons),
            )
        if step == LEAD:
            leads = [15, 30, 60, 120]
            row = [
                _button(f"{m}分钟" + ("（默认）" if m == DEFAULT_LEAD else ""), _data(LEAD, m))
                for m in leads
            ]
            return (
                f"在高发时段开始前多久发？点一个，或者输入分钟数（0 到 {LEAD_MAX_MINUTES}）。",
                InlineKeyboardMarkup(_rows(row, 2)),
            )
        if step == DATES:
            today = self.clock().astimezone(SHANGHAI).date()
            end = today + timedelta(days=DEFAULT_DAYS)
            buttons = [
                [_button(f"默认：今天起，到{end.month}月{end.day}日", _data(DATES, "default"))]
            ]
            return (
                "活动从哪天开始、到哪天结束？点“默认”，或者输入，如 12月20日-1月20日"
                f"（只写一个日期就是开始日期，{DEFAULT_DAYS}天后结束）。",
                InlineKeyboardMarkup(buttons),
            )
        if step == QUIET:
            start, end = DEFAULT_QUIET
            buttons = [
                [
                    _button(f"默认 {start}–{end}", _data(QUIET, "default")),
                    _button("不设", _data(QUIET, "none")),
                ]
            ]
            return (
                "免打扰时段（这段时间不推送）：默认晚上 22:00 到早上 07:00。"
                "也可以输入，如 21:30-07:30。",
                InlineKeyboardMarkup(buttons),
            )
        if step == BUDGET:
            budgets = [1, 2, 3, 5, 7]
            row = [
                _button(f"{n}次" + ("（默认）" if n == DEFAULT_BUDGET else ""), _data(BUDGET, n))
                for n in budgets
            ]
            return (
                "每个群每周最多收到几次这个活动以及其他活动的推送？点一个，或者输入次数。",
                InlineKeyboardMarkup(_rows(row, 3)),
            )
        assert step == CONFIRM
        buttons = [
            [
                _button("✅ 确认创建", _data(CONFIRM, "yes")),
                _button("❌ 取消", _data(CONFIRM, "no")),
            ]
        ]
        return self.summary(draft), InlineKeyboardMarkup(buttons)

    @staticmethod
    def _ranked(
        templates: dict[str, Template], audiences: list[str], *, everything: bool
    ) -> list[str]:
        """Templates for these audiences first (most audiences in common, then general ones)."""
        wanted = set(audiences) - {ALL}
        everybody = ALL in audiences or not wanted

        def rank(t: Template) -> tuple[int, int, str]:
            overlap = len(wanted.intersection(t.audiences))
            return (-overlap, 0 if t.is_general else 1, t.key)

        fitting = [
            t for t in templates.values() if wanted.intersection(t.audiences) or t.is_general
        ]
        if everybody:
            fitting = list(templates.values())
        keys = [t.key for t in sorted(fitting, key=rank)][:MAX_TEMPLATE_BUTTONS]
        if everything:
            keys += sorted(k for k in templates if k not in keys)
        return keys

    # Answers, one handler per step: the next step, or InputError to ask again.

    async def _on_name(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if not isinstance(answer, Typed):
            raise InputError("请用文字给活动起个名字。")
        name = " ".join(answer.text.split())
        if not name:
            raise InputError("名字不能是空的。")
        if len(name) > NAME_MAX_CHARS:
            raise InputError(f"名字太长了（{len(name)}个字），请在{NAME_MAX_CHARS}个字以内。")
        draft.name = name
        return AREA

    async def _on_area(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if isinstance(answer, Press):
            if not _digits(answer.value):
                raise InputError("请点一个区域。")
            area_id = int(answer.value)
        elif isinstance(answer, Typed):
            found = await self._db(self.store.find_area, answer.text.strip(), draft.reach)
            if not found:
                raise InputError(f"在您负责的区域里没有找到“{answer.text.strip()[:30]}”。")
            if len(found) > 1:
                labels = [await self._db(self.store.area_label, a.id) for a in found]
                raise InputError(f"有几个地方叫这个名字：{'、'.join(labels)}。请输入完整路径。")
            area_id = found[0].id
        else:
            raise InputError("请点一个区域，或者输入区域名称。")
        if not await self._db(self.store.leads, draft.user_id, area_id):
            raise InputError("您不是这个区域的网格长，请选您负责的区域。")
        draft.area_id = area_id
        if area_id not in draft.labels:
            draft.labels[area_id] = await self._db(self.store.area_label, area_id)
        return AUDIENCE

    async def _on_audience(self, turn: Turn, draft: Draft, answer: Answer, query: Any) -> int:
        if isinstance(answer, Typed):
            added = []
            for word in re.split(r"[,，、\s]+", answer.text.strip()):
                if not word:
                    continue
                try:
                    tag = parse_tag(word)
                except TagError as exc:
                    raise InputError(str(exc)) from None
                added.append(tag)
            for tag in added:
                self._toggle_audience(draft, tag, on=True)
            await self.ask(turn, draft, hint=f"已选：{_tag_list(draft.audiences)}。")
            return AUDIENCE
        if not isinstance(answer, Press):
            raise InputError("请点按钮选择人群，选好后点“完成”。")
        if answer.value == "done":
            if not draft.audiences:
                raise InputError("请至少选一项；要发给所有群，就选“全部”。")
            return CONTENT
        try:
            tag = parse_tag(answer.value)
        except TagError:
            raise InputError("请点按钮选择人群。") from None
        self._toggle_audience(draft, tag)
        await self._toggled(turn, draft, query)
        return AUDIENCE

    @staticmethod
    def _toggle_audience(draft: Draft, tag: str, on: bool | None = None) -> None:
        present = tag in draft.audiences
        want = (not present) if on is None else on
        if tag == ALL:
            draft.audiences = [ALL] if want else []
            return
        if want and not present:
            draft.audiences = [t for t in draft.audiences if t != ALL] + [tag]
        elif not want and present:
            draft.audiences.remove(tag)

    async def _on_content(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if not isinstance(answer, Press):
            raise InputError("请点一个模板，或者点“自己写”。")
        if answer.value == "own":
            return OWN_TEXT
        if answer.value == "more":
            draft.all_templates = True
            await self.ask(turn, draft)
            return CONTENT
        templates = self.templates()
        index = int(answer.value) if _digits(answer.value) else -1
        if not 0 <= index < len(draft.choices) or draft.choices[index] not in templates:
            raise InputError("这个模板找不到了，请重新选。")
        template = templates[draft.choices[index]]
        draft.template_key, draft.text = template.key, None
        draft.scam_types = list(template.scam_types)
        turn.say("群里会收到这样的消息：\n\n" + template.render())
        return KIND

    async def _on_own_text(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if not isinstance(answer, Typed):
            raise InputError("请用文字写要发的内容。")
        try:
            preview = render_custom(answer.text)
        except CustomTextError as exc:
            raise InputError(str(exc)) from None
        draft.template_key, draft.text, draft.scam_types = None, answer.text.strip(), []
        turn.say("群里会收到这样的消息：\n\n" + preview)
        return KIND

    async def _on_kind(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if not isinstance(answer, Press) or answer.value not in KIND_NAMES:
            raise InputError("请点一种发送方式。")
        draft.kind = answer.value
        return {"once": ONCE_AT, "recurring": WEEKDAYS_STEP, "peak": PEAK_TYPES}[answer.value]

    async def _on_once_at(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if not isinstance(answer, Typed):
            raise InputError("请输入日期和时间，如 12月20日 19:30。")
        draft.once_at = parse_when(answer.text, self.clock())
        return QUIET  # a one-off push needs no start and end dates

    async def _on_weekdays(self, turn: Turn, draft: Draft, answer: Answer, query: Any) -> int:
        if not isinstance(answer, Press):
            raise InputError("请点按钮选星期几，选好后点“完成”。")
        if answer.value == "done":
            if not draft.weekdays:
                raise InputError("请至少选一天。")
            return TIMES
        if answer.value == "all":
            draft.weekdays = list(range(7))
            return TIMES
        if not _digits(answer.value) or not 0 <= int(answer.value) <= 6:
            raise InputError("请点按钮选星期几。")
        day = int(answer.value)
        draft.weekdays = sorted(set(draft.weekdays) ^ {day})
        await self._toggled(turn, draft, query)
        return WEEKDAYS_STEP

    async def _on_times(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if not isinstance(answer, Typed):
            raise InputError("请输入时间，如 09:30,19:00。")
        draft.times = parse_times(answer.text)
        return DATES

    async def _on_peak_types(self, turn: Turn, draft: Draft, answer: Answer, query: Any) -> int:
        if not isinstance(answer, Press):
            raise InputError("请点按钮选诈骗类型，选好后点“完成”。")
        if answer.value == "done":
            if not draft.scam_types:
                raise InputError("请至少选一种诈骗。")
            return LEAD
        if answer.value not in self.taxonomy.scam_codes:
            raise InputError("请点按钮选诈骗类型。")
        if answer.value in draft.scam_types:
            draft.scam_types.remove(answer.value)
        else:
            draft.scam_types.append(answer.value)
        await self._toggled(turn, draft, query)
        return PEAK_TYPES

    async def _on_lead(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if answer is None:
            raise InputError("请点一个选项，或者输入分钟数。")
        draft.lead = parse_lead(answer.value if isinstance(answer, Press) else answer.text)
        return DATES

    async def _on_dates(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        today = self.clock().astimezone(SHANGHAI).date()
        if isinstance(answer, Press) and answer.value == "default":
            draft.start, draft.end = today, today + timedelta(days=DEFAULT_DAYS)
        elif isinstance(answer, Typed):
            draft.start, draft.end = parse_dates(answer.text, today)
        else:
            raise InputError("请点“默认”，或者输入日期。")
        return QUIET

    async def _on_quiet(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if isinstance(answer, Press) and answer.value in ("default", "none"):
            quiet = DEFAULT_QUIET if answer.value == "default" else None
        elif isinstance(answer, Typed):
            quiet = parse_quiet(answer.text)
        else:
            raise InputError("请点一个选项，或者输入时段，如 22:00-07:00。")
        probe = self.preview(draft, quiet=quiet)
        if draft.kind == "once" and draft.once_at and probe.in_quiet_hours(draft.once_at):
            raise InputError(
                f"您定的 {draft.once_at.astimezone(SHANGHAI):%H:%M} 在这个免打扰时段里，"
                "推送会被跳过。请换一个时段，或者点“不设”。"
            )
        if draft.kind == "recurring" and draft.times:
            day = self.clock().astimezone(SHANGHAI).replace(second=0, microsecond=0)
            at = [day.replace(hour=int(t[:2]), minute=int(t[3:])) for t in draft.times]
            if all(probe.in_quiet_hours(moment) for moment in at):
                raise InputError(
                    f"您定的时间（{'、'.join(draft.times)}）都在这个免打扰时段里，一次也发不出去。"
                    "请换一个时段，或者点“不设”。"
                )
        draft.quiet = quiet
        return BUDGET

    async def _on_budget(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> int:
        if answer is None:
            raise InputError("请点一个次数，或者输入次数。")
        draft.budget = parse_budget(answer.value if isinstance(answer, Press) else answer.text)
        return CONFIRM

    async def _on_confirm(self, turn: Turn, draft: Draft, answer: Answer, _q: Any) -> object:
        if not isinstance(answer, Press) or answer.value not in ("yes", "no"):
            raise InputError("请点“确认创建”或者“取消”。")
        if answer.value == "no":
            turn.say(CANCELLED)
            return ConversationHandler.END
        try:
            created = await self._db(
                self.store.add_campaign, self.new_campaign(draft), draft.user_id
            )
        except PermissionError:
            turn.say("您不是这个区域的网格长，活动没有创建。")
            return ConversationHandler.END
        except ValueError as exc:
            raise InputError(f"活动没有创建：{exc}") from None
        turn.say(
            f"✅ 已创建活动 #{created.id}“{created.name}”。\n"
            f"发 /campaign {created.id} 看发送情况，发 /campaigns 看您的全部活动。",
        )
        return ConversationHandler.END

    # The campaign itself

    def _times(self, draft: Draft) -> tuple[datetime, datetime | None]:
        now = self.clock()
        if draft.kind == "once" or draft.start is None:
            return now, None
        today = now.astimezone(SHANGHAI).date()
        start = (
            now
            if draft.start <= today
            else datetime(draft.start.year, draft.start.month, draft.start.day, tzinfo=SHANGHAI)
        )
        end = None
        if draft.end is not None:
            after = draft.end + timedelta(days=1)  # the end date is the last day it runs
            end = datetime(after.year, after.month, after.day, tzinfo=SHANGHAI)
        return start, end

    def _schedule(self, draft: Draft) -> dict[str, Any]:
        if draft.kind == "once":
            assert draft.once_at is not None
            return {"at": draft.once_at.isoformat()}
        if draft.kind == "recurring":
            return {"weekdays": list(draft.weekdays), "times": list(draft.times)}
        return {"lead_minutes": draft.lead}

    def new_campaign(self, draft: Draft) -> NewCampaign:
        assert draft.area_id is not None and draft.kind is not None
        starts_at, ends_at = self._times(draft)
        quiet_start, quiet_end = draft.quiet if draft.quiet else (None, None)
        return NewCampaign(
            name=draft.name,
            area_id=draft.area_id,
            schedule_kind=draft.kind,
            schedule=self._schedule(draft),
            starts_at=starts_at,
            ends_at=ends_at,
            audience_tags=tuple(draft.audiences),
            scam_types=tuple(draft.scam_types),
            template_key=draft.template_key,
            text=draft.text,
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            weekly_budget=draft.budget,
        )

    def preview(self, draft: Draft, quiet: tuple[str, str] | bool | None = False) -> CampaignView:
        """The campaign as it would be stored, for its next due times and quiet-hour checks."""
        quiet_hours = draft.quiet if quiet is False else quiet
        quiet_start, quiet_end = quiet_hours if isinstance(quiet_hours, tuple) else (None, None)
        starts_at, ends_at = self._times(draft)
        return CampaignView(
            id=0,
            name=draft.name,
            created_by=draft.user_id,
            area_id=draft.area_id or 0,
            audience_tags=tuple(draft.audiences),
            scam_types=tuple(draft.scam_types),
            template_key=draft.template_key,
            text=draft.text,
            schedule_kind=draft.kind or "once",
            schedule=self._schedule(draft) if draft.kind else {},
            starts_at=starts_at,
            ends_at=ends_at,
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            weekly_budget=draft.budget,
            grace_minutes=60,
            status="active",
            created_at=self.clock(),
        )

    def describe_schedule(self, campaign: CampaignView) -> str:
        schedule = campaign.schedule
        if campaign.schedule_kind == "once":
            return f"发一次：{_when(datetime.fromisoformat(schedule['at']))}"
        if campaign.schedule_kind == "recurring":
            days = schedule.get("weekdays") or []
            names = "每天" if len(days) == 7 else "、".join(WEEKDAYS[d] for d in days)
            return f"每周定时：{names} {'、'.join(schedule.get('times') or [])}"
        types = "、".join(self._type_name(code) for code in campaign.scam_types)
        return f"高发时段前 {schedule.get('lead_minutes')} 分钟：{types}"

    def _type_name(self, code: str) -> str:
        try:
            return self.taxonomy.get(code).name
        except KeyError:
            return code

    def summary(self, draft: Draft) -> str:
        view = self.preview(draft)
        groups: list[ChatView] = self.store.groups_in(draft.area_id) if draft.area_id else []
        wanted = set(draft.audiences) - {ALL}
        targets = [g for g in groups if not wanted or wanted.intersection(g.tags)]
        opted_out = sum(1 for g in targets if g.campaigns_opt_out)
        if draft.template_key:
            template = self.templates().get(draft.template_key)
            content = f"模板“{template.title if template else draft.template_key}”"
        else:
            body = " ".join((draft.text or "").split())
            content = f"自己写的：{body[:40]}{'……' if len(body) > 40 else ''}"
        lines = [
            "请核对：",
            f"名称：{draft.name}",
            f"区域：{draft.labels.get(draft.area_id or 0, '')}",
            f"人群：{_tag_list(draft.audiences)}",
            f"内容：{content}",
            f"时间：{self.describe_schedule(view)}",
        ]
        if draft.kind != "once" and draft.start and draft.end:
            lines.append(f"日期：{_day(draft.start)} 到 {_day(draft.end)}")
        lines.append(
            f"免打扰：{draft.quiet[0]}–{draft.quiet[1]}" if draft.quiet else "免打扰：不设"
        )
        lines.append(f"每群每周最多：{draft.budget} 次")
        reach = f"现在能发到：{len(targets)} 个群"
        if opted_out:
            reach += f"（其中 {opted_out} 个已退订，不会收到）"
        lines.append(reach)
        if not targets:
            lines.append("（这个区域还没有登记这些人群的群；群登记后会自动收到。）")
        upcoming = self.next_times(view, NEXT_SHOWN)
        if upcoming is None:
            lines.append("接下来发送：现在算不出来，创建后会按计划发送。")
        elif not upcoming:
            lines.append(
                "接下来发送：暂时没有。案件数据还不够算出高发时段；数据导入后会自动安排。"
                if draft.kind == "peak"
                else "接下来发送：在活动日期内没有可发的时间，请检查日期和时间。"
            )
        else:
            marks = [
                _when(t) + ("（免打扰，跳过）" if view.in_quiet_hours(t) else "") for t in upcoming
            ]
            lines.append("接下来发送：" + "；".join(marks))
        return "\n".join(lines)

    # ------------------------------------------------------------------ lists and reports

    async def _private_leader(self, update: Update) -> tuple[int, UserView] | None:
        """The chat and the leader for a private leader command; answered and None otherwise."""
        message = update.effective_message
        if message is None or message.from_user is None:
            return None
        chat_id = message.chat.id
        reply_to = None if message.chat.type == ChatType.PRIVATE else message.message_id
        user = await self.leader(message.from_user.id)
        if user is None:
            await self.say(chat_id, NOT_A_LEADER, reply_to=reply_to)
            return None
        if message.chat.type != ChatType.PRIVATE:
            await self.say(chat_id, PRIVATE_ONLY, reply_to=reply_to)
            return None
        return chat_id, user

    async def on_list(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            found = await self._private_leader(update)
            if found is None:
                return
            chat_id, user = found
            text = await self._db(self.campaign_list, user)
        except StoreUnavailable:
            chat = update.effective_chat
            if chat is not None:
                await self.say(chat.id, STORE_DOWN)
            return
        await self.say(chat_id, text)

    def campaign_list(self, user: UserView) -> str:
        campaigns = self.store.campaigns_visible_to(user.id)
        if not campaigns:
            return "您还没有活动。发 /newcampaign 新建一个。"
        every = self.store.areas()
        labels = labels_of(every, every)
        lines = [f"您的活动（共 {len(campaigns)} 个，新的在前）："]
        for campaign in campaigns[:MAX_LIST]:
            full = self.store.get_campaign(campaign.id) or campaign  # with its last due time
            if full.status == "active":
                upcoming = self.next_times(full, 1)
                nxt = _when(upcoming[0]) if upcoming else "暂无"
            else:
                nxt = "—"
            lines.append(
                f"#{full.id} {full.name} · {STATUS_NAMES.get(full.status, full.status)} · "
                f"{KIND_NAMES.get(full.schedule_kind, full.schedule_kind)} · "
                f"{labels.get(full.area_id, '?')} · 下次：{nxt}"
            )
        if len(campaigns) > MAX_LIST:
            lines.append(f"……还有 {len(campaigns) - MAX_LIST} 个较早的活动。")
        lines.append("发 /campaign 编号 看发送情况，如 /campaign " + str(campaigns[0].id))
        return "\n".join(lines)

    async def on_report(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            found = await self._private_leader(update)
            if found is None:
                return
            chat_id, user = found
            args = list(context.args or [])
            number = args[0].lstrip("#＃") if len(args) == 1 else ""
            if not _digits(number):
                await self.say(chat_id, "请写上活动编号，如 /campaign 3。发 /campaigns 看编号。")
                return
            text, keyboard = await self._db(self.report, user, int(number))
        except StoreUnavailable:
            chat = update.effective_chat
            if chat is not None:
                await self.say(chat.id, STORE_DOWN)
            return
        await self.say(chat_id, text, keyboard)

    def _visible(self, user: UserView, campaign_id: int) -> bool:
        return any(c.id == campaign_id for c in self.store.campaigns_visible_to(user.id))

    def report(
        self, user: UserView, campaign_id: int, headline: str | None = None
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        """A campaign's delivery report and its buttons, for a leader who may see it."""
        if not self._visible(user, campaign_id):
            return f"没有找到您能查看的活动 #{campaign_id}。发 /campaigns 看您的活动。", None
        try:
            report = self.store.campaign_report(campaign_id, occurrences=5)
        except NotFound:
            return f"没有找到活动 #{campaign_id}。", None
        text = self.report_text(report)
        buttons = [
            _button(title, f"{REPORT_PREFIX}:{action}:{campaign_id}")
            for action, (title, sources, _to) in ACTIONS.items()
            if report.campaign.status in sources
        ]
        keyboard = InlineKeyboardMarkup([buttons]) if buttons else None
        return (f"{headline}\n\n{text}" if headline else text), keyboard

    def report_text(self, report: CampaignReport) -> str:
        campaign = report.campaign
        counts = report.counts
        label = self.store.area_label(campaign.area_id)
        status = STATUS_NAMES.get(campaign.status, campaign.status)
        lines = [
            f"活动 #{campaign.id}“{campaign.name}”（{status}）",
            f"区域：{label} · 人群：{_tag_list(campaign.audience_tags)}",
            f"时间：{self.describe_schedule(campaign)}",
            f"目标群：{report.groups_targeted} 个",
            f"已发送：{counts.get('sent', 0)} 次",
        ]
        waiting = counts.get("queued", 0) + counts.get("sending", 0)
        if waiting:
            lines.append(f"等待发送：{waiting} 次")
        failed = counts.get("failed", 0)
        if failed:
            why = "，".join(
                f"{FAIL_NAMES.get(kind, kind)} {n}" for kind, n in sorted(report.failed.items())
            )
            lines.append(f"失败：{failed} 次（{why}）")
        else:
            lines.append("失败：0 次")
        skipped = counts.get("skipped", 0)
        if skipped:
            why = "，".join(
                f"{SKIP_NAMES.get(reason, reason)} {n}"
                for reason, n in sorted(report.skipped.items(), key=lambda kv: -kv[1])
            )
            lines.append(f"跳过：{skipped} 次（{why}）")
        else:
            lines.append("跳过：0 次")
        if report.occurrences:
            lines.append("最近几次：")
            for occ in report.occurrences:
                parts = [
                    f"{DELIVERY_NAMES.get(status, status)} {n}"
                    for status, n in sorted(occ.counts.items())
                ]
                missed = "（错过）" if occ.status == "missed" else ""
                lines.append(f"· {_when(occ.due_at)}{missed}：{'，'.join(parts) or '没有目标群'}")
        else:
            lines.append("还没有发送过。")
        if campaign.status == "active":
            upcoming = self.next_times(campaign, 1)
            if upcoming:
                lines.append(f"下次：{_when(upcoming[0])}")
        return "\n".join(lines)

    async def on_report_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not isinstance(query.message, Message):
            return
        chat_id = query.message.chat.id
        parts = (query.data or "").split(":")
        if len(parts) != 3 or parts[1] not in ACTIONS or not _digits(parts[2]):
            await self._answer(query, "这个按钮用不了了。")
            return
        action, campaign_id = parts[1], int(parts[2])
        try:
            user = await self.leader(query.from_user.id)
            if user is None:
                await self._answer(query, "只有网格长可以操作活动。")
                await self.say(chat_id, NOT_A_LEADER)
                return
            await self._answer(query)
            headline = await self._db(self.change_status, user, campaign_id, action)
            text, keyboard = await self._db(self.report, user, campaign_id, headline)
        except StoreUnavailable:
            await self._answer(query)
            await self.say(chat_id, STORE_DOWN)
            return
        await self.say(chat_id, text, keyboard)

    def change_status(self, user: UserView, campaign_id: int, action: str) -> str:
        title, sources, target = ACTIONS[action]
        campaign = (
            self.store.get_campaign(campaign_id) if self._visible(user, campaign_id) else None
        )
        if campaign is None:
            return f"没有找到您能操作的活动 #{campaign_id}。"
        if campaign.status not in sources:
            status = STATUS_NAMES.get(campaign.status, campaign.status)
            return f"活动 #{campaign_id} 现在{status}，不能{title}。"
        self.store.set_campaign_status(campaign_id, target, f"user:{user.id}")
        return f"好的，活动 #{campaign_id} 已{title}。"


__all__ = [
    "CONVERSATION",
    "DRAFT_KEY",
    "Draft",
    "DraftCodec",
    "DraftError",
    "InputError",
    "Leaders",
    "parse_budget",
    "parse_dates",
    "parse_lead",
    "parse_quiet",
    "parse_time_of_day",
    "parse_times",
    "parse_when",
]
