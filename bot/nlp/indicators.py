"""Indicators in a normalised message: phones, links, bank cards, QQ and WeChat ids, amounts.

Each finder works on the normalised text (see ``normalize``) and returns spans on it; ``analysis``
maps them back to the source text. Values are canonical (digits only, lower-case domains) so they
can be hashed and compared with the confirmed list; ``masked`` is what logs and pages may show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

PHONE_MOBILE = "phone_mobile"
PHONE_LANDLINE = "phone_landline"
PHONE_SERVICE = "phone_service"
LINK = "link"
BANK_CARD = "bank_card"
ID_NUMBER = "id_number"
QQ = "qq"
WECHAT = "wechat"
MONEY = "money"

PERSONAL_KINDS = frozenset({PHONE_MOBILE, PHONE_LANDLINE, BANK_CARD, ID_NUMBER, QQ, WECHAT})


@dataclass(frozen=True)
class Found:
    """A raw match on the normalised text."""

    kind: str
    value: str
    start: int
    end: int


_SEP = r"[-\s]?"
_NOT_DIGIT_BEFORE = r"(?<![\d.])"
_NOT_DIGIT_AFTER = r"(?![\d])"

_MOBILE = re.compile(
    _NOT_DIGIT_BEFORE
    + r"(?:(?:\+|00)?86"
    + _SEP
    + r")?(1[3-9]\d"
    + _SEP
    + r"\d{4}"
    + _SEP
    + r"\d{4})"
    + _NOT_DIGIT_AFTER
)
_LANDLINE = re.compile(
    _NOT_DIGIT_BEFORE + r"(?:\(0\d{2,3}\)|0\d{2,3}[-\s])\s?[2-9]\d{6,7}" + _NOT_DIGIT_AFTER
)
# Written without a separator, an area code and number are only a landline after a word that
# says a number follows (电话02187654321): bare, 11 or 12 digits starting with 0 may be anything.
_LANDLINE_SAID = re.compile(
    r"(?:电话|座机|固话|号码|致电|拨打|打)[是为：:\s]{0,2}"
    + _NOT_DIGIT_BEFORE
    + r"(0(?:[12]\d|[3-9]\d{2})[2-9]\d{6,7})"
    + _NOT_DIGIT_AFTER
)
_SERVICE = re.compile(
    _NOT_DIGIT_BEFORE
    + r"(?:[48]00"
    + _SEP
    + r"\d{3}"
    + _SEP
    + r"\d{4}|95\d{3}(?:\d{3})?)"
    + _NOT_DIGIT_AFTER
)
_CARD = re.compile(
    _NOT_DIGIT_BEFORE + r"(\d{4}(?:[\s-]?\d{4}){3}(?:[\s-]?\d{1,3})?)" + _NOT_DIGIT_AFTER
)
_ID = re.compile(
    _NOT_DIGIT_BEFORE
    + r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    + r"(?![\dXx])"
)
_CARD_CONTEXT = re.compile(r"(?:卡号?|账号|账户|户名|收款|转入|打到|汇入|银行)[^\d]{0,8}$")
_NOT_CARD_CONTEXT = re.compile(r"(?:订单|单号|运单|快递|物流|编号|流水号|工单|取件)[^\d]{0,6}$")

_TLDS = (
    "com|cn|net|org|vip|top|xyz|cc|io|co|me|info|shop|club|site|online|app|tk|ml|hk|tw|asia|"
    "biz|pro|ltd|live|fun|icu|work|link|win|bid|store|tech|ink|red|kim|wang|ren|gov\\.cn|com\\.cn"
)
_DOT = r"(?:\.|。|点|dot|DOT|\(\.\)|\(点\))"
_URL = re.compile(
    r"(?i)(?<![a-z0-9])(?:https?|hxxps?)\s*[:：]\s*//[^\s\u4e00-\u9fff<>\"'，。！？、）)】]+"
)
_DOMAIN = re.compile(
    r"(?i)(?<![a-z0-9_@.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\s?"
    + _DOT
    + r"\s?)+(?:"
    + _TLDS
    + r"))(?![a-z0-9])(/[^\s\u4e00-\u9fff<>\"'，。！？、）)】]*)?"
)
_DOT_WORD = re.compile(r"(?i)\s?(?:。|点|dot|\(\.\)|\(点\))\s?")

_QQ = re.compile(
    r"(?i)(?:qq|扣扣|企鹅|球球|Q)\s*(?:号码?|群号?)?\s*[:：是为]?\s*([1-9]\d{4,10})(?!\d)"
)
_WECHAT_WORD = (
    r"(?:微信|徽信|威信|薇信|危信|维信|v信|V信|vx|VX|wx|WX|weixin|wechat|加v|加V|\+v|\+V|➕v|➕V)"
)
_WECHAT = re.compile(
    r"(?<![A-Za-z0-9_])"
    + _WECHAT_WORD
    + r"\s*(?:号|id|ID)?\s*[:：是为]?\s*"
    + r"((?:wxid_)?[A-Za-z][-_A-Za-z0-9]{5,19}|1[3-9]\d{9})(?![A-Za-z0-9_-])"
)
_WXID = re.compile(r"(?<![A-Za-z0-9_])(wxid_[A-Za-z0-9]{6,24})(?![A-Za-z0-9_-])")

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
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
_MONEY_ARABIC = re.compile(
    r"(?i)(?:(￥|¥|RMB|人民币)\s?)?(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s?"
    r"(万元|万块|万|千元|千块|元|块钱|块|w(?![a-z])|k(?![a-z]))?"
)
_MONEY_CN = re.compile(r"([零〇一二两三四五六七八九十百千]+)(万元|万块|万|千元|元|块钱|块)")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def find_phones(text: str) -> Iterator[Found]:
    """Mobile, landline (with area code) and 400/800/95xxx service numbers."""
    for m in _MOBILE.finditer(text):
        yield Found(PHONE_MOBILE, _digits(m.group(1)), m.start(), m.end())
    for m in _LANDLINE.finditer(text):
        yield Found(PHONE_LANDLINE, _digits(m.group(0)), m.start(), m.end())
    for m in _LANDLINE_SAID.finditer(text):
        yield Found(PHONE_LANDLINE, m.group(1), m.start(1), m.end(1))
    for m in _SERVICE.finditer(text):
        yield Found(PHONE_SERVICE, _digits(m.group(0)), m.start(), m.end())


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_cards_and_ids(text: str) -> Iterator[Found]:
    """Resident identity numbers, and bank cards: 16-19 digits, by card prefix, context or Luhn."""
    ids = []
    for m in _ID.finditer(text):
        ids.append((m.start(), m.end()))
        yield Found(ID_NUMBER, m.group(0).upper(), m.start(), m.end())
    for m in _CARD.finditer(text):
        if any(s < m.end() and m.start() < e for s, e in ids):
            continue
        number = _digits(m.group(1))
        if not 16 <= len(number) <= 19:
            continue
        before = text[max(0, m.start() - 12) : m.start()]
        if _NOT_CARD_CONTEXT.search(before):
            continue
        if _CARD_CONTEXT.search(before) or number[:2] == "62" or _luhn_ok(number):
            yield Found(BANK_CARD, number, m.start(), m.end())


def _canonical_domain(raw: str) -> str:
    return _DOT_WORD.sub(".", raw).replace(" ", "").lower().strip(".")


def find_links(text: str) -> Iterator[Found]:
    """Links with a scheme, bare domains, and domains written as 'www点abc点com'."""
    taken: list[tuple[int, int]] = []
    for m in _URL.finditer(text):
        url = re.sub(r"\s", "", m.group(0)).rstrip(".,;:!?")
        url = re.sub(r"(?i)^hxxp", "http", url).replace("：", ":")
        taken.append((m.start(), m.end()))
        scheme, _, rest = url.partition("//")
        host, slash, path = rest.partition("/")
        yield Found(LINK, f"{scheme.lower()}//{host.lower()}{slash}{path}", m.start(), m.end())
    for m in _DOMAIN.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        domain = _canonical_domain(m.group(1))
        if "." not in domain or domain.count(".") < 1:
            continue
        path = (m.group(2) or "").rstrip(".,;:!?")
        yield Found(LINK, domain + path, m.start(), m.start(1) + len(m.group(1)) + len(path))


def find_accounts(text: str) -> Iterator[Found]:
    """QQ numbers and WeChat ids introduced by a keyword (QQ, 微信 and its evasive spellings)."""
    for m in _QQ.finditer(text):
        yield Found(QQ, m.group(1), m.start(), m.end())
    seen: set[int] = set()
    for m in _WECHAT.finditer(text):
        seen.add(m.start(1))
        yield Found(WECHAT, m.group(1).lower(), m.start(), m.end())
    for m in _WXID.finditer(text):
        if m.start(1) not in seen:
            yield Found(WECHAT, m.group(1).lower(), m.start(), m.end())


def _cn_number(chars: str) -> int | None:
    total, current = 0, 0
    for ch in chars:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            return None
    return total + current


def _scale(unit: str) -> float:
    unit = unit.lower()
    if unit.startswith("万") or unit == "w":
        return 10_000.0
    if unit.startswith("千") or unit == "k":
        return 1_000.0
    return 1.0


def find_money(text: str) -> Iterator[Found]:
    """Amounts with a currency sign or a unit (元, 块, 万, w); the value is in yuan."""
    for m in _MONEY_ARABIC.finditer(text):
        sign, whole, frac, unit = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        if not sign and not unit:
            continue
        amount = float(whole.replace(",", "") + frac) * _scale(unit or "元")
        yield Found(MONEY, _format_amount(amount), m.start(), m.end())
    for m in _MONEY_CN.finditer(text):
        number = _cn_number(m.group(1))
        if number:
            yield Found(MONEY, _format_amount(number * _scale(m.group(2))), m.start(), m.end())


def _format_amount(amount: float) -> str:
    return f"{amount:.2f}".rstrip("0").rstrip(".")


def _overlaps(a: Found, b: Found) -> bool:
    return a.start < b.end and b.start < a.end


# When two finds overlap, the more specific kind wins (an ID number is not also a bank card,
# a WeChat id that is a mobile number is reported once, as the WeChat id).
_PRIORITY = [
    ID_NUMBER,
    WECHAT,
    QQ,
    LINK,
    BANK_CARD,
    PHONE_SERVICE,
    PHONE_MOBILE,
    PHONE_LANDLINE,
    MONEY,
]


def find_indicators(text: str) -> list[Found]:
    """Every indicator in the normalised text, overlaps resolved, in reading order."""
    candidates = [
        *find_cards_and_ids(text),
        *find_links(text),
        *find_accounts(text),
        *find_phones(text),
        *find_money(text),
    ]
    candidates.sort(key=lambda f: (_PRIORITY.index(f.kind), -(f.end - f.start), f.start))
    chosen: list[Found] = []
    for cand in candidates:
        if not any(_overlaps(cand, c) for c in chosen):
            chosen.append(cand)
    return sorted(chosen, key=lambda f: f.start)


def mask_span(kind: str, text: str) -> str:
    """``text`` as written, with the middle of a personal indicator starred; same length."""
    if kind not in PERSONAL_KINDS:
        return text
    positions = [i for i, ch in enumerate(text) if ch.isalnum() and ch.isascii()]
    value = "".join(text[i] for i in positions)
    starred = mask(kind, value)
    chars = list(text)
    for i, ch in zip(positions, starred, strict=True):
        chars[i] = ch
    return "".join(chars)


def mask(kind: str, value: str) -> str:
    """What a log line or a page may show of an indicator."""
    if kind not in PERSONAL_KINDS:
        return value
    if kind == WECHAT and not value.isdigit():
        keep = 2 if len(value) > 6 else 1
        return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]
    if len(value) >= 11:
        head, tail = (4, 4) if kind in (BANK_CARD, ID_NUMBER) else (3, 4)
        return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]
    if len(value) >= 7:
        return value[:2] + "*" * (len(value) - 4) + value[-2:]
    return value[:1] + "*" * (len(value) - 1)
