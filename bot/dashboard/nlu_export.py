"""What staff judged, as Rasa NLU training data for a person to check and add to ``nlu_data``.

Every reviewed report (confirmed, dismissed, or answered after either) is an example for the
intent of its verdict: a confirmed scam type's intent from the taxonomy, ``not_scam`` for a
dismissed one. Only the masked text is used (the raw text may carry a resident's phone or
account), on one line, and only texts the training data does not hold yet, once each. The
result is a Rasa 3 YAML file whose every example reads back exactly as written; it is a
proposal, never training data by itself: its header says a person must check each example.

The window (``since`` inclusive, ``until`` exclusive) is on when the verdict was given, so that
exports of consecutive windows cover each judged report once, however old the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot.nlp.taxonomy import Taxonomy
from bot.settings import PROJECT_ROOT
from bot.store.repo import ReportView, Store
from bot.store.workflow import REVIEWED

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_EXISTING_DIR = PROJECT_ROOT / "nlu_data" / "nlu"
MIN_CHARS = 4
PAGE = 500
# Rasa reads ``[text](entity)``, ``[text]{...}`` and ``[text][...]`` in an example as entity
# markup (rasa.shared.nlu.training_data.entities_parser.ENTITY_REGEX).
_ENTITY = re.compile(
    r"\[(?P<text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)|\{[^}]+?\}|\[.*?\])"
)
# What YAML may not hold even in a block scalar (PyYAML's reader refuses it).
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


@dataclass(frozen=True)
class ExportResult:
    yaml_text: str
    examples: int
    by_intent: dict[str, int]
    skipped_known: int


def example_text(text: str) -> str:
    """A text as an example: one line, trimmed, without what YAML or Rasa would misread.

    Every whitespace run (newlines, tabs, ideographic spaces) becomes one space, characters
    YAML cannot hold are dropped, and square brackets that Rasa would take for entity markup
    become full-width ones.
    """
    line = _NOT_PRINTABLE.sub("", " ".join(text.split()))
    line = " ".join(line.split())
    if _ENTITY.search(line):
        line = line.replace("[", "［").replace("]", "］")
    return line


def known_examples(directory: Path) -> set[str]:
    """Every intent example in the training files under ``directory``, as ``example_text``."""
    if not directory.is_dir():
        raise ValueError(f"训练数据目录不存在：{directory}")
    known: set[str] = set()
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"读不了训练数据 {path}：{exc}") from exc
        items = data.get("nlu") if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict) or "intent" not in item:
                continue  # synonyms, regexes and lookups are not examples
            for line in str(item.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("-"):
                    plain = _ENTITY.sub(lambda m: m.group("text"), line[1:])
                    known.add(example_text(plain))
    return known


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. Asia/Shanghai), got {value}")
    return value


def reviewed_reports(
    store: Store, since: datetime | None = None, until: datetime | None = None
) -> Iterator[ReportView]:
    """Reviewed reports whose verdict fell in the window, by pages of the store's listing."""
    for status in sorted(REVIEWED):
        offset = 0
        while True:
            page = store.list_reports(status=status, limit=PAGE, offset=offset)
            for report in page:
                at = report.reviewed_at or report.updated_at
                if (since is None or at >= since) and (until is None or at < until):
                    yield report
            if len(page) < PAGE:
                break
            offset += PAGE


def _leaks(report: ReportView, text: str) -> bool:
    """Whether a raw indicator (a phone, an account) is in the text although it was masked."""
    return any(
        i.value != i.masked and len(i.value) >= 4 and i.value in text for i in report.indicators
    )


def _local(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _header(
    by_intent: dict[str, int],
    skipped_known: int,
    unknown: int,
    since: datetime | None,
    until: datetime | None,
) -> list[str]:
    """Where the file came from, when, how many, and that a person must check it."""
    start = _local(since) if since else "最早"
    end = f"{_local(until)} 前" if until else "至今"
    examples = sum(by_intent.values())
    counts = "，".join(f"{intent} {n}" for intent, n in by_intent.items()) or "无"
    lines = [
        "由 antifraud reports export-nlu 从工作人员审核过的举报导出（只用打码后的文字）",
        f"导出时间：{_local(datetime.now(SHANGHAI))}（北京时间）；审核时间：{start} 起，{end}",
        f"共 {examples} 条例句（{counts}）；训练数据里已有的 {skipped_known} 条没有导出",
    ]
    if unknown:
        lines.append(f"{unknown} 条举报的审核结论不在诈骗类型表里，没有导出")
    lines.append("每一条都要有人检查（意图对不对、有没有漏掉的个人信息）后才能移进 nlu_data/nlu/")
    return [f"# {line}" for line in lines]


def export_nlu(
    store: Store,
    taxonomy: Taxonomy,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    existing_dir: Path | None = None,
) -> ExportResult:
    """Reviewed reports as a Rasa 3 NLU file; the latest verdict wins for a repeated text."""
    since, until = _aware("since", since), _aware("until", until)
    if since is not None and until is not None and since >= until:
        raise ValueError(f"开始时间（{_local(since)}）要早于结束时间（{_local(until)}）")
    known = known_examples(existing_dir or DEFAULT_EXISTING_DIR)
    intents = [t.intent for t in taxonomy.types]
    reports = sorted(
        reviewed_reports(store, since, until),
        key=lambda r: (r.reviewed_at or r.updated_at, r.id),
        reverse=True,
    )
    chosen: dict[str, str] = {}  # text -> intent, newest verdict first
    skipped: set[str] = set()
    unknown = 0
    for report in reports:
        text = example_text(report.text_masked)
        if len(text) < MIN_CHARS or text in chosen or text in skipped or _leaks(report, text):
            continue
        if text in known:
            skipped.add(text)
            continue
        try:
            intent = taxonomy.get(report.verdict_scam_type or "").intent
        except KeyError:  # a code since removed from the taxonomy
            unknown += 1
            continue
        chosen[text] = intent
    grouped: dict[str, list[str]] = {intent: [] for intent in intents}
    for text, intent in chosen.items():
        grouped[intent].append(text)
    by_intent = {intent: len(texts) for intent, texts in grouped.items() if texts}
    lines = _header(by_intent, len(skipped), unknown, since, until)
    lines += ['version: "3.1"', "nlu:" if chosen else "nlu: []"]
    for intent, texts in grouped.items():
        if texts:
            lines += [f"- intent: {intent}", "  examples: |"]
            lines += [f"    - {text}" for text in texts]
    return ExportResult("\n".join(lines) + "\n", len(chosen), by_intent, len(skipped))
