"""Campaign message templates: read from ``campaigns/templates/*.yml``, checked, rendered, chosen.

A template is one warning a grid leader can push: a neighbour's story, the red flags and what to
do. It goes to thousands of groups and is read aloud to elderly residents, so a file that is
malformed, names an unknown scam type or audience, carries a link or a phone number, or reads
badly (long sentences) is refused when the templates are loaded, with the file and the problem
named, rather than discovered in a group. A grid leader may also send their own text instead
(``render_custom``): it is cleaned and marked as coming from their grid.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.nlp.taxonomy import NOT_SCAM, Taxonomy, load_taxonomy
from bot.settings import Settings
from bot.telegram.render import MAX_TEXT
from campaigns.audience import ALL, AUDIENCES

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

KEY_MAX_CHARS = 64  # campaigns.template_key is String(64)
TITLE_MAX_CHARS = 30
STORY_MIN_HANZI = 60
STORY_MAX_HANZI = 200
STORY_MAX_AVG_SENTENCE_HANZI = 30
RED_FLAGS_COUNT = (3, 5)
WHAT_TO_DO_COUNT = (2, 4)
LINE_MAX_CHARS = 40
CUSTOM_MAX_CHARS = 1500
GRID_NAME_MAX_CHARS = 30

CLOSING = "拿不准就把消息转给我，或者在群里@我，我帮您看看。"
RED_FLAGS_HEADING = "⚠️ 这些是骗局的信号："
WHAT_TO_DO_HEADING = "✅ 遇到了怎么办："
BULLET = "• "

_REQUIRED = ("key", "title", "scam_types", "audiences", "story", "red_flags", "what_to_do")
_KEY = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SENTENCE_END = re.compile(r"[。！？!?]")
_HOTLINE = re.compile(r"(?<!\d)(?:110|96110)(?!\d)")
_LINK = re.compile(
    r"https?://|www\.|\b[a-z0-9-]+\.(?:com|cn|net|org|top|xyz|vip|cc|info|me|io)\b", re.I
)
_PHONE = re.compile(r"(?<!\d)\d{7,}(?!\d)|\d{3}[- ]\d{4}[- ]\d{4}")
_MARKUP = re.compile(r"<\s*/?\s*[a-z!][^>]*>|&(?:[a-z]+|#\d+);", re.I)
# A space the YAML folding put between two lines of Chinese text (``>-`` joins with spaces).
_FOLD_SPACE = re.compile(r"(?<=[^\x00-\x7f]) (?=\S)|(?<=\S) (?=[^\x00-\x7f])")
_ZWJ = "\u200d"  # joins emoji sequences: kept in a leader's text


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CustomTextError(ValueError):
    """A grid leader's own text that cannot be sent; the message is for the leader, in Chinese."""


@dataclass(frozen=True)
class Template:
    """One campaign message: who it is for, which scams it warns about, and its text."""

    key: str
    title: str
    scam_types: tuple[str, ...]
    audiences: tuple[str, ...]
    story: str
    red_flags: tuple[str, ...]
    what_to_do: tuple[str, ...]

    @property
    def is_general(self) -> bool:
        """Written for everybody (audience ``all``)."""
        return ALL in self.audiences

    def render(self) -> str:
        """The message as the bot sends it: plain text, no parse mode."""
        flags = "\n".join(BULLET + line for line in self.red_flags)
        steps = "\n".join(BULLET + line for line in self.what_to_do)
        return (
            f"📢 {self.title}\n\n{self.story}\n\n"
            f"{RED_FLAGS_HEADING}\n{flags}\n\n{WHAT_TO_DO_HEADING}\n{steps}\n\n{CLOSING}"
        )


# --------------------------------------------------------------------------- reading files


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML would silently keep the last)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def hanzi_count(text: str) -> int:
    """How many Chinese characters a text has (punctuation, digits and emoji not counted)."""
    return len(_HANZI.findall(text))


def sentence_lengths(text: str) -> list[int]:
    """Chinese characters in each sentence (split on 。！？), empty pieces left out."""
    counts = (hanzi_count(piece) for piece in _SENTENCE_END.split(text))
    return [n for n in counts if n]


def _unfold(text: str) -> str:
    """One line of text: whitespace runs become one space, none is left beside Chinese."""
    return _FOLD_SPACE.sub("", " ".join(text.split()))


def _bad_characters(text: str) -> list[str]:
    return sorted({f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in ("Cc", "Cf")})


