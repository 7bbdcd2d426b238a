"""The taxonomy and the training data agree with each other and with the domain."""

from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.nlp.normalize import normalize_text
from bot.nlp.taxonomy import NOT_SCAM, load_taxonomy
from bot.settings import PROJECT_ROOT, Settings

CODES = [
    "rebate", "investment", "loan", "credit_record", "customer_service", "impersonate_authority",
    "impersonate_acquaintance", "game_trade", "romance", "fake_shopping", "fundraising",
    "other_scam", "not_scam",
]  # fmt: skip


def examples(pattern: str) -> dict[str, list[str]]:
    """Training examples by intent from the NLU files matching ``pattern``."""
    found: dict[str, list[str]] = {}
    for path in sorted(PROJECT_ROOT.glob(pattern)):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" in block:
                lines = [ln.strip()[2:].strip() for ln in block["examples"].splitlines()]
                found.setdefault(block["intent"], []).extend(ln for ln in lines if ln)
    return found


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(Settings.from_env().taxonomy_path)


@pytest.fixture(scope="module")
def training():
    return examples("nlu_data/nlu/*.yml")


def test_the_thirteen_codes_in_order(taxonomy):
    assert [t.code for t in taxonomy.types] == CODES
    for scam_type in taxonomy.scam_types:
        assert scam_type.name and len(scam_type.description) >= 40
        assert len(scam_type.red_flags) >= 10
        assert len(scam_type.advice) >= 3


def test_every_intent_of_the_taxonomy_is_in_the_domain(taxonomy):
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    for scam_type in taxonomy.types:
        assert scam_type.intent in domain["intents"]


def test_enough_examples_per_type(taxonomy, training):
    for scam_type in taxonomy.scam_types:
        assert len(training[scam_type.intent]) >= 80, scam_type.code
    assert len(training[taxonomy.get(NOT_SCAM).intent]) >= 600


def test_faq_topics_each_have_an_answer(training):
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    topics = [i for i in training if i.startswith("faq/")]
    assert len(topics) >= 15
    for topic in topics:
        assert f"utter_{topic}" in domain["responses"], topic


def test_no_example_carries_two_labels(training):
    labels: dict[str, set[str]] = {}
    for intent, lines in training.items():
        for line in lines:
            labels.setdefault(normalize_text(line), set()).add(intent)
    clashes = {text: names for text, names in labels.items() if len(names) > 1}
    assert not clashes


def test_every_red_flag_occurs_in_its_own_training_data(taxonomy, training):
    """A red flag nobody writes is dead weight; one from another type's data is a mislabel."""
    for scam_type in taxonomy.scam_types:
        corpus = "\n".join(normalize_text(t) for t in training[scam_type.intent])
        unused = [p for p in scam_type.red_flags if normalize_text(p) not in corpus]
        assert not unused, (scam_type.code, unused)


def test_red_flags_are_rare_in_ordinary_messages(taxonomy, training):
    ordinary = [normalize_text(t) for t in training[NOT_SCAM]]
    hits = Counter(
        phrase
        for scam_type in taxonomy.scam_types
        for phrase in scam_type.red_flags
        for text in ordinary
        if normalize_text(phrase) in text
    )
    # Anti-fraud publicity quotes red flags on purpose, so some do occur there; but no phrase
    # may be everyday language (in more than 3% of the ordinary messages).
    limit = 0.03 * len(ordinary)
    assert all(count <= limit for count in hits.values()), hits.most_common(5)


def test_test_set_is_not_copied_from_training(training):
    tests = examples("tests/nlu/*.yml")
    train = {normalize_text(t) for lines in training.values() for t in lines}
    copied = [t for lines in tests.values() for t in lines if normalize_text(t) in train]
    assert not copied


def test_test_set_size():
    tests = examples("tests/nlu/*.yml")
    scam = {k: v for k, v in tests.items() if k.startswith("scam_")}
    assert len(scam) == 12 and all(len(v) >= 25 for v in scam.values())
    assert len(tests[NOT_SCAM]) >= 200


def test_lookup_file_exists():
    assert Path(Settings.from_env().lookups_dir, "apps.yml").is_file()
