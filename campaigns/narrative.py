"""Reading a police case narrative (简要案情): when the fraud happened, and how much was lost.

Police write narratives like "2022年12月18日9时许，事主王某来我所报称：2022年12月17日22时30分许，
其在家中接到自称淘宝客服的电话……共计转账86,000元。" Two times appear; only one is when the fraud
happened. The case data is for finding the hours scams peak, so taking the report time would file
every case at the police station's opening hours.

Times (``find_times``, ``fraud_time``): dates as ``2022年12月17日``, ``12月17日``, ``17日``,
``2022-12-17``, ``2022/12/17``, ``2022.12.17``, relative ones (当日, 当晚, 次日, 翌日 …), and clock
times as ``22时30分``, ``22点半``, ``22:30``, with a period (``下午3时``, ``凌晨2点``, ``晚上8点``)
turning 12-hour readings into 24-hour ones; Chinese numerals too (``晚上八点``). A date without a
year takes it from the other dates in the text (the year that puts it nearest them), then from
``default_year``. A time without a date takes the date last mentioned before it.

Each time mention is a *report time* when a report word (报警, 报案, 报称, 来我所, 接报 …) stands
nearer to it than any fraud word (被骗, 接到, 添加, 转账 …), within its clause. The fraud time is,
in this order: the first non-report mention with a clock time and a fraud word near it; the first
non-report mention with a clock time; the first non-report mention with a date only (then
``has_clock`` is false and the caller decides: the importer leaves the time empty, since an hour
of 0:00 would invent a midnight peak).

Loss (``fraud_loss``): amounts in 元 (``5000元``, ``86,000元``, ``人民币3.2万元``, ``1.5万``,
``三万元``, ``5万余元``), each labelled by the nearest marker before it in its clause (after
it when none is before: "将3万元转入对方账户"): a total (共计, 合计, 总计, 累计, 一共 …), a
loss (被骗, 损失, 涉案 …), a transfer (转账, 汇款, 支付, 充值, 缴纳, 投资, 骗取 …, and cash
handed over in person: 取走, 交给, 当面交付, 上门取走 …), money borrowed (借, 借款: see
below), or money that is not a loss (返利, 佣金, 收益, 回报, 奖金, 补偿, 退款, 额度, 贷款,
余额, 追回 …), which is left out. Three corrections follow:

- a display or a promise (显示, 承诺, 保证, 号称, 日赚 …) governs the amounts after it in its
  clause, whatever marker stands nearer ("页面显示买家已付款9000元" shows a sum, nobody paid
  it), until the story moves on or a payment is demanded (随后, 又, 需, 要求 …); an amount that
  describes a picture or a record ("转账5万元的截图") is not a loss either;
- money borrowed is a transfer when its clause says it went on ("借款2万元后转给对方");
- a transfer told without its amount ("请其先借2万元……章某转账后", "急需2万元保释金，沈某
  随即转账") pays the amount just before it, if that one was borrowed or had no label, stands
  in the same or the previous sentence, and no amount follows in the act's own sentence; an act
  asked for or denied (要求其转账, 无法转账) pays nothing.

The rule used is recorded:

1. ``total``: the text states a total: the largest total stated;
2. ``loss``: no total, but a loss is stated: that amount (several different ones: their sum);
   a stated loss wins over the transfers, even when they add up to more ("转账2000元后又被骗
   3000元" reads as 3000), since police state the loss once the transfers are told;
3. ``transfers``: neither: the sum of the transfers (骗取其3000元 counts as one: it tells an
   event, not the overall loss).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

_CN_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_CN_CHARS = "〇零一二两三四五六七八九十百千万亿"


def cn_number(text: str) -> int | None:
    """A number written in Chinese (``十七``, ``二〇二二``, ``一万五千``, ``三千五``) or digits."""
    text = text.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    if any(ch not in _CN_CHARS for ch in text):
        return None
    if len(text) > 1 and all(ch in _CN_DIGITS for ch in text):
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))  # 二〇二二: digit by digit
    total = section = number = 0
    last_unit = 0
    for ch in text:
        if ch in _CN_DIGITS:
            number = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            last_unit = _CN_UNITS[ch]
            section += (number or 1) * last_unit
            number = 0
        else:
            last_unit = _CN_BIG[ch]
            total += (section + number or 1) * last_unit
            section = number = 0
    if number and last_unit >= 100 and text[-2] not in _CN_DIGITS:
        # 三千五 = 3500, 一万五 = 15000: a trailing digit counts in the next unit down.
        number *= last_unit // 10
    return total + section + number


# Times --------------------------------------------------------------------------------------

_N = r"(?:\d{1,4}|[〇零一二两三四五六七八九十]{1,4})"
_PERIODS = (
    "凌晨|清晨|早上|早晨|上午|中午|午后|下午|傍晚|晚上|晚间|夜里|夜间|深夜|半夜|午夜|晚|早|夜"
)
_TIME = re.compile(
    rf"""
    (?:
        (?P<iso>(?P<iy>(?:19|20)\d{{2}})[-/.](?P<im>\d{{1,2}})[-/.](?P<id>\d{{1,2}})日?)
        (?:[\sT]*(?=\d))?
      | (?:(?P<y>\d{{4}}|[〇零一二三四五六七八九]{{4}})\s*年\s*)?
        (?:同年\s*)?
        (?:(?P<m>{_N})\s*月\s*)?
        (?P<d>{_N})\s*(?:日|号(?![楼栋幢单室房院门线车位店铺库]))
      | (?P<rel>当日|当天|同日|同天|当晚|当夜|次日|翌日|第二天|次晚|前一天|前日)
    )?
    \s*(?P<period>{_PERIODS})?
    \s*(?:
        (?P<h1>\d{{1,2}})\s*[:：]\s*(?P<m1>\d{{2}})(?:\s*[:：]\s*\d{{2}})?
      | (?P<h2>{_N})\s*(?:时|点钟?)
        (?:\s*(?P<m2>\d{{1,2}}|[零〇一二三四五六七八九十]{{1,3}})\s*分|\s*(?P<half>半))?
    )?
    """,
    re.VERBOSE,
)
_PM = {"下午", "午后", "傍晚", "晚上", "晚间", "晚", "夜", "夜里", "夜间", "深夜", "半夜", "午夜"}
_LATE_NIGHT = {"晚上", "晚间", "晚", "夜", "夜里", "夜间", "深夜", "半夜", "午夜"}
_NEXT_DAY = {"次日": 1, "翌日": 1, "第二天": 1, "次晚": 1, "前一天": -1, "前日": -1}
_BOUNDARY = re.compile(r"[。；;！!？?\n：:]")
_REPORT = re.compile(
    r"报警|报案|报称|接报|接警|求助|接到[^，,。；]{0,8}?报|"
    r"(?:来|至|到|向|前往)(?:(?:我|本)(?:所|局|大队|中队)|(?:当地)?派出所|公安机关)|"
    r"(?:我|本)(?:所|局)(?:接到|民警)"
)
_FRAUD = re.compile(
    r"被骗|被诈骗|接到|接听|添加|加了|加入|转账|转款|汇款|转入|转至|联系|下载|扫码|点击|注册|充值|"
    r"付款|支付|结识|认识|收到|浏览|拨打|来电|自称|冒充|购买|投资|刷单|诱导|按照|要求|登录|进入"
)
_REPORT_REACH = 20


@dataclass(frozen=True)
class TimeMention:
    """One time in a narrative, resolved as far as the text allows (local time, no zone)."""

    text: str
    start: int
    end: int
    day: date | None
    clock: tuple[int, int] | None
    problem: str | None = None
    is_report: bool = False
    fraud_word: bool = False

    @property
    def has_clock(self) -> bool:
        return self.clock is not None

    @property
    def local(self) -> datetime | None:
        """The local date and time, when both are known and valid."""
        if self.day is None or self.clock is None or self.problem:
            return None
        return datetime(self.day.year, self.day.month, self.day.day, *self.clock)


@dataclass
class _Raw:
    match: re.Match[str]
    year: int | None
    month: int | None
    day: int | None
    rel: str | None
    period: str | None
    hour: int | None
    minute: int | None
    problem: str | None = None


def _num(value: str | None) -> int | None:
    return None if value is None else cn_number(value)


def _raw_mentions(text: str) -> list[_Raw]:
    found = []
    for match in _TIME.finditer(text):
        if match.end() == match.start():
            continue
        g = match.groupdict()
        start = match.start()
        if start > 0 and (text[start - 1].isdigit() or text[start - 1] in "."):
            continue  # the tail of a longer number (a phone, an amount)
        has_date = bool(g["iso"] or g["d"] or g["rel"])
        hour_text = g["h1"] or g["h2"]
        if not has_date and hour_text is None:
            continue
        weak_period = not g["period"] or len(g["period"]) < 2
        if hour_text is not None and not hour_text.isdigit() and not has_date and weak_period:
            continue  # 一时疏忽, 晚一点: a Chinese-numeral hour needs a date or a real period
        if g["d"] and not g["d"].isdigit() and not g["m"]:
            continue  # 一日 alone is seldom a date
        if g["iso"]:
            year, month, day = int(g["iy"]), int(g["im"]), int(g["id"])
        else:
            year, month, day = _num(g["y"]), _num(g["m"]), _num(g["d"])
        minute = _num(g["m1"] or g["m2"])
        if g["half"]:
            minute = 30
        raw = _Raw(
            match=match,
            year=year,
            month=month,
            day=day,
            rel=g["rel"],
            period=g["period"] or ("晚" if g["rel"] in ("当晚", "当夜", "次晚") else None),
            hour=_num(hour_text),
            minute=minute if hour_text is not None else None,
        )
        found.append(raw)
    return found


def _valid_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _nearest_year(month: int, day: int, year: int, anchor: date | None) -> date | None:
    """The date with ``year - 1``, ``year`` or ``year + 1`` nearest the anchor (or ``year``)."""
    if anchor is None:
        return _valid_date(year, month, day)
    options = [d for y in (year - 1, year, year + 1) if (d := _valid_date(y, month, day))]
    if not options:
        return None
    return min(options, key=lambda d: abs((d - anchor).days))


def _nearest_month(day: int, anchor: date) -> date | None:
    options = []
    for shift in (-1, 0, 1):
        month = anchor.month + shift
        year = anchor.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        if (d := _valid_date(year, month, day)) is not None:
            options.append(d)
    return min(options, key=lambda d: abs((d - anchor).days)) if options else None


def _date_problem(raw: _Raw) -> str | None:
    if raw.month is not None and not 1 <= raw.month <= 12:
        return f"“{raw.match.group().strip()}”: month {raw.month} does not exist"
    if raw.day is not None and not 1 <= raw.day <= 31:
        return f"“{raw.match.group().strip()}”: day {raw.day} does not exist"
    return None


def _clock(raw: _Raw) -> tuple[tuple[int, int] | None, int, str | None]:
    """(hour, minute) in 24-hour time, the days to add (a late-night hour), and any problem."""
    if raw.hour is None:
        return None, 0, None
    hour, minute = raw.hour, raw.minute or 0
    shown = raw.match.group().strip()
    if hour > 24 or (hour == 24 and minute) or minute > 59:
        return None, 0, f"“{shown}” is not a time of day"
    period = raw.period
    days = 0
    if hour == 24:
        hour, days = 0, 1
    elif period in _LATE_NIGHT and (hour == 12 or hour < 5):
        hour, days = (0 if hour == 12 else hour), 1  # 晚上12点, 深夜1时: after midnight
    elif period == "凌晨" and hour == 12:
        hour = 0
    elif (period == "中午" and 1 <= hour <= 3) or (period in _PM and 1 <= hour <= 11):
        hour += 12
    return (hour, minute), days, None


def _windows(text: str, raws: list[_Raw], i: int) -> tuple[str, str]:
    match = raws[i].match
    before_start = raws[i - 1].match.end() if i > 0 else 0
    boundaries = [m.end() for m in _BOUNDARY.finditer(text, before_start, match.start())]
    if boundaries:
        before_start = boundaries[-1]
    after_end = raws[i + 1].match.start() if i + 1 < len(raws) else len(text)
    stop = _BOUNDARY.search(text, match.end(), after_end)
    if stop is not None:
        after_end = stop.start()
    return text[before_start : match.start()], text[match.end() : after_end]


def _distance(before: str, after: str, spans: list[tuple[str, int, int]]) -> int | None:
    """Characters between the mention and the nearest span (``"before"``/``"after"``, start,
    end), ``None`` if there is none."""
    distances = [start if side == "after" else len(before) - end for side, start, end in spans]
    return min(distances) if distances else None


def _spans(pattern: re.Pattern[str], before: str, after: str) -> list[tuple[str, int, int]]:
    return [
        (side, m.start(), m.end())
        for side, text in (("before", before), ("after", after))
        for m in pattern.finditer(text)
    ]


def _classify(before: str, after: str) -> tuple[bool, bool]:
    """(is a report time, has a fraud word near it)."""
    reports = _spans(_REPORT, before, after)
    # Fraud words inside a report phrase (接到 in 我所接到报警) do not count.
    frauds = [
        (side, start, end)
        for side, start, end in _spans(_FRAUD, before, after)
        if not any(s == side and a <= start < b for s, a, b in reports)
    ]
    # "报案称，当日下午2时许……", "接到周某报警，称其当日凌晨3时许……": a report word before the
    # mention with 称 (said) after it introduces what was said; the time belongs to that.
    reports = [
        (side, start, end)
        for side, start, end in reports
        if side == "after" or "称" not in before[start:]
    ]
    report = _distance(before, after, reports)
    fraud = _distance(before, after, frauds)
    is_report = (
        report is not None and report <= _REPORT_REACH and (fraud is None or report < fraud)
    )
    return is_report, fraud is not None


def find_times(text: str, default_year: int | None = None) -> list[TimeMention]:
    """Every time mentioned in the narrative, in text order, resolved from its context."""
    text = unicodedata.normalize("NFKC", text or "")
    raws = _raw_mentions(text)
    explicit = [
        (r.match.start(), d)
        for r in raws
        if r.year is not None
        and r.month is not None
        and r.day is not None
        and (d := _valid_date(r.year, r.month, r.day)) is not None
    ]
    mentions: list[TimeMention] = []
    last: date | None = None
    for i, raw in enumerate(raws):
        problem = _date_problem(raw)
        day: date | None = None
        if problem is None and raw.day is not None:
            if raw.year is not None and raw.month is not None:
                day = _valid_date(raw.year, raw.month, raw.day)
                if day is None:
                    problem = f"“{raw.match.group().strip()}” is not a date"
            elif raw.month is not None:
                before = [d for pos, d in explicit if pos < raw.match.start()]
                after = [d for pos, d in explicit if pos > raw.match.start()]
                anchor = last or (before[-1] if before else after[0] if after else None)
                year = anchor.year if anchor else default_year
                if year is not None:
                    day = _nearest_year(raw.month, raw.day, year, anchor)
                    if day is None and _valid_date(2000, raw.month, raw.day) is None:
                        problem = f"“{raw.match.group().strip()}” is not a date"
            elif last is not None:
                day = _nearest_month(raw.day, last)
        elif raw.rel is not None and last is not None:
            day = last + timedelta(days=_NEXT_DAY.get(raw.rel, 0))
        elif raw.rel is None and raw.day is None:
            day = last  # a clock time alone: the day last mentioned
        clock, extra_days, clock_problem = _clock(raw)
        problem = problem or clock_problem
        if (raw.day is not None or raw.rel is not None) and day is not None:
            last = day  # before any late-night shift: the date the text names
        if day is not None and extra_days:
            day += timedelta(days=extra_days)
        before_text, after_text = _windows(text, raws, i)
        is_report, fraud_word = _classify(before_text, after_text)
        mentions.append(
            TimeMention(
                text=raw.match.group().strip(),
                start=raw.match.start(),
                end=raw.match.end(),
                day=day,
                clock=clock,
                problem=problem,
                is_report=is_report,
                fraud_word=fraud_word,
            )
        )
    return mentions


def fraud_time(text: str, default_year: int | None = None) -> TimeMention | None:
    """When the fraud happened (see the module docstring for the rule), ``None`` if no time."""
    candidates = [m for m in find_times(text, default_year) if not m.is_report]
    for pick in (
        lambda m: m.has_clock and m.fraud_word,
        lambda m: m.has_clock,
        lambda m: m.day is not None or m.problem is not None,
    ):
        for mention in candidates:
            if pick(mention):
                return mention
    return None


# Quoted words -------------------------------------------------------------------------------

_QUOTED = re.compile(r"“([^“”]{2,200})”|「([^「」]{2,200})」|\"([^\"]{2,200})\"")


def quoted_speech(text: str) -> str:
    """The words a narrative quotes ("“点赞赚佣金”", "“安全账户”"), joined; "" if none.

    Police quote the scammer's own words. The NLU model learnt from the messages residents
    receive, and it reads a third-person retelling as an ordinary report (a warning, a story);
    the quoted words are the part that looks like what it learnt.
    """
    parts = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text or "")]
    return "，".join(dict.fromkeys(p.strip() for p in parts if p.strip()))


# Money --------------------------------------------------------------------------------------

_AMOUNT = re.compile(
    r"""
    (?P<prefix>人民币|RMB|rmb|[￥¥])?\s*
    (?:
        (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?P<mult>[万千亿])?
      | (?P<cn>[零〇一二两三四五六七八九十百千万亿]+)
    )
    \s*(?P<approx>余|多)?\s*
    (?P<unit>元|块钱|块|人民币)?
    """,
    re.VERBOSE,
)
_MULT = {"千": Decimal(1000), "万": Decimal(10_000), "亿": Decimal(100_000_000)}
_CLAUSE = re.compile(r"[，,。；;！!？?\n：:]")
_TOTAL = re.compile(r"共计|合计|总计|累计|一共|总共|总额|共(?=[被损转汇支付充投向])")
_LOSS = re.compile(r"被骗|被诈骗|损失|诈骗|涉案")
_TRANSFER = re.compile(
    r"转账|转款|汇款|转入|转至|转到|转给|汇入|汇至|打款|打入|支付|付款|充值|缴纳|交纳|缴费|交了|"
    r"投入|投资|购买|扫码|付了|转了|汇了|给付|垫付|交付|刷了|转走|转出|扣款|扣走|被扣|再付|又付|"
    r"付给|骗取|骗走|借给|"
    # Cash handed over in person: to a courier, a fake officer at the door.
    r"取走|拿走|收走|交给|交予|交与|交由|递给|上门取|寄给"
)
_NOT_LOSS = re.compile(
    r"返利|返还|返现|返款|佣金|提成|收益|利润|盈利|赚|获利|奖励|奖品|奖金|中奖|红包|退款|退还|"
    r"退回|追回|挽回|止付|冻结|到账|提现|额度|授信|放款|下款|贷款|申请借款|办理借款|工资|月薪|"
    r"收入|余额|显示|本息|利息|分红|回报|补偿|赔偿|理赔|赔付|"
    r"可获得|可获|能获得|可得到|能得到|可领取|可领|可赚|能赚"
)
# Money the victim borrowed (from a platform) or was asked to lend: a loss only once the text
# says it went to the scammer (借款2万元后转给对方; 请其借2万元……转账后).
_BORROW = re.compile(r"(?<!凭)借(?!助|口|机|记|用|鉴|故|题|呗|给)")
# A displayed figure or a promise governs the amounts after it in its clause, whatever word
# stands nearer: 页面显示买家已付款9000元 shows a sum, nobody paid it.
_SHOWN = re.compile(
    r"显示(?!的)|截图显示|承诺|许诺|保证(?!金)|保底|号称|声称|宣称|稳赚|日赚|月赚|年赚"
)
_AS_DIRECTED = re.compile(r"(?:按|照|根据|依)[^，,。]{0,6}?$")
# What ends a display or a promise inside a clause: the story moving on, or a demand to pay.
_SHOWN_END = re.compile(r"随后|然后|之后|后来|后又|后再|又|再次|需|须|要求|让其|请其|必须")
# An amount described as a picture or a record (转账5万元的截图) is not money that moved.
_AS_RECORD = re.compile(r"^\s*的?(?:付款|转账|汇款|支付)?(?:成功)?(?:截图|凭证|回执|记录)")
# A transfer told without its amount ("章某转账后……") pays the sum asked for just before.
_BARE_ACT = re.compile(
    r"转账|转款|汇款|打款|付款|支付|汇出|转出|转给|汇给|付给|转了过去|转过去|交给|取走|拿走|照做|照办"
)
_REQUEST = re.compile(
    r"要求|让|请|需|须|叫|催|诱导|引导|指引|称|无法|不能|不会|未|没|不|拒绝|如果|若|假如"
)
# 按对方要求转账 tells the act done as asked; 要求其转账 only asks for it.
_AS_TOLD = re.compile(r"按照?[^，,。]{0,6}?(?:要求|指示|指引|提示|说的)")
_SENTENCE = re.compile(r"[。；;！!？?\n]")
_KINDS = (
    ("total", _TOTAL),
    ("loss", _LOSS),
    ("transfer", _TRANSFER),
    ("other", _NOT_LOSS),
    ("borrowed", _BORROW),
)
MAX_AMOUNT = Decimal(1_000_000_000)


@dataclass(frozen=True)
class Amount:
    """An amount of money in the text, in yuan, and what the text says it was."""

    value: Decimal
    kind: str  # total, loss, transfer, other, borrowed, unknown
    text: str
    start: int


@dataclass(frozen=True)
class FoundLoss:
    """The loss read from a narrative and the rule that gave it (``total``, ``loss``,
    ``transfers``)."""

    amount: Decimal
    rule: str
    amounts: tuple[Amount, ...]


def _amount_value(match: re.Match[str]) -> Decimal | None:
    g = match.groupdict()
    if g["num"] is not None:
        try:
            value = Decimal(g["num"].replace(",", ""))
        except InvalidOperation:
            return None
        if g["mult"]:
            value *= _MULT[g["mult"]]
        return value
    number = cn_number(g["cn"])
    return None if number is None else Decimal(number)


def _is_money(match: re.Match[str], text: str) -> bool:
    g = match.groupdict()
    end = match.end()
    if g["unit"] == "元" and text[end - 2 : end] in ("美元", "港元", "日元", "欧元"):
        return False
    follows = text[end : end + 1]
    if g["cn"] is not None:
        # Chinese numerals are everywhere (一起, 三次): only with 元 or 块钱 are they money.
        return g["unit"] in ("元", "块钱") or (g["prefix"] is not None and g["unit"] is not None)
    if g["unit"] is not None:
        return True
    if g["mult"] in ("万", "亿") and not (
        follows and follows in "人次个条份家户名位笔单项件美港日欧"
    ):
        return True
    return g["prefix"] is not None


def _nearest_kind(clause: str, at: int, end: int) -> str:
    """What the nearest marker says an amount at ``clause[at:end]`` is."""
    before = clause[:at]
    best: tuple[int, str] | None = None
    for kind, pattern in _KINDS:
        for m in pattern.finditer(before):
            if best is None or m.end() > best[0]:
                best = (m.end(), kind)
    if best is not None:
        kind = best[1]
        if kind == "total":
            # 返利共计56元 is a total of rebates: the word before the total says what it adds up.
            earlier = [
                (m.end(), k)
                for k, pattern in _KINDS
                if k != "total"
                for m in pattern.finditer(before[: best[0]])
            ]
            if earlier and max(earlier)[1] in ("other", "borrowed"):
                return max(earlier)[1]
        total = [m.end() for m in _TOTAL.finditer(before)]
        if total and kind in ("loss", "transfer"):
            # 共计转账86,000元: a total of transfers; unless a non-loss word came in between.
            between = before[total[-1] :]
            if not _NOT_LOSS.search(between):
                return "total"
        return kind
    after = clause[end:]
    first: tuple[int, str] | None = None
    for kind, pattern in _KINDS:
        m = pattern.search(after)
        if m is not None and (first is None or m.start() < first[0]):
            first = (m.start(), kind)
    return first[1] if first is not None else "unknown"


def _shown(before: str) -> bool:
    """Whether a display or a promise still governs the end of ``before`` (see ``_SHOWN``)."""
    for m in reversed(list(_SHOWN.finditer(before))):
        if _AS_DIRECTED.search(before[: m.start()]):
            continue  # 按页面显示的账户转账: following the page, not quoting it
        return not _SHOWN_END.search(before[m.end() :])
    return False


def _label(clause: str, at: int, end: int) -> str:
    """The nearest marker's label, corrected for displays, promises, records and borrowing."""
    kind = _nearest_kind(clause, at, end)
    if kind in ("total", "transfer", "unknown") and (
        _shown(clause[:at]) or _AS_RECORD.match(clause[end:])
    ):
        return "other"
    if kind == "borrowed" and _TRANSFER.search(clause[end:]):
        return "transfer"  # 借款2万元后全部转给对方
    return kind


