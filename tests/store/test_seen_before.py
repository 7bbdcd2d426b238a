"""Seen before: staff verdicts on the same text or a near copy, and how often it was reported."""

from __future__ import annotations

from bot.store import Store
from bot.store.similarity import NEAR_THRESHOLD, similarity

from .helpers import make_report

ORIGINAL = (
    "【京东金融】您好，您的账户被检测到异常，需要注销学生贷款记录，否则影响征信。"
    "请添加客服微信jdjr2024kf，或拨打13800138000，按照指引将资金转入安全账户进行验证。"
)
# The same message sent round again: another phone number, a word changed.
REWORDED = (
    "【京东金融】您好，您的账户被检测到异常，需要注销学生贷款记录，不然影响征信。"
    "请添加客服微信jdjr2024kf，或拨打13912345678，按照指引将资金转入安全账户进行验证。"
)
UNRELATED = "社区通知：本周六上午九点在活动中心举办老年人防诈骗讲座，欢迎大家参加。"


def _reviewed(store: Store, text: str, verdict: str | None, sender: str = "r1") -> int:
    report = store.add_report(make_report(sender, text=text, scam_type="loan"))
    if verdict == "not_scam":
        store.transition(report.id, "dismissed", "cli")
    elif verdict is not None:
        store.transition(report.id, "confirmed", "cli", verdict_scam_type=verdict)
    return report.id


def test_the_reworded_copy_is_near_and_the_unrelated_text_is_not() -> None:
    assert similarity(ORIGINAL, REWORDED) >= NEAR_THRESHOLD + 0.1  # 0.73
    assert similarity(ORIGINAL, UNRELATED) < 0.1


def test_exact_match_on_a_confirmed_report(store: Store) -> None:
    report_id = _reviewed(store, ORIGINAL, "loan")
    seen = store.seen_before(ORIGINAL)
    assert seen is not None
    assert (seen.report_id, seen.verdict, seen.scam_type) == (report_id, "confirmed", "loan")
    assert (seen.match, seen.similarity, seen.times_reported) == ("exact", 1.0, 1)


def test_near_match_with_a_changed_phone_number(store: Store) -> None:
    report_id = _reviewed(store, ORIGINAL, "loan")
    seen = store.seen_before(REWORDED)
    assert seen is not None
    assert (seen.report_id, seen.verdict, seen.match) == (report_id, "confirmed", "near")
    assert seen.similarity == similarity(ORIGINAL, REWORDED)
    assert seen.times_reported == 1
    assert store.seen_before(UNRELATED) is None
    assert store.times_reported(UNRELATED) == 0


def test_unreviewed_reports_give_no_verdict_but_are_counted(store: Store) -> None:
    for sender in ("r1", "r2", "r3"):
        _reviewed(store, ORIGINAL, None, sender)
    _reviewed(store, REWORDED, None, "r4")
    store.transition(store.reports_of("r1")[0].id, "in_review", "cli")
    assert store.seen_before(ORIGINAL) is None
    assert store.times_reported(ORIGINAL) == 4
    assert store.times_reported(REWORDED) == 4
    _reviewed(store, UNRELATED, "not_scam", "r5")
    dismissed = store.seen_before(UNRELATED)
    assert dismissed is not None
    assert (dismissed.verdict, dismissed.scam_type, dismissed.times_reported) == (
        "dismissed",
        "not_scam",
        1,
    )
    confirmed = _reviewed(store, ORIGINAL, "loan", "r6")
    seen = store.seen_before(REWORDED)
    assert seen is not None
    assert (seen.report_id, seen.match, seen.times_reported) == (confirmed, "near", 5)


def test_the_most_recent_review_wins_and_answered_keeps_its_verdict(store: Store) -> None:
    first = _reviewed(store, ORIGINAL, "loan", "r1")
    second = _reviewed(store, ORIGINAL, "not_scam", "r2")
    seen = store.seen_before(ORIGINAL)
    assert seen is not None
    assert (seen.report_id, seen.verdict, seen.times_reported) == (second, "dismissed", 2)
    store.transition(second, "in_review", "cli")  # reopened: no verdict while in review
    seen = store.seen_before(ORIGINAL)
    assert seen is not None and seen.report_id == first
    store.transition(first, "answered", "bot")
    seen = store.seen_before(ORIGINAL)
    assert seen is not None
    assert (seen.report_id, seen.verdict, seen.scam_type) == (first, "confirmed", "loan")


def test_an_exact_copy_wins_over_a_more_recent_near_one(store: Store) -> None:
    exact = _reviewed(store, ORIGINAL, "loan", "r1")
    _reviewed(store, REWORDED, "not_scam", "r2")
    seen = store.seen_before(ORIGINAL)
    assert seen is not None
    assert (seen.report_id, seen.match) == (exact, "exact")


def test_short_and_empty_texts(store: Store) -> None:
    _reviewed(store, "转账", "loan")
    seen = store.seen_before("转账")
    assert seen is not None and seen.match == "exact"
    assert store.seen_before("转") is None
    _reviewed(store, "", "not_scam", "r2")
    empty = store.seen_before("")
    assert empty is not None and empty.match == "exact"


def test_look_up_gives_the_verdict_and_the_count_in_one_pass(store: Store) -> None:
    _reviewed(store, ORIGINAL, None, "r1")
    assert store.look_up(REWORDED) == (None, 1)
    report_id = _reviewed(store, ORIGINAL, "loan", "r2")
    seen, count = store.look_up(REWORDED)
    assert count == 2 and seen is not None and seen.report_id == report_id
    assert seen == store.seen_before(REWORDED) and count == store.times_reported(REWORDED)
