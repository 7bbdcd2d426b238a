"""Every response an action sends exists in the domain, with the variables the action fills."""

from __future__ import annotations

import re
import string
from pathlib import Path

from actions.report import FORM_SLOTS
from actions.status import STATUSES
from bot.settings import PROJECT_ROOT

ACTIONS = PROJECT_ROOT / "actions"


def _named_by_actions() -> set[str]:
    names: set[str] = set()
    for path in sorted(Path(ACTIONS).glob("*.py")):
        names.update(re.findall(r"\"(utter_\w+)\"", path.read_text(encoding="utf-8")))
    return names


def _variables(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_every_literal_response_exists(domain):
    missing = sorted(_named_by_actions() - set(domain["responses"]))
    assert missing == []


def test_every_response_family_is_complete(domain, taxonomy):
    responses = domain["responses"]
    for code in taxonomy.scam_codes:
        assert f"utter_warning_{code}" in responses
    for status in STATUSES:
        assert f"utter_status_{status}" in responses
    for slot in FORM_SLOTS:
        assert f"utter_ask_{slot}" in responses and f"utter_invalid_{slot}" in responses
        assert f"action_ask_{slot}" in domain["actions"]


def test_warnings_have_the_variables_and_buttons(domain, taxonomy):
    for code in taxonomy.scam_codes:
        [variant] = domain["responses"][f"utter_warning_{code}"]
        assert _variables(variant["text"]) == {
            "risk_line",
            "seen_line",
            "flags_line",
            "report_line",
        }, code
        assert "96110" in variant["text"] and "110" in variant["text"]
        assert [b["payload"] for b in variant["buttons"]] == [
            "/money_transferred",
            "/report_scam",
            "/subscribe",
        ]


def test_urgent_says_110_and_the_bank_first(domain):
    [variant] = domain["responses"]["utter_urgent"]
    text = variant["text"]
    assert text.index("110") < text.index("{alert_line}")
    assert "银行" in text[: text.index("{alert_line}")]