def _spans_of(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """The stretches of ``text`` between the matches of ``pattern`` (clauses, sentences)."""
    spans, start = [], 0
    for m in pattern.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def _bare_transfers(text: str, found: list[Amount]) -> list[Amount]:
    """Relabel as transfers the sums that a transfer told without an amount pays.

    "请其先借2万元……章某转账后" and "急需2万元保释金，沈某随即转账" state the sum once, then the
    act. A clause with a transfer act and no amount of its own pays the amount just before it,
    when that amount was not already labelled (a bare sum, money borrowed), is in the same or the
    sentence before, and no amount follows in the act's own sentence (that one is its sum). An
    act asked for or denied (要求其转账, 无法转账) pays nothing.
    """
    sentence_starts = [a for a, _ in _spans_of(_SENTENCE, text)]

    def sentence_of(pos: int) -> int:
        return bisect_right(sentence_starts, pos) - 1

    starts = [a.start for a in found]
    result = list(found)
    for a, b in _spans_of(_CLAUSE, text):
        if any(a <= s < b for s in starts):
            continue
        clause = text[a:b]
        act = _BARE_ACT.search(clause)
        if act is None:
            continue
        lead = _AS_TOLD.sub("", clause[: act.start()])
        if _REQUEST.search(lead):
            continue
        sentence = sentence_of(a)
        if any(s >= b and sentence_of(s) == sentence for s in starts):
            continue
        before = [i for i, s in enumerate(starts) if s < a]
        if not before:
            continue
        i = before[-1]
        if sentence - sentence_of(starts[i]) > 1:
            continue
        if result[i].kind in ("unknown", "borrowed"):
            result[i] = replace(result[i], kind="transfer")
    return result


def find_amounts(text: str) -> list[Amount]:
    """Every amount of money in yuan in the text, labelled by its clause's nearest marker."""
    text = unicodedata.normalize("NFKC", text or "")
    found = []
    starts = [0] + [m.end() for m in _CLAUSE.finditer(text)]
    for match in _AMOUNT.finditer(text):
        if match.end() == match.start() or not _is_money(match, text):
            continue
        start = match.start()
        if start > 0 and text[start - 1].isdigit():
            continue
        value = _amount_value(match)
        if value is None:
            continue
        clause_start = max(s for s in starts if s <= start)
        stop = _CLAUSE.search(text, match.end())
        clause_end = stop.start() if stop else len(text)
        clause = text[clause_start:clause_end]
        kind = _label(clause, start - clause_start, match.end() - clause_start)
        found.append(Amount(value, kind, match.group().strip(), start))
    return _bare_transfers(text, found)


def fraud_loss(text: str) -> FoundLoss | None:
    """The money lost (see the module docstring for the three rules), ``None`` if not stated."""
    amounts = tuple(find_amounts(text))
    totals = [a.value for a in amounts if a.kind == "total"]
    if totals:
        return FoundLoss(max(totals), "total", amounts)
    losses = [a.value for a in amounts if a.kind == "loss"]
    if losses:
        distinct = set(losses)
        value = losses[0] if len(distinct) == 1 else sum(losses, Decimal(0))
        return FoundLoss(value, "loss", amounts)
    transfers = [a.value for a in amounts if a.kind == "transfer"]
    if transfers:
        return FoundLoss(sum(transfers, Decimal(0)), "transfers", amounts)
    return None


_CELL_AMOUNT = re.compile(
    r"^(?P<sign>[-−])?\s*(?:人民币|RMB|[￥¥])?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?P<mult>[万千亿])?\s*"
    r"(?:余|多)?\s*(?:元|块|人民币)?(?:\s*人民币)?$",
    re.IGNORECASE,
)


def parse_amount(text: str, unit: Decimal = Decimal(1)) -> Decimal:
    """An amount as a case file writes it (``5000``, ``86,000元``, ``1.5万``, ``三万元``), in yuan.

    ``unit`` is what a bare number counts (10000 under a header "损失金额（万元）"). Raises
    ``ValueError`` with the reason for text that is not an amount, a negative or an absurd one.
    """
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    cleaned = cleaned.removeprefix("大约").removeprefix("约")
    match = _CELL_AMOUNT.match(cleaned)
    if match is not None:
        value = Decimal(match["num"].replace(",", ""))
        value *= _MULT[match["mult"]] if match["mult"] else unit
        if match["sign"]:
            raise ValueError(f"negative amount “{text.strip()}”")
    else:
        bare = cleaned.removesuffix("元").removesuffix("余").removesuffix("多")
        number = cn_number(bare)
        if number is None:
            raise ValueError(f"“{text.strip()[:30]}” is not an amount of money")
        value = Decimal(number)
    if value > MAX_AMOUNT:
        raise ValueError(f"{value:,.0f} yuan is not a believable loss (over {MAX_AMOUNT:,.0f})")
    return value
