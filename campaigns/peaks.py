"""Peak windows from the case data in the store, per area where it has enough cases.

``peaks_for`` reads the ``cases`` table and hands the counts to ``campaigns.incidence``. A
community or a grid rarely has many cases of one type for one audience, so when the requested
area (with everything below it) has fewer than ``min_cases``, the analysis moves up the tree
(building → grid → community) and finally to every case, and says so (``fell_back``,
``reason``). Below ``min_cases`` even there, no peak is looked for.

Which cases: those with a time and a scam type, happened at or before ``now`` (a case dated in
the future is a typing error, not a case), and at or after ``since`` when given. By default
every year is used: a town has hundreds of cases a year, thin already once split by type and
audience, and the hours of the week when people are reached (evenings, lunch breaks) change
slowly; ``since`` is there for when the data grows or a pattern is known to have moved.

Cost: one query per area level actually needed (plus the tree look-ups), which counts the
cases in the database by type, audiences and hour of the week, so Python sees a few thousand
groups, not every case. The audience is matched in Python on those groups, since "JSON list
contains" differs between SQLite and PostgreSQL. ``incidences`` answers many (type, audience)
slices with the same queries.

Also the ``antifraud cases peaks`` command: ``add_arguments`` and ``run_cli``.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.settings import Settings
from bot.store.errors import NotFound, StoreUnavailable
from bot.store.grid import chain_ids, subtree_ids
from bot.store.models import Area, Case
from bot.store.repo import Store
from bot.store.types import UTC, utcnow
from campaigns.audience import ALL, AUDIENCES, TagError, name_of, parse_tag
from campaigns.incidence import (
    ALL_AREAS_LABEL,
    DAYS,
    DEFAULT_ALPHA,
    DEFAULT_MIN_RATIO,
    DEFAULT_MIN_WINDOW_CASES,
    HOURS,
    N_WINDOWS,
    SHANGHAI,
    WEEK_HOURS,
    Incidence,
    PeakWindow,
    analyse,
    heatmap,
    hour_of_week,
)

DEFAULT_MIN_CASES = 30
# Asia/Shanghai has been UTC+8 all year since daylight saving ended then.
FIXED_OFFSET_SINCE = datetime(1991, 9, 14, 17, 0, tzinfo=UTC)
EPOCH_WEEKDAY_HOURS = 72  # 1970-01-01, hour 0 of the epoch, was a Thursday
BASELINES = ("uniform", "all")


@dataclass(frozen=True)
class _Level:
    area_id: int | None
    label: str
    subtree: tuple[int, ...] | None  # None: every case, wherever it happened


@dataclass(frozen=True)
class _Row:
    """Cases of one type with one set of audiences in one hour of the week."""

    hour: int  # hour of the week, Asia/Shanghai
    scam_type: str
    audiences: frozenset[str]
    count: int


def _aware(moment: datetime | None, what: str) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"{what} must be an aware datetime")


def _levels(session: Session, area_id: int | None) -> list[_Level]:
    """The requested area, the areas above it (nearest first), then every case."""
    every = _Level(None, ALL_AREAS_LABEL, None)
    if area_id is None:
        return [every]
    if session.get(Area, area_id) is None:
        raise NotFound(f"no area {area_id}")
    chain = chain_ids(session, area_id)
    names = dict(session.execute(sa.select(Area.id, Area.name).where(Area.id.in_(chain))).all())
    levels = []
    for i, level_id in enumerate(chain):
        label = "/".join(names[a] for a in reversed(chain[i:]) if a in names)
        levels.append(_Level(level_id, label, tuple(subtree_ids(session, level_id))))
    return [*levels, every]


def _epoch(dialect: str) -> sa.ColumnElement[int]:
    """``happened_at`` as whole seconds since 1970 (UTC), in the database's own words."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", Case.happened_at)), sa.BigInteger)
    return sa.cast(sa.func.strftime("%s", Case.happened_at), sa.Integer)


