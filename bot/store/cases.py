"""Case data in the store: importing a file of cases whole or not at all, and reading them back.

``Cases.import_cases`` writes one file's cases in ONE transaction: the ``case_imports`` row, every
new case, and an audit line; a failure anywhere (a constraint, the database going away) leaves
nothing behind. It is idempotent by ``row_key`` (the case number, or a hash of the row's content,
worked out by the importer): a case already in the store, or a second copy of a row in the same
file, is counted as a duplicate and not added. The insert itself is ``ON CONFLICT DO NOTHING``
and what was added is counted afterwards, so two imports of the same file racing on PostgreSQL
cannot add a case twice or fail on the unique key.

The place of a case is matched to the grid (``match_area``) in the same transaction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.store.models import AREA_LEVELS, Area, Case, CaseImport
from bot.store.types import utcnow

#: The fields a case may list as ``missing`` (to be completed by a person).
CASE_FIELDS = ("happened_at", "scam_type", "loss")
_KEY_CHUNK = 500
_INSERT_CHUNK = 1000
_MIN_AREA_NAME = 2


@dataclass(frozen=True)
class NewCase:
    """One validated row of a case file, ready to store (times aware, amounts in yuan)."""

    row_number: int
    row_key: str
    case_number: str | None = None
    happened_at: datetime | None = None
    scam_type: str | None = None
    scam_type_source: str | None = None  # "given" or "classifier"
    loss: Decimal | None = None
    age_group: str | None = None
    gender: str | None = None
    occupation: str | None = None
    place: str | None = None
    narrative: str | None = field(default=None, repr=False)
    audiences: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.row_key or len(self.row_key) > 64:
            raise ValueError("row_key must be 1 to 64 characters")
        happened = self.happened_at
        if happened is not None and (happened.tzinfo is None or happened.utcoffset() is None):
            raise ValueError("happened_at is a naive datetime: give the store aware datetimes")
        unknown = set(self.missing) - set(CASE_FIELDS)
        if unknown:
            raise ValueError(f"unknown missing fields: {', '.join(sorted(unknown))}")


@dataclass(frozen=True)
class CaseImportView:
    id: int
    file_name: str
    file_sha256: str
    actor: str
    rows: int
    added: int
    duplicates: int
    incomplete: int
    created_at: datetime


@dataclass(frozen=True)
class CaseView:
    id: int
    import_id: int
    file_name: str
    row_number: int
    row_key: str
    case_number: str | None
    happened_at: datetime | None
    scam_type: str | None
    scam_type_source: str | None
    loss: Decimal | None
    age_group: str | None
    gender: str | None
    occupation: str | None
    place: str | None
    area_id: int | None
    narrative: str | None = field(repr=False)
    audiences: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, for a dry run, would do)."""

    import_id: int | None  # None for a dry run
    rows: int
    added: int
    duplicates: int  # already in the store, plus repeats inside the file
    duplicates_in_file: int
    with_area: int  # added cases whose place was matched to an area
    incomplete: tuple[tuple[int, tuple[str, ...]], ...]  # (row number, missing) of added rows
    earlier: tuple[CaseImportView, ...]  # earlier imports of a file with the same content
    dry_run: bool = False


@dataclass(frozen=True)
class AreaPath:
    """An area with the ids and names of its chain, from the community down to itself."""

    id: int
    level: str
    name: str
    chain: tuple[int, ...]
    names: tuple[str, ...]


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace(" ", "").lower()


def area_paths(areas: Iterable[tuple[int, int | None, str, str]]) -> list[AreaPath]:
    """(id, parent_id, level, name) rows → each area with its chain."""
    by_id = {a[0]: a for a in areas}
    paths = []
    for area_id, _parent, level, name in by_id.values():
        chain: list[int] = []
        current: int | None = area_id
        while current is not None and current in by_id and current not in chain:
            chain.append(current)
            current = by_id[current][1]
        chain.reverse()
        paths.append(
            AreaPath(area_id, level, name, tuple(chain), tuple(by_id[i][3] for i in chain))
        )
    return paths


def _mentions(text: str, name: str) -> bool:
    """Whether ``name`` occurs in ``text`` as itself (``1网格`` is not in ``11网格``)."""
    start = text.find(name)
    while start != -1:
        if not (name[0].isdigit() and start > 0 and text[start - 1].isdigit()):
            return True
        start = text.find(name, start + 1)
    return False


