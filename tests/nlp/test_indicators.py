"""Indicator extraction on realistic and on nasty input."""

import time

import pytest

from bot.nlp import indicators as ind
from bot.nlp.indicators import find_indicators, mask
from bot.nlp.normalize import normalize_text


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in find_indicators(normalize_text(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客服电话17096328871", (ind.PHONE_MOBILE, "17096328871")),
        ("打 +86 138-1234-5678 联系", (ind.PHONE_MOBILE, "13812345678")),
        ("座机0571-86523311", (ind.PHONE_LANDLINE, "057186523311")),
        ("还说不能告诉家人，电话02187654321", (ind.PHONE_LANDLINE, "02187654321")),
        ("请拨打：057186523311核实", (ind.PHONE_LANDLINE, "057186523311")),
        ("请拨打4008123456", (ind.PHONE_SERVICE, "4008123456")),
        ("工行客服95588", (ind.PHONE_SERVICE, "95588")),
        ("点击 http://t.cn/A6xYz3 领取", (ind.LINK, "http://t.cn/A6xYz3")),
        (
            "登录 https://JD-Refund.VIP/claim?id=9 退款",
            (ind.LINK, "https://jd-refund.vip/claim?id=9"),
        ),
        ("打开www点abc123点com注册", (ind.LINK, "www.abc123.com")),
        ("网址 abc123 . com 看看", (ind.LINK, "abc123.com")),
        ("卡号6222021234567890123转过来", (ind.BANK_CARD, "6222021234567890123")),
        ("账号 6217 0012 3456 7890 转账", (ind.BANK_CARD, "6217001234567890")),
        ("加QQ:2837465910领奖", (ind.QQ, "2837465910")),
        ("加薇信 wx_liu8899 详聊", (ind.WECHAT, "wx_liu8899")),
        ("ＶＸ：ab12345", (ind.WECHAT, "ab12345")),
        ("日结200元", (ind.MONEY, "200")),
        ("返利3.8万", (ind.MONEY, "38000")),
        ("先交￥1,200保证金", (ind.MONEY, "1200")),
        ("转了五千元", (ind.MONEY, "5000")),
    ],
)
def test_finds_indicator(text, expected):
    assert expected in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "订单号20231112345678901已发货",  # order number, not a phone or a card
        "快递单号 SF1234567890123",
        "今天是20231115，明天见",
        "我家门牌号是1栋2单元1301",
        "邮编310000",
        "验证码123456，请勿泄露",
        "12345678901234",  # 14 digits: no phone, no card
        "138123456789",  # 12 digits: too long for a mobile
        "流水号02187654321已受理",  # a bare 0-number with no word for a phone before it
    ],
)
def test_numbers_that_are_not_phones(text):
    found = kinds(text)
    assert not [k for k, _ in found if k.startswith("phone") or k == ind.BANK_CARD], found


def test_identity_number_is_not_a_card():
    found = kinds("身份证330102199001011234")
    assert found == [(ind.ID_NUMBER, "330102199001011234")]


def test_wechat_id_that_is_a_mobile_is_reported_once():
    assert kinds("微信13912345678") == [(ind.WECHAT, "13912345678")]


@pytest.mark.parametrize("text", ["", " ", "😀" * 500, "\x00\x01\x02", "🧧💰👉" * 30])
def test_empty_and_emoji_only_find_nothing(text):
    assert kinds(text) == []


def test_mixed_scripts():
    found = kinds("Hi 朋友, call ＋８６ 139 1234 5678 or visit bit-cash.top 🎁")
    assert (ind.PHONE_MOBILE, "13912345678") in found
    assert (ind.LINK, "bit-cash.top") in found


def test_ten_thousand_characters_are_handled_quickly():
    text = ("群里有人说做任务返佣金，联系17096328871，网址www.abc.com。" * 250)[:10_000]
    start = time.perf_counter()
    found = kinds(text)
    assert time.perf_counter() - start < 5.0  # a guard against catastrophic backtracking
    assert sum(1 for k, _ in found if k == ind.PHONE_MOBILE) >= 200


def test_mask_hides_personal_data_only():
    assert mask(ind.PHONE_MOBILE, "17096328871") == "170****8871"
    assert mask(ind.BANK_CARD, "6222021234567890123") == "6222***********0123"
    assert mask(ind.QQ, "2837465910") == "28******10"
    assert mask(ind.WECHAT, "wx_liu8899") == "wx******99"
    assert mask(ind.LINK, "http://t.cn/A6xYz3") == "http://t.cn/A6xYz3"
    assert mask(ind.MONEY, "5000") == "5000"
