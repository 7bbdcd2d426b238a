"""Reading a case file (CSV or XLSX) into validated case rows for the store.

Police and town case data come as Excel workbooks or as CSV saved from Excel, which in China is
often GB18030/GBK rather than UTF-8. ``read_table`` reads either (the encoding detected: UTF-8,
UTF-8 with a BOM, UTF-16 with a BOM, GB18030; anything else refused with a message saying how to
save the file), finds the header row (the first of the first ten rows naming two known
columns, so a title row above it is skipped), and keeps row numbers as a person sees them in
Excel (header = row 1 when it is the first; a narrative with line breaks inside its quotes is
one row of a CSV file, not several).

``map_columns`` knows each field by its Chinese and English names and common synonyms
(``COLUMN_NAMES``). A file needs (a time and a scam type) or a narrative (简要案情); without
them it is refused whole, naming what it lacks and what it has.

``check_rows`` validates every row (impossible or future dates, dates before 2000, negative or
absurd losses, unknown scam types, ages outside 0-120, unknown genders) and collects every error
as ``row N: field: reason``. Fields the file leaves empty are read from the narrative when it
has one (``campaigns.narrative``): the fraud time, the loss; the scam type goes to the
classifier (``classify_drafts``) only when the file has no type column, so a file with one
imports without the NLU. A field that could not be found is not an error: the row is imported
with it empty and listed in ``missing``. A time of day is needed: a date alone (no hour) leaves
``happened_at`` empty and missing, since the data is for finding the hours scams peak. Times are
Asia/Shanghai local (police data is) and become aware UTC.

``row_key`` is ``no:`` + the case number when the file has one, else the sha256 of the row's
normalised content (the values as read, not what was extracted from the narrative, so a new
model cannot change it): the same case imported twice is recognised. Two rows of different
victims with exactly the same content and no case number would count as one.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Union
from zoneinfo import ZoneInfo

from bot.nlp.taxonomy import NOT_SCAM, Taxonomy
from bot.store.cases import NewCase
from bot.store.types import UTC, utcnow
from campaigns.audience import AGE_GROUPS, age_group_of, audiences_of_case
from campaigns.narrative import find_times, fraud_loss, fraud_time, parse_amount
from campaigns.narrative_type import read_type

if TYPE_CHECKING:
    from bot.nlp.classify import Classifier

SHANGHAI = ZoneInfo("Asia/Shanghai")
EARLIEST = datetime(2000, 1, 1, tzinfo=SHANGHAI)
MAX_NARRATIVE_CHARS = 20_000
MAX_CASE_NUMBER_CHARS = 60
MAX_OCCUPATION_CHARS = 64
MAX_PLACE_CHARS = 255
HEADER_SEARCH_ROWS = 10

Cell = Union[str, int, float, datetime, date, time, None]  # noqa: UP007 - a runtime alias

#: Header names for each field, compared after normalising (NFKC, lower case, no spaces, no unit
#: in brackets).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "case_number": (
        "案件编号",
        "案件编码",
        "警情编号",
        "案号",
        "编号",
        "case_number",
        "case_no",
        "caseno",
        "case_id",
    ),
    "time": (
        "案发时间",
        "发案时间",
        "被骗时间",
        "发生时间",
        "案发日期时间",
        "time",
        "happened_at",
        "datetime",
    ),
    "date": ("案发日期", "发案日期", "日期", "date"),
    "type": (
        "诈骗类型",
        "案件类别",
        "案件类型",
        "诈骗类别",
        "诈骗手法",
        "类型",
        "类别",
        "type",
        "scam_type",
        "category",
    ),
    "loss": (
        "损失金额",
        "涉案金额",
        "被骗金额",
        "损失",
        "金额",
        "loss",
        "amount",
    ),
    "age": ("年龄", "年龄段", "受害人年龄", "事主年龄", "age", "age_group"),
    "gender": ("性别", "受害人性别", "事主性别", "gender", "sex"),
    "occupation": ("职业", "受害人职业", "事主职业", "occupation", "job"),
    "place": (
        "发案地点",
        "案发地点",
        "发案地址",
        "案发地址",
        "地址",
        "地点",
        "place",
        "address",
        "location",
    ),
    "residence": ("户籍", "户籍地", "居住情况", "居住类型", "人员类型", "residence"),
    "narrative": (
        "简要案情",
        "案情",
        "案情描述",
        "案情简介",
        "简要案情描述",
        "narrative",
        "description",
    ),
}
#: How a field is named in messages.
FIELD_LABELS = {
    "case_number": "案件编号/case_number",
    "time": "案发时间/time",
    "date": "案发日期/date",
    "type": "诈骗类型/type",
    "loss": "损失金额/loss",
    "age": "年龄/age",
    "gender": "性别/gender",
    "occupation": "职业/occupation",
    "place": "发案地点/place",
    "residence": "户籍/residence",
    "narrative": "简要案情/narrative",
}
_UNIT_IN_HEADER = re.compile(r"[(（\[【]\s*([^)）\]】]*)\s*[)）\]】]")

#: Police names of scam types → taxonomy codes (compared after ``_type_key``).
TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "rebate": (
        "刷单",
        "刷单返利",
        "网络刷单",
        "兼职刷单",
        "网络兼职刷单",
        "点赞返利",
        "做任务返利",
    ),
    "investment": ("投资理财", "虚假投资理财", "网络投资理财", "虚假理财", "虚假投资", "投资"),
    "loan": ("贷款", "网络贷款", "虚假贷款", "虚假网贷", "网贷", "代办信用卡", "虚假网络贷款"),
    "credit_record": ("征信", "虚假征信", "注销校园贷", "注销网贷", "消除不良征信", "修复征信"),
    "customer_service": (
        "冒充客服",
        "冒充电商客服",
        "冒充物流客服",
        "冒充快递客服",
        "冒充电商物流客服",
        "快递理赔",
        "退款理赔",
    ),
    "impersonate_authority": (
        "冒充公检法",
        "公检法",
        "冒充警察",
        "冒充公安",
        "冒充政府机关",
        "冒充公检法机关",
    ),
    "impersonate_acquaintance": (
        "冒充领导",
        "冒充熟人",
        "冒充领导熟人",
        "冒充熟人领导",
        "冒充亲友",
        "冒充亲属",
        "冒充老板",
    ),
    "game_trade": (
        "游戏交易",
        "网络游戏交易",
        "虚假游戏交易",
        "游戏装备交易",
        "游戏账号交易",
        "网络游戏虚假交易",
    ),
    "romance": ("杀猪盘", "网络婚恋", "婚恋交友", "网络交友", "网恋", "交友", "婚恋"),
    "fake_shopping": ("虚假购物", "网络购物", "网购", "虚假购物服务", "虚假服务", "购物"),
    "fundraising": ("非法集资", "养老诈骗", "养老", "集资"),
    "other_scam": ("其他", "其它", "其他类型"),
}
_TYPE_PUNCT = re.compile(r"[\s、,，()（）·\-_/／.。:：]")
_TYPE_SUFFIXES = ("类诈骗", "诈骗案件", "诈骗案", "诈骗", "案件", "类", "案")

_FEMALE = {"女", "女性", "f", "female", "woman", "女士"}
_MALE = {"男", "男性", "m", "male", "man", "先生"}
_UNKNOWN = {"", "不详", "未知", "无", "-", "—", "/", "n/a", "na", "unknown", "null", "none"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, unknown encoding, columns lacking)."""


