"""``rasa data validate --fail-on-warnings``, except for responses the custom actions send.

Rasa's validator warns about every response no story or rule names, and the warnings, the
reasons for the bot's every reply to a scam, come from custom actions (``actions/``), which pick
the response by scam type, status or slot. This runs the same checks as ``rasa data validate``,
records every warning, and fails on any warning except "utterance not used" for a response that
the actions' source names (as a string literal, or by a prefix: ``f"utter_warning_{...}"``).
Runs in the Rasa environment: ``.venv-rasa/bin/python scripts/validate_data.py``.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_UNUSED = re.compile(r"The utterance '(utter_\w+)' is not used in any story or rule\.")
_LITERAL = re.compile(r"\"(utter_\w+)\"")
_PREFIX = re.compile(r"response=f\"(utter_\w*?)\{")


def responses_named_by_actions() -> tuple[set[str], tuple[str, ...]]:
    literal: set[str] = set()
    prefixes: set[str] = set()
    for path in sorted((ROOT / "actions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        literal.update(_LITERAL.findall(source))
        prefixes.update(_PREFIX.findall(source))
    return literal, tuple(sorted(prefixes))


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.validator import Validator

    importer = TrainingDataImporter.load_from_config(
        str(ROOT / "config.yml"), str(ROOT / "domain.yml"), [str(ROOT / "nlu_data")]
    )
    validator = Validator.from_importer(importer)
    # What `rasa data validate --fail-on-warnings` checks, with the same results...
    checks = {
        "domain": validator.verify_domain_validity(),
        "actions in rules": validator.verify_actions_in_stories_rules(),
        "forms in rules": validator.verify_forms_in_stories_rules(),
        "form slots": validator.verify_form_slots(),
        "slot mappings": validator.verify_slot_mappings(),
        "intents used": validator.verify_intents_in_stories(False),
        "repeated examples": validator.verify_example_repetition_in_intents(False),
        "rule conflicts": validator.verify_story_structure(False, max_history=None),
    }
    # ...except that an unused response is allowed when a custom action sends it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validator.verify_utterances_in_stories(True)
    literal, prefixes = responses_named_by_actions()
    allowed, failures = 0, []
    for warning in caught:
        message = str(warning.message)
        unused = _UNUSED.search(message)
        if unused and (unused.group(1) in literal or unused.group(1).startswith(prefixes)):
            allowed += 1
        else:
            failures.append(message)
    checks["responses used"] = not failures
    for message in failures:
        print(f"warning: {message}", file=sys.stderr)
    failed = [name for name, passed in checks.items() if not passed]
    print(
        f"data validation: {allowed} responses are sent only by custom actions; "
        + (f"FAILED: {', '.join(failed)}" if failed else "OK")
    )
    ok = not failed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
