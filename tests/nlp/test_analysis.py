"""Red flags and indicators through the spaCy pipeline, with positions on the text as sent."""

import pytest

from bot.nlp.analysis import APP, get_analyzer
from bot.settings import Settings

SEED = "用手机下载软件做任务，就能拿订单"


@pytest.fixture(scope="module")
def analyzer():
    settings = Settings.from_env()
    return get_analyzer(settings.taxonomy_path, settings.lookups_dir)


def test_the_seed_message_shows_rebate_red_flags(analyzer):
    result = analyzer.analyse(SEED)
    codes = {f.code for f in result.red_flags}
    assert "rebate" in codes
    for flag in result.red_flags:
        assert SEED[flag.start : flag.end] == flag.text


def test_positions_are_on_the_source_even_when_it_was_traditional_and_full_width(analyzer):
    text = "您涉嫌洗錢，請將資金轉入ＡＱ安全帳戶配合資金清查"
    result = analyzer.analyse(text)
    quoted = {f.text for f in result.red_flags}
    assert "安全帳戶" in quoted
    assert {f.phrase for f in result.red_flags} >= {"安全账户"}
    assert all(text[f.start : f.end] == f.text for f in result.red_flags)


def test_every_red_flag_is_found_inside_a_sentence(analyzer):
    """Jieba must not split a phrase across tokens, or the phrase matcher would miss it.

    A phrase inside a longer red flag ("换号了" in "我换号了") counts as found through that one.
    """
    missed = []
    for scam_type in analyzer.taxonomy.scam_types:
        for phrase in scam_type.red_flags:
            for template in ("他说{}了", "对方让我{}，怎么办", "{}"):
                text = template.format(phrase)
                start = text.index(phrase)
                end = start + len(phrase)
                flags = analyzer.analyse(text).red_flags
                if not any(f.start <= start and end <= f.end for f in flags):
                    missed.append((scam_type.code, text))
    assert not missed


def test_indicators_are_masked_in_records_unless_revealed(analyzer):
    text = "加微信wx_liu8899，或打17096328871，下载金牛任务宝APP，日结300元"
    result = analyzer.analyse(text)
    kinds = {i.kind: i for i in result.indicators}
    assert kinds["phone_mobile"].value == "17096328871"
    masked = {row["kind"]: row for row in result.indicators_dict()}
    assert masked["phone_mobile"]["value"] == "170****8871"
    assert "17096328871" not in str(result.indicators_dict())
    assert "17096328871" in str(result.indicators_dict(reveal=True))
    apps = {i.value for i in result.indicators if i.kind == APP}
    assert "金牛任务宝" in apps


def test_known_app_names_from_the_lookup(analyzer):
    result = analyzer.analyse("在抖音上看到的，让我加Telegram再下载云闪付")
    apps = {i.value for i in result.indicators if i.kind == APP}
    assert {"抖音", "telegram", "云闪付"} <= apps


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀😀😀", "\x00", "🧧" * 2000, "a" * 10_000, "中" * 10_000, "ｓｔｉｃｋｅｒ🎉Ａ"],
)
def test_nasty_input_never_crashes(analyzer, text):
    result = analyzer.analyse(text)
    assert result.text == text
    for item in (*result.red_flags, *result.indicators):
        assert text[item.start : item.end] == item.text


def test_ordinary_chat_has_no_red_flags(analyzer):
    for text in (
        "明天上午9点小区停水，请大家提前储水",
        "谁家的狗跑丢了？在3栋楼下",
        "今天菜市场青菜3元一斤",
    ):
        assert analyzer.analyse(text).red_flags == ()


def test_masked_text_keeps_length_and_hides_personal_data(analyzer):
    text = "打138-1234-5678或加QQ 2837465910，卡号6222 0212 3456 7890 123，网址t.cn/x"
    result = analyzer.analyse(text)
    masked = result.masked_text()
    assert len(masked) == len(text)
    assert "1234-5678" not in masked and "2837465910" not in masked and "3456" not in masked
    assert "138-****-5678" in masked and "t.cn/x" in masked
    for flag in result.red_flags:
        assert masked[flag.start : flag.end] == flag.text
