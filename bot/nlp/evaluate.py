"""Evaluate the classifier on labelled NLU files (Rasa YAML), with the bot's own decision logic.

Used by the quality gate in ``make test`` (tests/nlu/) and by ``make bench``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.nlp.classify import Classifier
from bot.nlp.taxonomy import NOT_SCAM, Taxonomy


def load_labelled(paths: list[Path], taxonomy: Taxonomy) -> list[tuple[str, str]]:
    """(text, scam type code) pairs from NLU files whose intents are taxonomy intents."""
    pairs = []
    for path in paths:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            scam_type = taxonomy.by_intent(block.get("intent"))
            if scam_type is None:
                continue
            for line in str(block.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- ") and line[2:].strip():
                    pairs.append((line[2:].strip(), scam_type.code))
    return pairs


@dataclass
class Report:
    """Per-class precision, recall and F1 over scam type codes, and the binary scam figures."""

    codes: tuple[str, ...]
    gold: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def add(self, text: str, gold: str, predicted: str) -> None:
        self.texts.append(text)
        self.gold.append(gold)
        self.predicted.append(predicted)

    def per_class(self) -> dict[str, dict[str, float]]:
        pairs = list(zip(self.gold, self.predicted, strict=True))
        rows = {}
        for code in self.codes:
            tp = sum(g == code and p == code for g, p in pairs)
            fp = sum(g != code and p == code for g, p in pairs)
            fn = sum(g == code and p != code for g, p in pairs)
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            rows[code] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
        return rows

    def macro_f1(self) -> float:
        """Macro-F1 over the scam types present in the gold labels (not_scam excluded)."""
        rows = self.per_class()
        present = [c for c in self.codes if c != NOT_SCAM and rows[c]["support"]]
        return sum(rows[c]["f1"] for c in present) / len(present) if present else 0.0

    def binary(self) -> dict[str, float]:
        """Scam versus not-scam precision, recall and F1, and the false alarm rate."""
        pairs = [
            (g != NOT_SCAM, p != NOT_SCAM) for g, p in zip(self.gold, self.predicted, strict=True)
        ]
        tp = sum(g and p for g, p in pairs)
        fp = sum(not g and p for g, p in pairs)
        fn = sum(g and not p for g, p in pairs)
        negatives = sum(not g for g, _ in pairs)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "false_alarm_rate": fp / negatives if negatives else 0.0,
        }

    def errors(self) -> list[tuple[str, str, str]]:
        return [
            (t, g, p)
            for t, g, p in zip(self.texts, self.gold, self.predicted, strict=True)
            if g != p
        ]

    def confusions(self) -> Counter[tuple[str, str]]:
        return Counter((g, p) for _, g, p in self.errors())

    def summary(self) -> dict:
        return {
            "examples": len(self.gold),
            "macro_f1_scam_types": self.macro_f1(),
            **{f"binary_{k}": v for k, v in self.binary().items()},
        }


async def evaluate(classifier: Classifier, pairs: list[tuple[str, str]]) -> Report:
    """Classify every text and collect the report."""
    import asyncio

    report = Report(tuple(t.code for t in classifier.taxonomy.types))
    semaphore = asyncio.Semaphore(8)

    async def one(text: str) -> str:
        async with semaphore:
            return (await classifier.classify(text)).verdict.scam_type

    predictions = await asyncio.gather(*(one(text) for text, _ in pairs))
    for (text, gold), predicted in zip(pairs, predictions, strict=True):
        report.add(text, gold, predicted)
    return report