def match_area(place: str | None, paths: Sequence[AreaPath]) -> int | None:
    """The area a place text names: the deepest, best-supported, longest match, or ``None``.

    Every area whose name occurs in the text is a candidate. A candidate loses to one that the
    other names in the text do not contradict (``西溪社区3幢`` is not the 3幢 of 东湖社区), then
    the one with more of its chain named, then the deeper one, then the longer name. When two
    different areas still tie (two grids each with a 3幢), the case is put in the deepest area
    containing both, if there is one.
    """
    if not place:
        return None
    text = _norm(place)
    level_of = {level: i for i, level in enumerate(AREA_LEVELS)}
    hits = [p for p in paths if len(p.name) >= _MIN_AREA_NAME and _mentions(text, _norm(p.name))]
    if not hits:
        return None
    hit_ids = {p.id for p in hits}
    by_id = {p.id: p for p in hits}

    def key(p: AreaPath) -> tuple[int, int, int, int]:
        depth = level_of.get(p.level, 0)
        conflicts = sum(
            1
            for other in hit_ids
            if other not in p.chain and level_of.get(by_id[other].level, 0) < depth
        )
        named = sum(1 for i in p.chain if i in hit_ids)
        return (-conflicts, named, depth, len(p.name))

    best = max(key(p) for p in hits)
    winners = [p for p in hits if key(p) == best]
    if len(winners) == 1:
        return winners[0].id
    common = set(winners[0].chain)
    for p in winners[1:]:
        common &= set(p.chain)
    if not common:
        return None
    return max(common, key=winners[0].chain.index)


def _import_view(row: CaseImport) -> CaseImportView:
    return CaseImportView(
        id=row.id,
        file_name=row.file_name,
        file_sha256=row.file_sha256,
        actor=row.actor,
        rows=row.rows,
        added=row.added,
        duplicates=row.duplicates,
        incomplete=row.incomplete,
        created_at=row.created_at,
    )


def _case_view(row: Case, file_name: str) -> CaseView:
    return CaseView(
        id=row.id,
        import_id=row.import_id,
        file_name=file_name,
        row_number=row.row_number,
        row_key=row.row_key,
        case_number=row.case_number,
        happened_at=row.happened_at,
        scam_type=row.scam_type,
        scam_type_source=row.scam_type_source,
        loss=row.loss,
        age_group=row.age_group,
        gender=row.gender,
        occupation=row.occupation,
        place=row.place,
        area_id=row.area_id,
        narrative=row.narrative,
        audiences=tuple(row.audiences or ()),
        missing=tuple(row.missing or ()),
    )


