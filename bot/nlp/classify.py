"""Classify messages: Rasa NLU over HTTP, red flags and indicators, and the shared decision.

``Classifier.classify`` is what the bot calls for one message; ``classify_lines`` streams a file
of JSON or plain-text lines for ``antifraud classify``, keeping the output in input order, with
a bounded number of requests in flight and identical messages parsed once.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from bot.nlp.analysis import Analysis, Analyzer
from bot.nlp.decision import HIGH, Verdict, decide
from bot.nlp.rasa_server import RasaClient, RasaUnavailable
from bot.nlp.segments import combine, parts_of
from bot.nlp.taxonomy import Taxonomy

# Parses kept for texts seen again (about 12 KB each: some 120 MB at most).
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Classification:
    """One message's verdict with the evidence behind it."""

    verdict: Verdict
    analysis: Analysis
    parse: dict

    def to_record(self, *, reveal: bool = False) -> dict:
        """The JSON record ``antifraud classify`` writes; personal data masked unless revealed."""
        return {
            "text": self.analysis.text if reveal else self.analysis.masked_text(),
            "scam_type": self.verdict.scam_type,
            "is_scam": self.verdict.is_scam,
            "confidence": self.verdict.confidence,
            "risk": self.verdict.risk,
            "intent": self.verdict.intent,
            "red_flags": self.analysis.red_flags_dict(),
            "indicators": self.analysis.indicators_dict(reveal=reveal),
        }


class Classifier:
    """Joins the NLU model (through ``RasaClient``) with the spaCy analyser."""

    def __init__(
        self, client: RasaClient, analyzer: Analyzer, taxonomy: Taxonomy, threshold: float
    ) -> None:
        self.client = client
        self.analyzer = analyzer
        self.taxonomy = taxonomy
        self.threshold = threshold
        self._inflight: dict[str, asyncio.Future[dict]] = {}
        # The most recently used parses (an OrderedDict kept in use order): a long-running bot
        # sees the same forwarded scam many times, but must not grow without bound.
        self._cache: OrderedDict[str, dict] = OrderedDict()

    async def _parse_once(self, normalized: str, text: str) -> dict:
        """Parse each distinct normalised text once; concurrent callers share the request."""
        if normalized in self._cache:
            self._cache.move_to_end(normalized)
            return self._cache[normalized]
        if normalized in self._inflight:
            return await asyncio.shield(self._inflight[normalized])
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._inflight[normalized] = future
        try:
            parse = await self.client.parse(text)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(normalized, None)
        self._cache[normalized] = parse
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        future.set_result(parse)
        return parse

    async def classify(self, text: str) -> Classification:
        """The verdict on one message; raises ``RasaUnavailable`` if the NLU is unreachable."""
        analysis = self.analyzer.analyse(text)
        parse = await self._parse_once(analysis.normalized, text)
        verdict = decide(parse, analysis, self.taxonomy, self.threshold)
        verdict = await self.by_parts(text, analysis, verdict)
        return Classification(verdict, analysis, parse)

    async def by_parts(self, text: str, analysis: Analysis, whole: Verdict) -> Verdict:
        """A long message judged by its parts too (``segments``); ``whole`` if it is short."""
        parts = parts_of(text)
        if not parts or (whole.is_scam and whole.risk == HIGH):
            return whole
        part_analyses = [self.analyzer.analyse(part) for part in parts]
        parses = await asyncio.gather(
            *(self._parse_once(a.normalized, p) for a, p in zip(part_analyses, parts, strict=True))
        )
        verdicts = [
            decide(parse, a, self.taxonomy, self.threshold)
            for parse, a in zip(parses, part_analyses, strict=True)
        ]
        return combine(whole, verdicts, analysis)


class BadLine(ValueError):
    """An input line that cannot be classified; becomes an error record."""


MAX_LINE_CHARS = 20_000


def parse_line(raw: bytes) -> tuple[str, dict]:
    """The text of one input line and the extra fields to carry over (for JSON lines)."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise BadLine(f"not UTF-8 text (byte {exc.start})") from exc
    line = line.removeprefix("\ufeff")
    if not line.strip():
        raise BadLine("empty line")
    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadLine(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
        text = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(text, str):
            raise BadLine('a JSON line needs a string field "text"')
        if not text.strip():
            raise BadLine('"text" is empty')
        extra = {k: v for k, v in obj.items() if k != "text"}
        line = text
    else:
        extra = {}
    if len(line) > MAX_LINE_CHARS:
        raise BadLine(f"longer than {MAX_LINE_CHARS} characters")
    return line, extra


async def _classify_line(classifier: Classifier, number: int, raw: bytes, reveal: bool) -> dict:
    try:
        text, extra = parse_line(raw)
    except BadLine as exc:
        return {"line": number, "error": str(exc)}
    try:
        result = await classifier.classify(text)
    except RasaUnavailable as exc:
        return {"line": number, "error": f"NLU unavailable: {exc}", **extra}
    return {"line": number, **extra, **result.to_record(reveal=reveal)}


async def classify_lines(
    classifier: Classifier,
    lines: Iterable[bytes],
    out: TextIO,
    *,
    concurrency: int = 8,
    reveal: bool = False,
    on_done: Callable[[dict], None] | None = None,
) -> dict[str, int]:
    """Classify every line, writing one JSON record per line to ``out`` in input order."""
    window: deque[asyncio.Task[dict]] = deque()
    counts = {"lines": 0, "errors": 0, "scams": 0}

    async def drain(keep: int) -> None:
        while len(window) > keep:
            record = await window.popleft()
            counts["lines"] += 1
            counts["errors"] += "error" in record
            counts["scams"] += bool(record.get("is_scam"))
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if on_done:
                on_done(record)

    semaphore = asyncio.Semaphore(concurrency)

    async def bounded(number: int, raw: bytes) -> dict:
        async with semaphore:
            return await _classify_line(classifier, number, raw, reveal)

    async for number, raw in _numbered(lines):
        window.append(asyncio.create_task(bounded(number, raw)))
        await drain(keep=concurrency * 4)
    await drain(keep=0)
    out.flush()
    return counts


async def _numbered(lines: Iterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    for number, raw in enumerate(lines, start=1):
        yield number, raw
        if number % 64 == 0:
            await asyncio.sleep(0)  # let finished requests be written while reading a big file
