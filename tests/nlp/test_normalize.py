"""Normalisation: what scammers do to dodge filters folds to one form, offsets stay exact."""

from hypothesis import given
from hypothesis import strategies as st

from bot.nlp.normalize import normalize, normalize_text


def test_full_width_traditional_and_spacing_fold_to_one_form():
    assert normalize_text("下載ＡＰＰ做任務　返傭金") == "下载APP做任务返佣金"
    assert normalize_text("刷 单 返 利，加 Ｖ 信") == "刷单返利,加V信"
    assert normalize_text("轉帳到安全帳戶") == "转账到安全账户"


def test_invisible_characters_are_dropped():
    assert normalize_text("安\u200b全\u200d账\ufeff户") == "安全账户"


def test_spaces_between_latin_words_are_kept_once():
    assert normalize_text("call   me  now") == "call me now"


def test_empty_and_emoji_only():
    assert normalize("").text == ""
    assert normalize("😀😀🧧").text == "😀😀🧧"
    assert normalize("   \n\t ").text == ""


def test_offsets_point_back_into_the_source():
    source = "請 點 擊ｈｔｔｐ：//ｔ．ｃｎ/Ａ１ 領取"
    norm = normalize(source)
    start = norm.text.index("http")
    s, e = norm.to_source(start, start + 4)
    assert source[s:e] == "ｈｔｔｐ"


@given(st.text(max_size=300))
def test_any_text_maps_back_without_error(text):
    norm = normalize(text)
    assert len(norm.origin) == len(norm.text)
    assert list(norm.origin) == sorted(norm.origin)
    if norm.text:
        s, e = norm.to_source(0, len(norm.text))
        assert 0 <= s < e <= len(text)
