"""``antifraud cases``: import case data, list the cases still to be completed, show peak hours.

``import FILE`` reads a CSV or XLSX file of cases (``campaigns.importer``), validates every row,
reads what it can from the narratives (the classifier, over a Rasa server, only when the file
has narratives and no type column), and stores the file whole or not at all: any row error and
nothing is written (exit 1, every error listed). ``--dry-run`` does all of it but the writing.
``incomplete`` lists the cases with fields a person must still fill in (``--csv OUT`` writes them
to a file that opens in Excel). ``peaks`` is ``campaigns.peaks``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from tqdm import tqdm

from bot.nlp.taxonomy import load_taxonomy
from bot.settings import Settings
from bot.store.cases import CaseView, ImportResult
from bot.store.repo import Store, StoreUnavailable

if TYPE_CHECKING:
    from campaigns.importer import Draft

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_LISTED = 50
_MISSING_NAMES = {"happened_at": "案发时间", "scam_type": "诈骗类型", "loss": "损失金额"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    cases = sub.add_parser("cases", help="import case data, list incomplete cases, peak hours")
    verbs = cases.add_subparsers(dest="verb", required=True)
    imp = verbs.add_parser(
        "import",
        help="import a CSV or XLSX file of cases (all rows or none)",
        description="Validates every row; any error and nothing is imported (exit 1).",
    )
    imp.add_argument("file", help="a .csv (UTF-8, UTF-8 with BOM or GB18030/GBK) or .xlsx file")
    imp.add_argument("--sheet", help="the workbook sheet to read (default: the first)")
    imp.add_argument("--dry-run", action="store_true", help="check and report; write nothing")
    imp.add_argument("--actor", default="cli", help="who is importing (recorded)")
    imp.add_argument("--quiet", action="store_true", help="no progress bars")
    incomplete = verbs.add_parser("incomplete", help="cases with fields still to be completed")
    incomplete.add_argument("--csv", dest="csv_out", metavar="OUT", help="write them to a CSV")
    peaks = verbs.add_parser("peaks", help="the hours each scam type peaks, per audience and area")
    peaks_module = _peaks_module()
    if peaks_module is not None:
        peaks_module.add_arguments(peaks)


def _peaks_module() -> ModuleType | None:
    """``campaigns.peaks``, or ``None`` while it is not there (the other verbs still work)."""
    try:
        from campaigns import peaks
    except ModuleNotFoundError as exc:
        if exc.name != "campaigns.peaks":
            raise
        return None
    return peaks


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.verb == "peaks":
        peaks_module = _peaks_module()
        if peaks_module is None:
            print("antifraud cases peaks: campaigns.peaks is not installed", file=sys.stderr)
            return 2
        return int(peaks_module.run_cli(args, settings))
    store = Store.from_settings(settings)
    try:
        if args.verb == "import":
            return _import(args, settings, store)
        return _incomplete(args, store)
    except StoreUnavailable as exc:
        print(f"antifraud cases: the database is not reachable: {exc}", file=sys.stderr)
        return 1
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else repr(exc)
        print(
            f"antifraud cases: the database refused it ({reason}); is its schema up to date? "
            "(antifraud db upgrade)",
            file=sys.stderr,
        )
        return 1
    finally:
        store.close()


def _bar(total: int | None, desc: str, quiet: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="row", file=sys.stderr, disable=quiet, leave=False)


def _print_capped(lines: Sequence[str], more_hint: str = "") -> None:
    for line in lines[:MAX_LISTED]:
        print(f"  {line}")
    if len(lines) > MAX_LISTED:
        print(f"  and {len(lines) - MAX_LISTED} more{more_hint}")


async def _classify(drafts: list[Draft], settings: Settings, quiet: bool) -> int:
    from bot.nlp.analysis import get_analyzer
    from bot.nlp.classify import Classifier
    from bot.nlp.rasa_server import RasaClient, rasa_server
    from campaigns.importer import classify_drafts, classify_narrative

    total = sum(1 for d in drafts if d.to_classify)
    async with (
        rasa_server(settings) as url,
        RasaClient(url, timeout=settings.rasa_request_timeout) as client,
    ):
        # The analyser (spaCy) loads in seconds: only once Rasa is known to be there.
        analyzer = get_analyzer(settings.taxonomy_path, settings.lookups_dir)
        taxonomy = load_taxonomy(settings.taxonomy_path)
        classifier = Classifier(client, analyzer, taxonomy, settings.scam_threshold)

        async def classify(text: str) -> str | None:
            return await classify_narrative(classifier, text)

        with _bar(total, "classifying", quiet) as bar:
            return await classify_drafts(
                drafts,
                classify,
                concurrency=settings.classify_concurrency,
                on_done=lambda: bar.update(1),
            )


def _import(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from bot.nlp.rasa_server import RasaUnavailable
    from campaigns.importer import (
        ImportFileError,
        ScamTypeNames,
        check_rows,
        map_columns,
        read_file,
        to_new_cases,
    )

    path = Path(args.file)
    prog = "antifraud cases import"
    try:
        with _bar(None, "reading", args.quiet) as bar:
            table, sha256 = read_file(path, args.sheet, on_row=lambda: bar.update(1))
        columns = map_columns(table)
    except ImportFileError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    where = f"sheet “{table.sheet}”" if table.sheet else f"encoding {table.encoding}"
    print(f"{table.name}: {len(table.rows)} rows ({table.kind}, {where})", file=sys.stderr)
    if columns.ignored:
        ignored = ", ".join(f"“{c}”" for c in columns.ignored)
        print(f"{table.name}: columns not used: {ignored}", file=sys.stderr)
    if not table.rows:
        print(f"{prog}: {table.name}: no case rows under the header", file=sys.stderr)
        return 1
    names = ScamTypeNames(load_taxonomy(settings.taxonomy_path))
    with _bar(len(table.rows), "checking", args.quiet) as bar:
        checked = check_rows(table, columns, names, on_row=lambda: bar.update(1))
    if checked.errors:
        rows_hit = len({e.row for e in checked.errors})
        print(
            f"{table.name}: {len(checked.errors)} errors in {rows_hit} of {len(table.rows)} "
            "rows; nothing imported:"
        )
        _print_capped([str(e) for e in checked.errors])
        return 1
    classified = 0
    asked = checked.to_classify
    if asked:
        print(
            f"{table.name}: reading the scam type of {asked} narratives with the classifier",
            file=sys.stderr,
        )
        try:
            classified = asyncio.run(_classify(checked.drafts, settings, args.quiet))
        except (RasaUnavailable, FileNotFoundError) as exc:
            print(
                f"{prog}: the file has narratives and no scam type column, so it needs the "
                f"classifier, which is not available ({exc}); nothing imported. Start it "
                "(make run) or add a 诈骗类型 column.",
                file=sys.stderr,
            )
            return 1
    cases = to_new_cases(checked.drafts)
    result = store.import_cases(
        cases,
        file_name=path.name,
        file_sha256=sha256,
        actor=args.actor,
        dry_run=args.dry_run,
    )
    _report(table.name, result, classified, asked)
    return 0


def _report(name: str, result: ImportResult, classified: int, asked: int) -> None:
    verb = "would be added" if result.dry_run else "added"
    parts = [f"{result.added} {verb}"]
    if result.duplicates:
        detail = []
        if result.duplicates_in_file:
            detail.append(f"{result.duplicates_in_file} repeated in the file")
        already = result.duplicates - result.duplicates_in_file
        if already:
            detail.append(f"{already} already in the store")
        parts.append(f"{result.duplicates} duplicates ({', '.join(detail)})")
    if result.added:
        parts.append(f"{result.with_area} placed in the grid")
    prefix = "dry run, nothing written: " if result.dry_run else ""
    print(f"{prefix}{name}: {result.rows} rows; " + "; ".join(parts))
    if result.import_id is not None:
        print(f"recorded as import #{result.import_id}")
    if asked:
        print(
            f"scam type read from the narrative for {classified} of {asked} rows "
            f"(the rest left empty: not clearly a scam to the classifier)"
        )
    if result.added == 0 and result.rows:
        print("nothing new: every row is already in the store")
    for earlier in result.earlier:
        when = earlier.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        print(
            f"this file was imported before: #{earlier.id} on {when} by {earlier.actor} "
            f"({earlier.added} added)"
        )
    if result.incomplete:
        print(f"{len(result.incomplete)} rows need completing:")
        lines = [
            f"row {row}: {', '.join(_label(f) for f in missing)}"
            for row, missing in result.incomplete
        ]
        _print_capped(lines, ": antifraud cases incomplete lists them all")


def _label(field: str) -> str:
    return f"{field} ({_MISSING_NAMES.get(field, field)})"


def _local(case: CaseView) -> str:
    if case.happened_at is None:
        return ""
    return case.happened_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _incomplete(args: argparse.Namespace, store: Store) -> int:
    cases = store.incomplete_cases()
    if args.csv_out:
        out = Path(args.csv_out)
        try:
            # UTF-8 with a BOM: Excel opens it with the Chinese intact.
            with out.open("w", encoding="utf-8-sig", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(
                    [
                        "导入文件",
                        "行号",
                        "案件编号",
                        "缺少",
                        "案发时间",
                        "诈骗类型",
                        "损失金额",
                        "年龄段",
                        "性别",
                        "职业",
                        "发案地点",
                        "简要案情",
                    ]
                )
                for case in cases:
                    writer.writerow(
                        [
                            case.file_name,
                            case.row_number,
                            case.case_number or "",
                            "、".join(_MISSING_NAMES.get(f, f) for f in case.missing),
                            _local(case),
                            case.scam_type or "",
                            "" if case.loss is None else str(case.loss),
                            case.age_group or "",
                            {"female": "女", "male": "男"}.get(case.gender or "", ""),
                            case.occupation or "",
                            case.place or "",
                            case.narrative or "",
                        ]
                    )
        except OSError as exc:
            print(f"antifraud cases incomplete: cannot write {out}: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {len(cases)} cases needing completion to {out}")
        return 0
    if not cases:
        print("no case needs completing")
        return 0
    for case in cases:
        number = f" {case.case_number}" if case.case_number else ""
        excerpt = (case.narrative or "").replace("\n", " ")
        excerpt = excerpt[:40] + ("…" if len(excerpt) > 40 else "")
        missing = ", ".join(_label(f) for f in case.missing)
        print(f"#{case.id} {case.file_name} row {case.row_number}{number}: {missing}  {excerpt}")
    print(f"{len(cases)} cases need completing", file=sys.stderr)
    return 0
