"""Campaign templates: the shipped ones load, cover every scam type and audience, read plainly;
broken files are refused with the file named; ``choose`` and ``render_custom`` behave."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml

from bot.nlp.taxonomy import NOT_SCAM, Taxonomy
from campaigns import templates as tpl
from campaigns.audience import ALL, AUDIENCES
from campaigns.templates import (
    CLOSING,
    TEMPLATES_DIR,
    CustomTextError,
    Template,
    TemplateError,
    choose,
    load_templates,
    parse_template,
    render_custom,
)

HANZI = re.compile(r"[\u4e00-\u9fff]")
# The themes the brief names for each main audience: scam types that a template written
# explicitly for that audience must cover, and words its story must use.
AUDIENCE_SCAM_TYPES = {
    "elderly": {"fundraising", "impersonate_authority", "impersonate_acquaintance"},
    "students": {"game_trade", "rebate", "loan"},
    "new_residents": {"fake_shopping", "customer_service"},
    "women": {"romance", "fake_shopping"},
    "enterprise_staff": {"impersonate_acquaintance"},
}
AUDIENCE_THEMES = {
    "elderly": ("保健品", "养老", "医保卡", "孙子"),
    "students": ("皮肤", "兼职", "贷"),
    "new_residents": ("房租", "快递"),
    "women": ("军人", "代购"),
    "enterprise_staff": ("老板", "领导"),
}


@pytest.fixture(scope="module")
def shipped(taxonomy: Taxonomy) -> dict[str, Template]:
    return load_templates(taxonomy=taxonomy)


def _hanzi_per_sentence(story: str) -> list[int]:
    pieces = re.split(r"[。！？]", story)
    return [n for n in (len(HANZI.findall(p)) for p in pieces) if n]


# --------------------------------------------------------------------------- shipped templates


def test_every_shipped_template_loads_and_renders(shipped: dict[str, Template]) -> None:
    files = sorted(p.stem for p in TEMPLATES_DIR.glob("*.yml"))
    assert len(files) >= 14
    assert sorted(shipped) == files
    for key, template in shipped.items():
        assert template.key == key
        text = template.render()
        assert text.startswith(f"📢 {template.title}\n\n{template.story}\n\n")
        assert text.endswith(CLOSING)
        for line in (*template.red_flags, *template.what_to_do):
            assert f"• {line}\n" in text
        assert len(text) < 4096
        assert " " not in template.story, f"{key}: a folding space was left in the story"


def test_default_directory_and_taxonomy_come_from_the_settings(
    shipped: dict[str, Template],
) -> None:
    assert load_templates() == shipped


def test_every_scam_type_has_a_template(shipped: dict[str, Template], taxonomy: Taxonomy) -> None:
    covered = {code for t in shipped.values() for code in t.scam_types}
    wanted = {t.code for t in taxonomy.types if t.code != NOT_SCAM}
    assert len(wanted) == 12
    assert wanted <= covered, f"no template for {sorted(wanted - covered)}"
    assert NOT_SCAM not in covered


def test_every_main_audience_has_its_own_templates(shipped: dict[str, Template]) -> None:
    for audience in AUDIENCES:
        own = [t for t in shipped.values() if audience in t.audiences]
        assert own, f"no template written for {audience}"
        types = {code for t in own for code in t.scam_types}
        missing = AUDIENCE_SCAM_TYPES.get(audience, set()) - types
        assert not missing, f"{audience}: no template about {sorted(missing)}"
        stories = "".join(t.story for t in own)
        for word in AUDIENCE_THEMES.get(audience, ()):
            assert word in stories, f"{audience}: no story about {word}"


def test_rendered_text_is_plain_and_says_whom_to_call(shipped: dict[str, Template]) -> None:
    for key, template in shipped.items():
        text = template.render()
        assert not re.search(r"<\s*/?\s*[a-zA-Z!][^>]*>|&[a-z]+;|&#\d+;", text), key
        assert not re.search(r"\*\*|__|`|\[[^\]]*\]\(", text), key
        assert "http" not in text and "www." not in text, key
        what_to_do = text.split("✅ 遇到了怎么办：\n", 1)[1].split("\n\n", 1)[0]
        assert re.search(r"(?<!\d)(?:110|96110)(?!\d)", what_to_do), key
        assert "银行" in what_to_do, f"{key}: money is involved, say to call the bank"


def test_stories_read_aloud_easily(shipped: dict[str, Template]) -> None:
    for key, template in shipped.items():
        lengths = _hanzi_per_sentence(template.story)
        assert 60 <= sum(lengths) <= 200, key
        assert sum(lengths) / len(lengths) <= 30, f"{key}: sentences too long on average"
        assert max(lengths) <= 30, f"{key}: a sentence of {max(lengths)} Chinese characters"


def test_plain_words_and_digits(shipped: dict[str, Template]) -> None:
    for key, template in shipped.items():
        text = template.render()
        latin = set(re.findall(r"[A-Za-z]+", text))
        assert latin <= {"QQ"}, f"{key}: English in a message for residents: {latin}"
        assert not re.search(r"[一二两三四五六七八九十百千]+[万千百]?[元块]", text), key
        assert not re.search(r"[一二两三四五六七八九十][十百千万]", text), key
        assert not re.search(r"(?<!\d)\d{7,}(?!\d)", text), f"{key}: a phone-like number"


# --------------------------------------------------------------------------- broken files


GOOD = {
    "key": "good",
    "title": "测试标题：先给甜头再骗钱",
    "scam_types": ["rebate"],
    "audiences": ["elderly"],
    "story": (
        "一位阿姨在群里看到兼职广告。对方让她点赞做任务，每单返3元。"
        "她做了几单，钱真的到账了。后来对方要她先垫付500元，说能返回600元。"
        "她垫了钱，对方又说卡单了，要再充钱。最后她的钱一分也没拿回来。"
    ),
    "red_flags": ["点赞做任务就返钱", "要先垫付才能接单", "说卡单要继续充钱"],
    "what_to_do": ["不要再转一分钱", "已经转账，马上打110，并打银行电话"],
}


def _write(directory: Path, name: str, data: dict | str) -> Path:
    path = directory / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def _with(**changes: object) -> dict:
    data = dict(GOOD)
    for field, value in changes.items():
        if value is None:
            data.pop(field)
        else:
            data[field] = value
    return data


def test_a_good_file_loads(tmp_path: Path, taxonomy: Taxonomy) -> None:
    _write(tmp_path, "good.yml", GOOD)
    loaded = load_templates(tmp_path, taxonomy=taxonomy)
    assert list(loaded) == ["good"]
    assert loaded["good"].scam_types == ("rebate",)


def test_folded_lines_join_without_spaces(taxonomy: Taxonomy) -> None:
    story = "\n".join(f"  {s}。" for s in GOOD["story"].split("。") if s)
    text = yaml.safe_dump(_with(story=None), allow_unicode=True) + f"story: >-\n{story}\n"
    template = parse_template(text, path="good.yml", taxonomy=taxonomy)
    assert template.story == GOOD["story"]


BROKEN = [
    ("bad YAML", "key: good\ntitle: [unclosed\n", "not valid YAML at line"),
    ("not a mapping", "- just\n- a list\n", "must be a YAML mapping"),
    ("duplicate key", yaml.safe_dump(GOOD, allow_unicode=True) + "key: good\n", "twice"),
    ("missing key", _with(what_to_do=None), "missing key(s) what_to_do"),
    ("extra key", _with(notes="备注"), "unknown key(s) notes"),
    ("unknown scam type", _with(scam_types=["rebate", "lottery"]), "lottery"),
    ("not_scam", _with(scam_types=["not_scam"]), "not_scam"),
    ("empty scam types", _with(scam_types=[]), "non-empty list"),
    ("unknown audience", _with(audiences=["retirees"]), "retirees"),
    ("all with others", _with(audiences=["all", "women"]), "list it alone"),
    ("key mismatch", _with(key="other"), "differs from the file name"),
    ("bad key", _with(key="Good Key"), "lower-case letters"),
    ("title not text", _with(title=110), "title must be text"),
    ("long title", _with(title="标" * 31), "title is too long"),
    ("long story", _with(story="骗子说要转钱。" * 40), "it needs 60 to 200"),
    ("short story", _with(story="骗子说要转钱。"), "it needs 60 to 200"),
    (
        "long sentences",
        _with(story="骗子" * 32 + "，" + "骗子" * 32 + "。"),
        "too long to read aloud",
    ),
    ("too few red flags", _with(red_flags=["一条", "两条"]), "3 to 5 lines"),
    ("too many steps", _with(what_to_do=["打110"] + [f"第{i}步" for i in range(4)]), "2 to 4"),
    ("repeated line", _with(red_flags=["打110", "打110", "第三条"]), "repeats a line"),
    ("long line", _with(red_flags=["长" * 41, "第二条", "第三条"]), "red_flags line 1"),
    ("no hotline", _with(what_to_do=["别转钱", "告诉家里人"]), "110 or 96110"),
    ("link", _with(title="点这里 https://x.cn 领奖"), "link"),
    ("phone number", _with(red_flags=["打13800001234问", "第二条", "第三条"]), "phone-like"),
    ("markup", _with(title="<b>注意</b>骗局"), "HTML-looking"),
    ("control character", _with(title="注意\x07骗局"), "U+0007"),
]


@pytest.mark.parametrize(("case", "content", "problem"), BROKEN, ids=[c[0] for c in BROKEN])
def test_a_broken_file_is_refused_naming_file_and_problem(
    tmp_path: Path, taxonomy: Taxonomy, case: str, content: dict | str, problem: str
) -> None:
    _write(tmp_path, "aaa.yml", _with(key="aaa"))  # a good neighbour does not hide it
    _write(tmp_path, "good.yml", content)
    with pytest.raises(TemplateError) as caught:
        load_templates(tmp_path, taxonomy=taxonomy)
    assert caught.value.path.name == "good.yml"
    assert "good.yml" in str(caught.value)
    assert problem in str(caught.value), case


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path, taxonomy: Taxonomy) -> None:
    (tmp_path / "good.yml").write_bytes(yaml.safe_dump(GOOD, allow_unicode=True).encode("gbk"))
    with pytest.raises(TemplateError, match=r"good\.yml: is not UTF-8"):
        load_templates(tmp_path, taxonomy=taxonomy)


def test_a_message_over_telegrams_limit_is_refused(
    tmp_path: Path, taxonomy: Taxonomy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real templates cannot reach 4,096 within the other limits; a lower ceiling shows the check.
    monkeypatch.setattr(tpl, "MAX_TEXT", 200)
    _write(tmp_path, "good.yml", GOOD)
    with pytest.raises(TemplateError, match=r"good\.yml: renders to \d+ characters"):
        load_templates(tmp_path, taxonomy=taxonomy)


def test_directory_problems(tmp_path: Path, taxonomy: Taxonomy) -> None:
    with pytest.raises(TemplateError, match="holds no"):
        load_templates(tmp_path, taxonomy=taxonomy)
    with pytest.raises(TemplateError, match="is not a directory"):
        load_templates(tmp_path / "missing", taxonomy=taxonomy)
    _write(tmp_path, "good.yaml", GOOD)
    with pytest.raises(TemplateError, match=r"good\.yaml: templates end in \.yml"):
        load_templates(tmp_path, taxonomy=taxonomy)


# --------------------------------------------------------------------------- choose


def _t(key: str, scam_types: list[str], audiences: list[str]) -> Template:
    return Template(
        key, "标题", tuple(scam_types), tuple(audiences), "故事", ("信号",), ("打110",)
    )


def test_scam_types_count_before_audiences() -> None:
    for_students = _t("a", ["rebate"], ["students"])
    for_elderly = _t("b", ["loan"], ["elderly"])
    assert choose([for_students, for_elderly], ["rebate"], ["elderly"]) is for_students
    both = _t("c", ["rebate", "loan"], ["women"])
    assert choose([for_students, for_elderly, both], ["rebate", "loan"], ["elderly"]) is both


def test_audiences_break_a_tie_on_scam_types() -> None:
    general = _t("a", ["rebate"], [ALL])
    for_women = _t("b", ["rebate"], ["women"])
    for_elderly = _t("c", ["rebate"], ["elderly", "students"])
    pool = [general, for_women, for_elderly]
    assert choose(pool, ["rebate"], ["elderly"]) is for_elderly
    # two requested audiences covered beat one
    two = _t("d", ["rebate"], ["elderly", "women"])
    assert choose([*pool, two], ["rebate"], ["elderly", "women"]) is two
    # nobody written for: the general one before one written for somebody else
    assert choose(pool, ["rebate"], ["new_residents"]) is general
    assert choose(pool, ["rebate"], [ALL]) is general
    assert choose(pool, ["rebate"], []) is general


def test_a_focused_template_beats_one_about_more() -> None:
    focused = _t("z", ["rebate"], ["elderly"])
    broad = _t("a", ["rebate", "loan", "investment"], ["elderly"])
    assert choose([broad, focused], ["rebate"], ["elderly"]) is focused


def test_ties_go_to_the_smallest_key_whatever_the_order() -> None:
    pool = [_t(key, ["rebate"], ["elderly"]) for key in ("m", "b", "x", "c")]
    for seed in range(5):
        random.Random(seed).shuffle(pool)
        chosen = choose(pool, ["rebate"], ["elderly"])
        assert chosen is not None and chosen.key == "b"
    assert choose({t.key: t for t in pool}, ["rebate"], ["elderly"]).key == "b"  # type: ignore[union-attr]


def test_nothing_fits() -> None:
    pool = [_t("a", ["rebate"], ["elderly"])]
    assert choose(pool, ["loan"], ["elderly"]) is None
    assert choose(pool, [], ["women"]) is None
    assert choose([], ["rebate"], ["elderly"]) is None


def test_choose_among_the_shipped_templates(shipped: dict[str, Template]) -> None:
    def key(types: list[str], audiences: list[str]) -> str | None:
        chosen = choose(shipped, types, audiences)
        return chosen.key if chosen else None

    assert key(["fundraising"], ["elderly"]) == "fundraising-elderly"
    assert key(["rebate"], ["students"]) == "rebate-students"
    assert key(["impersonate_acquaintance"], ["enterprise_staff"]) == (
        "impersonate_acquaintance-enterprise_staff-boss"
    )
    assert key(["romance"], ["elderly"]) == "romance-all"
    assert key(["romance"], ["women"]) == "romance-women"
    assert key(["fake_shopping"], ["new_residents"]) == "fake_shopping-new_residents"
    assert key(["other_scam"], [ALL]) == "other_scam-all"
    assert key(["not_a_type"], ["elderly"]) is None
    for code in {c for t in shipped.values() for c in t.scam_types}:
        for audience in [*AUDIENCES, ALL]:
            chosen = choose(shipped, [code], [audience])
            assert chosen is not None and code in chosen.scam_types


# --------------------------------------------------------------------------- leader's own text


def test_custom_text_gets_header_and_closing() -> None:
    text = render_custom("  今晚8点在村委会放反诈电影，欢迎大家来看。\n  ")
    assert text == f"📢 本网格网格长提醒\n\n今晚8点在村委会放反诈电影，欢迎大家来看。\n\n{CLOSING}"
    assert render_custom("注意骗子", grid="幸福村3组").startswith("📢 幸福村3组网格长提醒\n\n")
    assert render_custom("注意骗子", grid="幸福村3组网格\n").startswith("📢 幸福村3组网格长提醒")
    assert render_custom("注意骗子", grid="  ").startswith("📢 本网格网格长提醒")


def test_custom_text_is_cleaned() -> None:
    raw = "第一行\r\n第二\x00行\u202e\u200b\t好\n\n\n\n\n第三行  \n👨\u200d👩\u200d👧"
    body = render_custom(raw).split("\n\n", 1)[1].rsplit("\n\n", 1)[0]
    assert body == "第一行\n第二行 好\n\n第三行\n👨\u200d👩\u200d👧"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "空的"),
        (" \n\t\u200b\x00 ", "空的"),
        ("骗" * 1501, "1501个字"),
        (None, "必须是文字"),
        (123, "必须是文字"),
    ],
)
def test_bad_custom_text_gets_a_clear_error(text: object, problem: str) -> None:
    with pytest.raises(CustomTextError, match=problem):
        render_custom(text)  # type: ignore[arg-type]


def test_custom_text_at_the_limit_is_taken() -> None:
    text = render_custom("骗" * 1500)
    assert text.count("骗") == 1500
    assert len(text) < 4096
