"""The red-flag highlighter: everything escaped, only our marks added, overlaps merged."""

from __future__ import annotations

from markupsafe import Markup

from bot.dashboard.highlight import flag_phrases, flag_spans, highlight

M, E = '<mark class="flag">', "</mark>"


def test_marks_every_occurrence_of_each_phrase() -> None:
    out = highlight("先做任务，再做任务，然后垫付", ["做任务", "垫付"])
    assert isinstance(out, Markup)
    assert str(out) == f"先{M}做任务{E}，再{M}做任务{E}，然后{M}垫付{E}"


def test_escapes_the_text_and_the_marked_part() -> None:
    text = "<script>alert(1)</script><img src=x onerror=alert(2)> 点<b>链接</b>"
    out = str(highlight(text, ["<b>链接"]))
    assert "<script>" not in out and "<img" not in out and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in out
    assert f"{M}&lt;b&gt;链接{E}&lt;/b&gt;" in out


def test_nested_and_overlapping_phrases_become_one_mark() -> None:
    # 做任务 lies inside 下载软件做任务; 任务导师 overlaps its end.
    out = str(highlight("快下载软件做任务导师带你", ["做任务", "下载软件做任务", "任务导师"]))
    assert out == f"快{M}下载软件做任务导师{E}带你"
    assert flag_spans("aaaa", ["aa"]) == [(0, 4)]
    # Touching but not overlapping: two marks side by side.
    assert str(highlight("垫付返佣", ["垫付", "返佣"])) == f"{M}垫付{E}{M}返佣{E}"


def test_latin_matches_any_case_and_keeps_the_original_letters() -> None:
    out = str(highlight("请下载 ZhaoShang APP 或 app", ["app", "zhaoshang"]))
    assert out == f"请下载 {M}ZhaoShang{E} {M}APP{E} 或 {M}app{E}"
    # A letter whose lowercase is longer keeps the offsets of the rest right.
    assert str(highlight("İ 刷单", ["刷单"])) == f"İ {M}刷单{E}"


def test_emoji_around_and_inside_phrases() -> None:
    out = str(highlight("🎁恭喜中奖🎉领取👉点链接", ["中奖", "👉点链接"]))
    assert out == f"🎁恭喜{M}中奖{E}🎉领取{M}👉点链接{E}"


def test_phrase_not_present_or_empty_changes_nothing_but_escaping() -> None:
    assert str(highlight("普通的消息 & 问候", ["刷单", "", "   "])) == "普通的消息 &amp; 问候"
    assert str(highlight("", ["刷单"])) == ""
    assert str(highlight("刷单", [])) == "刷单"


def test_flag_phrases_reads_the_reports_red_flags() -> None:
    flags = [
        {"code": "rebate", "phrase": "做任务", "text": "做任務", "start": 0, "end": 3},
        {"code": "rebate", "phrase": "做任务"},
        {"code": "x", "phrase": None},
        "not a dict",
    ]
    assert flag_phrases(flags) == ["做任務", "做任务"]