def _check_text(path: Path, field: str, text: str) -> None:
    """What no line of a template may carry, whatever the field."""
    bad = _bad_characters(text)
    if bad:
        raise TemplateError(path, f"{field} has control or invisible characters {', '.join(bad)}")
    if _MARKUP.search(text):
        raise TemplateError(path, f"{field} has HTML-looking markup; the bot sends plain text")
    if _LINK.search(text):
        raise TemplateError(path, f"{field} has a link; a warning must never carry one")
    if _PHONE.search(text):
        raise TemplateError(
            path,
            f"{field} has a phone-like number; mask it (138****0000), write amounts as 100万",
        )


def _string(path: Path, data: dict, field: str) -> str:
    value = data[field]
    if not isinstance(value, str):
        raise TemplateError(path, f"{field} must be text, not {type(value).__name__}")
    text = _unfold(value)
    if not text:
        raise TemplateError(path, f"{field} is empty")
    _check_text(path, field, text)
    return text


def _lines(path: Path, data: dict, field: str, counts: tuple[int, int]) -> tuple[str, ...]:
    value = data[field]
    if not isinstance(value, list):
        raise TemplateError(path, f"{field} must be a list")
    low, high = counts
    if not low <= len(value) <= high:
        raise TemplateError(path, f"{field} needs {low} to {high} lines, has {len(value)}")
    lines: list[str] = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, str) or not _unfold(item):
            raise TemplateError(path, f"{field} line {number} must be non-empty text")
        line = _unfold(item)
        if len(line) > LINE_MAX_CHARS:
            raise TemplateError(
                path,
                f"{field} line {number} is too long: {len(line)} characters,"
                f" at most {LINE_MAX_CHARS}",
            )
        _check_text(path, f"{field} line {number}", line)
        lines.append(line)
    if len(set(lines)) != len(lines):
        raise TemplateError(path, f"{field} repeats a line")
    return tuple(lines)