@dataclass(frozen=True)
class RowError:
    """One problem in one row, as a person fixing the file needs it."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class Table:
    """The cells of a file: its header and its rows, each with its row number in the file."""

    name: str
    kind: str  # "csv" or "xlsx"
    encoding: str | None
    sheet: str | None
    header_row: int
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[Cell, ...]], ...]


@dataclass(frozen=True)
class Columns:
    """Which column holds which field; what a bare loss number counts; what was ignored."""

    index: dict[str, int]
    loss_unit: Decimal
    found: tuple[str, ...]
    ignored: tuple[str, ...]

    def has(self, name: str) -> bool:
        return name in self.index


@dataclass
class Draft:
    """A row as read and checked, before the classifier has given the types it is asked for."""

    row_number: int
    row_key: str
    case_number: str | None = None
    happened_at: datetime | None = None
    scam_type: str | None = None
    scam_type_source: str | None = None
    loss: Decimal | None = None
    age_group: str | None = None
    gender: str | None = None
    occupation: str | None = None
    place: str | None = None
    residence: str | None = None
    narrative: str | None = field(default=None, repr=False)
    missing: list[str] = field(default_factory=list)
    to_classify: bool = False

    def to_new_case(self) -> NewCase:
        return NewCase(
            row_number=self.row_number,
            row_key=self.row_key,
            case_number=self.case_number,
            happened_at=self.happened_at,
            scam_type=self.scam_type,
            scam_type_source=self.scam_type_source,
            loss=self.loss,
            age_group=self.age_group,
            gender=self.gender,
            occupation=self.occupation,
            place=self.place,
            narrative=self.narrative,
            audiences=tuple(
                audiences_of_case(self.age_group, self.gender, self.occupation, self.residence)
            ),
            missing=tuple(f for f in ("happened_at", "scam_type", "loss") if f in self.missing),
        )


@dataclass(frozen=True)
class Checked:
    """The outcome of checking every row."""

    drafts: list[Draft]
    errors: list[RowError]

    @property
    def to_classify(self) -> int:
        return sum(1 for d in self.drafts if d.to_classify)


# Reading ------------------------------------------------------------------------------------


def _common_share(text: str) -> float:
    """The share of characters that are ASCII, CJK or CJK punctuation (GB18030 sanity check)."""
    if not text:
        return 1.0
    common = 0
    for ch in text:
        code = ord(ch)
        if (
            code < 0x80
            or 0x4E00 <= code <= 0x9FFF
            or 0x3400 <= code <= 0x4DBF
            or 0x3000 <= code <= 0x303F
            or 0xFF00 <= code <= 0xFFEF
            or 0x2000 <= code <= 0x206F
            or 0x2460 <= code <= 0x24FF
            or ch in "·×÷°±¥￥"
        ):
            common += 1
    return common / len(text)


def decode_csv(data: bytes, name: str = "the file") -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in; ``ImportFileError`` if none fits."""
    advice = "save it from Excel as “CSV UTF-8 (逗号分隔)” or as .xlsx"  # what a person can do
    text: str | None = None
    encoding = ""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    if not encoding and b"\x00" in data:
        raise ImportFileError(
            f"{name}: holds NUL bytes (UTF-16 without a byte-order mark, or not a text file); "
            f"{advice}"
        )
    if encoding:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"{name}: starts like {encoding} but is not ({exc.reason} at byte {exc.start}); "
                f"{advice}"
            ) from exc
    else:
        for candidate in ("utf-8", "gb18030"):
            try:
                decoded = data.decode(candidate)
            except UnicodeDecodeError:
                continue
            if candidate == "gb18030" and _common_share(decoded) < 0.97:
                continue
            text, encoding = decoded, candidate
            break
    if text is None:
        raise ImportFileError(
            f"{name}: not text in a known encoding (UTF-8, UTF-8 with BOM, GB18030/GBK); {advice}"
        )
    if "\x00" in text:
        raise ImportFileError(
            f"{name}: holds NUL characters (UTF-16 without a byte-order mark, or not a text "
            f"file); {advice}"
        )
    return text, encoding


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", "\t", ";", "，")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _blank(value: Cell) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _find_header(rows: list[tuple[int, tuple[Cell, ...]]]) -> int:
    """Index in ``rows`` of the header: the first of the first rows naming two known fields."""
    first_filled = next(
        (i for i, (_n, cells) in enumerate(rows) if any(map(_not_blank, cells))), 0
    )
    for i, (_number, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        known = {_field_of(str(c)) for c in cells if not _blank(c)} - {None}
        if len(known) >= 2:
            return i
    return first_filled


def _not_blank(value: Cell) -> bool:
    return not _blank(value)


def _table(
    name: str,
    kind: str,
    encoding: str | None,
    sheet: str | None,
    rows: list[tuple[int, tuple[Cell, ...]]],
) -> Table:
    if not rows or not any(any(map(_not_blank, cells)) for _n, cells in rows):
        raise ImportFileError(f"{name}: the file is empty")
    at = _find_header(rows)
    header_row, header_cells = rows[at]
    header = tuple("" if c is None else str(c).strip() for c in header_cells)
    body = tuple(
        (number, cells) for number, cells in rows[at + 1 :] if any(map(_not_blank, cells))
    )
    return Table(name, kind, encoding, sheet, header_row, header, body)


OnRow = Callable[[], object]


def read_csv(data: bytes, name: str, on_row: OnRow | None = None) -> Table:
    text, encoding = decode_csv(data, name)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    rows: list[tuple[int, tuple[Cell, ...]]] = []
    try:
        for number, record in enumerate(reader, start=1):
            rows.append((number, tuple(record)))
            if on_row is not None:
                on_row()
    except csv.Error as exc:
        raise ImportFileError(
            f"{name}: not readable as CSV near line {reader.line_num}: {exc}"
        ) from exc
    return _table(name, "csv", encoding, None, rows)


def read_xlsx(
    data: bytes, name: str, sheet: str | None = None, on_row: OnRow | None = None
) -> Table:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{name}: not a readable XLSX workbook ({exc})") from exc
    try:
        if sheet is None:
            if not book.sheetnames:
                raise ImportFileError(f"{name}: the workbook has no sheets")
            sheet = book.sheetnames[0]
        elif sheet not in book.sheetnames:
            raise ImportFileError(
                f"{name}: no sheet named “{sheet}”; its sheets: {', '.join(book.sheetnames)}"
            )
        worksheet = book[sheet]
        rows: list[tuple[int, tuple[Cell, ...]]] = []
        for number, values in enumerate(worksheet.iter_rows(min_row=1, values_only=True), 1):
            rows.append((number, tuple(values)))
            if on_row is not None:
                on_row()
    finally:
        book.close()
    return _table(name, "xlsx", None, sheet, rows)


def read_table(
    data: bytes, name: str, sheet: str | None = None, on_row: OnRow | None = None
) -> Table:
    """The table in a file's bytes: XLSX (by its zip signature) or CSV text."""
    if data.startswith(b"PK\x03\x04"):
        return read_xlsx(data, name, sheet, on_row)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(f"{name}: an old Excel .xls file; save it as .xlsx or CSV UTF-8")
    if name.lower().endswith((".xlsx", ".xlsm")):
        raise ImportFileError(f"{name}: named like a workbook but is not an XLSX file")
    if sheet is not None:
        raise ImportFileError(f"{name}: --sheet is for XLSX workbooks; this is a CSV file")
    return read_csv(data, name, on_row)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Columns ------------------------------------------------------------------------------------


def _header_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = _UNIT_IN_HEADER.sub("", text)
    return re.sub(r"[\s*:：_\-]", "", text).removeprefix("\ufeff")


_HEADER_LOOKUP = {
    _header_key(name): field_name for field_name, names in COLUMN_NAMES.items() for name in names
}


def _field_of(header: str) -> str | None:
    return _HEADER_LOOKUP.get(_header_key(header))


def map_columns(table: Table) -> Columns:
    """The fields the header names; ``ImportFileError`` if required ones are lacking."""
    index: dict[str, int] = {}
    ignored: list[str] = []
    found: list[str] = []
    loss_unit = Decimal(1)
    for i, raw in enumerate(table.header):
        if not raw:
            continue
        found.append(raw)
        name = _field_of(raw)
        if name is None:
            ignored.append(raw)
            continue
        if name in index:
            raise ImportFileError(
                f"{table.name}: columns “{table.header[index[name]]}” and “{raw}” both mean "
                f"{FIELD_LABELS[name]}; keep one"
            )
        index[name] = i
        if name == "loss":
            unit = _UNIT_IN_HEADER.search(unicodedata.normalize("NFKC", raw))
            if unit and "万" in unit.group(1):
                loss_unit = Decimal(10_000)
    has_time = "time" in index or "date" in index
    if not ("narrative" in index or (has_time and "type" in index)):
        lacking = [FIELD_LABELS[f] for f in ("time", "type") if f not in index]
        if "time" in lacking[0] and "date" in index:
            lacking = lacking[1:]
        shown = ", ".join(f"“{h}”" for h in found) or "none"
        raise ImportFileError(
            f"{table.name}: missing columns: {', '.join(lacking)} (or a "
            f"{FIELD_LABELS['narrative']} column to read them from); the header "
            f"(row {table.header_row}) has: {shown}"
        )
    return Columns(index, loss_unit, tuple(found), tuple(ignored))


# Values -------------------------------------------------------------------------------------


def _type_key(text: str) -> str:
    key = _TYPE_PUNCT.sub("", unicodedata.normalize("NFKC", text).strip().lower())
    changed = True
    while changed and key:
        changed = False
        for suffix in _TYPE_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
                changed = True
    return key


class ScamTypeNames:
    """Scam type codes from what a file writes: a code, the taxonomy's name, a police name."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.codes = set(taxonomy.scam_codes)
        self._by_key: dict[str, str] = {}
        for scam_type in taxonomy.types:
            names = [scam_type.code, scam_type.name]
            names += re.findall(r"[(（]([^)）]+)[)）]", scam_type.name)
            for name in names:
                self._by_key.setdefault(_type_key(name), scam_type.code)
        for code, synonyms in TYPE_SYNONYMS.items():
            if code in self.codes:
                for name in synonyms:
                    self._by_key.setdefault(_type_key(name), code)

    def code_of(self, text: str) -> str:
        """The code; ``ValueError`` saying why for an unknown name or a non-scam."""
        key = _type_key(text)
        code = self._by_key.get(key)
        if code == NOT_SCAM:
            raise ValueError(f"“{text.strip()}” is not a scam type (a case file lists scams)")
        if code is None:
            raise ValueError(
                f"unknown scam type “{text.strip()[:30]}” (use a code such as rebate or a "
                "name such as 刷单返利, 冒充公检法, 杀猪盘)"
            )
        return code


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_gender(value: Cell) -> str | None:
    """``female``, ``male`` or ``None`` (not given); ``ValueError`` for anything else."""
    text = _text(value).lower()
    if text in _UNKNOWN:
        return None
    if text in _FEMALE:
        return "female"
    if text in _MALE:
        return "male"
    raise ValueError(f"“{_text(value)[:20]}” is not a gender (男/女, male/female)")


_AGE_RANGE = re.compile(r"^(\d{1,3})(?:岁|周岁)?[-~～至到—–](\d{1,3})(?:岁|周岁)?$")
_AGE_OVER = re.compile(r"^(\d{1,3})(?:岁|周岁)?(?:以上|及以上|\+|或以上)$")
_AGE_UNDER = re.compile(r"^(?:未满)?(\d{1,3})(?:岁|周岁)?(?:以下|及以下)?$")
_AGE_WORDS = {
    "未成年": "0-17",
    "未成年人": "0-17",
    "儿童": "0-17",
    "少年": "0-17",
    "老年": "60+",
    "老年人": "60+",
    "老人": "60+",
}


def _band_of(age: int, shown: str) -> str:
    if not 0 <= age <= 120:
        raise ValueError(f"age {age} is outside 0-120 (“{shown}”)")
    return age_group_of(age)


def parse_age(value: Cell) -> str | None:
    """An age or an age band as a file writes it → one of ``AGE_GROUPS``; ``None`` if not given.

    A number is put in its band; a band of ``AGE_GROUPS`` is kept; ``60岁以上`` is ``60+`` and
    ``18岁以下``/``未成年`` ``0-17``; another range goes to the band holding both its ends, or
    else the band holding its middle (``20-29岁`` → ``18-25``: 24.5).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"“{value}” is not a whole age")
        return _band_of(int(value), str(value))
    text = _text(value).replace(" ", "")
    if text.lower() in _UNKNOWN:
        return None
    if text in AGE_GROUPS or text.removesuffix("岁") in AGE_GROUPS:
        return text.removesuffix("岁")
    if text in _AGE_WORDS:
        return _AGE_WORDS[text]
    if m := _AGE_OVER.match(text):
        low = int(m.group(1))
        if low >= 60:
            return "60+"
        raise ValueError(f"“{text}” spans several age bands ({', '.join(AGE_GROUPS)})")
    if m := _AGE_RANGE.match(text):
        low, high = int(m.group(1)), int(m.group(2))
        if low > high or high > 120:
            raise ValueError(f"“{text}” is not an age range within 0-120")
        first, last = _band_of(low, text), _band_of(high, text)
        return first if first == last else _band_of(int((low + high) / 2), text)
    if m := _AGE_UNDER.match(text):
        number = int(m.group(1))
        if text[0].isdigit() and text.rstrip("岁周").isdigit():
            return _band_of(number, text)
        if number <= 18:
            return "0-17"
        raise ValueError(f"“{text}” spans several age bands ({', '.join(AGE_GROUPS)})")
    raise ValueError(f"cannot read “{text[:20]}” as an age or an age band")


