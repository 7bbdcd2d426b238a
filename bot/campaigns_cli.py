"""``antifraud campaigns``: the grid leaders' campaigns for staff, until the dashboard exists.

``list`` shows every campaign (or those one user may see) with its next due time, worked out by
the planner as the scheduler would, and its pushes so far; ``show N`` is a campaign's delivery
report: the groups it targets, pushes by status, why groups were skipped or pushes failed, and
its last occurrences. ``pause``, ``resume`` and ``cancel`` move a campaign (recorded in the
audit log with ``--actor``); ``templates`` lists the message templates. Text for staff is
Chinese; ``--json`` gives the same as JSON. Exit codes as ``antifraud grid``: 1 it could not be
done, 2 the command cannot be understood.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.grid_cli import CliError, dump, guarded, labels_of, person, tag_names, user_by_name
from bot.nlp.taxonomy import Taxonomy, TaxonomyError, load_taxonomy
from bot.settings import Settings
from bot.store.campaigns import (
    SHANGHAI,
    CampaignReport,
    CampaignView,
    campaign_view,
)
from bot.store.errors import NotFound
from bot.store.models import (
    CAMPAIGN_STATUSES,
    Campaign,
    CampaignDelivery,
    CampaignOccurrence,
    User,
)
from bot.store.repo import Store, UserView
from bot.store.rows import user_view
from bot.store.types import utcnow
from campaigns.names import (
    DELIVERY_NAMES,
    FAIL_NAMES,
    KIND_NAMES,
    OCCURRENCE_NAMES,
    SKIP_NAMES,
    STATUS_NAMES,
    WEEKDAYS,
)

LOOKAHEAD = timedelta(days=8)
# verb -> (statuses it moves from, status it moves to, what it is called)
MOVES = {
    "pause": (("active",), "paused", "暂停"),
    "resume": (("paused",), "active", "恢复"),
    "cancel": (("active", "paused"), "cancelled", "停止"),
}
TEXT_PREVIEW_CHARS = 40


def add_parser(sub: argparse._SubParsersAction) -> None:
    campaigns = sub.add_parser("campaigns", help="campaigns: list, delivery reports, pause/resume")
    verbs = campaigns.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="campaigns, newest first, with their next due time")
    listing.add_argument("--status", choices=CAMPAIGN_STATUSES)
    listing.add_argument("--by", metavar="USERNAME", help="only those this user may see")
    listing.add_argument("--json", action="store_true")
    show = verbs.add_parser("show", help="a campaign's delivery report")
    show.add_argument("number", type=int)
    show.add_argument("--occurrences", type=int, default=10, help="how many recent ones")
    show.add_argument("--json", action="store_true")
    for verb, text in (
        ("pause", "pause an active campaign (what waits to be sent is not sent)"),
        ("resume", "resume a paused campaign"),
        ("cancel", "stop a campaign for good"),
    ):
        move = verbs.add_parser(verb, help=text)
        move.add_argument("number", type=int)
        move.add_argument("--actor", default="cli", help="who is acting (recorded)")
    templates = verbs.add_parser("templates", help="the message templates")
    templates.add_argument("--dir", type=Path, help="a templates directory (default: built-in)")
    templates.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, settings: Settings, store: Store | None = None) -> int:
    prog = "antifraud campaigns"
    try:
        taxonomy = load_taxonomy(settings.taxonomy_path)
    except (TaxonomyError, OSError) as exc:
        print(f"{prog}: 读不了诈骗类型表 {settings.taxonomy_path}: {exc}", file=sys.stderr)
        return 1
    if args.verb == "templates":
        return _templates(args, taxonomy)
    if args.verb == "list":
        return guarded(prog, settings, lambda s: _list(args, s, taxonomy), store=store)
    if args.verb == "show":
        return guarded(prog, settings, lambda s: _show(args, s, taxonomy), store=store)
    return guarded(prog, settings, lambda s: _move(args, s), store=store)


# --------------------------------------------------------------------------- wording


def _local(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _type_names(codes: tuple[str, ...], taxonomy: Taxonomy) -> str:
    names = []
    for code in codes:
        try:
            names.append(taxonomy.get(code).name)
        except KeyError:
            names.append(code)
    return "、".join(names) if names else "-"


def describe_schedule(campaign: CampaignView, taxonomy: Taxonomy) -> str:
    """The schedule in words: 发一次 2031-03-03 10:00 / 每周一、周三 09:30、19:00 / ..."""
    schedule = campaign.schedule
    try:
        if campaign.schedule_kind == "once":
            return f"发一次：{_local(datetime.fromisoformat(schedule['at']))}"
        if campaign.schedule_kind == "recurring":
            days = "、".join(WEEKDAYS[d] for d in sorted(set(schedule["weekdays"])))
            return f"每周 {days} {'、'.join(sorted(set(schedule['times'])))}"
        types = _type_names(campaign.scam_types, taxonomy)
        return f"{types}高发时段前 {int(schedule['lead_minutes'])} 分钟"
    except (KeyError, ValueError, TypeError, IndexError):
        return f"{KIND_NAMES.get(campaign.schedule_kind, campaign.schedule_kind)}（安排有误）"


def _counts_text(counts: dict[str, int]) -> str:
    parts = [f"{DELIVERY_NAMES[s]} {counts[s]}" for s in DELIVERY_NAMES if counts.get(s)]
    return "，".join(parts) if parts else "还没有推送"


def _reason_name(reason: str, names: dict[str, str]) -> str:
    return f"{names[reason]}（{reason}）" if reason in names else reason


def _reasons_text(reasons: dict[str, int], names: dict[str, str]) -> str:
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return "，".join(f"{_reason_name(r, names)} {n}" for r, n in ordered)


# --------------------------------------------------------------------------- reading


def _all_campaigns(store: Store, status: str | None) -> list[CampaignView]:
    def work(session: Session) -> list[CampaignView]:
        last = (
            sa.select(
                CampaignOccurrence.campaign_id,
                sa.func.max(CampaignOccurrence.due_at).label("last_due"),
            )
            .group_by(CampaignOccurrence.campaign_id)
            .subquery()
        )
        query = (
            sa.select(Campaign, last.c.last_due)
            .outerjoin(last, last.c.campaign_id == Campaign.id)
            .order_by(Campaign.id.desc())
        )
        if status is not None:
            query = query.where(Campaign.status == status)
        return [campaign_view(c, due) for c, due in session.execute(query).all()]

    return store.run_in(work, write=False)


def _delivery_counts(store: Store) -> dict[int, dict[str, int]]:
    def work(session: Session) -> dict[int, dict[str, int]]:
        rows = session.execute(
            sa.select(
                CampaignDelivery.campaign_id, CampaignDelivery.status, sa.func.count()
            ).group_by(CampaignDelivery.campaign_id, CampaignDelivery.status)
        ).all()
        counts: dict[int, dict[str, int]] = {}
        for campaign_id, status, n in rows:
            counts.setdefault(int(campaign_id), {})[status] = int(n)
        return counts

    return store.run_in(work, write=False)


def _users(store: Store) -> dict[int, UserView]:
    def work(session: Session) -> dict[int, UserView]:
        return {u.id: user_view(u) for u in session.execute(sa.select(User)).scalars()}

    return store.run_in(work, write=False)


def _next_due(
    planner: Any, campaign: CampaignView, now: datetime, problems: list[str]
) -> datetime | None:
    """When the scheduler will push next, within ``LOOKAHEAD``; None if not in that time."""
    if campaign.status != "active":
        return None
    try:
        due = planner.due_times(campaign, now, now + LOOKAHEAD, limit=1)
    except (ValueError, KeyError, TypeError, NotFound) as exc:
        problems.append(f"活动 #{campaign.id} 的下次时间算不出来：{exc}")
        return None
    return due[0][0] if due else None


def _planner(store: Store) -> Any:
    from campaigns.planner import Planner

    return Planner(store, templates={})  # due times need no message text


def _record(
    campaign: CampaignView,
    labels: dict[int, str],
    users: dict[int, UserView],
    next_due: datetime | None,
    counts: dict[str, int],
) -> dict[str, Any]:
    creator = users.get(campaign.created_by) if campaign.created_by is not None else None
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "schedule_kind": campaign.schedule_kind,
        "schedule": campaign.schedule,
        "area_id": campaign.area_id,
        "area": labels.get(campaign.area_id),
        "audience_tags": list(campaign.audience_tags),
        "scam_types": list(campaign.scam_types),
        "template_key": campaign.template_key,
        "text": campaign.text,
        "starts_at": _iso(campaign.starts_at),
        "ends_at": _iso(campaign.ends_at),
        "quiet_start": campaign.quiet_start,
        "quiet_end": campaign.quiet_end,
        "weekly_budget": campaign.weekly_budget,
        "grace_minutes": campaign.grace_minutes,
        "created_by": creator.username if creator else None,
        "created_at": _iso(campaign.created_at),
        "last_due_at": _iso(campaign.last_due_at),
        "next_due_at": _iso(next_due),
        "counts": {s: counts.get(s, 0) for s in DELIVERY_NAMES},
    }


# --------------------------------------------------------------------------- verbs


def _list(args: argparse.Namespace, store: Store, taxonomy: Taxonomy) -> int:
    if args.by is not None:
        user = user_by_name(store, args.by.strip())
        if user is None:
            raise CliError(f"没有用户“{args.by.strip()}”")
        visible = {c.id for c in store.campaigns_visible_to(user.id)}
        campaigns = [c for c in _all_campaigns(store, args.status) if c.id in visible]
    else:
        campaigns = _all_campaigns(store, args.status)
    labels = labels_of(store.areas())
    users = _users(store)
    counts = _delivery_counts(store)
    planner = _planner(store)
    now = utcnow()
    problems: list[str] = []
    records = [
        _record(c, labels, users, _next_due(planner, c, now, problems), counts.get(c.id, {}))
        for c in campaigns
    ]
    for problem in problems:
        print(f"antifraud campaigns: {problem}", file=sys.stderr)
    if args.json:
        dump(records)
        return 0
    for campaign, record in zip(campaigns, records, strict=True):
        creator = users.get(campaign.created_by) if campaign.created_by is not None else None
        next_due = datetime.fromisoformat(record["next_due_at"]) if record["next_due_at"] else None
        c = record["counts"]
        status = STATUS_NAMES.get(campaign.status, campaign.status)
        print(
            f"#{campaign.id:<4} {campaign.name}  {status}"
            f"  {KIND_NAMES.get(campaign.schedule_kind, campaign.schedule_kind)}"
            f"  {record['area'] or campaign.area_id}  创建：{person(creator) if creator else '-'}"
            f"  下次：{_local(next_due)}"
            f"  已发送 {c['sent']} / 失败 {c['failed']} / 跳过 {c['skipped']}"
        )
    print(f"{len(records)} 个活动", file=sys.stderr)
    return 0


def _report_record(
    report: CampaignReport, record: dict[str, Any], taxonomy: Taxonomy
) -> dict[str, Any]:
    return {
        **record,
        "schedule_text": describe_schedule(report.campaign, taxonomy),
        "groups_targeted": report.groups_targeted,
        "counts": {s: report.counts.get(s, 0) for s in DELIVERY_NAMES},
        "skipped": dict(report.skipped),
        "failed": dict(report.failed),
        "occurrences": [
            {
                "id": o.id,
                "due_at": _iso(o.due_at),
                "status": o.status,
                "counts": dict(o.counts),
            }
            for o in report.occurrences
        ],
    }


def _show(args: argparse.Namespace, store: Store, taxonomy: Taxonomy) -> int:
    if args.occurrences < 0:
        raise CliError("--occurrences 不能是负数", 2)
    try:
        report = store.campaign_report(args.number, occurrences=args.occurrences)
    except NotFound as exc:
        raise CliError(f"没有活动 #{args.number}") from exc
    campaign = report.campaign
    labels = labels_of(store.areas())
    users = _users(store)
    problems: list[str] = []
    next_due = _next_due(_planner(store), campaign, utcnow(), problems)
    for problem in problems:
        print(f"antifraud campaigns: {problem}", file=sys.stderr)
    record = _report_record(
        report, _record(campaign, labels, users, next_due, report.counts), taxonomy
    )
    if args.json:
        dump(record)
        return 0
    creator = users.get(campaign.created_by) if campaign.created_by is not None else None
    if campaign.template_key:
        content = f"模板 {campaign.template_key}"
    else:
        text = " ".join((campaign.text or "").split())
        cut = text if len(text) <= TEXT_PREVIEW_CHARS else text[: TEXT_PREVIEW_CHARS - 1] + "…"
        content = f"自己写的：{cut}"
    quiet = (
        f"{campaign.quiet_start}–{campaign.quiet_end}"
        if campaign.quiet_start and campaign.quiet_end
        else "不设"
    )
    lines = [
        f"活动 #{campaign.id} {campaign.name}",
        f"  状态：{STATUS_NAMES.get(campaign.status, campaign.status)}",
        f"  区域：{record['area'] or '-'}（#{campaign.area_id}）",
        f"  人群：{tag_names(campaign.audience_tags) if campaign.audience_tags else '全体居民'}",
        f"  诈骗类型：{_type_names(campaign.scam_types, taxonomy)}",
        f"  内容：{content}",
        f"  安排：{record['schedule_text']}",
        f"  起止：{_local(campaign.starts_at)} 至 {_local(campaign.ends_at)}",
        f"  免打扰：{quiet}；每群每周最多 {campaign.weekly_budget} 次；"
        f"错过后 {campaign.grace_minutes} 分钟内补发",
        f"  创建：{person(creator) if creator else '-'}，{_local(campaign.created_at)}",
        f"  下次发送：{_local(next_due)}",
        f"覆盖群数：{report.groups_targeted}",
        f"推送：{_counts_text(report.counts)}",
    ]
    if report.skipped:
        lines.append(f"跳过原因：{_reasons_text(report.skipped, SKIP_NAMES)}")
    if report.failed:
        lines.append(f"失败原因：{_reasons_text(report.failed, FAIL_NAMES)}")
    if report.occurrences:
        lines.append(f"最近 {len(report.occurrences)} 次：")
        for occurrence in report.occurrences:
            status = OCCURRENCE_NAMES.get(occurrence.status, occurrence.status)
            lines.append(
                f"  {_local(occurrence.due_at)}  {status}  {_counts_text(occurrence.counts)}"
            )
    else:
        lines.append("还没有发送过")
    print("\n".join(lines))
    return 0


def _move(args: argparse.Namespace, store: Store) -> int:
    allowed, to_status, word = MOVES[args.verb]
    actor = args.actor.strip()
    if not actor:
        raise CliError("--actor 不能为空", 2)
    campaign = store.get_campaign(args.number)
    if campaign is None:
        raise CliError(f"没有活动 #{args.number}")
    if campaign.status not in allowed:
        now_name = STATUS_NAMES.get(campaign.status, campaign.status)
        raise CliError(f"活动 #{campaign.id} 现在是“{now_name}”，不能{word}")
    if to_status == "active" and campaign.ends_at is not None and campaign.ends_at <= utcnow():
        raise CliError(
            f"活动 #{campaign.id} 已过结束时间（{_local(campaign.ends_at)}），不能{word}"
        )
    reason = f"campaign {to_status}"  # what set_campaign_status marks queued pushes with
    before = store.campaign_report(campaign.id, occurrences=0).skipped.get(reason, 0)
    moved = store.set_campaign_status(campaign.id, to_status, actor)
    print(
        f"#{moved.id} {moved.name}：{STATUS_NAMES[campaign.status]} → {STATUS_NAMES[moved.status]}"
    )
    stopped = store.campaign_report(campaign.id, occurrences=0).skipped.get(reason, 0) - before
    if stopped > 0:
        print(f"  {stopped} 条等待发送的推送不会再发")
    return 0


def _templates(args: argparse.Namespace, taxonomy: Taxonomy) -> int:
    from campaigns.templates import TEMPLATES_DIR, TemplateError, load_templates

    try:
        templates = load_templates(args.dir or TEMPLATES_DIR, taxonomy=taxonomy)
    except TemplateError as exc:
        print(f"antifraud campaigns: 模板有问题：{exc}", file=sys.stderr)
        return 1
    records = [
        {
            "key": t.key,
            "title": t.title,
            "scam_types": list(t.scam_types),
            "audiences": list(t.audiences),
        }
        for t in templates.values()
    ]
    if args.json:
        dump(records)
        return 0
    for t in templates.values():
        print(
            f"{t.key}  {t.title}  类型：{_type_names(t.scam_types, taxonomy)}"
            f"  人群：{tag_names(t.audiences)}"
        )
    print(f"{len(records)} 个模板", file=sys.stderr)
    return 0
