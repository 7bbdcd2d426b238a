"""Many writers at once: every report lands, shared indicators are counted exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from bot.store import Store
from bot.store.models import ReportEvent, ReportIndicator, ReportMinhashBand, Resident

from .helpers import make_report

THREADS = 8
PER_THREAD = 25
SHARED = [
    ("phone_mobile", "13800138000", "138****8000"),
    ("link", "jd-jr.vip/login", "jd-jr.vip/login"),
    ("wechat", "jdjr2024kf", "jd******kf"),
]


def _indicators(thread: int, n: int) -> list[tuple[str, str, str]]:
    # Every report has the first shared indicator; the others alternate, listed in an order
    # that differs between threads, and each report has one of its own.
    own = ("qq", f"{10000 + thread * 100 + n}", "1****")
    picked = [SHARED[0], SHARED[1 + (n % 2)], own]
    return picked if thread % 2 else picked[::-1]


def _write(store: Store, thread: int) -> list[int]:
    ids = []
    for n in range(PER_THREAD):
        sender = f"r{thread % 3}"  # residents shared between threads too
        text = f"线程{thread}第{n}条：下载APP做任务返佣金"
        ids.append(
            store.add_report(make_report(sender, text, indicators=_indicators(thread, n))).id
        )
    return ids


def test_concurrent_report_writes(store: Store) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda t: _write(store, t), range(THREADS)))
    total = THREADS * PER_THREAD
    ids = [i for batch in results for i in batch]
    assert len(set(ids)) == total
    assert store.count_reports() == total
    counts = store.indicator_statuses([(k, v) for k, v, _ in SHARED])
    assert counts["phone_mobile", "13800138000"].seen_count == total
    even = THREADS * len(range(0, PER_THREAD, 2))
    assert counts["link", "jd-jr.vip/login"].seen_count == even
    assert counts["wechat", "jdjr2024kf"].seen_count == total - even
    with store.engine.connect() as connection:

        def count(model: type) -> int:
            query = sa.select(sa.func.count()).select_from(model)
            return connection.execute(query).scalar_one()

        assert count(ReportEvent) == total
        assert count(ReportMinhashBand) == total * 8
        assert count(ReportIndicator) == total * 3
        assert count(Resident) == 3