def _local_to_utc(local: datetime, shown: str, now: datetime) -> datetime:
    aware = local.replace(tzinfo=SHANGHAI)
    if aware < EARLIEST:
        raise ValueError(f"“{shown}” is before 2000")
    if aware > now:
        raise ValueError(f"“{shown}” is in the future")
    return aware.astimezone(UTC)


_ISO_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?$")


def _day_of(value: Cell) -> date | None:
    """The date in a separate date cell; ``ValueError`` if it is not one."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        return None
    mentions = find_times(text)
    if not mentions or mentions[0].problem or mentions[0].day is None:
        reason = mentions[0].problem if mentions and mentions[0].problem else None
        raise ValueError(reason or f"cannot read “{text[:30]}” as a date with a year")
    return mentions[0].day


def parse_time(value: Cell, date_value: Cell = None) -> tuple[datetime | None, date | None, str]:
    """A time cell (and a separate date cell) → (local time, or ``None`` when there is no hour;
    the date, when known; the value as shown).

    ``ValueError`` for a cell that is not a date and time, or names an impossible one.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=None), value.date(), value.isoformat(sep=" ")
    day = _day_of(date_value)
    if isinstance(value, date):
        return None, value, value.isoformat()
    if isinstance(value, time):
        if day is None:
            raise ValueError(f"a time of day “{value}” without a date")
        return datetime.combine(day, value.replace(tzinfo=None)), day, f"{day} {value}"
    text = _text(value)
    if not text:
        return None, day, "" if day is None else day.isoformat()
    if day is None and _ISO_MINUTE.match(text):
        try:  # the common case, fast: 2023-03-01 10:00[:00]
            local = datetime.fromisoformat(text).replace(second=0, microsecond=0)
            return local, local.date(), text
        except ValueError:
            pass  # 2023-02-30 10:00: find_times says what is wrong
    mentions = find_times(text)
    if not mentions:
        raise ValueError(f"cannot read “{text[:30]}” as a date and time")
    mention = mentions[0]
    if mention.problem:
        raise ValueError(mention.problem)
    on = mention.day or day
    if on is None:
        raise ValueError(f"“{text[:30]}” has no full date (year, month and day)")
    shown = text if day is None else f"{day} {text}"
    if mention.clock is None:
        return None, on, shown
    return datetime(on.year, on.month, on.day, *mention.clock), on, shown


