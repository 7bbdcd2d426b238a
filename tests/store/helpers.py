"""Building blocks shared by the store tests."""

from __future__ import annotations

from decimal import Decimal

from bot.store import NewReport

SCAM_TEXT = "有人让我下载APP做任务返佣金，说先垫付500元就能拿订单，客服电话13800138000"


def make_report(
    sender_id: str = "r1",
    text: str = SCAM_TEXT,
    *,
    indicators: list[tuple[str, str, str]] | None = None,
    **fields: object,
) -> NewReport:
    """A NewReport as the bot would file it; ``text`` is taken as already normalised."""
    values: dict[str, object] = {
        "sender_id": sender_id,
        "channel": "rest",
        "text": text,
        "text_masked": text.replace("13800138000", "138****8000"),
        "normalized": text,
        "source": "check",
        "scam_type": "rebate",
        "confidence": 0.93,
        "risk": "high",
        "intent": "scam_rebate",
        "red_flags": [{"code": "rebate", "phrase": "做任务"}],
        "indicators": indicators
        if indicators is not None
        else [("phone_mobile", "13800138000", "138****8000"), ("money", "500", "500")],
        "details": {},
        "amount": Decimal("500.00"),
    }
    values.update(fields)
    return NewReport(**values)  # type: ignore[arg-type]
