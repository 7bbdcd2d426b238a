"""The NLU quality gate: the trained model, through the bot's own decision logic, on the test set.

The test set (tests/nlu/*.yml) was written separately from the training data; a test in
tests/nlp/test_taxonomy.py checks that none of it was copied. The figures are written to
reports/nlu_eval.json so a failing gate shows what went wrong.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.nlp.classify import Classifier
from bot.nlp.evaluate import Report, evaluate, load_labelled
from bot.nlp.rasa_server import RasaClient
from bot.nlp.taxonomy import NOT_SCAM
from bot.settings import PROJECT_ROOT

MIN_MACRO_F1 = 0.90
MAX_FALSE_ALARM_RATE = 0.03


@pytest.fixture(scope="module")
def report(rasa_settings, taxonomy, analyzer) -> Report:
    pairs = load_labelled(sorted((PROJECT_ROOT / "tests" / "nlu").glob("*.yml")), taxonomy)

    async def run() -> Report:
        async with RasaClient(rasa_settings.rasa_url) as client:
            classifier = Classifier(client, analyzer, taxonomy, rasa_settings.scam_threshold)
            return await evaluate(classifier, pairs)

    result = asyncio.run(run())
    out = PROJECT_ROOT / "reports" / "nlu_eval.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "summary": result.summary(),
                "per_class": result.per_class(),
                "errors": [{"text": t, "gold": g, "predicted": p} for t, g, p in result.errors()],
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return result


def test_scam_type_macro_f1(report):
    assert report.macro_f1() >= MIN_MACRO_F1, report.per_class()


def test_ordinary_messages_are_rarely_called_scams(report):
    ordinary = [p for g, p in zip(report.gold, report.predicted, strict=True) if g == NOT_SCAM]
    called = sum(p != NOT_SCAM for p in ordinary)
    assert len(ordinary) >= 200
    assert called / len(ordinary) <= MAX_FALSE_ALARM_RATE, [
        t for t, g, p in report.errors() if g == NOT_SCAM
    ]


def test_every_scam_type_is_recognised(report):
    """No type may be left behind by a good average."""
    rows = report.per_class()
    weak = {c: round(r["f1"], 3) for c, r in rows.items() if r["support"] and r["f1"] < 0.75}
    assert not weak