def _normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _row_key(case_number: str | None, content: list[tuple[str, str]]) -> str:
    if case_number:
        return f"no:{case_number}"
    joined = "\x1f".join(f"{name}={value}" for name, value in content)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


# Rows ---------------------------------------------------------------------------------------


def _check_row(
    number: int,
    cells: tuple[Cell, ...],
    columns: Columns,
    names: ScamTypeNames,
    now: datetime,
    errors: list[RowError],
) -> Draft | None:
    def cell(name: str) -> Cell:
        i = columns.index.get(name)
        return cells[i] if i is not None and i < len(cells) else None

    def fail(name: str, reason: str) -> None:
        errors.append(RowError(number, name, reason))

    before = len(errors)
    content: list[tuple[str, str]] = []
    case_number = _normal(_text(cell("case_number"))) or None
    if case_number and len(case_number) > MAX_CASE_NUMBER_CHARS:
        fail("case_number", f"longer than {MAX_CASE_NUMBER_CHARS} characters")
    raw_narrative = cell("narrative")
    # Kept as written (police text); it is normalised only where it is read.
    narrative = str(raw_narrative).strip() if not _blank(raw_narrative) else None
    if narrative and len(narrative) > MAX_NARRATIVE_CHARS:
        fail("narrative", f"longer than {MAX_NARRATIVE_CHARS:,} characters")
        narrative = None
    draft = Draft(row_number=number, row_key="", case_number=case_number, narrative=narrative)

    column_day: date | None = None
    time_failed = False
    if columns.has("time") or columns.has("date"):
        try:
            local, column_day, shown = parse_time(cell("time"), cell("date"))
            content.append(("time", local.isoformat() if local else _normal(shown)))
            if local is not None:
                draft.happened_at = _local_to_utc(local, shown, now)
        except ValueError as exc:
            fail("happened_at", str(exc))
            time_failed = True
    if draft.happened_at is None and narrative and not time_failed:
        # The narrative gives the hour the file left out; with a date in the file, only a time
        # on that date is taken (another date would contradict the file).
        found = fraud_time(narrative, column_day.year if column_day else None)
        if found is not None and found.problem:
            fail("happened_at", f"{found.problem} (in the narrative)")
        elif (
            found is not None
            and found.local is not None
            and (column_day is None or found.local.date() == column_day)
        ):
            try:
                draft.happened_at = _local_to_utc(found.local, found.text, now)
            except ValueError as exc:
                fail("happened_at", f"{exc} (in the narrative)")

    type_text = _text(cell("type"))
    if type_text:
        try:
            draft.scam_type = names.code_of(type_text)
            draft.scam_type_source = "given"
        except ValueError as exc:
            fail("scam_type", str(exc))
    content.append(("type", draft.scam_type or ""))
    draft.to_classify = not columns.has("type") and narrative is not None

    loss_cell = cell("loss")
    if not _blank(loss_cell):
        try:
            if isinstance(loss_cell, int | float) and not isinstance(loss_cell, bool):
                if loss_cell < 0:
                    raise ValueError(f"negative amount “{loss_cell}”")
                draft.loss = parse_amount(repr(loss_cell), columns.loss_unit)
            else:
                draft.loss = parse_amount(_text(loss_cell), columns.loss_unit)
        except ValueError as exc:
            fail("loss", str(exc))
    content.append(("loss", "" if draft.loss is None else str(draft.loss.normalize())))
    if draft.loss is None and narrative and _blank(loss_cell):
        found_loss = fraud_loss(narrative)
        if found_loss is not None:
            if found_loss.amount > Decimal(1_000_000_000):
                fail("loss", f"{found_loss.amount:,.0f} yuan in the narrative is not believable")
            else:
                draft.loss = found_loss.amount

    for name, parse in (("age", parse_age), ("gender", parse_gender)):
        try:
            value = parse(cell(name))
        except ValueError as exc:
            fail(name, str(exc))
            value = None
        if name == "age":
            draft.age_group = value
        else:
            draft.gender = value
        content.append((name, value or ""))
    for name, limit in (
        ("occupation", MAX_OCCUPATION_CHARS),
        ("place", MAX_PLACE_CHARS),
        ("residence", MAX_PLACE_CHARS),
    ):
        value = _normal(_text(cell(name))) or None
        if value and len(value) > limit:
            fail(name, f"longer than {limit} characters")
            value = None
        setattr(draft, name, value)
        content.append((name, value or ""))
    content.append(("narrative", _normal(narrative or "")))

    if len(errors) > before:
        return None
    if draft.happened_at is None:
        draft.missing.append("happened_at")
    if draft.scam_type is None and not draft.to_classify:
        draft.missing.append("scam_type")
    if draft.loss is None and (columns.has("loss") or narrative):
        draft.missing.append("loss")
    draft.row_key = _row_key(case_number, content)
    return draft


