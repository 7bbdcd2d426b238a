"""Audiences: who a group is for, and which audiences a case's victim belongs to.

A grid leader tags a group with the audiences it reaches (the six below, or a custom tag of
their own); the case data says who was hit (age group, gender, occupation, where they live).
The same codes join the two: a campaign for ``elderly`` goes to groups tagged ``elderly`` at the
hours when cases against elderly victims peak.
"""

from __future__ import annotations

import re
import unicodedata

# code -> Chinese name, in the order they are offered.
AUDIENCES: dict[str, str] = {
    "elderly": "老年人",
    "students": "学生",
    "young_workers": "青年职工",
    "new_residents": "新居民",
    "women": "女性",
    "enterprise_staff": "企业员工",
}
ALL = "all"  # the whole population: every case, every group
# Other ways people write the names (including traditional characters).
_ALIASES = {
    "老人": "elderly",
    "老年": "elderly",
    "长者": "elderly",
    "老年人": "elderly",
    "老年人群": "elderly",
    "学生": "students",
    "大学生": "students",
    "中学生": "students",
    "学生群体": "students",
    "青年": "young_workers",
    "年轻人": "young_workers",
    "青年职工": "young_workers",
    "年轻职工": "young_workers",
    "新居民": "new_residents",
    "新市民": "new_residents",
    "外来人口": "new_residents",
    "流动人口": "new_residents",
    "外来务工人员": "new_residents",
    "女性": "women",
    "妇女": "women",
    "女士": "women",
    "企业员工": "enterprise_staff",
    "企业职工": "enterprise_staff",
    "公司职员": "enterprise_staff",
    "员工": "enterprise_staff",
    "全部": ALL,
    "所有人": ALL,
    "全体": ALL,
    "老年人羣": "elderly",
    "學生": "students",
    "新居民們": "new_residents",
}
# Victim age groups as stored on a case: inclusive bands, the last one open.
AGE_GROUPS = ("0-17", "18-25", "26-35", "36-45", "46-59", "60+")
_AGE_BOUNDS = ((0, 17), (18, 25), (26, 35), (36, 45), (46, 59), (60, 200))
CUSTOM_TAG_MAX_CHARS = 16
_CUSTOM_TAG = re.compile(r"^[\w\u4e00-\u9fff·-]+$")


class TagError(ValueError):
    """A tag that cannot be used (empty, too long, odd characters)."""


def name_of(code: str) -> str:
    """The Chinese name of an audience; a custom tag is its own name."""
    if code == ALL:
        return "全体居民"
    return AUDIENCES.get(code, code)


def parse_tag(text: str) -> str:
    """A tag as a leader types it (``老年人``, ``elderly``, ``#学生``) → its code.

    A known audience gives its code; anything else is kept as a custom tag, normalised (NFKC,
    lower case, no leading ``#``) so that ``#广场舞队`` and ``广场舞队`` are one tag.
    """
    tag = unicodedata.normalize("NFKC", text).strip().lstrip("#＃").strip().lower()
    if not tag:
        raise TagError("标签不能为空")
    if tag in AUDIENCES or tag == ALL:
        return tag
    if tag in _ALIASES:
        return _ALIASES[tag]
    if len(tag) > CUSTOM_TAG_MAX_CHARS or not _CUSTOM_TAG.match(tag):
        raise TagError(
            f"标签“{text.strip()[:20]}”不能用：最多 {CUSTOM_TAG_MAX_CHARS} 个字，只用文字、数字"
        )
    return tag


def age_group_of(age: int) -> str:
    """The band an age falls in."""
    if age < 0 or age > 150:
        raise ValueError(f"not an age: {age}")
    for band, (low, high) in zip(AGE_GROUPS, _AGE_BOUNDS, strict=True):
        if low <= age <= high:
            return band
    raise AssertionError("the bands cover every age")


_STUDENT = ("学生", "在校", "大学生", "研究生", "中学生", "小学生")
_ENTERPRISE = ("企业", "公司", "职员", "员工", "白领", "工厂", "厂")
_WORKER = ("职工", "工人", "员工", "职员", "务工", "打工", "白领", "个体", "服务员", "司机")
_RETIRED = ("退休", "离休")
_NEW_RESIDENT = ("外来", "新居民", "新市民", "流动", "外省", "租住", "外地")


def audiences_of_case(
    age_group: str | None,
    gender: str | None,
    occupation: str | None,
    residence: str | None = None,
) -> list[str]:
    """The audiences a case's victim belongs to, from what the case data says about them."""
    found: set[str] = set()
    job = occupation or ""
    if age_group == "60+" or any(word in job for word in _RETIRED):
        found.add("elderly")
    if any(word in job for word in _STUDENT) or age_group == "0-17":
        found.add("students")
    working = not job or any(word in job for word in _WORKER)
    if age_group in ("18-25", "26-35") and "students" not in found and working:
        found.add("young_workers")
    if gender in ("女", "female", "f", "F"):
        found.add("women")
    if any(word in job for word in _ENTERPRISE):
        found.add("enterprise_staff")
    if residence and any(word in residence for word in _NEW_RESIDENT):
        found.add("new_residents")
    return sorted(found)
