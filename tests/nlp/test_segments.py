"""Long messages judged part by part: which parts, and when the parts outvote the whole."""

from __future__ import annotations

from bot.nlp.decision import HIGH, LOW, MEDIUM, Verdict
from bot.nlp.segments import combine, parts_of

CHAT_LOG = (
    "15:16 64\n客服-小雨\n下午3:02\n您好，欢迎加入兼职群，日结工资，每单返佣金10%-30%\n"
    "是的亲，先下载我们的APP「淘单宝」，注册后做刷单任务，垫付越多返利越多。\n下午3:15\n要先交钱吗？"
)
NOT = Verdict("not_scam", False, 0.99, "not_scam", LOW)


def scam(code: str, confidence: float) -> Verdict:
    return Verdict(code, True, confidence, f"scam_{code}", HIGH)


def test_short_messages_are_judged_whole() -> None:
    assert parts_of("用手机下载软件做任务，就能拿订单") == []
    assert parts_of("你好\n在吗") == []


def test_a_chat_log_is_cut_into_its_messages_without_times_and_names() -> None:
    parts = parts_of(CHAT_LOG)
    assert parts == [
        "您好，欢迎加入兼职群，日结工资，每单返佣金10%-30%",
        "是的亲，先下载我们的APP「淘单宝」，注册后做刷单任务，垫付越多返利越多。",
        "要先交钱吗？",
    ]


def test_a_long_line_is_cut_at_sentence_ends_and_parts_are_capped() -> None:
    line = "".join(f"第{i}句话说的是一件很平常的事情。" for i in range(30))
    parts = parts_of(line)
    assert len(parts) == 12 and parts[0] == "第0句话说的是一件很平常的事情。"
    assert parts_of("😀" * 200) == []


def test_two_parts_of_one_type_outvote_the_whole(analyzer) -> None:
    analysis = analyzer.analyse(CHAT_LOG)
    verdict = combine(NOT, [scam("rebate", 0.93), NOT, scam("rebate", 0.85)], analysis)
    assert (verdict.scam_type, verdict.confidence, verdict.risk) == ("rebate", 0.93, HIGH)
    assert verdict.intent == "not_scam"  # what the model said of the whole is kept


def test_one_part_needs_red_flags_in_the_whole(analyzer) -> None:
    plain = analyzer.analyse("今天天气不错\n我们去公园走走吧，顺便买点菜\n晚上一起吃饭")
    assert combine(NOT, [scam("rebate", 0.95), NOT, NOT], plain) == NOT
    flagged = analyzer.analyse(CHAT_LOG)
    assert combine(NOT, [scam("rebate", 0.95), NOT, NOT], flagged).is_scam
    assert combine(NOT, [scam("rebate", 0.6), NOT, NOT], flagged).risk == MEDIUM


def test_parts_of_different_types_do_not_add_up(analyzer) -> None:
    plain = analyzer.analyse("今天天气不错\n我们去公园走走吧，顺便买点菜\n晚上一起吃饭")
    assert combine(NOT, [scam("rebate", 0.9), scam("loan", 0.9)], plain) == NOT
    whole = scam("loan", 0.97)
    assert combine(whole, [scam("rebate", 0.9), scam("rebate", 0.9)], plain) is whole