def check_rows(
    table: Table,
    columns: Columns,
    names: ScamTypeNames,
    *,
    now: datetime | None = None,
    on_row: Callable[[], object] | None = None,
) -> Checked:
    """Validate every row; the drafts of the good ones and every error found."""
    now = now or utcnow()
    errors: list[RowError] = []
    drafts: list[Draft] = []
    for number, cells in table.rows:
        draft = _check_row(number, cells, columns, names, now, errors)
        if draft is not None:
            drafts.append(draft)
        if on_row is not None:
            on_row()
    return Checked(drafts, errors)


Classify = Callable[[str], Awaitable[str | None]]


async def classify_narrative(classifier: Classifier, text: str) -> str | None:
    """The scam type read in a narrative, or ``None`` if no opinion on it is clear.

    The model on the whole narrative, then on the words it quotes, then the red flags, the police
    keywords and the model clause by clause (``campaigns.narrative_type.read_type``): the model
    reads a police retelling as an ordinary text, but the police name the scam in words.
    """
    reading = await read_type(classifier, text)
    return None if reading is None else reading.code


async def classify_drafts(
    drafts: Sequence[Draft],
    classify: Classify,
    *,
    concurrency: int = 8,
    on_done: Callable[[], object] | None = None,
) -> int:
    """Give the drafts that need it a scam type from their narrative; how many got one.

    ``classify`` returns a scam type code, or ``None`` when the classifier does not call the
    narrative a scam (or is not sure enough): then the type is left empty and listed as missing.
    """
    gate = asyncio.Semaphore(max(1, concurrency))
    typed = 0

    async def one(draft: Draft) -> None:
        nonlocal typed
        assert draft.narrative is not None
        async with gate:
            code = await classify(draft.narrative)
        if code is not None and code != NOT_SCAM:
            draft.scam_type, draft.scam_type_source = code, "classifier"
            typed += 1
        elif "scam_type" not in draft.missing:
            draft.missing.append("scam_type")
        draft.to_classify = False
        if on_done is not None:
            on_done()

    await asyncio.gather(*(one(d) for d in drafts if d.to_classify))
    return typed


def to_new_cases(drafts: Sequence[Draft]) -> list[NewCase]:
    """The store's rows; every draft must have been classified if it needed to be."""
    if any(d.to_classify for d in drafts):
        raise ValueError("some rows still need the classifier")
    return [d.to_new_case() for d in drafts]


def read_file(
    path: Path, sheet: str | None = None, on_row: OnRow | None = None
) -> tuple[Table, str]:
    """The table in a file and the sha256 of its bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    return read_table(data, path.name, sheet, on_row), file_sha256(data)


__all__ = [
    "COLUMN_NAMES",
    "SHANGHAI",
    "TYPE_SYNONYMS",
    "Checked",
    "Columns",
    "Draft",
    "ImportFileError",
    "RowError",
    "ScamTypeNames",
    "Table",
    "check_rows",
    "classify_drafts",
    "classify_narrative",
    "decode_csv",
    "file_sha256",
    "map_columns",
    "parse_age",
    "parse_gender",
    "parse_time",
    "read_csv",
    "read_file",
    "read_table",
    "read_xlsx",
    "to_new_cases",
]