def _load(
    session: Session,
    level: _Level,
    scam_types: Sequence[str] | None,
    with_audiences: bool,
    since: datetime | None,
    now: datetime,
) -> list[_Row]:
    """A level's cases, counted in the database by type, audiences and hour of the week.

    Since 1991-09-15 Asia/Shanghai is UTC+8 all year, so the hour of the week is arithmetic on
    the epoch there (1970-01-01 was a Thursday: +72 hours to count from Monday). Any earlier
    case is grouped by its own second and converted with zoneinfo (the import refuses dates
    before 2000, so that part is normally empty).
    """
    epoch = _epoch(session.get_bind().dialect.name)
    modern = Case.happened_at >= FIXED_OFFSET_SINCE
    local_hours = (epoch + 8 * 3600) // 3600  # whole hours since 1970-01-01 00:00 at UTC+8
    hour = sa.case((modern, local_hours % WEEK_HOURS), else_=sa.null()).label("hour")
    old = sa.case((modern, sa.null()), else_=epoch).label("old")
    keys: list[sa.ColumnElement[Any]] = [Case.scam_type, hour, old]
    if with_audiences:
        keys.append(sa.cast(Case.audiences, sa.Text).label("audiences"))
    query = (
        sa.select(*keys, sa.func.count())
        .where(Case.happened_at.is_not(None), Case.scam_type.is_not(None), Case.happened_at <= now)
        .group_by(*keys)
    )
    if since is not None:
        query = query.where(Case.happened_at >= since)
    if scam_types is not None:
        query = query.where(Case.scam_type.in_(sorted(set(scam_types))))
    if level.subtree is not None:
        query = query.where(Case.area_id.in_(level.subtree))
    sets: dict[str | None, frozenset[str]] = {}
    rows = []
    for record in session.execute(query):
        scam_type, local_hour, old_epoch, count = record[0], record[1], record[2], record[-1]
        text = record[3] if with_audiences else None
        if text not in sets:
            sets[text] = frozenset(json.loads(text) if text else ())
        if local_hour is None:
            local_hour = hour_of_week(datetime.fromtimestamp(old_epoch, UTC))
        else:
            local_hour = (int(local_hour) + EPOCH_WEEKDAY_HOURS) % WEEK_HOURS
        rows.append(_Row(local_hour, scam_type, sets[text], int(count)))
    return rows


def _grid(rows: Iterable[_Row]) -> tuple[tuple[int, ...], ...]:
    flat = [0] * WEEK_HOURS
    for row in rows:
        flat[row.hour] += row.count
    return tuple(tuple(flat[d * HOURS : (d + 1) * HOURS]) for d in range(DAYS))


def _matches(row: _Row, scam_type: str | None, audience: str) -> bool:
    if scam_type is not None and row.scam_type != scam_type:
        return False
    return audience == ALL or audience in row.audiences


