"""``antifraud reports``: staff review on the command line until the dashboard exists.

``list`` and ``show`` print reports (masked unless ``--reveal``, which is written to the audit
log); ``assign``, ``review``, ``confirm``, ``dismiss`` and ``reopen`` move a report through its
statuses, each move recorded with the actor. Output is plain text, or JSON with ``--json``.
``export-nlu`` writes the reviewed reports as NLU training data for a person to check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.dashboard.nlu_export import export_nlu
from bot.nlp.taxonomy import NOT_SCAM, load_taxonomy
from bot.settings import Settings
from bot.store.repo import InvalidTransition, ReportView, Store, StoreUnavailable

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATUSES = ("new", "assigned", "in_review", "confirmed", "dismissed", "answered")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    reports = sub.add_parser("reports", help="list, show and review reported messages")
    verbs = reports.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="reports, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--json", action="store_true", help="one JSON document")
    show = verbs.add_parser("show", help="one report with its history and indicators")
    show.add_argument("number", type=int)
    show.add_argument("--json", action="store_true")
    show.add_argument("--reveal", action="store_true", help="unmasked text (audited)")
    for verb, text in (
        ("assign", "assign to a staff member"),
        ("review", "mark as being reviewed"),
        ("confirm", "confirm as a scam of a type"),
        ("dismiss", "dismiss: not a scam"),
        ("reopen", "back to review"),
    ):
        move = verbs.add_parser(verb, help=text)
        move.add_argument("number", type=int)
        move.add_argument("--note")
        move.add_argument("--actor", default="cli", help="who is acting (recorded)")
        if verb == "confirm":
            move.add_argument("--type", required=True, dest="scam_type", help="scam type code")
        if verb == "assign":
            move.add_argument("--to", required=True, help="username of the staff member")
    export = verbs.add_parser(
        "export-nlu",
        help="reviewed reports as Rasa NLU training data, for a person to check",
        description="The window is on the verdict's date (Asia/Shanghai), both days included.",
    )
    export.add_argument("--since", metavar="YYYY-MM-DD", help="verdicts from this day on")
    export.add_argument("--until", metavar="YYYY-MM-DD", help="verdicts up to this day")
    export.add_argument("--out", metavar="FILE", help="write here instead of standard output")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def report_record(report: ReportView, *, reveal: bool = False, full: bool = False) -> dict:
    """A report as JSON: masked text and indicators unless ``reveal``."""
    record = {
        "id": report.id,
        "status": report.status,
        "source": report.source,
        "created_at": report.created_at,
        "sender_id": report.sender_id,
        "text": report.text if reveal else report.text_masked,
        "scam_type": report.scam_type,
        "confidence": report.confidence,
        "risk": report.risk,
        "verdict_scam_type": report.verdict_scam_type,
        "money_lost": report.money_lost,
        "amount": report.amount,
        "happened_at": report.happened_at,
        "red_flags": [f.get("text") for f in report.red_flags],
        "indicators": [
            {"kind": i.kind, "value": i.value if reveal else i.masked, "status": i.status}
            for i in report.indicators
        ],
    }
    if full:
        details = dict(report.details)
        if not reveal and "contact" in details:
            details["contact"] = "（已隐藏，--reveal 查看）"
        record["details"] = details
        record["events"] = [asdict(e) for e in report.events]
    return _jsonable(record)


def _local(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else "-"


def _line(report: ReportView) -> str:
    text = " ".join(report.text_masked.split())
    text = text if len(text) <= 40 else text[:39] + "…"
    verdict = report.verdict_scam_type or "-"
    return (
        f"#{report.id:<6} {_local(report.created_at)}  {report.status:<10} {report.risk:<6} "
        f"{report.scam_type:<24} {verdict:<24} {text}"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.from_settings(settings)
    try:
        return _run(args, settings, store)
    except StoreUnavailable as exc:
        print(f"antifraud reports: the database is not reachable: {exc}", file=sys.stderr)
        return 1


def _day(text: str | None, *, after: bool = False) -> datetime | None:
    """Midnight in Shanghai at the start of the day ``text`` names (of the next, ``after``)."""
    if text is None:
        return None
    if not _DATE.fullmatch(text.strip()):
        raise ValueError(f"日期要写成 YYYY-MM-DD，如 2026-11-01：{text!r}")
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"没有这一天：{text}") from exc
    if after:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def _export_nlu(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    prog = "antifraud reports export-nlu"
    try:
        since, until = _day(args.since), _day(args.until, after=True)
        if since is not None and until is not None and since >= until:
            raise ValueError(f"--since {args.since} 在 --until {args.until} 之后")
        result = export_nlu(
            store,
            load_taxonomy(settings.taxonomy_path),
            since=since,
            until=until,
            existing_dir=settings.taxonomy_path.parent / "nlu",
        )
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if args.out:
        try:
            Path(args.out).write_text(result.yaml_text, encoding="utf-8")
        except OSError as exc:
            print(f"{prog}: 写不了 {args.out}：{exc.strerror or exc}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(result.yaml_text)
    counts = "，".join(f"{intent} {n}" for intent, n in result.by_intent.items()) or "无"
    where = f"，写到了 {args.out}" if args.out else ""
    print(
        f"导出 {result.examples} 条例句（{counts}），训练数据里已有的 {result.skipped_known} 条"
        f"没有导出{where}。每一条都要有人检查后才能移进 nlu_data/nlu/",
        file=sys.stderr,
    )
    return 0


def _run(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    if args.verb == "export-nlu":
        return _export_nlu(args, settings, store)
    if args.verb == "list":
        reports = store.list_reports(status=args.status, limit=args.limit, offset=args.offset)
        if args.json:
            print(json.dumps([report_record(r) for r in reports], ensure_ascii=False, indent=1))
        else:
            total = store.count_reports(status=args.status)
            for report in reports:
                print(_line(report))
            print(f"{len(reports)} of {total} reports", file=sys.stderr)
        return 0
    report = store.get_report(args.number)
    if report is None:
        print(f"antifraud reports: no report #{args.number}", file=sys.stderr)
        return 1
    if args.verb == "show":
        if args.reveal:
            store.audit("cli", "report.reveal", "report", report.id)
        record = report_record(report, reveal=args.reveal, full=True)
        if args.json:
            print(json.dumps(record, ensure_ascii=False, indent=1))
        else:
            _print_report(record)
        return 0
    return _move(args, settings, store, report)


def _move(args: argparse.Namespace, settings: Settings, store: Store, report: ReportView) -> int:
    to_status = {
        "assign": "assigned",
        "review": "in_review",
        "confirm": "confirmed",
        "dismiss": "dismissed",
        "reopen": "in_review",
    }[args.verb]
    verdict = None
    if args.verb == "confirm":
        taxonomy = load_taxonomy(settings.taxonomy_path)
        if args.scam_type not in taxonomy.scam_codes or args.scam_type == NOT_SCAM:
            codes = ", ".join(taxonomy.scam_codes)
            print(f"antifraud reports: --type must be one of: {codes}", file=sys.stderr)
            return 2
        verdict = args.scam_type
    note = args.note
    if args.verb == "assign":
        note = f"assigned to {args.to}" + (f": {note}" if note else "")
    try:
        moved = store.transition(
            report.id, to_status, args.actor, note=note, verdict_scam_type=verdict
        )
    except InvalidTransition as exc:
        print(f"antifraud reports: {exc}", file=sys.stderr)
        return 1
    print(_line(moved))
    return 0


def _print_report(record: dict) -> None:
    for key in ("id", "status", "source", "created_at", "sender_id", "scam_type", "confidence"):
        print(f"{key:>18}: {record[key]}")
    for key in ("risk", "verdict_scam_type", "money_lost", "amount", "happened_at"):
        print(f"{key:>18}: {record[key]}")
    print(f"{'text':>18}: {record['text']}")
    print(f"{'red flags':>18}: {'、'.join(str(f) for f in record['red_flags']) or '-'}")
    for ind in record["indicators"]:
        print(f"{'indicator':>18}: {ind['kind']} {ind['value']} ({ind['status']})")
    for key, value in record.get("details", {}).items():
        print(f"{key:>18}: {value}")
    for event in record.get("events", []):
        note = f" ({event['note']})" if event["note"] else ""
        print(
            f"{'history':>18}: {event['at']} {event['from_status'] or '-'} → "
            f"{event['to_status']} by {event['actor']}{note}"
        )