def _codes(path: Path, data: dict, field: str, known: Iterable[str]) -> tuple[str, ...]:
    value = data[field]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise TemplateError(path, f"{field} must be a non-empty list of codes")
    if not all(isinstance(code, str) for code in value):
        raise TemplateError(path, f"{field} must list codes as text")
    known = tuple(known)
    unknown = [code for code in value if code not in known]
    if unknown:
        raise TemplateError(
            path, f"unknown {field} code(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    if len(set(value)) != len(value):
        raise TemplateError(path, f"{field} lists a code twice")
    return tuple(value)


def parse_template(text: str, *, path: Path | str, taxonomy: Taxonomy) -> Template:
    """Build and check one template from the YAML text of the file at ``path``."""
    path = Path(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(path, f"not valid YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise TemplateError(path, "must be a YAML mapping of the template's fields")
    missing = [field for field in _REQUIRED if field not in data]
    if missing:
        raise TemplateError(path, f"missing key(s) {', '.join(missing)}")
    extra = sorted(str(field) for field in data if field not in _REQUIRED)
    if extra:
        raise TemplateError(path, f"unknown key(s) {', '.join(extra)}")

    key = data["key"]
    if not isinstance(key, str) or not _KEY.match(key) or len(key) > KEY_MAX_CHARS:
        raise TemplateError(
            path,
            f"key {key!r} must be lower-case letters, digits, _ and -,"
            f" at most {KEY_MAX_CHARS} characters",
        )
    if key != path.stem:
        raise TemplateError(path, f"key {key!r} differs from the file name {path.stem!r}")

    title = _string(path, data, "title")
    if len(title) > TITLE_MAX_CHARS:
        raise TemplateError(
            path, f"title is too long: {len(title)} characters, at most {TITLE_MAX_CHARS}"
        )
    scam_codes = [code for code in taxonomy.scam_codes if code != NOT_SCAM]
    scam_types = _codes(path, data, "scam_types", scam_codes)
    audiences = _codes(path, data, "audiences", [*AUDIENCES, ALL])
    if ALL in audiences and len(audiences) > 1:
        raise TemplateError(path, f"audience {ALL!r} already means everybody; list it alone")

    story = _string(path, data, "story")
    count = hanzi_count(story)
    if not STORY_MIN_HANZI <= count <= STORY_MAX_HANZI:
        raise TemplateError(
            path,
            f"story has {count} Chinese characters;"
            f" it needs {STORY_MIN_HANZI} to {STORY_MAX_HANZI}",
        )
    lengths = sentence_lengths(story)
    average = sum(lengths) / len(lengths)
    if average > STORY_MAX_AVG_SENTENCE_HANZI:
        raise TemplateError(
            path,
            f"story sentences are too long to read aloud: {average:.1f} Chinese characters"
            f" on average, at most {STORY_MAX_AVG_SENTENCE_HANZI}",
        )

    red_flags = _lines(path, data, "red_flags", RED_FLAGS_COUNT)
    what_to_do = _lines(path, data, "what_to_do", WHAT_TO_DO_COUNT)
    if not any(_HOTLINE.search(line) for line in what_to_do):
        raise TemplateError(path, "what_to_do must name 110 or 96110")

    template = Template(
        key=key,
        title=title,
        scam_types=scam_types,
        audiences=audiences,
        story=story,
        red_flags=red_flags,
        what_to_do=what_to_do,
    )
    size = len(template.render())
    if size >= MAX_TEXT:
        raise TemplateError(
            path, f"renders to {size} characters; Telegram takes fewer than {MAX_TEXT}"
        )
    return template


def load_templates(
    directory: Path | str = TEMPLATES_DIR, *, taxonomy: Taxonomy | None = None
) -> dict[str, Template]:
    """Every ``*.yml`` template in ``directory``, checked, by key (in key order).

    The first bad file stops the load with a ``TemplateError``: a campaign must not go out
    with half of the templates silently missing.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TemplateError(directory, "is not a directory of templates")
    if taxonomy is None:
        taxonomy = load_taxonomy(Settings.from_env().taxonomy_path)
    stray = sorted(directory.glob("*.yaml"))
    if stray:
        raise TemplateError(stray[0], "templates end in .yml; rename the file")
    paths = sorted(directory.glob("*.yml"))
    if not paths:
        raise TemplateError(directory, "holds no *.yml templates")
    templates: dict[str, Template] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise TemplateError(path, f"is not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:
            raise TemplateError(path, f"cannot be read: {exc.strerror or exc}") from exc
        template = parse_template(text, path=path, taxonomy=taxonomy)
        templates[template.key] = template
    return templates


# --------------------------------------------------------------------------- choosing


def choose(
    templates: Mapping[str, Template] | Iterable[Template],
    scam_types: Sequence[str],
    audiences: Sequence[str],
) -> Template | None:
    """The template that best fits a campaign, or None when none warns about its scam types.

    Ranked by, in turn: how many of the campaign's scam types it covers; how many of the
    campaign's audiences it was written for (a template for ``all`` fits a campaign for
    ``all``, or one with no audience); a general template before one written for other people;
    fewer scam types the campaign did not ask for; then its key, so the choice never varies.
    A campaign without scam types gets the best template for its audience, if any fits.
    """
    pool = list(templates.values() if isinstance(templates, Mapping) else templates)
    wanted_types = set(scam_types)
    wanted_audiences = set(audiences) - {ALL}
    wants_everybody = ALL in audiences or not audiences

    def rank(template: Template) -> tuple[int, int, int, int]:
        type_overlap = len(wanted_types.intersection(template.scam_types))
        audience_overlap = len(wanted_audiences.intersection(template.audiences))
        if wants_everybody and template.is_general:
            audience_overlap += 1
        unrelated = len(template.scam_types) - type_overlap
        return type_overlap, audience_overlap, int(template.is_general), -unrelated

    best: Template | None = None
    best_rank: tuple[int, int, int, int] | None = None
    for template in sorted(pool, key=lambda t: t.key):
        score = rank(template)
        fits = score[0] > 0 if wanted_types else (score[1] > 0 or template.is_general)
        if fits and (best_rank is None or score > best_rank):
            best, best_rank = template, score
    return best


# --------------------------------------------------------------------------- leader's own text


def _clean(text: str) -> str:
    """Line breaks unified, control and invisible characters dropped, blank runs collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n\n").replace("\t", " ")
    kept = "".join(
        ch
        for ch in text
        if ch == "\n" or ch == _ZWJ or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    lines = [line.rstrip() for line in kept.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def render_custom(text: str, grid: str | None = None) -> str:
    """A grid leader's own message, checked and headed so residents see it is from their grid.

    ``grid`` is the grid's name (幸福村3组); without it the header says 本网格.
    Raises ``CustomTextError`` (in Chinese, to show the leader) for an empty or too long text.
    """
    if not isinstance(text, str):
        raise CustomTextError("消息内容必须是文字。")
    body = _clean(text)
    if not body:
        raise CustomTextError("消息内容是空的，请写上要提醒大家的话。")
    if len(body) > CUSTOM_MAX_CHARS:
        raise CustomTextError(
            f"消息太长了：{len(body)}个字，最多{CUSTOM_MAX_CHARS}个字，请删短一些。"
        )
    name = " ".join(_clean(grid).split()) if isinstance(grid, str) else ""
    name = name.removesuffix("网格").strip()[:GRID_NAME_MAX_CHARS]
    header = f"📢 {name}网格长提醒" if name else "📢 本网格网格长提醒"
    return f"{header}\n\n{body}\n\n{CLOSING}"