def incidences(
    store: Store,
    slices: Iterable[tuple[str, str]],
    area_id: int | None = None,
    *,
    min_cases: int = DEFAULT_MIN_CASES,
    since: datetime | None = None,
    now: datetime | None = None,
    baseline: str = "uniform",
    alpha: float = DEFAULT_ALPHA,
    min_window_cases: int = DEFAULT_MIN_WINDOW_CASES,
    min_ratio: float = DEFAULT_MIN_RATIO,
) -> list[Incidence]:
    """One ``Incidence`` per (scam type, audience) slice, in order; see ``peaks_for``."""
    wanted = [(str(t), str(a)) for t, a in slices]
    if min_cases < 0:
        raise ValueError("min_cases must not be negative")
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}")
    _aware(since, "since")
    _aware(now, "now")
    moment = now or utcnow()
    types = None if baseline == "all" else [t for t, _ in wanted]
    with_audiences = any(a != ALL for _, a in wanted)

    def work(session: Session) -> list[Incidence]:
        levels = _levels(session, area_id)
        loaded: dict[int, list[_Row]] = {}

        def rows_at(i: int) -> list[_Row]:
            if i not in loaded:
                loaded[i] = _load(session, levels[i], types, with_audiences, since, moment)
            return loaded[i]

        found = []
        for scam_type, audience in wanted:
            too_few: list[str] = []
            chosen = len(levels) - 1
            for i, level in enumerate(levels):
                n = sum(r.count for r in rows_at(i) if _matches(r, scam_type, audience))
                if n >= min_cases:
                    chosen = i
                    break
                too_few.append(f"{level.label}只有 {n} 起")
            level = levels[chosen]
            rows = [r for r in rows_at(chosen) if _matches(r, scam_type, audience)]
            reference = None
            if baseline == "all":
                reference = _grid([r for r in rows_at(chosen) if _matches(r, None, audience)])
            analysed = sum(r.count for r in rows)
            short = f"{'、'.join(too_few)}（少于 {min_cases} 起）"
            if chosen == 0 and analysed >= min_cases:
                reason = f"按{level.label}的 {analysed} 起分析"
            elif analysed >= min_cases:
                reason = f"{short}，改用{level.label}的 {analysed} 起"
            else:
                reason = f"{short}，数据不足，不找高峰"
            found.append(
                analyse(
                    _grid(rows),
                    scam_type=scam_type,
                    audience=audience,
                    area_id=level.area_id,
                    area_label=level.label,
                    fell_back=chosen > 0,
                    reason=reason,
                    requested_area_id=area_id,
                    baseline=reference,
                    min_cases=min_cases,
                    alpha=alpha,
                    min_window_cases=min_window_cases,
                    min_ratio=min_ratio,
                )
            )
        return found

    return store.run_in(work, write=False)


def peaks_for(
    store: Store,
    scam_type: str,
    audience: str = ALL,
    area_id: int | None = None,
    *,
    min_cases: int = DEFAULT_MIN_CASES,
    since: datetime | None = None,
    now: datetime | None = None,
    baseline: str = "uniform",
    alpha: float = DEFAULT_ALPHA,
    min_window_cases: int = DEFAULT_MIN_WINDOW_CASES,
    min_ratio: float = DEFAULT_MIN_RATIO,
) -> Incidence:
    """Cases of ``scam_type`` for ``audience`` ("all": every case) in ``area_id``'s subtree.

    Falls back to the areas above, then to every case, while there are fewer than
    ``min_cases``. ``baseline`` "uniform" tests against no time pattern; "all" against the
    weekly shape of every type's cases (same audience, same area). ``NotFound`` for an
    unknown area; ``StoreUnavailable`` when the database does not answer.
    """
    return incidences(
        store,
        [(scam_type, audience)],
        area_id,
        min_cases=min_cases,
        since=since,
        now=now,
        baseline=baseline,
        alpha=alpha,
        min_window_cases=min_window_cases,
        min_ratio=min_ratio,
    )[0]


# --- the command line -------------------------------------------------------------------------


