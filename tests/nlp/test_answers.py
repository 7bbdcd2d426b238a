"""Reading the report form's short answers: cancel, none, yes/no, amounts and times."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.nlp.answers import (
    EARLIEST,
    FUTURE_SLACK,
    MAX_CHARS,
    SHANGHAI,
    When,
    is_cancel,
    is_none_answer,
    parse_amount,
    parse_amounts,
    parse_when,
    parse_when_all,
    parse_yes_no,
)

# A Wednesday afternoon; Monday of this week is 11-30, last week's Monday 11-23.
NOW = datetime(2026, 12, 2, 14, 0, tzinfo=SHANGHAI)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# --------------------------------------------------------------------------- cancel


@pytest.mark.parametrize(
    "text",
    [
        "取消",
        "算了",
        "算了算了",
        "算了吧😂",
        "不报了",
        "不举报了",
        "我不想报了",
        "退出",
        "停",
        "停止",
        "不想说了",
        "不用了",
        "不用了，谢谢",
        "/cancel",
        "cancel",
        "STOP!",
        "別問了",  # traditional
        "取消举报",
    ],
)
def test_cancel(text):
    assert is_cancel(text)


@pytest.mark.parametrize(
    "text",
    [
        "没有",
        "不知道",
        "对方说要取消我的会员",  # an answer that mentions 取消
        "停车场里有人给我发传单",
        "不是",
        "",
        "   ",
    ],
)
def test_not_cancel(text):
    assert not is_cancel(text)


# --------------------------------------------------------------------------- none / don't know


@pytest.mark.parametrize(
    "text",
    [
        "没有",
        "没",
        "无",
        "不知道",
        "不清楚",
        "不记得",
        "不记得了😅",
        "忘了",
        "忘记了",
        "跳过",
        "没留",
        "对方没给",
        "没有号码",
        "无号码",
        "-",
        "－",
        "/",
        "我也不知道他的号码",
        "没有留电话",
        "没有。谢谢",
        "記不清了",  # traditional
        "n/a",
    ],
)
def test_none_answer(text):
    assert is_none_answer(text)


@pytest.mark.parametrize(
    "text",
    [
        "我没有给他钱但是他一直打电话让我下载一个软件",  # a story, not a none-answer
        "13812345678",
        "不是",
        "算了",
        "",
        " \t\n",
        "?",
    ],
)
def test_not_none_answer(text):
    assert not is_none_answer(text)


# --------------------------------------------------------------------------- yes / no


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("是", True),
        ("是的", True),
        ("对", True),
        ("嗯", True),
        ("嗯嗯", True),
        ("有", True),
        ("转了", True),
        ("已经转了", True),
        ("付了", True),
        ("汇了", True),
        ("给了", True),
        ("被骗了钱", True),
        ("转了3000", True),
        ("付了两次", True),
        ("有转", True),
        ("转了没到账", True),
        ("轉了👍", True),
        ("我没转，我老公转了", True),
        ("他让我转了三千", True),
        ("用支付宝付了3000", True),
        ("损失了两万", True),
        ("yes", True),
        ("Y", True),
        ("1", True),
        ("money_yes", True),
        ("/money_yes", True),
        ("不是", False),
        ("没有", False),
        ("没", False),
        ("没转", False),
        ("没有转", False),
        ("还没", False),
        ("否", False),
        ("没付", False),
        ("一分没给", False),
        ("差点转了但没转", False),
        ("差点就转了", False),
        ("嗯，没转", False),
        ("他让我转但我没转", False),
        ("转账失败了", False),
        ("沒有轉", False),  # traditional
        ("no", False),
        ("n", False),
        ("0", False),
        ("money_no", False),
        ("不确定", None),
        ("可能吧", None),
        ("好像转了", None),
        ("不知道", None),
        ("今天天气不错", None),
        ("他给了我一个链接", None),  # 给 without money
        ("他叫我转账", None),  # asked to, not said to have done it
        ("", None),
        ("   ", None),
        ("🙏", None),
    ],
)
def test_yes_no(text, expected):
    assert parse_yes_no(text) is expected


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3000", "3000"),
        ("3000元", "3000"),
        ("3,000", "3000"),
        ("3千", "3000"),
        ("三千块", "3000"),
        ("两万五", "25000"),
        ("兩萬五", "25000"),  # traditional
        ("2.5万", "25000"),
        ("一万二千元", "12000"),
        ("¥1200", "1200"),
        ("￥1,200.50", "1200.50"),
        ("RMB 500", "500"),
        ("5百", "500"),
        ("五百多", "500"),
        ("大概1万左右", "10000"),
        ("３０００", "3000"),
        ("３０００元😭", "3000"),
        ("2万5", "25000"),
        ("1.2w", "12000"),
        ("3k", "3000"),
        ("一千零五十块", "1050"),
        ("壹仟伍佰圆整", "1500"),
        ("五十", "50"),
        ("先转了500又转了2000", "2500"),
        ("先转了500又转了2000元", "2500"),
        ("转了两次，一共3000", "3000"),  # 两次 is a count; 一共 is the total
        ("先转500，又转2000，一共2500", "2500"),  # the stated total, not 5000
        ("12.1转了3000元", "3000"),  # the date is not money
        ("12月1日转了3000", "3000"),
        ("2026-11-30 15:00转了800", "800"),
        ("三四千", "4000"),  # a range counts as its upper end
        ("3000-4000元", "4000"),
        ("3-4万", "40000"),
        ("第3次转了500", "500"),
        ("周三转了五百", "500"),
        ("尾号1234的卡转了600", "600"),
    ],
)
def test_amount(text, expected):
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize(
    "text",
    [
        "没有",
        "不知道",
        "0",
        "0元",
        "-500",
        "20亿",
        "10000000000",
        "一分没给",
        "转了两次",
        "几千块",
        "千万别转",
        "",
        "  ",
        "😀",
    ],
)
def test_no_amount(text):
    assert parse_amount(text) is None
    assert parse_amounts(text) == []


def test_amounts_lists_each_transfer():
    assert parse_amounts("先转了500又转了2000") == [Decimal(500), Decimal(2000)]
    assert parse_amounts("先转500，又转2000，一共2500") == [Decimal(500), Decimal(2000)]
    assert parse_amounts("一共3000") == [Decimal(3000)]


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("text", "expected", "precision"),
    [
        ("刚才", at(2026, 12, 2, 14, 0), "minute"),
        ("刚刚", at(2026, 12, 2, 14, 0), "minute"),
        ("刚", at(2026, 12, 2, 14, 0), "minute"),
        ("今天", at(2026, 12, 2), "day"),
        ("昨天", at(2026, 12, 1), "day"),
        ("前天", at(2026, 11, 30), "day"),
        ("大前天", at(2026, 11, 29), "day"),
        ("今天上午", at(2026, 12, 2, 6), "day"),  # a day-part alone: its start
        ("昨天下午", at(2026, 12, 1, 12), "day"),
        ("昨晚", at(2026, 12, 1, 18), "day"),
        ("今天下午1点半", at(2026, 12, 2, 13, 30), "minute"),
        ("今天凌晨三点半", at(2026, 12, 2, 3, 30), "minute"),
        ("今天中午12点", at(2026, 12, 2, 12), "hour"),
        ("今天上午9点", at(2026, 12, 2, 9), "hour"),
        ("今天下午13:45", at(2026, 12, 2, 13, 45), "minute"),
        ("今天下午1点20分", at(2026, 12, 2, 13, 20), "minute"),
        ("昨天下午15点20分", at(2026, 12, 1, 15, 20), "minute"),
        ("昨天傍晚6点", at(2026, 12, 1, 18), "hour"),
        ("昨晚8点", at(2026, 12, 1, 20), "hour"),
        ("昨天晚上8点多", at(2026, 12, 1, 20), "hour"),
        ("昨天下午三點", at(2026, 12, 1, 15), "hour"),  # traditional
        ("昨天下午３点", at(2026, 12, 1, 15), "hour"),  # full-width
        ("😀昨天下午3点😀", at(2026, 12, 1, 15), "hour"),
        ("昨天 下午 3点", at(2026, 12, 1, 15), "hour"),
        ("昨天大概下午3点", at(2026, 12, 1, 15), "hour"),
        ("昨天晚上12点", at(2026, 12, 1, 23, 59), "hour"),  # the end of that evening
        ("昨天晚上12点半", at(2026, 12, 2, 0, 30), "minute"),
        ("昨天晚上1点", at(2026, 12, 2, 1), "hour"),  # the small hours after that evening
        ("凌晨2点", at(2026, 12, 2, 2), "hour"),
        ("下午3点", at(2026, 12, 1, 15), "hour"),  # no date, 15:00 today is still to come
        ("1点半", at(2026, 12, 2, 13, 30), "minute"),  # the most recent 1:30
        ("三点", at(2026, 12, 2, 3), "hour"),
        ("十点", at(2026, 12, 2, 10), "hour"),
        ("15:30", at(2026, 12, 1, 15, 30), "minute"),
        ("前两天", at(2026, 11, 30), "day"),
        ("两天前", at(2026, 11, 30), "day"),
        ("3天前", at(2026, 11, 29), "day"),
        ("一周前", at(2026, 11, 25), "day"),
        ("2小时前", at(2026, 12, 2, 12), "hour"),
        ("半小时前", at(2026, 12, 2, 13, 30), "minute"),
        ("10分钟前", at(2026, 12, 2, 13, 50), "minute"),
        ("上周", at(2026, 11, 23), "day"),  # a week alone: its Monday
        ("上个星期", at(2026, 11, 23), "day"),
        ("上周三", at(2026, 11, 25), "day"),
        ("上个礼拜天下午", at(2026, 11, 29, 12), "day"),
        ("上周末", at(2026, 11, 28), "day"),
        ("这周一", at(2026, 11, 30), "day"),
        ("周日", at(2026, 11, 29), "day"),
        ("上个月", at(2026, 11, 1), "month"),
        ("3个月前", at(2026, 9, 1), "month"),
        ("上个月15号", at(2026, 11, 15), "day"),
        ("12月1日", at(2026, 12, 1), "day"),
        ("12月1号", at(2026, 12, 1), "day"),
        ("十二月一号", at(2026, 12, 1), "day"),
        ("１２月１日", at(2026, 12, 1), "day"),
        ("12.1", at(2026, 12, 1), "day"),
        ("11/30", at(2026, 11, 30), "day"),
        ("1月5日", at(2026, 1, 5), "day"),  # in December: this year's January
        ("12月17日", at(2025, 12, 17), "day"),  # not yet this year: last year's
        ("15号", at(2026, 11, 15), "day"),
        ("31号", at(2026, 10, 31), "day"),  # November has no 31st
        ("2月29日", at(2024, 2, 29), "day"),
        ("11月", at(2026, 11, 1), "month"),
        ("去年12月5号", at(2025, 12, 5), "day"),
        ("2026-11-30", at(2026, 11, 30), "day"),
        ("2026.11.30", at(2026, 11, 30), "day"),
        ("2026/11/30 15:00", at(2026, 11, 30, 15), "minute"),
        ("２０２６／１１／３０　１５：００", at(2026, 11, 30, 15), "minute"),
        ("2022年12月17日22时30分许", at(2022, 12, 17, 22, 30), "minute"),
        ("2022年12月17日22时许", at(2022, 12, 17, 22), "hour"),
        ("二〇二二年十二月十七日", at(2022, 12, 17), "day"),
        ("2022年12月", at(2022, 12, 1), "month"),
        ("11月30日下午3点", at(2026, 11, 30, 15), "hour"),
        ("11月30日下午三点半", at(2026, 11, 30, 15, 30), "minute"),
        ("12月1日晚上9点半", at(2026, 12, 1, 21, 30), "minute"),
        ("大概是上周三下午", at(2026, 11, 25, 12), "day"),
    ],
)
def test_when(text, expected, precision):
    when = parse_when(text, NOW)
    assert when is not None, text
    assert (when.at, when.precision) == (expected, precision)
    assert when.at.tzinfo is not None
    assert when.at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    "text",
    [
        "今天下午3点",  # 15:00 today is an hour away
        "今天晚上",
        "今天15:30",
        "明天下午3点",
        "下周三",
        "3天后",
        "2月30日",
        "13月1日",
        "25点",
        "昨天25点",
        "昨天3点61分",
        "2026年2月29日",
        "1989年5月1日",  # before 1990
        "2027年1月1日",
        "不记得了",
        "我有一点怕",  # 一点 is "a little"
        "转了2.5万",
        "",
        "   ",
        "🕒",
    ],
)
def test_no_when(text):
    assert parse_when(text, NOW) is None


def test_when_keeps_the_words_as_written():
    when = parse_when("大概是昨天下午三點左右吧", NOW)
    assert when is not None
    assert when.text == "昨天下午三點左右"


def test_a_few_minutes_ahead_is_tolerated():
    assert parse_when("今天14:04", NOW) == When(at(2026, 12, 2, 14, 4), "minute", "今天14:04")
    assert parse_when("今天14:06", NOW) is None


def test_year_rollover():
    early_january = datetime(2026, 1, 3, 9, 0, tzinfo=SHANGHAI)
    when = parse_when("12月30日", early_january)
    assert when is not None and when.at == at(2025, 12, 30)
    when = parse_when("上个月", early_january)
    assert when is not None and when.at == at(2025, 12, 1)


def test_now_in_another_zone():
    utc_now = NOW.astimezone(timezone.utc)
    when = parse_when("昨天下午3点", utc_now)
    assert when is not None and when.at == at(2026, 12, 1, 15)


def test_case_narrative_times_in_order():
    narrative = (
        "2022年12月17日22时30分许，受害人李某在家中接到自称客服的电话，称其账户异常，"
        "诱导其下载APP并转账。受害人于23时许先后转账3笔共计5.6万元，次日上午9点发现被骗后"
        "报警。"
    )
    found = parse_when_all(narrative, NOW)
    assert [(w.at, w.precision, w.text) for w in found] == [
        (at(2022, 12, 17, 22, 30), "minute", "2022年12月17日22时30分许"),
        (at(2022, 12, 17, 23), "hour", "23时许"),  # the date mentioned before
        (at(2022, 12, 18, 9), "hour", "次日上午9点"),
    ]
    assert parse_amount(narrative) == Decimal(56000)


def test_when_all_skips_impossible_and_future():
    found = parse_when_all("2月30日说要转，明天再说，昨天转了", NOW)
    assert [w.text for w in found] == ["昨天"]


def test_anchor_words_need_a_date_before_them():
    assert parse_when("当晚", NOW) is None
    assert parse_when("次日", NOW) is None


# --------------------------------------------------------------------------- robustness


LONG = ("昨天下午三点转了3000元😀没有取消" * 800)[:10_000]
AT_CAP = LONG[:MAX_CHARS]


@pytest.mark.parametrize("text", [LONG, AT_CAP])
def test_long_text_is_fast(text):
    start = time.perf_counter()
    is_cancel(text)
    is_none_answer(text)
    parse_yes_no(text)
    parse_amount(text)
    parse_amounts(text)
    parse_when(text, NOW)
    parse_when_all(text, NOW)
    assert time.perf_counter() - start < 0.2  # seven calls; one is well under 50 ms


@pytest.mark.parametrize(
    "reader",
    [
        is_cancel,
        is_none_answer,
        parse_yes_no,
        parse_amount,
        parse_amounts,
        lambda t: parse_when(t, NOW),
        lambda t: parse_when_all(t, NOW),
    ],
)
def test_each_reader_is_fast_on_10k(reader):
    for text in (LONG, AT_CAP):
        start = time.perf_counter()
        reader(text)
        assert time.perf_counter() - start < 0.05


def test_texts_beyond_the_cap_are_not_read_unless_asked():
    assert parse_when_all(LONG, NOW) == []
    assert len(parse_when_all(AT_CAP, NOW)) > 100
    assert len(parse_when_all(LONG, NOW, max_chars=None)) > 500


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_no_reader_raises(text):
    assert isinstance(is_cancel(text), bool)
    assert isinstance(is_none_answer(text), bool)
    assert parse_yes_no(text) in (True, False, None)
    amount = parse_amount(text)
    assert amount is None or Decimal(0) < amount <= Decimal(10**9)
    assert all(a > 0 for a in parse_amounts(text))


# Text made of the pieces time expressions are built from, so that Hypothesis reaches the parser.
_TIMEY = st.lists(
    st.sampled_from(
        list("0123456789０１２:./-年月日号点时分半前后天周上下这本昨今刚晚早凌午中夜当次")
        + list("一二两三四五六七八九十")
        + ["星期", "礼拜", "小时", "分钟", "个月", "去年", "大前天", " ", "许", "多"]
    ),
    max_size=20,
).map("".join)


@given(st.one_of(st.text(max_size=200), _TIMEY))
@settings(max_examples=500, deadline=None)
def test_when_never_future_nor_before_1990(text):
    for when in parse_when_all(text, NOW):
        assert EARLIEST <= when.at <= NOW + FUTURE_SLACK
        assert when.precision in ("minute", "hour", "day", "month")
        assert when.text and when.text in text


@given(
    _TIMEY,
    st.datetimes(min_value=datetime(1991, 1, 1), max_value=datetime(2090, 1, 1)),
)
@settings(max_examples=300, deadline=None)
def test_when_respects_any_now(text, naive_now):
    now = naive_now.replace(tzinfo=SHANGHAI)
    for when in parse_when_all(text, now):
        assert EARLIEST <= when.at <= now + FUTURE_SLACK
