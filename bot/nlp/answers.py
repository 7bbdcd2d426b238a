"""Reading a resident's short answers to the report form: stop, "don't know", yes/no, money, time.

The report form asks one question at a time, and residents answer the way they talk on a phone:
"转了三千块", "昨天下午三點", "没留", "算了不报了", with emoji, full-width digits and traditional
characters. The custom actions need either a definite value or a clear "not understood" so that
they can re-ask; a wrong guess stored in a police report is worse than asking again, so every
reader here returns ``None`` (or ``False``) when the words are ambiguous instead of guessing.

The time reader also serves police case narratives (案情), which name several times in one text
("2022年12月17日22时30分许被骗，当晚23时报警"): ``parse_when_all`` finds them in order and lets
a bare time or 当晚/次日 refer to the date mentioned before it.

Everything works on the ``normalize`` form of the text (simplified characters, half-width digits
and punctuation), with ASCII digits only (``[0-9]``, never ``\\d``) so that exotic Unicode digits
cannot reach ``int()``.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from bot.nlp.indicators import _CN_DIGITS, _CN_UNITS, _cn_number
from bot.nlp.normalize import normalize, normalize_text

Precision = Literal["minute", "hour", "day", "month"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A time more than this far after ``now`` is a misunderstanding (or a typo): the form re-asks.
FUTURE_SLACK = timedelta(minutes=5)
EARLIEST = datetime(1990, 1, 1, tzinfo=SHANGHAI)
MAX_AMOUNT = Decimal(1_000_000_000)

# Short answers longer than this are stories, not "cancel" or "don't know".
_SHORT = 24
# Longer texts are not read (False / None / []): no form answer is that long (a Telegram message
# is at most 4,096), and it caps one call at ~20 ms whatever is pasted (OpenCC in ``normalize``
# costs ~8 ms per 1,000 characters). ``parse_when_all`` can be given more for case narratives.
MAX_CHARS = 2000


# --------------------------------------------------------------------------- the answer's core


_TRAILING_PARTICLES = re.compile(r"[啊呀吧呢啦哦哈嘛哟噢喔滴哒]+$")


def _letters(norm: str) -> str:
    """Lower-case letters and digits only (no emoji, punctuation, spaces); trailing 啊/吧 go."""
    kept = "".join(ch for ch in norm.lower() if ch == "_" or unicodedata.category(ch)[0] in "LN")
    return _TRAILING_PARTICLES.sub("", kept) or kept


def _core(text: str) -> str:
    """The letters of a short answer, normalised; empty for texts too long to be one."""
    return _letters(normalize_text(text)) if len(text) <= 8 * _SHORT else ""


# --------------------------------------------------------------------------- cancel


_CANCEL = re.compile(
    r"(?:我|那|那就|还是|就|先|我就|我还是)?"
    r"(?:取消(?:举报|报案|报警|填写|登记)?|退出|停止?|结束|算了|没事了|"
    r"不(?:用|需要|要)了|"
    r"不(?:想|要)再?(?:报|举报|报案|报警|填|说|写|弄|继续|登记)了?|"
    r"不(?:用|再)?(?:报|举报|报案|报警|填|说|写|弄|继续|登记)了|"
    r"别(?:问|填|报|弄|说)了|"
    r"cancel|stop|quit|exit)"
    r"(?:了|吧|啦|谢谢你?|谢了|算了|不报了)*"
)


def is_cancel(text: str) -> bool:
    """True when the resident wants to stop the form (取消, 算了, 不报了, /cancel, stop ...).

    "没有" and "不知道" are answers to the question, not a wish to stop, and stay False.
    """
    core = _core(text)
    return 0 < len(core) <= _SHORT and _CANCEL.fullmatch(core) is not None


# --------------------------------------------------------------------------- none / don't know


_NONE_OBJECT = (
    r"(?:(?:他|她|对方|骗子|他们)的?)?(?:什么|任何)?"
    r"(?:电话号码|手机号码|号码|电话|手机号|手机|账号|账户|卡号|银行卡|链接|网址|网站|"
    r"微信号|微信|qq号|qq|联系方式|具体时间|时间|金额|钱|信息|记录|截图)?"
)
_NONE = re.compile(
    r"(?:我|对方|他|她|他们|骗子|人家)?"
    r"(?:也|都|就|真的?|确实|实在|完全|根本|好像|已经|还|并)?"
    r"(?:"
    r"没有?(?:留|给|说|发|告诉|讲|提供|记|记下|记住|存|保存|看到|看清|注意|问|"
    r"转账|转钱|转|付|汇|打)?(?:过|下|了)?我?"
    r"|无|暂无|啥也没有|什么都没有|"
    r"不(?:太|大)?(?:知道?|清楚|记得|晓得)|"
    r"记不(?:得|清|住|起来)了?|想不起来|"
    r"忘(?:了|记了?|掉了?)|"
    r"跳过|略过|未知|不详|不方便说|"
    r"none|no|nothing|null|nil|na|skip|unknown|idk|dunno"
    r")" + _NONE_OBJECT + r"(?:了|的|啊|呀|哦|呢|啦|吧)*(?:谢谢)?"
)
_NONE_SYMBOLS = re.compile(r"[-—–－/／\\]+")


def is_none_answer(text: str) -> bool:
    """True for a short "no such thing / don't know / skip" (没有, 不知道, 对方没给, -, 无号码)."""
    core = _core(text)
    if not core and _NONE_SYMBOLS.fullmatch(text.strip().replace(" ", "")):
        return True
    return 0 < len(core) <= _SHORT and _NONE.fullmatch(core) is not None


# --------------------------------------------------------------------------- yes / no


_CLAUSES = re.compile(r"[,。.!?;、\s~～…]+|但是|但|可是|不过|后来|然后|结果|最后|又")
_YES_WORD = re.compile(
    r"(?:是的?|对的?|嗯+|恩+|有的?|有过|确实(?:有)?|当然|没错|对头|"
    r"y|yes|yeah|yep|true|1|money_yes|moneyyes)"
)
_NO_WORD = re.compile(
    r"(?:我|我们|我家)?(?:还|也|都|真|确实|并|从来)?"
    r"(?:没有?过?|没呢|不是|不对|否|无|不|"
    r"n|no|nope|false|0|money_no|moneyno)"
)
_HEDGE = re.compile(
    r"可能|也许|好像|或许|似乎|不确定|不一定|说不准|说不清|不好说|不知道|不清楚|不记得|记不清|忘了"
)
_NUMBER_AHEAD = r"(?=钱|[0-9]|[一二两三四五六七八九十几][十百千万块元]?|$)"
_MONEY_VERB = re.compile(
    "|".join(
        [
            r"转(?:账|钱|款)?(?![发告接达身向头弯变移化换载人工正播])",  # not 转发, 转告
            r"汇(?:款|钱)?(?![报总率聚])",  # not 汇报
            r"支?付(?:款|钱)?(?!宝)",  # not 支付宝
            r"打(?:钱|款)",
            r"交(?:钱|费|了?(?:保证金|定金|押金|税|手续费|会费))",
            r"交了" + _NUMBER_AHEAD,  # not 交了朋友
            r"缴(?:费|纳|了)",
            r"充(?:值|钱|了)",
            r"给(?:了|过)?(?:他|她|对方|骗子|人家)?" + _NUMBER_AHEAD,  # not 给了我一个链接
            r"被骗(?!子)",
            r"骗(?:走|了)我?" + _NUMBER_AHEAD,
            r"损失",
            r"花了" + _NUMBER_AHEAD,
        ]
    )
)
_NOT_BEFORE = re.compile(
    r"(?:没有?(?!想到|注意|多想|多久|一会|几天|办法|犹豫|反应|看清|仔细|发现)|未|不曾|"
    r"没敢|不敢|不肯|不想|从未|分文未|差点儿?|差一点|险些)[^,]{0,4}$"
    r"|[不无]$"  # 不转, 无损失; a looser 无 would catch 无意中转了
)
_IRREAL_BEFORE = re.compile(
    r"(?:让|叫|要|要求|逼|催|骗我|诱导|劝|想|准备|打算|正要|要不要|该不该|能不能|是否|需要|必须|"
    r"如果|要是|假如|怕|担心|万一)[^,]{0,4}$"
)
_DONE_AFTER = re.compile(r"^(?:了|过)")
_FAILED_AFTER = re.compile(
    r"^[^,]{0,4}(?:失败|没成功|不成功|没有成功|没成|不了|不出去|被拦|被退回)"
)


def _verb_verdicts(clause: str) -> list[bool | None]:
    """One verdict per money verb in the clause: True (money went), False (did not), None."""
    verdicts: list[bool | None] = []
    for m in _MONEY_VERB.finditer(clause):
        before, after = clause[: m.start()], clause[m.end() :]
        done = m.group(0).endswith(("了", "过")) or _DONE_AFTER.match(after) is not None
        if _NOT_BEFORE.search(before) or _FAILED_AFTER.match(after):
            verdicts.append(False)
        elif _IRREAL_BEFORE.search(before) and not done:
            verdicts.append(None)
        else:
            verdicts.append(True)
    return verdicts


def parse_yes_no(text: str) -> bool | None:
    """Did money go? True, False, or None when the answer is unclear (不确定, 可能吧, off-topic).

    A money verb outweighs a bare 是/没有 ("嗯，没转" is No); any transfer that happened makes
    the answer Yes ("我没转，我老公转了"); 差点/没/未 before the verb make it No.
    """
    if len(text) > MAX_CHARS:
        return None
    clauses = [c for c in _CLAUSES.split(normalize_text(text).lower()) if c]
    verbs: list[bool | None] = []
    words: list[bool] = []
    for clause in clauses:
        if _HEDGE.search(clause):
            continue
        verbs.extend(_verb_verdicts(clause))
        core = _letters(clause)
        if _YES_WORD.fullmatch(core):
            words.append(True)
        elif _NO_WORD.fullmatch(core):
            words.append(False)
    if True in verbs:
        return True
    if False in verbs:
        return False
    if words and all(w == words[0] for w in words):
        return words[0]
    return None


# --------------------------------------------------------------------------- amounts


_FINANCIAL = str.maketrans("壹贰叁肆伍陆柒捌玖拾佰仟", "一二三四五六七八九十百千")
_DATE_LIKE = re.compile(
    r"[0-9]{2,4}[-/.年][0-9]{1,2}[-/.月][0-9]{1,2}[日号]?|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?"
)
_ARABIC = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?"
_RUN = re.compile(
    rf"(?:(?<![0-9.]){_ARABIC}|[零〇一二两三四五六七八九十])"
    rf"(?:{_ARABIC}|[零〇一二两三四五六七八九十百千万亿]|(?<=[0-9])\s?[kw](?![a-z]))*"
)
_RUN_TOKEN = re.compile(rf"{_ARABIC}|[零〇一二两三四五六七八九十百千万亿kw]")
_FUZZ_AFTER = re.compile(r"(?:多|余|来|几|左右|上下|出头)?")
_UNIT_AFTER = re.compile(r"\s?(?:元|块钱|块|圆|人民币|rmb|cny)")
_CURRENCY_BEFORE = re.compile(r"(?:¥|￥|rmb|人民币|cny)\s?$")
_COUNTER_AFTER = re.compile(
    r"(?:多|余|来)?(?:个|次|天|日|号|月|年|点|时|分|秒|岁|人|笔|张|遍|回|小时|周|星期|条|位|家|台|"
    r"部|幢|栋|楼|单元|室|层|路|弄|组|倍|折|%|斤|公斤|克|米|公里|期|级|站|码|g|kg|km)"
)
_ID_BEFORE = re.compile(
    r"(?:号码|电话|手机|尾号|账号|卡号|qq|微信|编号|单号|订单号?|验证码|密码|工号|第|星期|周|礼拜|"
    r"初|房间?)[是为:]?\s?$"
)
_VERB_BEFORE = re.compile(
    r"(?:转账?|汇款?|付款?|给|交|充值?|打|骗|损失|花|共|又|先|再|还)了?"
    r"(?:他|她|对方|骗子|我)?(?:大概|大约|约|差不多)?$"
)
_TOTAL_BEFORE = re.compile(
    r"(?:一共|总共|共计|合计|总计|累计|总额|加起来|共)(?:是|有|被骗了?|转了?|付了?|损失了?|了)?"
    r"(?:大概|大约|约|差不多)?$"
)
_RANGE_GAP = re.compile(r"\s?(?:-|−|~|～|到|至|或者?)\s?")
_FILLER = re.compile(r"大概|大约|约|差不多|左右|上下|多|余|来|大致|一共|总共|共|合计|是|的|了")
_SCALES = frozenset("百千万亿kw")


@dataclass(frozen=True)
class _Amount:
    value: Decimal
    start: int
    end: int
    strong: bool  # a currency sign, a 元/块 unit or a 百/千/万 scale: certainly money
    total: bool  # introduced by 一共/总共: the sum the resident already did
    led: bool  # a transfer verb or 一共 right before it: money even without a unit
    plain: bool  # Arabic digits, or the whole answer: money when nothing else has a unit


def _eval_run(run: str) -> Decimal | None:
    """The value of a run of Arabic and Chinese numerals: 2.5万, 两万五, 3千5, 一万零五百."""
    total = wan = section = Decimal(0)
    current: Decimal | None = None
    single = zero = False
    last_unit = 0
    for tok in _RUN_TOKEN.findall(run):
        if tok in ("零", "〇"):
            zero = True
        elif tok in _CN_DIGITS:
            # Two numbers in a row are a range (三四千): the later one wins.
            current, single = Decimal(_CN_DIGITS[tok]), True
        elif tok[0].isdigit():
            current, single = Decimal(tok.replace(",", "")), len(tok) == 1
        elif tok in _CN_UNITS or tok == "k":
            unit = 1000 if tok == "k" else _CN_UNITS[tok]
            section += (Decimal(1) if current is None else current) * unit
            current, last_unit, zero = None, unit, False
        elif tok in ("万", "w"):
            if current is None and section == 0:
                return None
            wan += (section + (current or 0)) * 10_000
            section, current, last_unit, zero = Decimal(0), None, 10_000, False
        else:  # 亿
            if current is None and section == 0 and wan == 0:
                return None
            total += (wan + section + (current or 0)) * 100_000_000
            wan = section = Decimal(0)
            current, last_unit, zero = None, 100_000_000, False
    if current is not None:
        if last_unit >= 100 and single and not zero:
            section += current * last_unit / 10  # colloquial tail: 两万五, 三千五, 一百五
        else:
            section += current
    return total + wan + section


def _tidy(value: Decimal) -> Decimal:
    cents = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return cents.quantize(Decimal(1)) if cents == cents.to_integral_value() else cents


def _amount_text(text: str) -> str:
    norm = normalize_text(text).lower().translate(_FINANCIAL)
    return _DATE_LIKE.sub(lambda m: "#" * len(m.group(0)), norm)


def _is_negative(text: str, start: int) -> bool:
    if start == 0 or text[start - 1] not in "-−负":
        return False
    return start < 2 or not (text[start - 2].isdigit() or text[start - 2] in _CN_DIGITS)


def _amount_candidates(text: str) -> list[_Amount]:
    found: list[_Amount] = []
    prev_end, prev_start = -1, -1
    for m in _RUN.finditer(text):
        start, end = m.start(), m.end()
        linked = prev_end >= 0 and _RANGE_GAP.fullmatch(text[prev_end:start]) is not None
        if linked:  # 3000-4000, 三到四千, 3-4万: a range counts as its upper end
            if found and found[-1].start == prev_start:
                found.pop()
            context_start = prev_start
        else:
            context_start = start
        prev_end, prev_start = end, context_start
        fuzz = _FUZZ_AFTER.match(text, end)
        after = text[fuzz.end() if fuzz else end :]
        before = text[max(0, context_start - 12) : context_start]
        value = _eval_run(m.group(0))
        if (
            value is None
            or _COUNTER_AFTER.match(after)
            or _ID_BEFORE.search(before)
            or (not linked and _is_negative(text, start))
        ):
            continue
        value = _tidy(value)
        if value <= 0 or value > MAX_AMOUNT:
            continue
        strong = (
            _CURRENCY_BEFORE.search(before) is not None
            or _UNIT_AFTER.match(after) is not None
            or any(ch in _SCALES for ch in m.group(0))
        )
        total = _TOTAL_BEFORE.search(before) is not None
        led = total or _VERB_BEFORE.search(before) is not None
        plain = m.group(0)[0].isdigit()
        found.append(_Amount(value, context_start, end, strong, total, led, plain))
    return found


def _is_whole_answer(text: str, amount: _Amount) -> bool:
    """True when the answer is just this number ("五十", "大概三十块")."""
    rest = _FILLER.sub("", _letters(text[: amount.start] + text[amount.end :]))
    return rest == "" or _UNIT_AFTER.fullmatch(rest) is not None


def _accepted_amounts(text: str) -> list[_Amount]:
    if not text or not text.strip() or len(text) > MAX_CHARS or is_none_answer(text):
        return []
    norm = _amount_text(text)
    cands = _amount_candidates(norm)
    if len(cands) == 1 and not cands[0].plain and _is_whole_answer(norm, cands[0]):
        cands = [dataclasses.replace(cands[0], plain=True)]
    any_strong = any(a.strong for a in cands)
    # A bare number counts when a verb introduced it ("先转了500又转了2000元"), or when no
    # number in the answer has a unit; next to "3000元" a stray "12.1" is not money.
    return [a for a in cands if a.strong or a.led or (a.plain and not any_strong)]


def parse_amounts(text: str) -> list[Decimal]:
    """Every amount of money in the answer, in order, in yuan ("先转了500又转了2000": 500, 2000).

    A stated total (一共3000) is not one more amount: it is listed only when no parts are.
    """
    kept = _accepted_amounts(text)
    parts = [a.value for a in kept if not a.total]
    totals = [a.value for a in kept if a.total]
    return parts or totals[-1:]


def parse_amount(text: str) -> Decimal | None:
    """The amount lost, in yuan: the stated total, else the sum of the amounts; None if none.

    None for "没有", zero, negative, more than 1e9 or no number at all.
    """
    kept = _accepted_amounts(text)
    totals = [a.value for a in kept if a.total]
    value = totals[-1] if totals else sum((a.value for a in kept), Decimal(0))
    return value if 0 < value <= MAX_AMOUNT else None


# --------------------------------------------------------------------------- times


@dataclass(frozen=True)
class When:
    """A point in time read from the text: ``at`` is the earliest moment the words allow.

    ``precision`` says how much of ``at`` the words fixed: a day-part without a clock time
    (昨天下午) gives the start of that part (12:00) with precision "day"; "month" gives the 1st.
    ``text`` is the expression as the resident wrote it.
    """

    at: datetime
    precision: Precision
    text: str


_D19 = "一二三四五六七八九"
_CN_SMALL = re.compile(rf"[零〇]?[{_D19}两]|[{_D19}]?十[{_D19}]?|[零〇]")
_CN_YEAR = dict(zip("〇零一二三四五六七八九", "00123456789", strict=True))
_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_WEEK_SHIFT = {"上上": -2, "上": -1, "这": 0, "本": 0}
_DAY_SHIFT = {
    "大前天": -3,
    "大前日": -3,
    "前天": -2,
    "前日": -2,
    "昨天": -1,
    "昨日": -1,
    "昨儿": -1,
    "昨儿个": -1,
    "今天": 0,
    "今日": 0,
    "今儿": 0,
    "今儿个": 0,
    "昨": -1,
    "今": 0,
    "前": -2,
}
# Relative to the date mentioned before (case narratives): 当天, 当晚, 次日.
_ANCHOR_SHIFT = {
    "当天": 0,
    "当日": 0,
    "同日": 0,
    "同一天": 0,
    "当": 0,
    "次日": 1,
    "第二天": 1,
    "翌日": 1,
    "隔天": 1,
    "隔日": 1,
}

# Day-parts: where the part starts (the earliest moment), and how it reads a 12-hour clock.
_PART_START = {
    "凌晨": 0,
    "清晨": 5,
    "早晨": 5,
    "早上": 5,
    "一早": 5,
    "大早": 5,
    "清早": 5,
    "早": 5,
    "晨": 5,
    "上午": 6,
    "中午": 11,
    "午后": 12,
    "下午": 12,
    "傍晚": 17,
    "黄昏": 17,
    "晚上": 18,
    "晚间": 18,
    "夜里": 18,
    "夜间": 18,
    "夜晚": 18,
    "晚": 18,
    "夜": 18,
    "半夜": 22,
    "深夜": 22,
    "午夜": 22,
}
_AFTERNOON = frozenset({"午后", "下午", "傍晚", "黄昏"})
_EVENING = frozenset({"晚上", "晚间", "夜里", "夜间", "夜晚", "晚", "夜"})
_NIGHT = frozenset({"半夜", "深夜", "午夜"})

_N = r"[0-9]{1,5}|[零〇一二两三四五六七八九十百]{1,4}"
_AR2 = r"(?<![0-9])[0-9]{1,2}(?![0-9])"
_CN2 = r"[零〇一二两三四五六七八九十]{1,3}"
_N2 = rf"(?:{_AR2}|{_CN2})"
_YEAR = r"(?<![0-9])[0-9]{4}|(?<![0-9])[0-9]{2}|[〇零一二三四五六七八九]{4}"
_SPAN_UNIT = r"个?多?(?:天|日|周|星期|礼拜|月|小时|钟头|分钟)(?:之|以)?"
_WEEK = r"(?:周|星期|礼拜)"
_WD = r"[一二三四五六日天末1-7]"
_DATE = "|".join(
    [
        rf"(?P<abs>(?P<abs_y>{_YEAR})年(?P<abs_m>{_N2})月份?(?:(?P<abs_d>{_N2})[日号])?)",
        r"(?P<iso>(?<![0-9])(?P<iso_y>[0-9]{4})(?P<iso_sep>[-/.])(?P<iso_m>[0-9]{1,2})"
        r"(?P=iso_sep)(?P<iso_d>[0-9]{1,2})(?![0-9]))",
        rf"(?P<md>(?P<md_y>去年|今年|前年)?(?P<md_m>{_N2})月份?(?:(?P<md_d>{_N2})[日号])?)",
        r"(?P<dot>(?<![0-9.,¥￥])(?P<dot_m>[0-9]{1,2})[./](?P<dot_d>[0-9]{1,2})"
        r"(?![0-9.%]|\s?(?:[万千百亿元块kKwW倍折个人斤米])))",
        rf"(?P<fut>大后天|后天|明天|明日|明儿个?|明年|来年|明(?=[晚早夜晨])|"
        rf"下下?个?(?:月|{_WEEK}){_WD}?|(?:{_N}|半){_SPAN_UNIT}后)",
        rf"(?P<rm>(?P<rm_w>上上个?|上个?|这个?|本)月(?:(?P<rm_d>{_N2})[日号])?)",
        rf"(?P<wk>(?P<wk_w>上上|上|这|本)个?{_WEEK}(?P<wk_d1>{_WD})?|{_WEEK}(?P<wk_d2>{_WD}))",
        rf"(?P<ago>(?P<ago_n>{_N}|半)个?多?(?P<ago_u>天|日|周|星期|礼拜|月|小时|钟头|分钟)"
        r"(?:之|以)?前)",
        r"(?P<front>前(?P<front_n>[0-9]{1,3}|[一二两三四五六七八九十]{1,2})天)",
        r"(?P<rel>大前天|大前日|前天|前日|昨天|昨日|昨儿个?|今天|今日|今儿个?|"
        r"当天|当日|同日|同一天|次日|第二天|翌日|隔天|隔日)",
        r"(?P<short>(?<![之以天周月年])[昨今前当](?=[晚早夜晨]))",
        r"(?P<just>刚才|刚刚|方才|刚(?![好巧开满够才性需强]))",
        r"(?P<day>(?<![0-9月])(?:(?P<day_a>[0-9]{1,2})[日号]|(?P<day_c>[一二三四五六七八九十]{1,3})号)"
        r"(?![码线楼门机房床车店位子]))",
    ]
)
_PART_MULTI = (
    "凌晨|清晨|早晨|早上|一早|大早|清早|上午|中午|午后|下午|傍晚|黄昏|晚上|晚间|夜里|夜间|夜晚|"
    "半夜|深夜|午夜"
)
_PART_ANY = _PART_MULTI + "|晚|早(?![就已些点知该])|夜|晨"
_SEP = r"(?:\s|的|,|t|大概|大约|约|差不多|大致|是|在|左右){0,2}"
_H = r"(?<![0-9])[0-9]{1,2}|[零〇一二两三四五六七八九十]{1,3}"
_MIN = (
    r"[0-9]{2}(?![0-9])分?|[0-9]分|[零〇一二三四五六七八九十]{1,3}分"
    r"|[一二三四五]?十[一二三四五六七八九]?|零[一二三四五六七八九]"
)


def _clock(p: str) -> str:
    return (
        rf"(?:(?P<{p}h1>(?<![0-9])[0-9]{{1,2}}):(?P<{p}m1>[0-9]{{2}})(?::[0-9]{{2}})?(?![0-9])"
        rf"|(?P<{p}h2>{_H})[点时](?P<{p}zh>钟)?"
        rf"(?:(?P<{p}m2>{_MIN})|(?P<{p}half>半|一刻|三刻|整))?(?:[0-9]{{1,2}}秒)?"
        rf"(?P<{p}fuzz>许|左右|多|前后)?)"
    )


_WHEN = re.compile(
    rf"(?:{_DATE})(?:{_SEP}(?P<p1>{_PART_ANY}))?(?:{_SEP}{_clock('c1')})?"
    rf"|(?P<p2>{_PART_MULTI})(?:{_SEP}{_clock('c2')})?"
    rf"|{_clock('c3')}",
    re.IGNORECASE,
)


def _small(text: str | None) -> int | None:
    """0-99 written in Arabic or Chinese numerals (三, 十二, 二十四, 零五)."""
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    return _cn_number(text) if _CN_SMALL.fullmatch(text) else None


def _count(text: str) -> int | None:
    """A count of days, weeks or hours (3, 两, 十五, 一百)."""
    if text.isascii() and text.isdigit():
        return int(text)
    return _cn_number(text) if all(ch in _CN_DIGITS or ch in _CN_UNITS for ch in text) else None


def _year(text: str, now: datetime) -> int:
    digits = "".join(_CN_YEAR.get(ch, ch) for ch in text)
    year = int(digits)
    if len(digits) == 2:
        year += 2000 if year <= now.year % 100 else 1900
    return year


def _add_months(year: int, month: int, shift: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + shift
    return index // 12, index % 12 + 1


def _weekday(ch: str) -> int:
    return int(ch) - 1 if ch.isdigit() else _WEEKDAY[ch]


@dataclass(frozen=True)
class _Day:
    day: date
    part: str | None = None


@dataclass(frozen=True)
class _Month:
    first: date


@dataclass(frozen=True)
class _Moment:
    at: datetime
    precision: Precision


_Base = _Day | _Month | _Moment


def _month_day(
    year: int | None, month: int | None, day_text: str | None, today: date
) -> _Base | None:
    """A month (and day) without a year is its most recent past occurrence."""
    day = _small(day_text)
    if month is None or not 1 <= month <= 12 or (day_text and (day is None or not 1 <= day <= 31)):
        return None
    if year is None:
        year = today.year if (month, day or 1) <= (today.month, today.day) else today.year - 1
        if day == 29 and month == 2:  # the most recent 29 February
            while year % 4 or (year % 100 == 0 and year % 400):
                year -= 1
    if day is None:
        return _Month(date(year, month, 1))
    return _Day(date(year, month, day))  # ValueError for 2月30日, caught by the caller


def _day_of_month(day: int | None, today: date) -> _Day | None:
    """ "15号": the most recent past 15th (going back to a month that has a 31st if needed)."""
    if day is None or not 1 <= day <= 31:
        return None
    year, month = today.year, today.month
    if day > today.day:
        year, month = _add_months(year, month, -1)
    for _ in range(12):
        try:
            return _Day(date(year, month, day))
        except ValueError:
            year, month = _add_months(year, month, -1)
    return None


def _week(m: re.Match[str], today: date) -> _Day | None:
    monday = today - timedelta(days=today.weekday())
    if m.group("wk_w"):
        start = monday + timedelta(weeks=_WEEK_SHIFT[m.group("wk_w")])
        wd = m.group("wk_d1")
        return _Day(start + timedelta(days=_weekday(wd)) if wd else start)
    back = (today.weekday() - _weekday(m.group("wk_d2"))) % 7
    return _Day(today - timedelta(days=back))


_HOURS = ("小时", "钟头")


def _ago(m: re.Match[str], now: datetime) -> _Base | None:
    raw, unit = m.group("ago_n"), m.group("ago_u")
    today = now.date()
    minute = now.replace(second=0, microsecond=0)
    if raw == "半":
        return _Moment(minute - timedelta(minutes=30), "minute") if unit in _HOURS else None
    n = _count(raw)
    if n is None:
        return None
    if unit in ("天", "日"):
        return _Day(today - timedelta(days=n))
    if unit == "月":
        year, month = _add_months(today.year, today.month, -n)
        return _Month(date(year, month, 1))
    if unit in _HOURS:
        return _Moment(minute - timedelta(hours=n), "hour")
    if unit == "分钟":
        return _Moment(minute - timedelta(minutes=n), "minute")
    return _Day(today - timedelta(weeks=n))


def _resolve_date(m: re.Match[str], now: datetime, anchor: date | None) -> _Base | None:
    """The date part of a match; None when it is impossible, in the future or needs an anchor."""
    today = now.date()
    g = m.group
    if g("abs"):
        return _month_day(_year(g("abs_y"), now), _small(g("abs_m")), g("abs_d"), today)
    if g("iso"):
        return _Day(date(int(g("iso_y")), int(g("iso_m")), int(g("iso_d"))))
    if g("md"):
        shift = {"去年": -1, "今年": 0, "前年": -2}.get(g("md_y") or "")
        year = None if shift is None else today.year + shift
        return _month_day(year, _small(g("md_m")), g("md_d"), today)
    if g("dot"):
        return _month_day(None, int(g("dot_m")), g("dot_d"), today)
    if g("fut"):
        return None
    if g("rm"):
        shift = {"上上": -2, "上": -1}.get(g("rm_w").rstrip("个"), 0)
        year, month = _add_months(today.year, today.month, shift)
        if not g("rm_d"):
            return _Month(date(year, month, 1))
        day = _small(g("rm_d"))
        return _Day(date(year, month, day)) if day else None
    if g("wk"):
        return _week(m, today)
    if g("ago"):
        return _ago(m, now)
    if g("front"):
        n = _count(g("front_n"))
        return _Day(today - timedelta(days=n)) if n else None
    word = g("rel") or g("short")
    if word:
        if word in _ANCHOR_SHIFT:
            return _Day(anchor + timedelta(days=_ANCHOR_SHIFT[word])) if anchor else None
        return _Day(today + timedelta(days=_DAY_SHIFT[word]))
    if g("just"):
        return _Moment(now.replace(second=0, microsecond=0), "minute")
    if g("day"):
        return _day_of_month(_small(g("day_a") or g("day_c")), today)
    return None


def _clock_of(m: re.Match[str], p: str) -> tuple[int, int, Precision, bool] | None:
    """(hour, minute, precision, bare) of a clock group; bare = 一点/一时 with nothing after."""
    g = m.group
    if g(f"{p}h1"):
        return int(g(f"{p}h1")), int(g(f"{p}m1")), "minute", False
    hour = _small(g(f"{p}h2"))
    if hour is None:
        return None
    minute, precision = 0, "hour"
    if g(f"{p}m2"):
        minute_value = _small(g(f"{p}m2").rstrip("分"))
        if minute_value is None:
            return None
        minute, precision = minute_value, "minute"
    elif g(f"{p}half"):
        minute, precision = {"半": 30, "一刻": 15, "三刻": 45, "整": 0}[g(f"{p}half")], "minute"
    bare = g(f"{p}h2") == "一" and precision == "hour" and not g(f"{p}zh") and not g(f"{p}fuzz")
    return hour, minute, precision, bare


def _on_day(day: date, part: str | None, hour: int, minute: int) -> datetime | None:
    """The moment ``hour:minute`` on ``day``, read in the day-part ``part`` (下午3点 → 15:00)."""
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        return None
    if part in _AFTERNOON or part == "中午":
        if 1 <= hour <= (4 if part == "中午" else 11):
            hour += 12
    elif part in _EVENING or part in _NIGHT:
        low = 9 if part in _NIGHT else 5
        if low <= hour <= 11:
            hour += 12
        elif hour == 12 and minute == 0:
            hour = 24  # 晚上12点: the last minute of that evening, not the next day
        elif hour == 12 or hour <= 4:
            day += timedelta(days=1)  # 晚上1点, 半夜12点半: the small hours after that evening
            hour %= 12
    elif part == "凌晨" and hour == 12:
        hour = 0
    if hour == 24:
        return datetime.combine(day, time(23, 59), tzinfo=SHANGHAI)
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI)


def _interpret(
    m: re.Match[str], now: datetime, anchor: date | None
) -> tuple[tuple[datetime, Precision] | None, date | None]:
    """The moment a match names and the anchor for the next ones (the last explicit date)."""
    has_date = m.group("p2") is None and m.group("c3h1") is None and m.group("c3h2") is None
    base = _resolve_date(m, now, anchor) if has_date else None
    if has_date and base is None:
        return None, anchor
    p = next((c for c in ("c1", "c2", "c3") if m.group(f"{c}h1") or m.group(f"{c}h2")), None)
    part = m.group("p1") or m.group("p2")
    if isinstance(base, _Moment):
        return (base.at, base.precision), base.at.date()
    if isinstance(base, _Month):
        if part or p:
            return None, anchor
        return (datetime.combine(base.first, time(), tzinfo=SHANGHAI), "month"), anchor
    clock = _clock_of(m, p) if p else None
    if p and clock is None:
        return None, anchor
    if p == "c3" and clock and clock[3]:
        return None, anchor  # 一点 alone is "a little" (有一点怕), 一时 "for a moment"
    if isinstance(base, _Day):
        day, floating = base.day, False
        part = part or base.part
        anchor = day
    else:
        day, floating = anchor or now.date(), anchor is None
    if clock:
        hour, minute, precision, _ = clock
        at = _on_day(day, part, hour, minute)
        if at is None:
            return None, anchor
    else:
        at = datetime.combine(day, time(_PART_START[part] if part else 0), tzinfo=SHANGHAI)
        precision = "day"
    if floating:
        at = _most_recent(at, now, twelve_hour=bool(clock and not part and m.group(f"{p}h2")))
    return (at, precision), anchor


def _most_recent(at: datetime, now: datetime, twelve_hour: bool) -> datetime:
    """A time of day without a date: its latest occurrence up to now ("下午3点" at 14:00 is
    yesterday's). A bare "3点" may be 3:00 or 15:00, like a date without a year may be this
    year's or last year's: the most recent of them is meant."""
    shifts = (timedelta(0), timedelta(hours=12)) if twelve_hour and 1 <= at.hour <= 11 else ()
    candidates = [at + s - timedelta(days=d) for s in shifts or (timedelta(0),) for d in (0, 1)]
    past = [c for c in candidates if c <= now + FUTURE_SLACK]
    return max(past) if past else at


def _latest(now: datetime) -> datetime:
    try:
        return now + FUTURE_SLACK
    except OverflowError:
        return now


def parse_when_all(text: str, now: datetime, *, max_chars: int | None = MAX_CHARS) -> list[When]:
    """Every time expression in the text, in order; impossible or future ones are left out.

    ``now`` should be tz-aware (a naive one is taken as Shanghai time). A clock time or
    当晚/次日 after a date refers to that date, as case narratives write them. Texts longer
    than ``max_chars`` give []; pass ``max_chars=None`` to read long narratives (linear time).
    """
    if not text or not text.strip() or (max_chars is not None and len(text) > max_chars):
        return []
    now = now.replace(tzinfo=SHANGHAI) if now.tzinfo is None else now.astimezone(SHANGHAI)
    latest = _latest(now)
    norm = normalize(text)
    found: list[When] = []
    anchor: date | None = None
    for m in _WHEN.finditer(norm.text):
        try:
            result, anchor = _interpret(m, now, anchor)
        except (ValueError, OverflowError):  # 2月30日, dates before year 1 or after 9999
            continue
        if result is None:
            continue
        at, precision = result
        if EARLIEST <= at <= latest:
            start, end = norm.to_source(m.start(), m.end())
            found.append(When(at, precision, text[start:end]))
    return found


def parse_when(text: str, now: datetime) -> When | None:
    """The first time the answer names, or None (unclear, impossible, future, before 1990)."""
    found = parse_when_all(text, now)
    return found[0] if found else None
