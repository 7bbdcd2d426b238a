"""The Chinese names of campaign statuses, schedules and delivery outcomes, said the same way
by the bot to grid leaders and by ``antifraud campaigns`` to staff."""

from __future__ import annotations

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
STATUS_NAMES = {"active": "进行中", "paused": "已暂停", "ended": "已结束", "cancelled": "已停止"}
KIND_NAMES = {"once": "发一次", "recurring": "每周定时", "peak": "高发时段前"}
DELIVERY_NAMES = {  # in the order reports list them
    "sent": "已发送",
    "failed": "失败",
    "skipped": "跳过",
    "queued": "等待发送",
    "sending": "发送中",
}
OCCURRENCE_NAMES = {"planned": "已安排", "missed": "错过"}
# Why a push was skipped (``bot.store.campaigns``: the reasons as stored).
SKIP_NAMES = {
    "opted_out": "群已退订",
    "quiet_hours": "免打扰时段",
    "budget": "超出每周上限",
    "missed": "错过发送时间",
    "campaign paused": "活动暂停时未发",
    "campaign cancelled": "活动停止时未发",
}
# Why a push failed, by the kind of reason (``bot.store.campaigns._reason_kind``).
FAIL_NAMES = {
    "Forbidden": "机器人被移出群或不能发言",
    "BadRequest": "Telegram 拒收（如群已不存在）",
    "ChatMigrated": "群已升级为超级群",
    "expired": "超过发送时限",
    "interrupted": "发送中断（为防重复不再补发）",
}