class _UsageError(ValueError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``antifraud cases peaks``."""
    parser.add_argument(
        "--type",
        dest="types",
        action="append",
        metavar="CODE",
        help="scam type code or Chinese name (repeatable; default: every type with cases)",
    )
    parser.add_argument(
        "--audience",
        dest="audiences",
        action="append",
        metavar="TAG",
        help="audience code or name, e.g. elderly/老年人 (repeatable; default: all + those "
        "present)",
    )
    parser.add_argument("--area", metavar="NAME_OR_ID", help="area id or name/path (社区/网格)")
    parser.add_argument(
        "--since", metavar="YYYY-MM-DD", help="only cases from this day on (default: all)"
    )
    parser.add_argument(
        "--min-cases",
        type=int,
        metavar="N",
        default=DEFAULT_MIN_CASES,
        help=f"fewer cases than this in an area: use the wider area (default {DEFAULT_MIN_CASES})",
    )
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        default="uniform",
        help="expected shape: uniform over the week (default) or that of all types' cases",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document")


def _resolve_types(given: Sequence[str], names: dict[str, str]) -> list[str]:
    by_name = {name: code for code, name in names.items()}
    codes = []
    for raw in given:
        text = raw.strip()
        code = text if text in names else by_name.get(text)
        if code is None:
            known = "、".join(f"{c}（{n}）" for c, n in names.items())
            raise _UsageError(f"不认识的诈骗类型“{text}”。可用：{known}")
        codes.append(code)
    return list(dict.fromkeys(codes))


def _resolve_area(store: Store, text: str) -> int:
    value = text.strip()
    if value.isdigit():
        try:
            store.area_path(int(value))
        except NotFound:
            raise _UsageError(f"没有编号为 {value} 的地区") from None
        return int(value)
    found = store.find_area(value)
    if not found:
        raise _UsageError(f"没有叫“{value}”的地区（可写编号，或“社区/网格”）")
    if len(found) > 1:
        paths = "；".join(f"{a.id}: {store.area_label(a.id)}" for a in found)
        raise _UsageError(f"“{value}”不止一个，请写编号或完整路径：{paths}")
    return found[0].id


def _parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise _UsageError(f"--since 要写成 YYYY-MM-DD，不是“{text}”") from None
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def _summary(store: Store, since: datetime | None, now: datetime) -> dict[str, dict[str, int]]:
    """Per scam type: cases, and cases per audience present (one grouped query)."""
    audiences_text = sa.cast(Case.audiences, sa.Text)

    def work(session: Session) -> dict[str, dict[str, int]]:
        query = (
            sa.select(Case.scam_type, audiences_text, sa.func.count())
            .where(
                Case.happened_at.is_not(None),
                Case.scam_type.is_not(None),
                Case.happened_at <= now,
            )
            .group_by(Case.scam_type, audiences_text)
        )
        if since is not None:
            query = query.where(Case.happened_at >= since)
        summary: dict[str, dict[str, int]] = {}
        for scam_type, text, count in session.execute(query):
            per = summary.setdefault(scam_type, {ALL: 0})
            per[ALL] += count
            for audience in json.loads(text) if text else ():
                per[audience] = per.get(audience, 0) + count
        return summary

    return store.run_in(work, write=False)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _peak_text(peak: PeakWindow) -> str:
    return f"{peak.label()} ({peak.cases} 起, 预期 {peak.expected:.1f}, ×{peak.ratio:.1f})"


def _no_peak_text(incidence: Incidence, min_cases: int) -> str:
    why = "数据不足" if incidence.cases < max(min_cases, 1) else "分布平均"
    return f"无明显高峰（{why}）"


def _record(incidence: Incidence, type_name: str) -> dict[str, Any]:
    record = asdict(incidence)
    record["scam_type_name"] = type_name
    record["audience_name"] = name_of(incidence.audience)
    record["smoothed"] = [[round(v, 3) for v in row] for row in incidence.smoothed]
    for peak, raw in zip(incidence.peaks, record["peaks"], strict=True):
        raw["label"] = peak.label()
    return record


def _print_table(results: list[Incidence], names: dict[str, str], args: Any, where: str) -> None:
    print(f"诈骗高峰时段（按案发时间，北京时间；{where}）")
    by_type: dict[str, list[Incidence]] = {}
    for incidence in results:
        by_type.setdefault(incidence.scam_type, []).append(incidence)
    headers = ("人群", "地区", "案件", "高峰时段")
    for scam_type, rows in by_type.items():
        name = names.get(scam_type, scam_type)
        print()
        print(f"■ {name}（{scam_type}）")
        shown = rows[0]
        print(f"  {name_of(shown.audience)} · {shown.area_label} · {shown.cases} 起，逐时分布：")
        for line in heatmap(shown.smoothed):
            print("  " + line)
        cells = [(name_of(r.audience), r.area_label, str(r.cases), r) for r in rows]
        widths = [
            max(_width(headers[0]), *(_width(c[0]) for c in cells)),
            max(_width(headers[1]), *(_width(c[1]) for c in cells)),
            max(_width(headers[2]), *(_width(c[2]) for c in cells)),
        ]
        print(
            "  "
            + "  ".join(_pad(h, w) for h, w in zip(headers[:3], widths, strict=True))
            + "  "
            + headers[3]
        )
        indent = "  " + " " * (sum(widths) + 6)
        for audience_name, area_label, count, incidence in cells:
            peaks = [_peak_text(p) for p in incidence.peaks] or [
                _no_peak_text(incidence, args.min_cases)
            ]
            lead = (
                "  "
                + _pad(audience_name, widths[0])
                + "  "
                + _pad(area_label, widths[1])
                + "  "
                + " " * (widths[2] - _width(count))
                + count
                + "  "
            )
            print(lead + peaks[0])
            for more in peaks[1:]:
                print(indent + more)
            if incidence.fell_back:
                print(indent + "↳ " + incidence.reason)
    print()
    print(
        f"高峰：比“一周各小时一样多”显著偏多的 1–3 小时时段（二项检验，{N_WINDOWS} 个时段 "
        f"Bonferroni 校正后 p ≤ {DEFAULT_ALPHA:g}），且至少 {DEFAULT_MIN_WINDOW_CASES} 起、"
        f"为预期的 {DEFAULT_MIN_RATIO:g} 倍以上。"
    )


def run_cli(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    """``antifraud cases peaks``: peak windows per scam type and audience, as a table or JSON."""
    from bot.nlp.taxonomy import NOT_SCAM, TaxonomyError, load_taxonomy

    try:
        taxonomy = load_taxonomy(settings.taxonomy_path)
    except (OSError, TaxonomyError) as exc:
        print(f"antifraud cases peaks: cannot read the taxonomy: {exc}", file=sys.stderr)
        return 1
    names = {t.code: t.name for t in taxonomy.types}
    moment = now or utcnow()
    try:
        if args.min_cases < 0:
            raise _UsageError("--min-cases 不能是负数")
        since = _parse_since(args.since)
        wanted_types = _resolve_types(args.types or (), names)
        try:
            wanted_audiences = list(dict.fromkeys(parse_tag(a) for a in args.audiences or ()))
        except TagError as exc:
            raise _UsageError(str(exc)) from None
        with Store.from_settings(settings) as store:
            area_id = _resolve_area(store, args.area) if args.area else None
            summary = _summary(store, since, moment)
            if not summary:
                print(
                    "还没有案件数据（或所选时间内没有）。先导入案件："
                    "antifraud cases import 案件.xlsx（CSV 或 XLSX，每行一起案件，"
                    "含案发时间和诈骗类型；或含案情描述）。"
                )
                return 0
            types = wanted_types or [
                c for c in [*names, *sorted(summary)] if c in summary and c != NOT_SCAM
            ]
            types = list(dict.fromkeys(types))
            slices = []
            for scam_type in types:
                present = summary.get(scam_type, {})
                audiences = wanted_audiences or [
                    ALL,
                    *[a for a in AUDIENCES if a in present],
                    *sorted(a for a in present if a != ALL and a not in AUDIENCES),
                ]
                slices.extend((scam_type, a) for a in audiences)
            results = incidences(
                store,
                slices,
                area_id,
                min_cases=args.min_cases,
                since=since,
                now=moment,
                baseline=args.baseline,
            )
            where = f"地区：{store.area_label(area_id)}" if area_id is not None else "全部地区"
    except _UsageError as exc:
        print(f"antifraud cases peaks: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"antifraud cases peaks: the database is not reachable: {exc}", file=sys.stderr)
        return 1
    except sa.exc.DBAPIError as exc:  # e.g. a database never migrated: no ``cases`` table
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else exc
        print(
            f"antifraud cases peaks: cannot read the cases ({reason}); "
            "is the database migrated? (antifraud db upgrade)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        document = [_record(r, names.get(r.scam_type, r.scam_type)) for r in results]
        print(json.dumps(document, ensure_ascii=False, indent=1))
    else:
        _print_table(results, names, args, where)
    return 0


__all__ = [
    "BASELINES",
    "DEFAULT_MIN_CASES",
    "add_arguments",
    "incidences",
    "peaks_for",
    "run_cli",
]