def _chunks(items: Sequence[str] | Sequence[dict], size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Cases:
    """Mixed into ``Store``: needs ``run_in``, ``_insert`` and ``_audit``."""

    def import_cases(
        self,
        rows: Sequence[NewCase],
        *,
        file_name: str,
        file_sha256: str,
        actor: str,
        dry_run: bool = False,
    ) -> ImportResult:
        """Store a file's cases in one transaction; rows already present are not added again.

        With ``dry_run`` nothing is written and the result says what an import would add.
        """
        if not file_name or not actor:
            raise ValueError("file_name and actor are required")
        if len(file_sha256) != 64:
            raise ValueError("file_sha256 must be a sha256 hex digest")
        unique: list[NewCase] = []
        seen: set[str] = set()
        for row in rows:
            if row.row_key in seen:
                continue
            seen.add(row.row_key)
            unique.append(row)
        in_file = len(rows) - len(unique)

        def work(session: Session) -> ImportResult:
            earlier = tuple(
                _import_view(r)
                for r in session.execute(
                    sa.select(CaseImport)
                    .where(CaseImport.file_sha256 == file_sha256)
                    .order_by(CaseImport.id)
                ).scalars()
            )
            existing: set[str] = set()
            for chunk in _chunks([r.row_key for r in unique], _KEY_CHUNK):
                existing.update(
                    session.execute(sa.select(Case.row_key).where(Case.row_key.in_(chunk)))
                    .scalars()
                    .all()
                )
            fresh = [r for r in unique if r.row_key not in existing]
            paths = area_paths(
                session.execute(sa.select(Area.id, Area.parent_id, Area.level, Area.name)).all()
            )
            area_of: dict[str, int | None] = {}
            for row in fresh:
                if row.place and row.place not in area_of:
                    area_of[row.place] = match_area(row.place, paths)
            if dry_run:
                return ImportResult(
                    import_id=None,
                    rows=len(rows),
                    added=len(fresh),
                    duplicates=len(rows) - len(fresh),
                    duplicates_in_file=in_file,
                    with_area=sum(1 for r in fresh if r.place and area_of[r.place] is not None),
                    incomplete=tuple((r.row_number, r.missing) for r in fresh if r.missing),
                    earlier=earlier,
                    dry_run=True,
                )
            now = utcnow()
            record = CaseImport(
                file_name=file_name[:255],
                file_sha256=file_sha256,
                actor=actor[:64],
                rows=len(rows),
                created_at=now,
            )
            session.add(record)
            session.flush()
            import_id = record.id
            values = [
                {
                    "import_id": import_id,
                    "row_number": r.row_number,
                    "row_key": r.row_key,
                    "case_number": r.case_number,
                    "happened_at": r.happened_at,
                    "scam_type": r.scam_type,
                    "scam_type_source": r.scam_type_source,
                    "loss": r.loss,
                    "age_group": r.age_group,
                    "gender": r.gender,
                    "occupation": r.occupation,
                    "place": r.place,
                    "area_id": area_of.get(r.place) if r.place else None,
                    "narrative": r.narrative,
                    "audiences": list(r.audiences),
                    "missing": list(r.missing),
                    "created_at": now,
                }
                for r in fresh
            ]
            insert = self._insert(Case).on_conflict_do_nothing(  # type: ignore[attr-defined]
                index_elements=["row_key"]
            )
            for chunk in _chunks(values, _INSERT_CHUNK):
                session.execute(insert, list(chunk))
            added_keys = set(
                session.execute(sa.select(Case.row_key).where(Case.import_id == record.id))
                .scalars()
                .all()
            )
            added = [r for r in fresh if r.row_key in added_keys]
            incomplete = tuple((r.row_number, r.missing) for r in added if r.missing)
            record.added = len(added)
            record.duplicates = len(rows) - len(added)
            record.incomplete = len(incomplete)
            session.flush()
            self._audit(  # type: ignore[attr-defined]
                session,
                actor,
                "cases.import",
                "case_import",
                record.id,
                {
                    "file": file_name[:255],
                    "rows": len(rows),
                    "added": len(added),
                    "duplicates": len(rows) - len(added),
                    "incomplete": len(incomplete),
                },
            )
            return ImportResult(
                import_id=record.id,
                rows=len(rows),
                added=len(added),
                duplicates=len(rows) - len(added),
                duplicates_in_file=in_file,
                with_area=sum(1 for r in added if r.place and area_of[r.place] is not None),
                incomplete=incomplete,
                earlier=earlier,
            )

        return self.run_in(work, write=not dry_run)  # type: ignore[attr-defined]

    def incomplete_cases(self, *, limit: int | None = None) -> list[CaseView]:
        """Cases with fields still to be completed by a person, oldest import first."""

        def work(session: Session) -> list[CaseView]:
            query = (
                sa.select(Case, CaseImport.file_name)
                .join(CaseImport, CaseImport.id == Case.import_id)
                .where(sa.func.json_array_length(Case.missing) > 0)
                .order_by(Case.import_id, Case.row_number, Case.id)
            )
            if limit is not None:
                query = query.limit(limit)
            return [_case_view(case, name) for case, name in session.execute(query).all()]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def count_cases(self, *, incomplete: bool = False) -> int:
        """How many cases the store holds (only those with missing fields, if ``incomplete``)."""

        def work(session: Session) -> int:
            query = sa.select(sa.func.count()).select_from(Case)
            if incomplete:
                query = query.where(sa.func.json_array_length(Case.missing) > 0)
            return int(session.execute(query).scalar_one())

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def list_cases(self, *, import_id: int | None = None) -> list[CaseView]:
        """Every case (of one import, if given), in import and row order."""

        def work(session: Session) -> list[CaseView]:
            query = sa.select(Case, CaseImport.file_name).join(
                CaseImport, CaseImport.id == Case.import_id
            )
            if import_id is not None:
                query = query.where(Case.import_id == import_id)
            query = query.order_by(Case.import_id, Case.row_number, Case.id)
            return [_case_view(case, name) for case, name in session.execute(query).all()]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]

    def case_imports(self) -> list[CaseImportView]:
        """Every import run, oldest first."""

        def work(session: Session) -> list[CaseImportView]:
            rows = session.execute(sa.select(CaseImport).order_by(CaseImport.id)).scalars()
            return [_import_view(r) for r in rows]

        return self.run_in(work, write=False)  # type: ignore[attr-defined]


__all__ = [
    "CASE_FIELDS",
    "AreaPath",
    "CaseImportView",
    "CaseView",
    "Cases",
    "ImportResult",
    "NewCase",
    "area_paths",
    "match_area",
]
