"""The scam taxonomy, read from ``nlu_data/scam_types.yml``, the one place types are defined."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

NOT_SCAM = "not_scam"
OTHER_SCAM = "other_scam"


class TaxonomyError(ValueError):
    """The taxonomy file is missing a field or contradicts itself."""


@dataclass(frozen=True)
class ScamType:
    """One scam type: code, Chinese name, the NLU intent standing for it, and what to say."""

    code: str
    name: str
    intent: str
    description: str
    red_flags: tuple[str, ...]
    advice: tuple[str, ...]

    @property
    def is_scam(self) -> bool:
        return self.code != NOT_SCAM


@dataclass(frozen=True)
class Taxonomy:
    """All types, in file order, with look-ups by code and by intent."""

    types: tuple[ScamType, ...]

    def __post_init__(self) -> None:
        codes = [t.code for t in self.types]
        intents = [t.intent for t in self.types]
        if len(set(codes)) != len(codes) or len(set(intents)) != len(intents):
            raise TaxonomyError("scam type codes and intents must be unique")
        if NOT_SCAM not in codes or OTHER_SCAM not in codes:
            raise TaxonomyError(f"the taxonomy must define {NOT_SCAM} and {OTHER_SCAM}")

    def get(self, code: str) -> ScamType:
        for scam_type in self.types:
            if scam_type.code == code:
                return scam_type
        raise KeyError(code)

    def by_intent(self, intent: str | None) -> ScamType | None:
        for scam_type in self.types:
            if scam_type.intent == intent:
                return scam_type
        return None

    @property
    def scam_types(self) -> tuple[ScamType, ...]:
        return tuple(t for t in self.types if t.is_scam)

    @property
    def scam_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.scam_types)


def _parse_type(raw: dict) -> ScamType:
    missing = [k for k in ("code", "name", "intent", "description") if not raw.get(k)]
    if missing:
        raise TaxonomyError(f"scam type {raw.get('code', '?')!r} lacks {', '.join(missing)}")
    return ScamType(
        code=str(raw["code"]),
        name=str(raw["name"]),
        intent=str(raw["intent"]),
        description=" ".join(str(raw["description"]).split()),
        red_flags=tuple(str(p) for p in raw.get("red_flags") or ()),
        advice=tuple(str(a) for a in raw.get("advice") or ()),
    )


def parse_taxonomy(text: str) -> Taxonomy:
    """Build the taxonomy from the YAML text of ``scam_types.yml``."""
    data = yaml.safe_load(text) or {}
    raw_types = data.get("scam_types")
    if not isinstance(raw_types, list) or not raw_types:
        raise TaxonomyError("scam_types.yml must hold a non-empty 'scam_types' list")
    return Taxonomy(tuple(_parse_type(raw) for raw in raw_types))


@lru_cache(maxsize=4)
def load_taxonomy(path: Path) -> Taxonomy:
    """Read and cache the taxonomy file."""
    return parse_taxonomy(Path(path).read_text(encoding="utf-8"))
